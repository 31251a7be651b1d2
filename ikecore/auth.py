"""Authentication data (RFC 7296 §2.15): what AUTH signs, and the PSK MAC.

Certificate-based methods (RFC 7427, RFC 7296's classic ones) live beside this
in sigauth.py; the signed octets are the same for every method.
"""

from __future__ import annotations

import hmac

KEY_PAD = b"Key Pad for IKEv2"  # RFC 7296 §2.15


def signed_octets(prf, real_message: bytes, peer_nonce: bytes, sk_p: bytes,
                  id_body: bytes) -> bytes:
    """<SignedOctets> = RealMessage | NonceData of the peer | prf(SK_p, RestOfIDPayload).

    `real_message` is the signer's own IKE_SA_INIT message as sent (request for the
    initiator, response for the responder); `id_body` is the ID payload body
    after the generic header (ID type, reserved bytes, data)."""
    return real_message + peer_nonce + prf(sk_p, id_body)


def psk_auth(prf, psk: bytes, octets: bytes) -> bytes:
    """AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)."""
    return prf(prf(psk, KEY_PAD), octets)


def psk_verify(prf, psk: bytes, octets: bytes, received: bytes) -> bool:
    return hmac.compare_digest(psk_auth(prf, psk, octets), received)
