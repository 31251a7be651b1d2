"""Protection of the Encrypted (SK) payload, RFC 7296 §3.14; AEAD per RFC 5282.

The caller builds the message up to and including the SK (or SKF, RFC 7383)
generic payload header with the final lengths, which it gets from
encrypted_length() before sealing; those bytes are `assoc`. seal() returns
what follows them: IV || ciphertext || ICV.

    plaintext = inner payloads || padding || pad length (1 octet)

AES-CBC (RFC 3602): pad to the 16-byte block, ICV = integ(SK_a, assoc || IV ||
ciphertext), encrypt-then-MAC (RFC 7296 §3.14). AES-GCM-16 (RFC 5282):
nonce = salt || 8-byte IV, AAD = assoc (§5.1), 16-byte tag; no block padding,
but the pad length octet is still there.
"""

from __future__ import annotations

import itertools
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ikecore.constants import EncrId, IntegId
from ikecore.crypto.errors import CryptoError, IntegrityError, UnsupportedAlgorithm
from ikecore.crypto.integ import Integ, get_integ

AES_BLOCK = 16
GCM_SALT_SIZE = 4  # RFC 5282 §7.1: SK_e = key || 4-octet salt
GCM_IV_SIZE = 8  # RFC 5282: 8-octet explicit IV in the SK payload
GCM_ICV_SIZE = 16  # AES_GCM_16
_SUPPORTED_KEY_BITS = (128, 256)


class SkCipher:
    """The SK payload transform of one IKE SA (ENCR, and INTEG unless AEAD)."""

    is_aead: bool
    key_size: int  # bytes of SK_e
    integ_key_size: int  # bytes of SK_a (0 for AEAD)
    iv_size: int
    icv_size: int
    block_size: int  # plaintext (with pad length octet) is padded to a multiple of this

    def __init__(self, encr_id: EncrId, key_bits: int, integ_id: IntegId) -> None:
        self.encr_id = encr_id
        self.key_bits = key_bits
        self.integ_id = integ_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.encr_id.name}, {self.key_bits}, {self.integ_id.name})"

    # -- public API ---------------------------------------------------------

    def encrypted_length(self, plaintext_len: int) -> int:
        """Bytes of IV || ciphertext (with padding and pad length) || ICV."""
        return self.iv_size + self._padded_length(plaintext_len) + self.icv_size

    def seal(
        self, sk_e: bytes, sk_a: bytes, assoc: bytes, plaintext: bytes, iv: bytes | None = None
    ) -> bytes:
        """Encrypt and authenticate; returns IV || ciphertext || ICV."""
        pad = self._padded_length(len(plaintext)) - len(plaintext) - 1
        # RFC 7296 §3.14: padding may hold any value; zeros it is.
        padded = plaintext + bytes(pad) + bytes((pad,))
        return self._seal_padded(sk_e, sk_a, assoc, padded, iv)

    def open(self, sk_e: bytes, sk_a: bytes, assoc: bytes, body: bytes) -> bytes:
        """Check and decrypt IV || ciphertext || ICV; returns the inner payloads.

        Whatever is wrong with `body` or `assoc`, the only exception is
        IntegrityError. (Keys of the wrong length are the caller's bug and
        raise CryptoError.)
        """
        padded = self._open_padded(sk_e, sk_a, assoc, body)
        # RFC 7296 §3.14: the last octet counts the padding octets before it.
        pad = padded[-1]
        if pad + 1 > len(padded):
            raise IntegrityError("pad length exceeds the decrypted data")
        return padded[: len(padded) - pad - 1]

    # -- per-mode internals (known-answer tests call these directly) --------

    def _padded_length(self, plaintext_len: int) -> int:
        if plaintext_len < 0:
            raise CryptoError("plaintext length must not be negative")
        with_pad_octet = plaintext_len + 1
        return -(-with_pad_octet // self.block_size) * self.block_size

    def _seal_padded(
        self, sk_e: bytes, sk_a: bytes, assoc: bytes, padded: bytes, iv: bytes | None
    ) -> bytes:
        raise NotImplementedError

    def _open_padded(self, sk_e: bytes, sk_a: bytes, assoc: bytes, body: bytes) -> bytes:
        raise NotImplementedError

    def _check_keys(self, sk_e: bytes, sk_a: bytes) -> None:
        if len(sk_e) != self.key_size:
            raise CryptoError(f"{self!r}: SK_e must be {self.key_size} bytes, got {len(sk_e)}")
        if len(sk_a) != self.integ_key_size:
            raise CryptoError(
                f"{self!r}: SK_a must be {self.integ_key_size} bytes, got {len(sk_a)}"
            )


class _AesCbc(SkCipher):
    is_aead = False
    iv_size = AES_BLOCK
    block_size = AES_BLOCK

    def __init__(self, encr_id: EncrId, key_bits: int, integ_id: IntegId) -> None:
        super().__init__(encr_id, key_bits, integ_id)
        self._integ: Integ = get_integ(integ_id)
        self.key_size = key_bits // 8
        self.integ_key_size = self._integ.key_size
        self.icv_size = self._integ.icv_size

    def _seal_padded(self, sk_e, sk_a, assoc, padded, iv):
        self._check_keys(sk_e, sk_a)
        if len(padded) % AES_BLOCK:
            raise CryptoError("CBC plaintext is not a whole number of blocks")
        if iv is None:
            # RFC 7296 §3.14: the CBC IV MUST be chosen at random, unpredictable.
            iv = os.urandom(AES_BLOCK)
        elif len(iv) != AES_BLOCK:
            raise CryptoError(f"AES-CBC IV must be {AES_BLOCK} bytes, got {len(iv)}")
        enc = Cipher(algorithms.AES(sk_e), modes.CBC(iv)).encryptor()
        ciphertext = enc.update(padded) + enc.finalize()
        # RFC 7296 §3.14: ICV over the message from the IKE header to the
        # last octet of the encrypted data (IV included).
        icv = self._integ.sign(sk_a, assoc + iv + ciphertext)
        return iv + ciphertext + icv

    def _open_padded(self, sk_e, sk_a, assoc, body):
        self._check_keys(sk_e, sk_a)
        ct_len = len(body) - AES_BLOCK - self.icv_size
        if ct_len < AES_BLOCK or ct_len % AES_BLOCK:
            raise IntegrityError(f"SK body of {len(body)} bytes does not fit {self!r}")
        signed, icv = body[: -self.icv_size], body[-self.icv_size :]
        # Verify before decrypting (encrypt-then-MAC): no padding oracle.
        if not self._integ.verify(sk_a, assoc + signed, icv):
            raise IntegrityError("ICV mismatch")
        dec = Cipher(algorithms.AES(sk_e), modes.CBC(signed[:AES_BLOCK])).decryptor()
        return dec.update(signed[AES_BLOCK:]) + dec.finalize()


class _AesGcm16(SkCipher):
    is_aead = True
    iv_size = GCM_IV_SIZE
    icv_size = GCM_ICV_SIZE
    integ_key_size = 0
    # GCM needs no block alignment (RFC 5282), so no padding beyond the pad
    # length octet.
    block_size = 1

    def __init__(self, encr_id: EncrId, key_bits: int, integ_id: IntegId) -> None:
        super().__init__(encr_id, key_bits, integ_id)
        self.key_size = key_bits // 8 + GCM_SALT_SIZE
        # IV choice: a 64-bit counter per SkCipher instance, starting at a
        # random value. RFC 5282 only requires that an IV never repeats
        # under one key; GCM IVs need not be unpredictable. A counter makes
        # "never" hold by construction for every key sealed through this
        # instance (2^64 messages before it wraps), where random 8-byte IVs
        # only make a repeat unlikely (birthday bound). get_sk_cipher() returns
        # a fresh instance per call, so each IKE SA can own its counter; the
        # random start keeps the count of earlier messages private.
        self._iv_counter = itertools.count(secrets.randbits(64))

    def _next_iv(self) -> bytes:
        return (next(self._iv_counter) & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(GCM_IV_SIZE, "big")

    def _seal_padded(self, sk_e, sk_a, assoc, padded, iv):
        self._check_keys(sk_e, sk_a)
        if iv is None:
            iv = self._next_iv()
        elif len(iv) != GCM_IV_SIZE:
            raise CryptoError(f"AES-GCM IV must be {GCM_IV_SIZE} bytes, got {len(iv)}")
        key, salt = sk_e[:-GCM_SALT_SIZE], sk_e[-GCM_SALT_SIZE:]
        # RFC 5282: nonce = salt || IV (the RFC 4106 §4 layout); §5.1: AAD =
        # everything before the IV.
        return iv + AESGCM(key).encrypt(salt + iv, padded, assoc)

    def _open_padded(self, sk_e, sk_a, assoc, body):
        self._check_keys(sk_e, sk_a)
        # At least the pad length octet must be inside the ciphertext.
        if len(body) < GCM_IV_SIZE + 1 + GCM_ICV_SIZE:
            raise IntegrityError(f"SK body of {len(body)} bytes is too short for {self!r}")
        key, salt = sk_e[:-GCM_SALT_SIZE], sk_e[-GCM_SALT_SIZE:]
        iv = body[:GCM_IV_SIZE]
        try:
            return AESGCM(key).decrypt(salt + iv, body[GCM_IV_SIZE:], assoc)
        except InvalidTag:
            raise IntegrityError("GCM tag mismatch") from None


def get_sk_cipher(encr_id: EncrId, key_bits: int, integ_id: IntegId) -> SkCipher:
    """The SK transform for a negotiated ENCR (+ key length) and INTEG.

    AES-GCM-16 must come with IntegId.NONE (RFC 5282: no integrity transform
    is selected with an AEAD cipher); AES-CBC needs a real one. Returns a new
    instance on each call (it holds the GCM IV counter).
    """
    try:
        encr_id, integ_id = EncrId(encr_id), IntegId(integ_id)
    except ValueError:
        raise UnsupportedAlgorithm(f"unknown transform {encr_id!r}/{integ_id!r}") from None
    if key_bits not in _SUPPORTED_KEY_BITS:
        raise UnsupportedAlgorithm(f"{encr_id.name} with a {key_bits}-bit key is not supported")
    if encr_id is EncrId.AES_CBC:
        if integ_id is IntegId.NONE:
            raise UnsupportedAlgorithm("AES_CBC needs an integrity algorithm (RFC 7296 §3.3)")
        return _AesCbc(encr_id, key_bits, integ_id)  # get_integ rejects unsupported ones
    if encr_id is EncrId.AES_GCM_16:
        if integ_id is not IntegId.NONE:
            raise UnsupportedAlgorithm(
                f"AES_GCM_16 is combined-mode, integrity must be NONE, got {integ_id.name} "
                "(RFC 5282)"
            )
        return _AesGcm16(encr_id, key_bits, integ_id)
    raise UnsupportedAlgorithm(f"encryption transform {encr_id.name} is not supported")
