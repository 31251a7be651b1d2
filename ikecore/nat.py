"""NAT detection (RFC 7296 §2.23) and NAT keepalives (RFC 3948 §2.3).

The hash covers the SPIs as they appear in the header of the message that
carries the notify (SPIr is zero in the IKE_SA_INIT request), then the address
and port. vgw always computes real values: faking them (as some stacks do to
force UDP encapsulation) would hide a real NAT from the logs and from AWS's
nat_t_detected field.
"""

from __future__ import annotations

import ipaddress
import struct

from cryptography.hazmat.primitives import hashes

from .events import NatKeepalive
from .timers import IkeTimer


def nat_hash(spi_i: bytes, spi_r: bytes, ip: str, port: int) -> bytes:
    h = hashes.Hash(hashes.SHA1())
    h.update(spi_i + spi_r + ipaddress.ip_address(ip).packed + struct.pack("!H", port))
    return h.finalize()


def detect(spi_i: bytes, spi_r: bytes, source_hashes: list[bytes], dest_hash: bytes | None,
           peer: tuple[str, int], local: tuple[str, int]) -> tuple[bool, bool]:
    """Returns (peer_behind_nat, we_behind_nat) from the received notifies.

    The peer is behind a NAT when none of its NAT_DETECTION_SOURCE_IP values
    matches the source we saw; we are when its NAT_DETECTION_DESTINATION_IP does
    not match our own address. Without notifies, no NAT is assumed."""
    peer_nat = bool(source_hashes) and nat_hash(spi_i, spi_r, *peer) not in source_hashes
    local_nat = dest_hash is not None and nat_hash(spi_i, spi_r, *local) != dest_hash
    return peer_nat, local_nat


# --- NAT keepalives (RFC 3948 §2.3) ------------------------------------------------
#
# "The sending node behind the NAT" keeps its mapping alive with one-octet 0xFF
# UDP packets on port 4500. vgw sends them when it is itself behind a NAT
# (local_behind_nat), every KEEPALIVE_INTERVAL seconds, strongSwan's
# charon.keep_alive default. When only the customer gateway is behind a NAT, vgw
# sends none: the CGW keeps its own mapping alive, and AWS's periodic DPD for
# NAT peers (exchanges/informational.py: an authenticated request every 10 s,
# answered from behind the NAT) refreshes it in both directions anyway.

KEEPALIVE_INTERVAL = 20.0


def arm_keepalive(sa, now: float) -> None:
    if sa.local_behind_nat:
        sa.timers[IkeTimer.NAT_KEEPALIVE] = now + KEEPALIVE_INTERVAL


def fire_keepalive(sa, now: float) -> None:
    """IkeTimer.NAT_KEEPALIVE fired: ask the data path for a keepalive, and again later."""
    if not sa.established or not sa.local_behind_nat:
        return
    sa.emit(NatKeepalive(sa.local, sa.remote))
    sa.timers[IkeTimer.NAT_KEEPALIVE] = now + KEEPALIVE_INTERVAL
