"""IKE message fragmentation (RFC 7383): splitting a protected message into
Encrypted Fragment (SKF) payloads, and putting received ones back together.

Used once both peers sent IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT (§2.3;
vgw always sends it), for messages after IKE_SA_INIT (§2.5: IKE_SA_INIT is
never fragmented) that would not fit the path: typically IKE_AUTH with a
certificate chain.

Sending (§2.5): the inner payloads are encoded once, their bytes cut into
chunks, and each chunk is sealed on its own (own IV, padding and ICV) in a
message of its own: IKE header (Next Payload SKF, same message ID) + SKF
header (Next Payload = type of the first inner payload in fragment 1, zero in
the others; Fragment Number from 1; Total Fragments).

Receiving (§2.6): every fragment's integrity is checked before it is kept (a
forged fragment cannot disturb a reassembly); duplicates are ignored; a
fragment announcing fewer Total Fragments than the ones kept is dropped, one
announcing more restarts the reassembly (the sender retransmitted with smaller
fragments); a fragment of another message ID replaces the partial message. At
most MAX_FRAGMENTS fragments and MAX_REASSEMBLED plaintext bytes are held.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

from .constants import IKE_HEADER_LEN, PayloadType
from .errors import ParseError
from .message import Header, MAX_MESSAGE_SIZE, decode_chain, encode_chain, encode_message, open_sk
from .payloads import SkfPayload

MAX_FRAGMENTS = 64
MAX_REASSEMBLED = MAX_MESSAGE_SIZE
# RFC 7383 §2.5.1 leaves the size to the sender: 576 octets is what every IPv4 path
# carries, 1280 what every IPv6 path does. vgw defaults to 1280 for IPv4 as
# strongSwan does (charon.fragment_size = 1280): the whole IP datagram.
DEFAULT_FRAGMENT_SIZE = 1280
MIN_FRAGMENT_SIZE = 576
IPV4_UDP_HEADERS = 20 + 8
NON_ESP_MARKER_LEN = 4
_SKF_HEADER = struct.Struct("!BBHHH")   # generic header + Fragment Number + Total Fragments


def message_budget(fragment_size: int, local_port: int) -> int:
    """The largest IKE message (header included) that fits `fragment_size` bytes of
    IPv4 datagram, with the non-ESP marker on port 4500 (RFC 3948 §2.2)."""
    return fragment_size - IPV4_UDP_HEADERS - (NON_ESP_MARKER_LEN if local_port == 4500 else 0)


def _chunk_size(cipher, budget: int) -> int:
    """The most plaintext one fragment can carry within `budget` bytes."""
    room = budget - IKE_HEADER_LEN - _SKF_HEADER.size
    n = room
    while n > 0 and cipher.encrypted_length(n) > room:
        n -= 1
    if n <= 0:
        raise ValueError(f"a fragment of {budget} bytes cannot carry any data")
    return n


def encode(header: Header, payloads: list, keys, initiator_sent: bool,
           budget: int | None) -> list[bytes]:
    """The datagrams of one protected message: one SK message when it fits
    `budget` (or fragmentation is off: budget None), else SKF fragments."""
    first, plain = encode_chain(payloads)
    whole = IKE_HEADER_LEN + 4 + keys.cipher.encrypted_length(len(plain))
    if budget is None or whole <= budget:
        return [encode_message(header, payloads, keys, initiator_sent=initiator_sent)]
    per = _chunk_size(keys.cipher, budget)
    chunks = [plain[i:i + per] for i in range(0, len(plain), per)]
    if len(chunks) > MAX_FRAGMENTS:
        raise ValueError(f"message of {len(plain)} bytes needs {len(chunks)} fragments")
    sk_e, sk_a = keys.for_sender(initiator_sent)
    out = []
    for number, chunk in enumerate(chunks, 1):
        sealed_len = keys.cipher.encrypted_length(len(chunk))
        h = replace(header, next_payload=PayloadType.SKF,
                    length=IKE_HEADER_LEN + _SKF_HEADER.size + sealed_len)
        skf = _SKF_HEADER.pack(first if number == 1 else PayloadType.NONE, 0,
                               _SKF_HEADER.size + sealed_len, number, len(chunks))
        assoc = h.encode() + skf
        out.append(assoc + keys.cipher.seal(sk_e, sk_a, assoc, chunk))
    return out


def fragment_number(data: bytes) -> int | None:
    """The Fragment Number of an SKF message, without any check (None if too short)."""
    if len(data) < IKE_HEADER_LEN + _SKF_HEADER.size:
        return None
    return struct.unpack_from("!H", data, IKE_HEADER_LEN + 4)[0]


@dataclass
class _Partial:
    message_id: int
    total: int
    parts: dict[int, bytes] = field(default_factory=dict)
    first_inner: int = PayloadType.NONE
    size: int = 0


@dataclass
class FragmentCounters:
    received: int = 0
    duplicates: int = 0
    bad_integrity: int = 0
    dropped: int = 0          # malformed, over the limits, fewer Total Fragments
    reassembled: int = 0
    sent: int = 0
    evicted: int = 0          # partial messages dropped for the shared budget (DosGuard)


class Reassembler:
    """One partial message per direction (requests from the peer, responses to us).

    `budget` (the gateway's DosGuard) bounds the bytes all SAs hold together; it
    may evict a partial message here to make room for another SA's."""

    def __init__(self, budget=None) -> None:
        self.partial: dict[bool, _Partial] = {}
        self.counters = FragmentCounters()
        self.budget = budget

    def _drop_partial(self, key: bool) -> None:
        part = self.partial.pop(key, None)
        if part is not None and self.budget is not None:
            self.budget.release((self, key))

    def evict(self, key: bool) -> None:
        """The shared budget needs the room (DosGuard.reserve): drop this partial
        message; a later fragment of it starts over."""
        self.counters.evicted += 1
        self._drop_partial(key)

    def discard_all(self) -> None:
        """The SA is gone: give its held bytes back."""
        for key in list(self.partial):
            self._drop_partial(key)

    def add(self, data: bytes, header: Header, keys) -> tuple[int, bytes] | None:
        """Take one SKF message whose message ID the SA accepted. Returns (type of
        the first inner payload, inner bytes) once all fragments are in, else None.
        Raises IntegrityError (from the cipher) for a fragment that fails its check."""
        c = self.counters
        c.received += 1
        try:
            payloads = decode_chain(header.next_payload, data[IKE_HEADER_LEN:], IKE_HEADER_LEN)
        except ParseError:
            c.dropped += 1
            return None
        if len(payloads) != 1 or not isinstance(payloads[0], SkfPayload):
            c.dropped += 1   # vgw neither sends nor takes payloads outside SKF
            return None
        skf = payloads[0]
        if skf.total > MAX_FRAGMENTS:
            c.dropped += 1
            return None
        key = header.is_response
        part = self.partial.get(key)
        if part is not None and part.message_id == header.message_id:
            if skf.total < part.total:
                c.dropped += 1   # §2.6: fewer fragments than the kept ones: discard it
                return None
            if skf.total == part.total and skf.number in part.parts:
                c.duplicates += 1
                return None
        plain = open_sk(data, skf, header, keys)   # integrity first (§2.6)
        if part is None or part.message_id != header.message_id or skf.total > part.total:
            # a new message, or §2.6: more fragments than before: start over with this one
            self._drop_partial(key)
            part = self.partial[key] = _Partial(header.message_id, skf.total)
        if part.size + len(plain) > MAX_REASSEMBLED or (
                self.budget is not None and not self.budget.reserve((self, key), len(plain))):
            c.dropped += 1
            self._drop_partial(key)
            return None
        part.parts[skf.number] = plain
        part.size += len(plain)
        if skf.number == 1:
            part.first_inner = skf.first_inner
        if len(part.parts) < part.total:
            return None
        self._drop_partial(key)
        c.reassembled += 1
        return part.first_inner, b"".join(part.parts[n] for n in range(1, part.total + 1))


__all__ = ["encode", "Reassembler", "message_budget", "fragment_number", "MAX_FRAGMENTS",
           "MAX_REASSEMBLED", "DEFAULT_FRAGMENT_SIZE", "MIN_FRAGMENT_SIZE"]
