"""The errors ikecore raises.

Parsing raises exactly one exception type, ParseError, whatever is wrong with the
bytes; callers (and the hypothesis tests) rely on that. It carries the notify type
that RFC 7296 says to answer with, when an answer is allowed at all.
"""

from .constants import NotifyType


class ParseError(Exception):
    """A message (or payload) is truncated, overlong or inconsistent.

    `notify` is INVALID_SYNTAX (RFC 7296 §3.10.1) or UNSUPPORTED_CRITICAL_PAYLOAD
    (§2.5; then `notify_data` is the one-byte payload type), or INVALID_MAJOR_VERSION.
    """

    def __init__(self, reason: str, notify: NotifyType = NotifyType.INVALID_SYNTAX,
                 notify_data: bytes = b""):
        super().__init__(reason)
        self.reason = reason
        self.notify = notify
        self.notify_data = notify_data
        # Set when the bad bytes were inside an SK payload that passed its
        # integrity check: only then may vgw answer INVALID_SYNTAX (§3.10.1).
        self.authenticated = False


class ExchangeError(Exception):
    """A well-formed request that must be refused with an error notify.

    Raised inside exchange handlers; the SA turns it into a response carrying
    N(notify, notify_data) and, with `fatal`, tears the IKE SA down afterwards.
    """

    def __init__(self, notify: NotifyType, reason: str, notify_data: bytes = b"",
                 fatal: bool = False):
        super().__init__(reason)
        self.notify = notify
        self.reason = reason
        self.notify_data = notify_data
        self.fatal = fatal


class CookieRequired(Exception):
    """The answer to an unproven IKE_SA_INIT would be larger than the request:
    the endpoint answers with a stateless COOKIE challenge instead (RFC 7296 §2.6)."""
