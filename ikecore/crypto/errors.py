"""Exceptions of the crypto layer.

Kept in their own module so that callers (parser, state machine) can catch a
narrow class without importing any primitive. Every failure caused by bytes
from the network is one of these, never a ValueError from a library, so that
"drop, count and log" (docs/design.md, quality bar) needs one except clause.
"""


class CryptoError(Exception):
    """Base class; also raised for caller mistakes (wrong key length, too long prf+)."""


class IntegrityError(CryptoError):
    """A protected message did not open: bad ICV or tag, bad length, bad padding."""


class InvalidPublicValue(CryptoError):
    """A peer's KE data failed the RFC 6989 checks (length, range, subgroup, curve)."""


class UnsupportedAlgorithm(CryptoError):
    """A transform ID (or combination) this implementation does not provide."""
