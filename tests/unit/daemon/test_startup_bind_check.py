"""A reload (and a start) that cannot bind a tunnel's address is refused with a
message that says what to change (daemon/gateway.py check_bindable)."""

from __future__ import annotations

import socket

import pytest

from daemon.startup import StartupError, check_bindable


def test_an_address_this_host_does_not_have_is_named():
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): on no interface of a test machine;
    # the kernel checks the address before the port's privilege
    with pytest.raises(StartupError, match=r"cannot bind 192\.0\.2\.77:500: 192\.0\.2\.77 is not an address"):
        check_bindable("192.0.2.77")


def test_a_port_in_use_is_named_and_the_probe_leaves_nothing_bound():
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        with pytest.raises(StartupError, match=f"cannot bind 127.0.0.1:{port}: the port is in use"):
            check_bindable("127.0.0.1", (port,))
    finally:
        holder.close()
    check_bindable("127.0.0.1", (port,))      # free now: no error
    again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    again.bind(("127.0.0.1", port))           # and the probe did not keep it
    again.close()
