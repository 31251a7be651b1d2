"""Connection collision resolution (RFC 4271 §6.8).

When an OPEN arrives on one connection while the peer has another in
OpenConfirm, one of them must go (with Cease / Connection Collision
Resolution, RFC 4486 subcode 7). The rule both speakers apply independently,
so that they close the same connection: keep the connection initiated by the
speaker with the higher BGP Identifier (compared as 4-octet unsigned
integers). A collision with an Established connection always closes the new
one (§6.8, CollisionDetectEstablishedState off).
"""

from __future__ import annotations

from ipaddress import IPv4Address


def keep_new(local_id: IPv4Address, remote_id: IPv4Address,
             new_outbound: bool, existing_outbound: bool) -> bool:
    """True: close the existing connection and go on with the new one."""
    local_higher = int(local_id) > int(remote_id)
    if new_outbound != existing_outbound:
        # the connection vgw initiated is the outbound one
        return new_outbound == local_higher
    # two connections in the same direction (a peer that reconnected): §6.8's
    # literal rule, which closes the existing one when the local id is lower
    return not local_higher
