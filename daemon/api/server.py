"""The EC2 endpoint: a small HTTP/1.1 server on the gateway's event loop.

HTTP/1.1 with keep-alive is all EC2 clients (botocore, the AWS CLI, Terraform's
Go SDK) need: a POST of a form body, one answer per request. asyncio's streams
carry it; a web framework would add a dependency and a thread pool for nothing.
What keeps a client from stalling the loop or the tunnels beside it:

* at most `max_clients` connections at once; more are answered 503
  RequestLimitExceeded (botocore retries that) and closed;
* the request head must arrive within `header_timeout` (16 KB at most) and the
  body within `body_timeout`: a slow client is cut off, not waited for;
* a body over 1 MB is refused with 413 before it is read;
* request handling is synchronous and short (SQLite on this thread: docs/api.md
  has the figures), so it never awaits while holding anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

from . import sigv4, wire
from .errors import ApiError
from .service import ApiService
from ..config.api import ApiConfig

log = logging.getLogger("vgw.api")

MAX_BODY = 1 << 20      # 1 MB
MAX_HEAD = 16 * 1024


class ApiServer:
    def __init__(self, service: ApiService, settings: ApiConfig, *, max_clients: int = 32,
                 header_timeout: float = 10.0, body_timeout: float = 10.0, idle_timeout: float = 60.0,
                 clock: Callable[[], float] = time.time):
        self.service, self.settings = service, settings
        self.max_clients = max_clients
        self.header_timeout, self.body_timeout, self.idle_timeout = header_timeout, body_timeout, idle_timeout
        self.clock = clock
        self.clients = 0
        self.refused = 0  # connections turned away at the cap
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> tuple[str, int]:
        """Listen; returns the address and port (the port the OS chose for port 0)."""
        self._server = await asyncio.start_server(self._client, self.settings.host, self.settings.port,
                                                  limit=MAX_HEAD)
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            # end each connection by closing its socket: its task then finishes on its own
            tasks = list(self._tasks)
            for writer in list(self._writers):
                writer.transport.abort()
            await asyncio.wait(tasks, timeout=5) if tasks else None
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if self.clients >= self.max_clients:
                self.refused += 1
                await self._answer(writer, *self._error(ApiError("RequestLimitExceeded", "Too many clients at once;"
                                                                 " retry")), keep_alive=False)
                return
            self.clients += 1
            try:
                await self._serve(reader, writer)
            finally:
                self.clients -= 1
        except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    def _error(self, error: ApiError) -> tuple[int, bytes]:
        return error.status, wire.serialize_error(error.code, error.message, "0")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        wait = self.header_timeout
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
            except asyncio.LimitOverrunError:
                await self._answer(writer, 431, b"", keep_alive=False)
                return
            wait = self.idle_timeout
            method, target, version, headers = _parse_head(head)
            if method is None:
                await self._answer(writer, 400, b"", keep_alive=False)
                return
            if "transfer-encoding" in headers:
                await self._answer(writer, 501, b"", keep_alive=False)  # EC2 clients send Content-Length
                return
            length = headers.get("content-length", "0")
            if not length.isdigit():
                await self._answer(writer, 400, b"", keep_alive=False)
                return
            if int(length) > MAX_BODY:
                await self._answer(writer, *self._error(ApiError(
                    "RequestEntityTooLarge", f"The request body is larger than {MAX_BODY} bytes")), keep_alive=False)
                return
            body = await asyncio.wait_for(reader.readexactly(int(length)), self.body_timeout)
            status, payload = self._handle(method, target, headers, body)
            keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            await self._answer(writer, status, payload, keep_alive)
            if not keep_alive:
                return

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        now = self.clock()
        try:
            sigv4.verify(self.settings, method, target, headers, body, now)
            query = urlsplit(target).query
            text = query if method == "GET" else body.decode("utf-8")
            fields = parse_qsl(text, keep_blank_values=True, max_num_fields=wire.MAX_FIELDS + 2)
        except ApiError as exc:
            return self._error(exc)
        except (UnicodeDecodeError, ValueError):
            return self._error(ApiError("InvalidParameterValue", "The request body is not a valid form"
                                        f" (application/x-www-form-urlencoded, at most {wire.MAX_FIELDS} fields)"))
        action = next((value for key, value in fields if key == "Action"), None)
        rest = [(key, value) for key, value in fields if key not in ("Action", "Version")]
        return self.service.handle(action, rest, now)

    async def _answer(self, writer: asyncio.StreamWriter, status: int, body: bytes, keep_alive: bool) -> None:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml;charset=UTF-8\r\n"
                f"Content-Length: {len(body)}\r\nDate: {formatdate(usegmt=True)}\r\n"
                f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
        writer.write(head.encode() + body)
        await asyncio.wait_for(writer.drain(), self.body_timeout)


def _parse_head(head: bytes) -> tuple:
    """(method, target, version, lower-cased headers) of a request head, or Nones."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
    except ValueError:
        return None, None, None, {}
    if not version.startswith("HTTP/1.") or method not in ("GET", "POST"):
        return None, None, None, {}
    return method, target, version, headers
