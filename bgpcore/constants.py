"""BGP-4 numbers and names: message types, NOTIFICATION codes and subcodes,
path attribute type codes and flags, capability codes (IANA BGP registries).

Names are the RFCs' own wording, so that a log line reads as the RFC does and
as AWS's BGP log quotes them (docs/aws.md §3.4: "Cease", "Hold Timer Expired").
"""

from __future__ import annotations

from enum import IntEnum

BGP_VERSION = 4
BGP_PORT = 179
AS_TRANS = 23456                 # RFC 6793 §9: stands in for a 4-octet AS in 2-octet fields
AFI_IPV4 = 1                     # RFC 4760 / IANA address family numbers
SAFI_UNICAST = 1


class MessageType(IntEnum):
    """RFC 4271 §4.1, RFC 2918 §3 (ROUTE-REFRESH)."""

    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


MESSAGE_NAMES = {
    MessageType.OPEN: "OPEN",
    MessageType.UPDATE: "UPDATE",
    MessageType.NOTIFICATION: "NOTIFICATION",
    MessageType.KEEPALIVE: "KEEPALIVE",
    MessageType.ROUTE_REFRESH: "ROUTE-REFRESH",
}


class ErrorCode(IntEnum):
    """NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313 §5, RFC 9687)."""

    MESSAGE_HEADER = 1
    OPEN_MESSAGE = 2
    UPDATE_MESSAGE = 3
    HOLD_TIMER_EXPIRED = 4
    FSM = 5
    CEASE = 6
    ROUTE_REFRESH_MESSAGE = 7
    SEND_HOLD_TIMER_EXPIRED = 8


class HeaderError(IntEnum):      # RFC 4271 §6.1
    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenError(IntEnum):        # RFC 4271 §6.2, RFC 5492 §5, RFC 9234
    UNSPECIFIC = 0
    UNSUPPORTED_VERSION = 1
    BAD_PEER_AS = 2
    BAD_BGP_IDENTIFIER = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7
    ROLE_MISMATCH = 11


class UpdateError(IntEnum):      # RFC 4271 §6.3
    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN = 2
    MISSING_WELL_KNOWN = 3
    ATTRIBUTE_FLAGS = 4
    ATTRIBUTE_LENGTH = 5
    INVALID_ORIGIN = 6
    INVALID_NEXT_HOP = 8
    OPTIONAL_ATTRIBUTE = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class FsmError(IntEnum):         # RFC 6608 §3
    UNSPECIFIED = 0
    UNEXPECTED_IN_OPENSENT = 1
    UNEXPECTED_IN_OPENCONFIRM = 2
    UNEXPECTED_IN_ESTABLISHED = 3


class Cease(IntEnum):            # RFC 4486 §4, RFC 8538 §5, RFC 9384 §3
    MAX_PREFIXES = 1
    ADMINISTRATIVE_SHUTDOWN = 2
    PEER_DECONFIGURED = 3
    ADMINISTRATIVE_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIGURATION_CHANGE = 6
    CONNECTION_COLLISION_RESOLUTION = 7
    OUT_OF_RESOURCES = 8
    HARD_RESET = 9
    BFD_DOWN = 10


CODE_NAMES = {
    1: "Message Header Error",
    2: "OPEN Message Error",
    3: "UPDATE Message Error",
    4: "Hold Timer Expired",
    5: "Finite State Machine Error",
    6: "Cease",
    7: "ROUTE-REFRESH Message Error",
    8: "Send Hold Timer Expired",
}

SUBCODE_NAMES = {
    1: {1: "Connection Not Synchronized", 2: "Bad Message Length", 3: "Bad Message Type"},
    2: {0: "Unspecific", 1: "Unsupported Version Number", 2: "Bad Peer AS",
        3: "Bad BGP Identifier", 4: "Unsupported Optional Parameter",
        5: "Authentication Failure (deprecated)", 6: "Unacceptable Hold Time",
        7: "Unsupported Capability", 11: "Role Mismatch"},
    3: {1: "Malformed Attribute List", 2: "Unrecognized Well-known Attribute",
        3: "Missing Well-known Attribute", 4: "Attribute Flags Error",
        5: "Attribute Length Error", 6: "Invalid ORIGIN Attribute",
        7: "AS Routing Loop (deprecated)", 8: "Invalid NEXT_HOP Attribute",
        9: "Optional Attribute Error", 10: "Invalid Network Field",
        11: "Malformed AS_PATH"},
    5: {0: "Unspecified Error", 1: "Receive Unexpected Message in OpenSent State",
        2: "Receive Unexpected Message in OpenConfirm State",
        3: "Receive Unexpected Message in Established State"},
    6: {1: "Maximum Number of Prefixes Reached", 2: "Administrative Shutdown",
        3: "Peer De-configured", 4: "Administrative Reset", 5: "Connection Rejected",
        6: "Other Configuration Change", 7: "Connection Collision Resolution",
        8: "Out of Resources", 9: "Hard Reset", 10: "BFD Down"},
    7: {1: "Invalid Message Length"},
}


def notification_name(code: int, subcode: int) -> str:
    """"Cease / Maximum Number of Prefixes Reached"; unknown numbers print as numbers."""
    name = CODE_NAMES.get(code, f"error code {code}")
    subs = SUBCODE_NAMES.get(code)
    if subs is None:
        return name if subcode == 0 else f"{name} / subcode {subcode}"
    return f"{name} / {subs.get(subcode, f'subcode {subcode}')}"


class AttrType(IntEnum):
    """Path attribute type codes (RFC 4271 §5, RFC 1997, RFC 4456, RFC 4760,
    RFC 6793, RFC 4360, RFC 8092)."""

    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MULTI_EXIT_DISC = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8
    ORIGINATOR_ID = 9
    CLUSTER_LIST = 10
    MP_REACH_NLRI = 14
    MP_UNREACH_NLRI = 15
    EXTENDED_COMMUNITIES = 16
    AS4_PATH = 17
    AS4_AGGREGATOR = 18
    LARGE_COMMUNITY = 32


class AttrFlag(IntEnum):         # RFC 4271 §4.3
    OPTIONAL = 0x80
    TRANSITIVE = 0x40
    PARTIAL = 0x20
    EXTENDED_LENGTH = 0x10


class Origin(IntEnum):           # RFC 4271 §5.1.1
    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class SegmentType(IntEnum):      # RFC 4271 §4.3, RFC 5065 §3
    AS_SET = 1
    AS_SEQUENCE = 2
    AS_CONFED_SEQUENCE = 3
    AS_CONFED_SET = 4


class Capability(IntEnum):       # IANA capability codes (RFC 5492 §4)
    MULTIPROTOCOL = 1            # RFC 4760 §8
    ROUTE_REFRESH = 2            # RFC 2918 §2
    FOUR_OCTET_AS = 65           # RFC 6793 §3
    ROUTE_REFRESH_CISCO = 128    # pre-standard code of the same capability


class OptParam(IntEnum):         # RFC 5492 §4, RFC 9072 §2
    CAPABILITIES = 2
    EXTENDED_LENGTH = 255
