"""Hardening of the IKE core against what the lab attacks found (issue 8,
tests/lab/test_hardening.py).
"""

from ikecore.message import Header
from ikecore.sa import State
from ikepair import ADDR_A, ADDR_B, IkePair, policy_a, policy_b


def test_status_shows_what_the_established_sa_dropped():
    """The fuzz campaign's messages with the real SPIs were dropped by the SA
    and counted nowhere that `vgw status` showed."""
    pair = IkePair(policy_a(), policy_b())
    pair.handshake()
    tunnel = pair.b.tunnel
    sa = tunnel.current
    expected = sa.expected_request_id
    for mid, body in ((expected, b"\x00" * 64), (expected + 5, b"")):   # a forged SK; a far message ID
        header = Header(sa.spi_i, sa.spi_r, 46 if body else 41, 37, 0x08, mid, 0)
        data = header.encode() + (bytes([0, 0, 0, 4 + len(body)]) + body if body else b"\0\0\0\x08\0\0\x40\0")
        data = data[:24] + len(data).to_bytes(4, "big") + data[28:]
        tunnel.receive(data, (ADDR_B, 500), (ADDR_A, 500), pair.now)
    counters = tunnel.status(pair.now)["ike"]["counters"]
    assert counters["dropped_unauthenticated"] == 1 and counters["dropped_bad_message_id"] == 1
    assert tunnel.current is sa and sa.state == State.ESTABLISHED
