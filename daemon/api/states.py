"""States as AWS moves them, derived from (stored state, when it was set, now).

AWS's VPN objects pass through a transitional state before they settle:
pending -> available, modifying -> available, deleting -> deleted,
attaching -> attached, detaching -> detached (EC2 API VpnState and
AttachmentStatus). Terraform's waiters poll for exactly these
(hashicorp/terraform-provider-aws internal/service/ec2/wait.go: a connection
pending -> available, modifying -> available, deleting -> gone; an attachment
attaching -> attached; a VPN route pending -> available within 15 s). vgw holds
each transitional state for SETTLE_SECONDS, short enough that those waiters
pass on their first poll, long enough that a client sees the state AWS shows.

Deleted objects stay visible in Describe* for DELETED_VISIBLE_SECONDS, as AWS
keeps deleted VPN objects listed for a while, then are purged.

Nothing here reads a clock: `now` is passed in (sans-I/O, as in ikecore).
"""

from __future__ import annotations

SETTLE_SECONDS = 2.0
DELETED_VISIBLE_SECONDS = 600.0

_SETTLES_TO = {
    "pending": "available",
    "modifying": "available",
    "deleting": "deleted",
    "attaching": "attached",
    "detaching": "detached",
}


def effective(state: str, since: float, now: float, settle: float = SETTLE_SECONDS) -> str:
    """The state a Describe shows at `now` for an object set to `state` at `since`."""
    target = _SETTLES_TO.get(state)
    if target is not None and now - since >= settle:
        return target
    return state


def gone(state: str, since: float, now: float, settle: float = SETTLE_SECONDS,
         visible: float = DELETED_VISIBLE_SECONDS) -> bool:
    """True once a deleted object need no longer be listed (it can be purged)."""
    return effective(state, since, now, settle) in ("deleted", "detached") and now - since >= settle + visible


def is_live(state: str, since: float, now: float, settle: float = SETTLE_SECONDS) -> bool:
    """True while an object holds its addresses, /30s and quota: until it shows deleted
    (a deleting connection's tunnels are still being taken down)."""
    return effective(state, since, now, settle) not in ("deleted", "detached")
