"""What the data path counts: drops by reason, global events, rate-limited drop logs.

Bad input never raises out of the data path: a packet that cannot be delivered is
dropped, counted and logged at most once per reason per ``LOG_INTERVAL`` seconds
(no per-packet logging on the hot path).  Drops land in one of three places:

* the SA that saw them (``EspSa.drops``: replay, bad ICV, padding, selectors...),
* the TUN binding they can be charged to (``TunBinding.drops``: unknown SPI on its
  outside address, TUN and socket errors, no outbound SA),
* ``Accounting.global_drops`` when no tunnel can be named (an outside address that
  several tunnels share).

``DataPath.stats`` and ``global_stats`` add them up for the daemon's status and metrics.
"""

from __future__ import annotations

import errno
import logging
import time
from enum import IntEnum

from .esp import DropReason

__all__ = ["Accounting", "DataPathDropReason", "REASONS", "LOG_INTERVAL", "add_counts", "errno_name",
           "new_counts", "named_counts"]

log = logging.getLogger("dataplane.datapath")

LOG_INTERVAL = 10.0


class DataPathDropReason(IntEnum):
    """Drops only the data path sees, numbered after DropReason so that one counter
    list holds both (the SA's own lists stop at DropReason)."""

    # recv on an outside socket failed, e.g. ECONNREFUSED from an ICMP port
    # unreachable: no packet was read, so nothing malformed was received
    SOCKET_ERROR = len(DropReason)
    # over the tunnel's emulated AWS limits, bits or packets per second (limits.py)
    RATE_LIMIT = len(DropReason) + 1


#: Every drop reason, in counter order; stats report them by lower-case name.
REASONS = (*DropReason, *DataPathDropReason)


def new_counts() -> list[int]:
    """A zeroed counter list indexed by every reason in REASONS."""
    return [0] * len(REASONS)


def add_counts(acc: list[int], more: list[int]) -> None:
    for i, v in enumerate(more):
        acc[i] += v


def named_counts(counts: list[int]) -> dict[str, int]:
    return {r.name.lower(): counts[r] for r in REASONS}


def errno_name(exc: OSError) -> str:
    return "receive error " + errno.errorcode.get(exc.errno or 0, str(exc))


class Accounting:
    """The data path's global counters and its rate-limited drop log.

    ``binding`` arguments are a TunBinding (anything with ``id`` and ``drops``) or
    None for what no tunnel can be charged with."""

    __slots__ = ("global_drops", "counters", "_last_log")

    def __init__(self) -> None:
        self.global_drops = new_counts()
        self.counters = {"ike_in": 0, "keepalive_in": 0, "ike_out": 0, "keepalive_out": 0, "errors": 0,
                         # TUN writes with IFF_VNET_HDR: frames written, packets they carried
                         "gro_frames": 0, "gro_packets": 0,
                         # TUN reads with a GSO type or a partial checksum, cut by tso_split
                         "tso_frames": 0}
        self._last_log: dict[object, float] = {}

    def drop(self, binding, reason: DropReason | DataPathDropReason, detail: object = "") -> None:
        """Count one drop (on ``binding``, or globally) and log it (rate-limited)."""
        if binding is None:
            self.global_drops[reason] += 1
        else:
            binding.drops[reason] += 1
        self.log_drop(binding, reason, detail)

    def log_drop(self, binding, reason: DropReason | DataPathDropReason, detail: object = "") -> None:
        """Log a drop already counted elsewhere (e.g. by the SA), at most once per
        reason and tunnel per LOG_INTERVAL."""
        key = (None if binding is None else binding.id, reason)
        now = time.monotonic()
        if now - self._last_log.get(key, -LOG_INTERVAL) >= LOG_INTERVAL:
            self._last_log[key] = now
            if isinstance(detail, (bytes, memoryview)):
                detail = f"SPI 0x{bytes(detail).hex()}"
            log.info("tunnel %s: dropping ESP packet: %s %s (at most one such line per %.0f s)",
                     "-" if binding is None else binding.id, reason.name.lower(), detail, LOG_INTERVAL)

    def internal_error(self, binding) -> None:
        """A bug or an unexpected exception while handling a packet: the packet is
        dropped, the data path goes on; counted in ``errors``, logged with its traceback."""
        self.counters["errors"] += 1
        key = ("error", None if binding is None else binding.id)
        now = time.monotonic()
        if now - self._last_log.get(key, -LOG_INTERVAL) >= LOG_INTERVAL:
            self._last_log[key] = now
            log.exception("tunnel %s: packet handling failed; packet dropped",
                          "-" if binding is None else binding.id)
