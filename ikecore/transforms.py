"""The AWS algorithm names and their IKEv2 transforms.

AWS names algorithms in VpnTunnelOptionsSpecification (docs/aws.md §0, §1.4);
the mapping to IANA transform IDs is the registry's (docs/aws.md §1.4, inference
noted there). One table, read by the proposal builder, the selector, the status
output and the config validator.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import DhId, EncrId, IntegId, PrfId


@dataclass(frozen=True)
class Encr:
    aws_name: str
    id: EncrId
    key_bits: int

    @property
    def is_aead(self) -> bool:
        return self.id == EncrId.AES_GCM_16


@dataclass(frozen=True)
class Hash:
    """An AWS "integrity algorithm": the same name selects the INTEG transform
    and, in phase 1, the PRF."""

    aws_name: str
    integ: IntegId
    prf: PrfId


ENCRYPTION: dict[str, Encr] = {e.aws_name: e for e in (
    Encr("AES128", EncrId.AES_CBC, 128),
    Encr("AES256", EncrId.AES_CBC, 256),
    Encr("AES128-GCM-16", EncrId.AES_GCM_16, 128),
    Encr("AES256-GCM-16", EncrId.AES_GCM_16, 256),
)}

INTEGRITY: dict[str, Hash] = {h.aws_name: h for h in (
    Hash("SHA1", IntegId.HMAC_SHA1_96, PrfId.HMAC_SHA1),
    Hash("SHA2-256", IntegId.HMAC_SHA2_256_128, PrfId.HMAC_SHA2_256),
    Hash("SHA2-384", IntegId.HMAC_SHA2_384_192, PrfId.HMAC_SHA2_384),
    Hash("SHA2-512", IntegId.HMAC_SHA2_512_256, PrfId.HMAC_SHA2_512),
)}

# docs/aws.md §0: phase 1 groups 2, 14-24; phase 2 (PFS) groups 2, 5, 14-24.
PHASE1_DH_GROUPS = (2, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24)
PHASE2_DH_GROUPS = (2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24)

DEFAULT_ENCRYPTION = ("AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16")
DEFAULT_INTEGRITY = ("SHA1", "SHA2-256", "SHA2-384", "SHA2-512")


def encr_name(encr_id: int, key_bits: int | None) -> str:
    for e in ENCRYPTION.values():
        if e.id == encr_id and e.key_bits == key_bits:
            return e.aws_name
    return f"ENCR{encr_id}/{key_bits}"


def integ_name(integ_id: int | None) -> str | None:
    if not integ_id:
        return None
    for h in INTEGRITY.values():
        if h.integ == integ_id:
            return h.aws_name
    return f"INTEG{integ_id}"


def prf_name(prf_id: int | None) -> str | None:
    if prf_id is None:
        return None
    for h in INTEGRITY.values():
        if h.prf == prf_id:
            return h.aws_name
    return f"PRF{prf_id}"


def dh_name(group: int | None) -> str | None:
    if not group:
        return None
    try:
        return f"{group} ({DhId(group).name})"
    except ValueError:
        return str(group)
