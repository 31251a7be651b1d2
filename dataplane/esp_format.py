"""ESP's wire format (RFC 4303 §2), the pieces every algorithm module shares.

    SPI(4) | Sequence Number(4) | IV | ciphertext(inner | Padding | Pad Length | Next Header) | ICV

Constants, the drop reasons, and the trailers (padding, pad length, next header)
precomputed for every pad length, so that sealing a packet appends one table entry.
esp.py builds the SAs; esp_gcm.py and esp_cbc.py seal and open with these.
"""

from __future__ import annotations

import struct
from enum import IntEnum

__all__ = ["DropReason", "MAX_SEQ", "NH_IPV4", "NH_IPV6", "NH_NONE", "GCM_SALT", "GCM_IV", "GCM_ICV",
           "CBC_BLOCK", "PAD", "TRAILER", "TRAILERS_BY_VERSION", "NH_BY_VERSION", "VERSION_BY_NH",
           "pack_hdr", "pack_iv64", "ip_version_of_nh"]

#: RFC 4303 §3.3.3: without ESN the counter must not cycle; 2^32-1 is the last one.
MAX_SEQ = 0xFFFFFFFF

# Next Header values (IANA protocol numbers): tunnel mode carries IP in IP.
NH_IPV4 = 4
NH_IPV6 = 41
NH_NONE = 59  # RFC 4303 §2.6: dummy packet, discarded silently by the receiver

GCM_SALT = 4  # RFC 4106 §4
GCM_IV = 8  # RFC 4106 §3.1
GCM_ICV = 16  # "-16": the 16-octet ICV variant (RFC 4106 §8.1)
CBC_BLOCK = 16  # RFC 3602 §2.4: IV = one block
R_POOL_BLOCKS = 256

pack_hdr = struct.Struct("!II").pack  # SPI | sequence number (RFC 4303 §2)
pack_iv64 = struct.Struct("!Q").pack


class DropReason(IntEnum):
    """Why a packet was dropped.  IntEnum so counters can be plain lists indexed by it."""

    MALFORMED = 0  # too short, bad length/alignment, bad next header or inner version
    REPLAY = 1  # RFC 4303 §3.4.3: seq 0, duplicate, or left of the window
    BAD_ICV = 2  # HMAC mismatch or GCM tag failure (RFC 4303 §3.4.4)
    BAD_PADDING = 3  # padding not 1,2,3,... or pad length too long (RFC 4303 §2.4)
    UNKNOWN_SPI = 4  # no inbound SA for this SPI (RFC 4303 §3.4.2)
    DUMMY = 5  # next header 59, a dummy packet (RFC 4303 §2.6): authentic, not delivered
    NO_OUTBOUND_SA = 6  # read from a TUN with no outbound SA set
    SEQ_EXHAUSTED = 7  # outbound counter at 2^32-1 (RFC 4303 §3.3.3): rekey overdue
    SEND_ERROR = 8  # the socket refused the packet (buffer full, no route, ...)
    TUN_ERROR = 9  # the TUN refused the decrypted packet
    NOT_IP = 10  # read from a TUN, but not an IPv4/IPv6 packet
    POLICY = 11  # authentic, but outside the SA's traffic selectors (RFC 4301 §5.2)


# Trailer after the inner packet: Padding 1,2,3,... | Pad Length | Next Header
# (RFC 4303 §2.4, §2.5), precomputed for every pad length and both next headers.
PAD = [bytes(range(1, n + 1)) for n in range(256)]
TRAILER = {
    nh: [PAD[n] + bytes((n, nh)) for n in range(256)] for nh in (NH_IPV4, NH_IPV6)
}
# Version nibble of the inner packet -> next header (RFC 4303 §2.6 tunnel mode).
NH_BY_VERSION = {4: NH_IPV4, 6: NH_IPV6}
# Version nibble -> the trailers of its next header (None: not IP), one index per packet.
TRAILERS_BY_VERSION = [TRAILER.get(NH_BY_VERSION.get(v)) for v in range(16)]
VERSION_BY_NH = {NH_IPV4: 4, NH_IPV6: 6}
#: Next header -> the inner packet's IP version, or None.  Per-packet code in other
#: modules calls this rather than VERSION_BY_NH.get: CPython 3.11 compiles a method
#: call on an imported name as an attribute load and a call (a bound method made per
#: packet; GCM open measured 3-5 % slower that way).
ip_version_of_nh = VERSION_BY_NH.get
