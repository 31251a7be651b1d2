"""Netlink from inside the asyncio daemon.

pyroute2's synchronous IPRoute runs its own asyncio loop internally and refuses
to start inside a running one, so route changes go to one long-lived worker
thread that owns a single IPRoute. Calls are rare (a tunnel changing state) and
short, so the caller waits for the answer, bounded in time.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable

from pyroute2 import IPRoute

TIMEOUT = 10.0


class NetlinkWorker:
    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="vgw-netlink", daemon=True)
        self._ready: Future = Future()
        self._thread.start()
        self._ready.result(timeout=TIMEOUT)

    def _run(self) -> None:
        try:
            ipr = IPRoute()
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(True)
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                fn, fut = job
                try:
                    fut.set_result(fn(ipr))
                except BaseException as exc:
                    fut.set_exception(exc)
        finally:
            ipr.close()

    def call(self, fn: Callable[[IPRoute], Any], timeout: float = TIMEOUT) -> Any:
        fut: Future = Future()
        self._jobs.put((fn, fut))
        return fut.result(timeout=timeout)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=TIMEOUT)
