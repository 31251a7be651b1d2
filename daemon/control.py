"""The control socket: one JSON request per connection, one JSON answer.

A Unix stream socket (default /run/vgw/vgw.sock, docs/design.md §6.2), mode
0600: only root (or the daemon's user) may steer the gateway.
Request: {"cmd": "status"} | {"cmd": "routes"} | {"cmd": "tunnel", "action":
"up"|"down", "tunnel": IP} | {"cmd": "rekey", "tunnel": IP, "sa": "ike"|"child"}
(daemon/operator.py answers them). Answer: {"ok": bool, ...}.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from typing import Awaitable, Callable

log = logging.getLogger("vgw.control")

MAX_REQUEST = 64 * 1024
Handler = Callable[[dict], Awaitable[dict] | dict]


class ControlServer:
    def __init__(self, path: str, handler: Handler):
        self.path = path
        self.handler = handler
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
        if os.path.exists(self.path):
            if _alive(self.path):
                raise OSError(f"control socket {self.path} is in use: is another vgw running? "
                              "Stop it, or set control_socket to another path")
            os.unlink(self.path)  # stale socket of a vgw that died
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        finally:
            os.umask(old)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            if len(line) > MAX_REQUEST:
                raise ValueError("request too large")
            request = json.loads(line or b"{}")
            if not isinstance(request, dict):
                raise ValueError("request must be a JSON object")
            answer = self.handler(request)
            if asyncio.iscoroutine(answer):
                answer = await answer
        except Exception as exc:  # a bad client never hurts the daemon
            answer = {"ok": False, "error": f"bad request: {exc}"}
        try:
            writer.write(json.dumps(answer, default=str).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _alive(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def request(path: str, payload: dict, timeout: float = 10.0) -> dict:
    """Client side (vgw status / tunnel / rekey)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(path)
        except FileNotFoundError:
            raise ConnectionError(f"no vgw control socket at {path}: is `vgw run` running? "
                                  "(use --control PATH if its config sets control_socket)") from None
        except PermissionError:
            raise ConnectionError(f"permission denied on {path}: run as root") from None
        except ConnectionRefusedError:
            raise ConnectionError(f"vgw is not answering on {path} (stale socket?)") from None
        s.sendall(json.dumps(payload).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return json.loads(buf or b"{}")
    finally:
        s.close()
