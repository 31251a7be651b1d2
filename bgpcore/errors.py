"""The one exception bgpcore's parsers raise.

Whatever is wrong with the bytes, decoding raises `BgpError`, carrying the
NOTIFICATION the RFC says to answer with (RFC 4271 §6). The FSM turns it into
the event the table expects (BGPHeaderErr, BGPOpenMsgErr, UpdateMsgErr); the
hypothesis tests rely on no other exception ever leaving a decoder.
"""

from __future__ import annotations

from .constants import notification_name


class BgpError(Exception):
    """A message that ends the session: send NOTIFICATION(code, subcode, data)."""

    def __init__(self, code: int, subcode: int, data: bytes = b"", reason: str = ""):
        super().__init__(reason or notification_name(code, subcode))
        self.code = int(code)
        self.subcode = int(subcode)
        self.data = bytes(data)
        self.reason = reason or notification_name(code, subcode)
