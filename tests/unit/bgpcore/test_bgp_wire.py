"""Message framing, header errors (RFC 4271 §6.1), OPEN and NOTIFICATION."""

import struct
from ipaddress import IPv4Address

import pytest

from bgpcore.constants import notification_name
from bgpcore.errors import BgpError
from bgpcore.messages import (
    Notification, Open, decode_notification, decode_open, max_prefixes_data, shutdown_data,
)
from bgpcore.wire import MARKER, Framer, check_header, frame

from .rawpeer import cgw_open, events, notifications, out, raw_peer


def header(length, kind, marker=MARKER):
    return marker + struct.pack("!HB", length, kind)


@pytest.mark.parametrize("raw, expected", [
    (header(19, 4, b"\xff" * 15 + b"\xfe"), (1, 1, b"")),
    (header(18, 4), (1, 2, b"\x00\x12")),
    (header(4097, 2), (1, 2, b"\x10\x01")),
    (header(19, 9), (1, 3, b"\x09")),
    (header(19, 0), (1, 3, b"\x00")),
    (header(20, 4), (1, 2, b"\x00\x14")),        # KEEPALIVE is exactly 19
    (header(28, 1), (1, 2, b"\x00\x1c")),        # OPEN at least 29
    (header(22, 2), (1, 2, b"\x00\x16")),        # UPDATE at least 23
    (header(20, 3), (1, 2, b"\x00\x14")),        # NOTIFICATION at least 21
    (header(24, 5), (1, 2, b"\x00\x18")),        # ROUTE-REFRESH exactly 23
])
def test_header_errors(raw, expected):
    with pytest.raises(BgpError) as exc:
        check_header(raw)
    assert (exc.value.code, exc.value.subcode, exc.value.data) == expected
    # and on the wire, from a peer in OpenSent
    peer = raw_peer()
    peer.data_received("c", raw + bytes(64), 0)
    assert notifications(out(peer)) == [expected]


def test_framer_reassembles_split_and_joined_messages():
    msgs = [frame(4, b""), cgw_open(), frame(3, b"\x06\x02")]
    stream = b"".join(msgs)
    f = Framer()
    got = []
    for i in range(len(stream)):            # one octet at a time
        f.feed(stream[i:i + 1])
        while (m := f.next_message()) is not None:
            got.append(m)
    assert [k for k, _ in got] == [4, 1, 3] and f.pending() == 0
    f.feed(stream[:30])
    assert f.next_message() is not None and f.next_message() is None and f.pending() == 11


def test_open_round_trip_and_as_trans():
    o = Open.for_speaker(4200000001, 30, IPv4Address("169.254.10.1"))
    back = decode_open(o.encode()[19:])
    assert back == o and back.my_as == 23456 and back.asn == 4200000001
    assert back.capabilities.multiprotocol == frozenset({(1, 1)})
    assert back.capabilities.route_refresh and back.capabilities.refresh


def _open_with_caps(caps: bytes, asn=65000, ptype=2) -> bytes:
    params = bytes([ptype, len(caps)]) + caps
    body = struct.pack("!BHH4sB", 4, asn, 30, IPv4Address("169.254.10.2").packed,
                       len(params)) + params
    return frame(1, body)


def test_cisco_route_refresh_and_unknown_capabilities():
    caps = bytes([128, 0, 70, 0, 64, 2, 0x40, 0x78])   # RR(128), enhanced RR, graceful restart
    o = decode_open(_open_with_caps(caps)[19:])
    assert o.capabilities.refresh and not o.capabilities.route_refresh
    assert o.capabilities.others == ((70, b""), (64, b"\x40\x78"))
    assert o.asn == 65000 and o.capabilities.four_octet_as is None


def test_rfc9072_extended_optional_parameters():
    caps = struct.pack("!BBI", 65, 4, 65000) + bytes([2, 0])
    # Non-Ext OP Len 255, Non-Ext OP Type 255, Extended Opt. Parm. Length, then
    # parameters with 2-octet lengths
    param = bytes([2]) + struct.pack("!H", len(caps)) + caps
    body = struct.pack("!BHH4s", 4, 65000, 30, bytes([1, 2, 3, 4])) + bytes([255, 255]) + \
        struct.pack("!H", len(param)) + param
    o = decode_open(body)
    assert o.capabilities.four_octet_as == 65000 and o.capabilities.route_refresh


@pytest.mark.parametrize("raw, expected", [
    (_open_with_caps(b"", ptype=1), (2, 4)),                 # unknown optional parameter
    (_open_with_caps(bytes([1, 3, 0, 1, 0])), (2, 0)),       # MP capability of length 3
    (_open_with_caps(bytes([65, 2, 0, 1])), (2, 0)),         # 4-octet AS of length 2
    (_open_with_caps(bytes([2, 1, 0])), (2, 0)),             # route refresh with a value
    (_open_with_caps(bytes([65, 9])), (2, 0)),               # capability overruns
])
def test_malformed_open(raw, expected):
    with pytest.raises(BgpError) as exc:
        decode_open(raw[19:])
    assert (exc.value.code, exc.value.subcode) == expected
    peer = raw_peer()
    peer.data_received("c", raw, 0)
    assert [n[:2] for n in notifications(out(peer))] == [expected]


def test_open_length_inconsistent_with_parameters():
    raw = bytearray(cgw_open())
    raw[28] += 1                           # Opt Parm Len one too many
    peer = raw_peer()
    peer.data_received("c", bytes(raw), 0)
    assert notifications(out(peer))[0][:2] == (2, 0)


def test_unsupported_version_names_version_4():
    raw = bytearray(cgw_open())
    raw[19] = 3
    peer = raw_peer()
    peer.data_received("c", bytes(raw), 0)
    assert notifications(out(peer)) == [(2, 1, b"\x00\x04")]


def test_notification_names():
    assert notification_name(6, 1) == "Cease / Maximum Number of Prefixes Reached"
    assert notification_name(6, 7) == "Cease / Connection Collision Resolution"
    assert notification_name(4, 0) == "Hold Timer Expired"
    assert notification_name(5, 2) == "Finite State Machine Error / Receive Unexpected " \
                                      "Message in OpenConfirm State"
    assert notification_name(3, 11) == "UPDATE Message Error / Malformed AS_PATH"
    assert notification_name(1, 3) == "Message Header Error / Bad Message Type"
    assert notification_name(2, 2) == "OPEN Message Error / Bad Peer AS"
    assert notification_name(42, 1) == "error code 42 / subcode 1"
    for sub in range(1, 11):
        assert "subcode" not in notification_name(6, sub)


def test_cease_data_and_shutdown_communication():
    assert max_prefixes_data(100) == bytes.fromhex("00010100000064")
    n = Notification(6, 2, shutdown_data("planned maintenance"))
    assert decode_notification(n.encode()[19:]).communication == "planned maintenance"
    assert len(shutdown_data("é" * 200)) <= 256 and shutdown_data("") == b""
    assert Notification(6, 2, b"\x09abc").communication == ""     # length past the data


def test_notification_received_is_reported_with_its_name():
    peer = raw_peer()
    peer.data_received("c", Notification(6, 1, max_prefixes_data(100)).encode(), 0)
    [n] = [e for e in events(peer) if type(e).__name__ == "NotificationReceived"]
    assert n.name == "Cease / Maximum Number of Prefixes Reached" and n.data[-1] == 100
