"""IKEv2 integrity algorithms (RFC 7296 §3.3.2 Transform Type 3).

Truncated HMACs: HMAC-SHA-1-96 (RFC 2404) and HMAC-SHA-256-128,
HMAC-SHA-384-192, HMAC-SHA-512-256 (RFC 4868 §2.1). Used for the SK payload of
AES-CBC IKE SAs; the same IDs name ESP's integrity, but ESP lives in dataplane.
"""

from __future__ import annotations

import functools
import hmac as _stdlib_hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, hmac

from ikecore.constants import IntegId
from ikecore.crypto.errors import CryptoError, UnsupportedAlgorithm


@dataclass(frozen=True)
class Integ:
    """One negotiated integrity algorithm: sign() and a constant-time verify()."""

    id: IntegId
    key_size: int  # RFC 4868 §2.1.1 / RFC 2404 §3: key length = hash output length
    icv_size: int  # truncated output (RFC 4868 §2.1.1: half the hash output)
    _hash: type[hashes.HashAlgorithm] = field(repr=False)

    def sign(self, key: bytes, data: bytes) -> bytes:
        if len(key) != self.key_size:
            raise CryptoError(f"{self.id.name} needs a {self.key_size}-byte key, got {len(key)}")
        mac = hmac.HMAC(key, self._hash())
        mac.update(data)
        return mac.finalize()[: self.icv_size]

    def verify(self, key: bytes, data: bytes, icv: bytes) -> bool:
        # compare_digest runs in time independent of where the bytes differ.
        return _stdlib_hmac.compare_digest(self.sign(key, data), icv)


_INTEGS = {
    IntegId.HMAC_SHA1_96: (hashes.SHA1, 20, 12),  # RFC 2404 §2
    IntegId.HMAC_SHA2_256_128: (hashes.SHA256, 32, 16),  # RFC 4868 §2.1
    IntegId.HMAC_SHA2_384_192: (hashes.SHA384, 48, 24),
    IntegId.HMAC_SHA2_512_256: (hashes.SHA512, 64, 32),
}


def get_integ(integ_id: IntegId) -> Integ:
    """The Integ for an IANA Transform Type 3 ID (one shared instance per ID).

    Raises UnsupportedAlgorithm for any other value, NONE included.
    """
    try:
        return _get_integ(IntegId(integ_id))
    except (ValueError, KeyError):
        raise UnsupportedAlgorithm(f"integrity transform {integ_id!r} is not supported") from None


@functools.cache
def _get_integ(integ_id: IntegId) -> Integ:
    hash_cls, key_size, icv_size = _INTEGS[integ_id]
    return Integ(id=integ_id, key_size=key_size, icv_size=icv_size, _hash=hash_cls)
