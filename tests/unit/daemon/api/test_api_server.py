"""The endpoint's limits: a big body, a slow client or a burst of clients never
keeps a concurrent fast request from being answered."""

from __future__ import annotations

import socket
import threading

import pytest

from daemon.api.view import InMemoryGatewayView

from .conftest import Clock, Endpoint, make_settings


@pytest.fixture
def strict(tmp_path):
    e = Endpoint(make_settings(tmp_path), InMemoryGatewayView(), Clock(), max_clients=4, header_timeout=0.5,
                 body_timeout=0.5)
    yield e
    e.stop()


def _connect(endpoint) -> socket.socket:
    return socket.create_connection(("127.0.0.1", endpoint.port), timeout=10)


def _status(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n")[0]


def test_body_over_one_megabyte_is_refused(strict):
    with _connect(strict) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 1048577\r\n\r\n")
        assert _status(sock) == b"HTTP/1.1 413 Request Entity Too Large"
    assert strict.client().describe_vpcs()["Vpcs"]


def test_slow_client_is_cut_off_and_does_not_block(strict):
    with _connect(strict) as slow:
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # and then nothing: a slowloris
        assert strict.client().describe_vpcs()["Vpcs"]  # answered meanwhile
        assert slow.recv(100) == b""  # closed by the server after header_timeout
    with _connect(strict) as slow_body:
        slow_body.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nAction=")
        assert strict.client().describe_vpcs()["Vpcs"]
        assert slow_body.recv(100) == b""


def test_burst_of_clients(strict):
    idle = [_connect(strict) for _ in range(4)]  # take every slot
    try:
        with _connect(strict) as extra:
            extra.sendall(b"GET /?Action=DescribeVpcs HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _status(extra) == b"HTTP/1.1 503 Service Unavailable"
    finally:
        for sock in idle:
            sock.close()
    # once the idle ones are gone (closed or timed out), requests are served; many at once
    results = []

    def fast():
        results.append(bool(strict.client(retries={"max_attempts": 5, "mode": "standard"}).describe_vpcs()["Vpcs"]))

    threads = [threading.Thread(target=fast) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [True] * 16
    assert strict.server.refused >= 1


def test_keep_alive_and_get(endpoint):
    with _connect(endpoint) as sock:
        for _ in range(2):  # two requests on one connection
            sock.sendall(b"GET /?Action=DescribeVpcs&Version=2016-11-15 HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"</DescribeVpcsResponse>" not in data:
                data += sock.recv(65536)
            assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: keep-alive" in data
