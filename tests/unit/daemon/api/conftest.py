"""A running EC2 endpoint for the tests: ApiServer on 127.0.0.1 (ephemeral port),
its own event loop in a thread, an in-memory gateway view, and a clock the test
moves (states settle by time: no sleeps needed to pass a waiter)."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from ipaddress import IPv4Network

import boto3
import pytest
from botocore.config import Config

from daemon.api.server import ApiServer
from daemon.api.service import ApiService
from daemon.config.api import ApiConfig
from daemon.api.view import InMemoryGatewayView

VPC_CIDRS = [IPv4Network("10.0.0.0/16")]
KEY_ID, SECRET = "AKIDEXAMPLE00000001", "example-secret-key-not-real-0001"


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Endpoint:
    """One server; `restart()` replaces it with a new one on the same database."""

    def __init__(self, settings: ApiConfig, view: InMemoryGatewayView, clock: Clock, **server_options):
        self.settings, self.view, self.clock = settings, view, clock
        self.server_options = server_options
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._start()

    def _start(self) -> None:
        self.service = ApiService(self.settings, self.view, VPC_CIDRS, rng=random.Random(7))
        self.server = ApiServer(self.service, self.settings, clock=self.clock, **self.server_options)
        host, self.port = self.call(self.server.start())
        self.url = f"http://{host}:{self.port}"

    def call(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def client(self, key_id: str = KEY_ID, secret: str = SECRET, **config):
        options = {"retries": {"max_attempts": 1, "mode": "standard"}, **config}
        return boto3.client("ec2", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=key_id,
                            aws_secret_access_key=secret, config=Config(**options))

    def restart(self) -> None:
        self.call(self.server.close())
        self.service.close()
        self._start()

    def stop(self) -> None:
        self.call(self.server.close())
        self.service.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def make_settings(tmp_path, **extra) -> ApiConfig:
    return ApiConfig(listen="127.0.0.1:0", outside_ip_pool="198.51.100.0/28",
                     database=str(tmp_path / "api.sqlite3"), **extra)


@pytest.fixture
def endpoint(tmp_path):
    e = Endpoint(make_settings(tmp_path), InMemoryGatewayView(), Clock())
    yield e
    e.stop()


@pytest.fixture
def ec2(endpoint):
    return endpoint.client()
