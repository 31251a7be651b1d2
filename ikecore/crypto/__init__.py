"""Cryptographic primitives of ikecore: PRF, integrity, SK payload, DH, KDF.

Everything here is sans-I/O and stateless apart from the GCM IV counter held by
an SkCipher. The math is done by `cryptography`, and by gmpy2's constant-time
modular exponentiation for the MODP DH groups (dh.py says why); these modules add
the IKEv2 framing (RFC 7296) and the checks a peer's input must pass.
"""

from ikecore.crypto.dh import SUPPORTED_DH_GROUPS, DhGroup, DhKey, get_dh_group
from ikecore.crypto.errors import (
    CryptoError,
    IntegrityError,
    InvalidPublicValue,
    UnsupportedAlgorithm,
)
from ikecore.crypto.integ import Integ, get_integ
from ikecore.crypto.kdf import (
    ChildKeys,
    IkeKeys,
    derive_child_keys,
    derive_ike_keys,
    rekey_skeyseed,
    skeyseed,
)
from ikecore.crypto.prf import Prf, get_prf
from ikecore.crypto.sk import SkCipher, get_sk_cipher

__all__ = [
    "SUPPORTED_DH_GROUPS",
    "ChildKeys",
    "CryptoError",
    "DhGroup",
    "DhKey",
    "IkeKeys",
    "Integ",
    "IntegrityError",
    "InvalidPublicValue",
    "Prf",
    "SkCipher",
    "UnsupportedAlgorithm",
    "derive_child_keys",
    "derive_ike_keys",
    "get_dh_group",
    "get_integ",
    "get_prf",
    "get_sk_cipher",
    "rekey_skeyseed",
    "skeyseed",
]
