"""From the validated YAML config to what the IKE core and the data path need.

Its own module because ikecore never sees pydantic models: this is the one place
that translates AWS option names (VpnTunnelOptionsSpecification) into ikecore's
IkeSettings, and IANA algorithm numbers from ikecore's events into the data
path's cipher names. The package's other modules do not import it (it imports
ikecore; they need only pydantic).
"""

from __future__ import annotations

import time

from ikecore.certs import LocalCredentials, TrustAnchors
from ikecore.constants import EncrId, IntegId
from ikecore.settings import IkeSettings

from .connection import ConnectionConfig
from .tunnel import TunnelConfig


def ike_settings(conn: ConnectionConfig, tun: TunnelConfig) -> IkeSettings:
    """What ikecore needs to run this tunnel's IKE SA and CHILD SAs."""
    cgw_ip = conn.customer_gateway.ip
    return IkeSettings(
        name=f"{conn.name} {tun.outside_ip}",
        local_ip=str(tun.outside_ip),
        remote_ip=str(cgw_ip) if cgw_ip else None,
        psk=tun.pre_shared_key.encode() if tun.pre_shared_key else None,
        remote_id=conn.customer_gateway.identity,
        credentials=(LocalCredentials(tun.certificate_chain, tun.private_key_der, tun.certificate_identity)
                     if tun.auth_method == "certificate" else None),
        trust=TrustAnchors(tun.trust_anchors) if tun.auth_method == "certificate" else None,
        wall_time=time.time,   # certificate validity dates (the core has no clock)
        fragment_size=tun.ike_fragment_size,
        # docs/aws.md §1.8: remote_network_cidr is the AWS side, local_ the customer's
        vgw_ts=str(conn.remote_network_cidr),
        cgw_ts=str(conn.local_network_cidr),
        phase1_encryption=tuple(tun.phase1_encryption_algorithms),
        phase1_integrity=tuple(tun.phase1_integrity_algorithms),
        phase1_dh_groups=tuple(tun.phase1_dh_group_numbers),
        phase2_encryption=tuple(tun.phase2_encryption_algorithms),
        phase2_integrity=tuple(tun.phase2_integrity_algorithms),
        phase2_dh_groups=tuple(tun.phase2_dh_group_numbers),
        phase1_lifetime=tun.phase1_lifetime_seconds,
        phase2_lifetime=tun.phase2_lifetime_seconds,
        rekey_margin=tun.rekey_margin_time_seconds,
        rekey_fuzz=tun.rekey_fuzz_percentage,
        replay_window=tun.replay_window_size,
        dpd_timeout=tun.dpd_timeout_seconds,
        dpd_action=tun.dpd_timeout_action,
        startup_action=tun.startup_action,
    )


_ENCR = {EncrId.AES_GCM_16: "aes-gcm-16", EncrId.AES_CBC: "aes-cbc"}
_INTEG = {
    IntegId.NONE: None,
    IntegId.HMAC_SHA1_96: "hmac-sha1-96",
    IntegId.HMAC_SHA2_256_128: "hmac-sha2-256-128",
    IntegId.HMAC_SHA2_384_192: "hmac-sha2-384-192",
    IntegId.HMAC_SHA2_512_256: "hmac-sha2-512-256",
}


def esp_algorithms(encr_id: int, integ_id: int) -> tuple[str, str | None]:
    """The data path's names for a negotiated ESP suite."""
    return _ENCR[EncrId(encr_id)], _INTEG[IntegId(integ_id)]
