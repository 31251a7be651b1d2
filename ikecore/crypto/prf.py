"""IKEv2 pseudo-random functions (RFC 7296 §2.13, §3.3.2 Transform Type 2).

Only the HMAC PRFs are provided (RFC 2104 with SHA-1, RFC 4868 with SHA-2):
they are what AWS proposes (docs/aws.md) and what customer gateways send.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, hmac

from ikecore.constants import PrfId
from ikecore.crypto.errors import CryptoError, UnsupportedAlgorithm

# RFC 7296 §2.13: the prf+ block counter is one octet, so at most 255 blocks.
PRF_PLUS_MAX_BLOCKS = 255


@dataclass(frozen=True)
class Prf:
    """One negotiated PRF: prf(key, data) and prf+(key, seed, length)."""

    id: PrfId
    # RFC 7296 §2.14: for HMAC PRFs the preferred key length (SK_d, SK_pi,
    # SK_pr) is the output length of the hash (RFC 4868 §2.1.2 for SHA-2).
    key_size: int
    output_size: int
    _hash: type[hashes.HashAlgorithm] = field(repr=False)

    def __call__(self, key: bytes, data: bytes) -> bytes:
        # HMAC takes keys of any length (RFC 2104 §2), which SKEYSEED needs:
        # its key is Ni | Nr (RFC 7296 §2.14).
        mac = hmac.HMAC(key, self._hash())
        mac.update(data)
        return mac.finalize()

    def plus(self, key: bytes, seed: bytes, length: int) -> bytes:
        """prf+ (RFC 7296 §2.13): T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n)."""
        if length < 0:
            raise CryptoError(f"prf+ length must not be negative, got {length}")
        blocks = -(-length // self.output_size)
        if blocks > PRF_PLUS_MAX_BLOCKS:
            raise CryptoError(
                f"prf+ can produce at most {PRF_PLUS_MAX_BLOCKS * self.output_size} bytes "
                f"with {self.id.name}, {length} were asked (RFC 7296 §2.13)"
            )
        keyed = hmac.HMAC(key, self._hash())  # key schedule once, copied per block
        out = bytearray()
        previous = b""
        for counter in range(1, blocks + 1):
            mac = keyed.copy()
            mac.update(previous + seed + bytes((counter,)))
            previous = mac.finalize()
            out += previous
        return bytes(out[:length])


_PRFS = {
    PrfId.HMAC_SHA1: (hashes.SHA1, 20),  # RFC 2104, RFC 7296 §3.3.2
    PrfId.HMAC_SHA2_256: (hashes.SHA256, 32),  # RFC 4868 §2.1.2
    PrfId.HMAC_SHA2_384: (hashes.SHA384, 48),
    PrfId.HMAC_SHA2_512: (hashes.SHA512, 64),
}


def get_prf(prf_id: PrfId) -> Prf:
    """The Prf for an IANA Transform Type 2 ID (one shared instance per ID).

    Raises UnsupportedAlgorithm for any other value.
    """
    try:
        return _get_prf(PrfId(prf_id))
    except (ValueError, KeyError):
        raise UnsupportedAlgorithm(f"PRF transform {prf_id!r} is not supported") from None


@functools.cache
def _get_prf(prf_id: PrfId) -> Prf:
    hash_cls, size = _PRFS[prf_id]
    return Prf(id=prf_id, key_size=size, output_size=size, _hash=hash_cls)
