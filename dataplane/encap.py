"""UDP encapsulation of ESP on port 4500 (RFC 3948).

One UDP port carries three things (RFC 3948 §2): IKE messages behind a 4-byte
zero "non-ESP marker" (§2.2), ESP packets (their first 4 bytes are the SPI, never 0,
§2.1), and NAT-keepalive packets, a single 0xFF byte (§2.3).
"""

from __future__ import annotations

__all__ = [
    "NAT_T_PORT",
    "NON_ESP_MARKER",
    "NAT_KEEPALIVE",
    "IKE",
    "ESP",
    "KEEPALIVE",
    "MALFORMED",
    "classify",
    "add_marker",
    "strip_marker",
]

NAT_T_PORT = 4500  # RFC 3948 §1, RFC 7296 §2.23
NON_ESP_MARKER = b"\x00\x00\x00\x00"  # RFC 3948 §2.2
NAT_KEEPALIVE = b"\xff"  # RFC 3948 §2.3

IKE = "ike"
ESP = "esp"
KEEPALIVE = "keepalive"
MALFORMED = "malformed"

# RFC 3948 §2.1: ESP header (SPI + sequence number) is 8 bytes.
_MIN_ESP = 8
# An IKE header is 28 bytes (RFC 7296 §3.1); behind the marker that is 32.
_MIN_IKE = 4 + 28


def classify(datagram) -> str:
    """Say what a datagram received on UDP 4500 carries: "ike", "esp", "keepalive" or "malformed".

    A marker followed by less than an IKE header (28 bytes) is "malformed", not "ike":
    no IKE message is that short, so the IKE core is spared it.
    """
    n = len(datagram)
    if n >= _MIN_ESP:
        if datagram[:4] != NON_ESP_MARKER:
            return ESP
        return IKE if n >= _MIN_IKE else MALFORMED
    if n == 1 and datagram[0] == 0xFF:
        return KEEPALIVE
    return MALFORMED


def add_marker(ike_message: bytes) -> bytes:
    """Prefix an IKE message with the non-ESP marker for sending on port 4500."""
    return NON_ESP_MARKER + ike_message


def strip_marker(datagram: bytes) -> bytes:
    """Remove the non-ESP marker from an IKE datagram received on port 4500."""
    if datagram[:4] != NON_ESP_MARKER:
        raise ValueError("datagram does not start with the non-ESP marker (RFC 3948 §2.2)")
    return datagram[4:]
