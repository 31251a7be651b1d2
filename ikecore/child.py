"""CHILD SA records and their keys (RFC 7296 §2.17).

A ChildSa is bookkeeping only: the ESP work happens in the data path, which gets
the keys through a ChildSaUp event. Its state (ikecore.state.ChildState) and
timers (ikecore.timers.ChildTimer) are changed by the exchanges.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .constants import EncrId, IntegId
from .crypto import derive_child_keys, get_integ
from .events import ChildSaUp
from .payloads import TrafficSelector
from .proposals import Suite
from .state import CHILD_INITIAL, ChildState
from .timers import ChildTimer
from .transforms import integ_name


def esp_key_sizes(suite: Suite) -> tuple[int, int]:
    """(encryption key bytes, integrity key bytes) for ESP. AES-GCM keys carry a
    4-byte salt (RFC 4106 §8.1)."""
    encr = suite.encr.key_bits // 8 + (4 if suite.encr.id == EncrId.AES_GCM_16 else 0)
    integ = 0 if suite.integ == IntegId.NONE else get_integ(suite.integ).key_size
    return encr, integ


def new_spi(random_bytes) -> int:
    """A random ESP SPI; 1..255 are reserved by IANA (RFC 4303 §2.1)."""
    while True:
        spi = struct.unpack("!I", random_bytes(4))[0]
        if spi > 255:
            return spi


@dataclass
class ChildSa:
    spi_in: int
    spi_out: int
    suite: Suite
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]
    created: float
    initiator: bool              # did vgw initiate the exchange that made it?
    nonce_i: bytes = field(repr=False, default=b"")
    nonce_r: bytes = field(repr=False, default=b"")
    keys: object = field(repr=False, default=None)
    timers: dict[ChildTimer, float] = field(default_factory=dict)   # deadlines (ikecore.timers)
    state: ChildState = CHILD_INITIAL    # changed by ikecore.state.transition only

    def derive(self, prf, sk_d: bytes, shared: bytes | None = None) -> None:
        encr_size, integ_size = esp_key_sizes(self.suite)
        self.keys = derive_child_keys(prf, sk_d, self.nonce_i, self.nonce_r,
                                      encr_size, integ_size, shared)

    def deadline(self) -> float | None:
        return min(self.timers.values()) if self.timers else None

    def up_event(self, local, remote, udp_encap: bool, replay_window: int,
                 lifetime: float, replaces: int | None = None,
                 outbound_ready: bool = True) -> ChildSaUp:
        k = self.keys
        # keys "_i" protect traffic from the exchange initiator (§2.17)
        if self.initiator:
            out_e, out_a, in_e, in_a = k.encr_i, k.integ_i, k.encr_r, k.integ_r
        else:
            out_e, out_a, in_e, in_a = k.encr_r, k.integ_r, k.encr_i, k.integ_i
        return ChildSaUp(
            spi_in=self.spi_in, spi_out=self.spi_out,
            encr_id=self.suite.encr.id, encr_key_bits=self.suite.encr.key_bits,
            integ_id=self.suite.integ,
            encr_key_in=in_e, integ_key_in=in_a, encr_key_out=out_e, integ_key_out=out_a,
            local_ts=self.local_ts, remote_ts=self.remote_ts, local=local, remote=remote,
            udp_encap=udp_encap, encryption=self.suite.encr.aws_name,
            integrity=integ_name(self.suite.integ), dh_group=self.suite.dh,
            replay_window=replay_window, lifetime=lifetime, replaces=replaces,
            outbound_ready=outbound_ready)
