"""The BGP message header and the byte stream of one TCP connection (RFC 4271 §4.1).

`Framer` cuts a connection's stream into messages and checks each header as
§6.1 says: the marker, the length (19..4096, and the minimum or exact length of
the message's type) and the type. An error raises BgpError with Message Header
Error and the subcode and data §6.1 requires; nothing after a bad header is
read, since the stream can no longer be framed.
"""

from __future__ import annotations

import struct

from .constants import ErrorCode, HeaderError, MessageType
from .errors import BgpError

MARKER = b"\xff" * 16
HEADER_LEN = 19
MAX_MESSAGE_LEN = 4096            # RFC 4271 §4.1 (RFC 8654's extended messages: not offered)

# §6.1: "less than the minimum length of the OPEN message" etc.; KEEPALIVE is
# exactly 19 (§4.4); ROUTE-REFRESH is exactly 23 (RFC 2918 §3: AFI, Res., SAFI).
MIN_LEN = {
    MessageType.OPEN: 29,
    MessageType.UPDATE: 23,
    MessageType.NOTIFICATION: 21,
    MessageType.KEEPALIVE: 19,
    MessageType.ROUTE_REFRESH: 23,
}
EXACT_LEN = {MessageType.KEEPALIVE: 19, MessageType.ROUTE_REFRESH: 23}


def frame(msg_type: int, body: bytes) -> bytes:
    """Header + body. Callers keep bodies within MAX_MESSAGE_LEN - 19."""
    length = HEADER_LEN + len(body)
    if length > MAX_MESSAGE_LEN:
        raise ValueError(f"BGP message of {length} octets exceeds {MAX_MESSAGE_LEN}")
    return MARKER + struct.pack("!HB", length, msg_type) + body


def check_header(header: bytes) -> tuple[MessageType, int]:
    """(type, total length) of a 19-octet header, or BgpError per §6.1."""
    if header[:16] != MARKER:
        raise BgpError(ErrorCode.MESSAGE_HEADER, HeaderError.CONNECTION_NOT_SYNCHRONIZED,
                       reason="marker is not all ones")
    length, msg_type = struct.unpack_from("!HB", header, 16)
    length_field = header[16:18]
    if length < HEADER_LEN or length > MAX_MESSAGE_LEN:
        raise BgpError(ErrorCode.MESSAGE_HEADER, HeaderError.BAD_MESSAGE_LENGTH, length_field,
                       f"message length {length} outside 19..4096")
    try:
        kind = MessageType(msg_type)
    except ValueError:
        raise BgpError(ErrorCode.MESSAGE_HEADER, HeaderError.BAD_MESSAGE_TYPE,
                       bytes([msg_type]), f"unknown message type {msg_type}") from None
    if length < MIN_LEN[kind] or (kind in EXACT_LEN and length != EXACT_LEN[kind]):
        raise BgpError(ErrorCode.MESSAGE_HEADER, HeaderError.BAD_MESSAGE_LENGTH, length_field,
                       f"{kind.name} message of length {length}")
    return kind, length


class Framer:
    """Reassembles messages from TCP segments. Holds at most one partial
    message (< 4096 octets) between calls: `feed` then drain `next_message`."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.broken = False         # a header error was raised: the stream is lost

    def feed(self, data: bytes) -> None:
        if not self.broken:
            self._buf += data

    def next_message(self) -> tuple[MessageType, bytes] | None:
        """(type, body) of the next complete message, None if incomplete.
        Raises BgpError (and stays broken) on a bad header."""
        if self.broken:
            return None
        avail = len(self._buf) - self._pos
        if avail < HEADER_LEN:
            self._compact()
            return None
        header = bytes(self._buf[self._pos:self._pos + HEADER_LEN])
        try:
            kind, length = check_header(header)
        except BgpError:
            self.broken = True
            self._buf.clear()
            self._pos = 0
            raise
        if avail < length:
            self._compact()
            return None
        body = bytes(self._buf[self._pos + HEADER_LEN:self._pos + length])
        self._pos += length
        return kind, body

    def pending(self) -> int:
        """Octets held back: the start of a message not complete yet."""
        return len(self._buf) - self._pos

    def _compact(self) -> None:
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
