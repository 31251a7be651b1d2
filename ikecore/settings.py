"""What one tunnel's IKE side may negotiate and how it behaves, as the core sees it.

The daemon builds an IkeSettings from the validated YAML config; ikecore never
reads files. Defaults are AWS's (docs/aws.md §0) so that unit tests can build
settings with a name, addresses and a PSK only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from .certs import LocalCredentials, TrustAnchors
from .fragment import DEFAULT_FRAGMENT_SIZE
from .transforms import DEFAULT_ENCRYPTION, DEFAULT_INTEGRITY, PHASE1_DH_GROUPS, PHASE2_DH_GROUPS


@dataclass(frozen=True)
class RetransmitSettings:
    """Request retransmission (RFC 7296 §2.1). AWS does not document its schedule;
    these are strongSwan's defaults (charon.retransmit_timeout 4 s, base 1.8, 5
    tries; https://docs.strongswan.org/docs/latest/config/retransmission.html):
    resends at 4, 11.2, 24.2, 47.5, 89.5 s, give up at 165 s."""

    timeout: float = 4.0
    base: float = 1.8
    tries: int = 5

    def delays(self) -> list[float]:
        """Delay before each resend, then (last entry) before giving up."""
        return [self.timeout * self.base ** n for n in range(self.tries + 1)]


@dataclass(frozen=True)
class IkeSettings:
    """One tunnel's IKE settings (AWS's tunnel options, docs/aws.md §0-§1)."""

    name: str                      # for logs: "<connection> <outside ip>"
    local_ip: str                  # the tunnel's AWS outside IP
    remote_ip: str | None          # the customer gateway IP; None: any address
    psk: bytes | None = field(default=None, repr=False)   # keep it out of logs and tracebacks
    # Traffic selectors. AWS: remote_network_cidr is the AWS side,
    # local_network_cidr the customer side (docs/aws.md §1.8).
    vgw_ts: str = "0.0.0.0/0"
    cgw_ts: str = "0.0.0.0/0"
    phase1_encryption: tuple[str, ...] = DEFAULT_ENCRYPTION
    phase1_integrity: tuple[str, ...] = DEFAULT_INTEGRITY
    phase1_dh_groups: tuple[int, ...] = PHASE1_DH_GROUPS
    phase2_encryption: tuple[str, ...] = DEFAULT_ENCRYPTION
    phase2_integrity: tuple[str, ...] = DEFAULT_INTEGRITY
    phase2_dh_groups: tuple[int, ...] = PHASE2_DH_GROUPS
    phase1_lifetime: int = 28800
    phase2_lifetime: int = 3600
    rekey_margin: int = 270
    rekey_fuzz: int = 100
    replay_window: int = 1024
    dpd_timeout: int = 30
    dpd_action: str = "clear"
    startup_action: str = "add"
    remote_id: str | None = None   # identity the CGW must present (None: any): DN, IPv4 or FQDN
    # Certificate authentication (RFC 7427 / RFC 7296 §3.8): vgw's chain and key, and
    # the CAs that vouch for the CGW. Without credentials the tunnel uses the PSK.
    credentials: LocalCredentials | None = None
    trust: TrustAnchors | None = None
    # Wall-clock time (POSIX seconds) for certificate validity: the core has no clock
    # of its own and its `now` is monotonic; the daemon passes time.time. Called only
    # while a peer's chain is checked (None: certificates cannot be validated).
    wall_time: Callable[[], float] | None = field(default=None, compare=False, repr=False)
    # IKE fragmentation (RFC 7383): the largest IPv4 datagram an IKE message or
    # fragment may fill (ikecore.fragment)
    fragment_size: int = DEFAULT_FRAGMENT_SIZE
    # strongSwan's charon.half_open_timeout is 30 s; AWS logs "Timeout: deleting
    # un-established Phase 1 IKE_SA" (docs/aws.md §3.3) without a documented figure.
    half_open_timeout: float = 30.0
    retransmit: RetransmitSettings = RetransmitSettings()
    nonce_size: int = 32
    random_bytes: Callable[[int], bytes] = field(default=os.urandom, compare=False, repr=False)
