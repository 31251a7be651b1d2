"""RFC 3948 classification of datagrams on UDP 4500."""

import pytest
from hypothesis import given, strategies as st

from dataplane import encap


@pytest.mark.parametrize(
    "data, kind",
    [
        (b"", "malformed"),
        (b"\xff", "keepalive"),
        (b"\xff\xff", "malformed"),
        (b"\x00", "malformed"),
        (b"\x00" * 4, "malformed"),
        (b"\x00" * 31, "malformed"),
        (b"\x00" * 4 + b"\x11" * 28, "ike"),
        (b"\x00\x00\x00\x01" + b"\x00" * 4, "esp"),
        (b"\x12\x34\x56\x78" + b"\x00" * 4, "esp"),
        (b"\x12\x34\x56\x78" + b"\x00" * 3, "malformed"),
    ],
)
def test_classify(data, kind):
    assert encap.classify(data) == kind
    assert encap.classify(memoryview(data)) == kind


def test_marker_roundtrip():
    msg = b"\x11" * 28
    d = encap.add_marker(msg)
    assert d[:4] == encap.NON_ESP_MARKER
    assert encap.classify(d) == "ike"
    assert encap.strip_marker(d) == msg
    with pytest.raises(ValueError):
        encap.strip_marker(b"\x01" * 40)


def test_constants():
    assert encap.NAT_KEEPALIVE == b"\xff"
    assert encap.NAT_T_PORT == 4500


@given(st.binary(max_size=64))
def test_classify_total(data):
    assert encap.classify(data) in ("ike", "esp", "keepalive", "malformed")
