"""IKEv2 key derivation: RFC 7296 §2.14 (IKE SA), §2.17 (CHILD SA), §2.18 (IKE rekey).

Pure functions of their inputs, so the known-answer tests pin them exactly.
Nonces are taken as given (their 16..256-byte bounds of RFC 7296 §2.10 are
the parser's business; the NIST vectors use 8-byte nonces).
"""

from __future__ import annotations

from dataclasses import dataclass

from ikecore.crypto.errors import CryptoError
from ikecore.crypto.prf import Prf

IKE_SPI_SIZE = 8  # RFC 7296 §3.1


def skeyseed(prf: Prf, ni: bytes, nr: bytes, shared: bytes) -> bytes:
    """SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 §2.14)."""
    return prf(ni + nr, shared)


def rekey_skeyseed(prf: Prf, sk_d_old: bytes, shared: bytes, ni: bytes, nr: bytes) -> bytes:
    """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) (RFC 7296 §2.18).

    `prf` is the OLD IKE SA's PRF here; the new SA's PRF then runs prf+ in
    derive_ike_keys (§2.18). Ni and Nr come from the CREATE_CHILD_SA exchange.
    """
    return prf(sk_d_old, shared + ni + nr)


@dataclass(frozen=True, repr=False)
class IkeKeys:
    """The seven IKE SA keys, in the order prf+ produces them (RFC 7296 §2.14)."""

    sk_d: bytes
    sk_ai: bytes
    sk_ar: bytes
    sk_ei: bytes
    sk_er: bytes
    sk_pi: bytes
    sk_pr: bytes

    def __repr__(self) -> str:  # keep keys out of logs and tracebacks
        return "IkeKeys(<redacted>)"


@dataclass(frozen=True, repr=False)
class ChildKeys:
    """CHILD SA keys; "_i" is the initiator-to-responder direction (RFC 7296 §2.17)."""

    encr_i: bytes
    integ_i: bytes
    encr_r: bytes
    integ_r: bytes

    def __repr__(self) -> str:
        return "ChildKeys(<redacted>)"


def _split(material: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    parts, offset = [], 0
    for size in sizes:
        parts.append(material[offset : offset + size])
        offset += size
    return parts


def derive_ike_keys(
    prf: Prf,
    skeyseed: bytes,
    ni: bytes,
    nr: bytes,
    spi_i: bytes,
    spi_r: bytes,
    integ_key_size: int,
    encr_key_size: int,
) -> IkeKeys:
    """The seven IKE SA keys (RFC 7296 §2.14):

        {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
            = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)

    SK_d, SK_pi and SK_pr take the PRF's preferred key size; integ_key_size
    is 0 for AEAD; encr_key_size includes the GCM salt (RFC 5282 §7.1). For a
    rekeyed IKE SA, SPIi/SPIr are the new SA's SPIs (§2.18).
    """
    if len(spi_i) != IKE_SPI_SIZE or len(spi_r) != IKE_SPI_SIZE:
        raise CryptoError(f"IKE SPIs are {IKE_SPI_SIZE} bytes each (RFC 7296 §3.1)")
    if integ_key_size < 0 or encr_key_size < 0:
        raise CryptoError("key sizes must not be negative")
    sizes = (
        prf.key_size,
        integ_key_size,
        integ_key_size,
        encr_key_size,
        encr_key_size,
        prf.key_size,
        prf.key_size,
    )
    material = prf.plus(skeyseed, ni + nr + spi_i + spi_r, sum(sizes))
    return IkeKeys(*_split(material, sizes))


def derive_child_keys(
    prf: Prf,
    sk_d: bytes,
    ni: bytes,
    nr: bytes,
    encr_key_size: int,
    integ_key_size: int,
    shared: bytes | None = None,
) -> ChildKeys:
    """KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (RFC 7296 §2.17).

    Taken in the order: initiator-to-responder encryption then integrity key,
    then responder-to-initiator (§2.17). For AES-GCM the encryption keys carry
    the 4-byte salt (RFC 4106 §8.1) and integ_key_size is 0. `shared` is the
    new g^ir when the CREATE_CHILD_SA exchange carried KE payloads (PFS).
    """
    if integ_key_size < 0 or encr_key_size < 0:
        raise CryptoError("key sizes must not be negative")
    seed = (shared or b"") + ni + nr
    sizes = (encr_key_size, integ_key_size, encr_key_size, integ_key_size)
    material = prf.plus(sk_d, seed, sum(sizes))
    return ChildKeys(*_split(material, sizes))
