"""SIGHUP reads the new config off the event loop (issue 16): the loop keeps
moving packets and answering IKE while a file is parsed, however long that
takes within daemon/config/yaml_safe.py's limits; the result is applied on the loop."""

import asyncio
import threading

import pytest

from daemon import commands
from daemon.config import ConfigError
from .test_config_hostile import billion_laughs


def test_the_file_is_read_in_a_worker_thread_while_the_loop_runs(monkeypatch):
    """The load waits for a callback that only a free event loop can run: on the
    loop's own thread it would wait in vain (structural: no clock involved)."""
    freed = threading.Event()

    def slow_load(path):
        return threading.get_ident(), freed.wait(10)
    monkeypatch.setattr(commands, "load_config", slow_load)

    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(commands.read_config_off_loop("vgw.yaml"))
        await asyncio.sleep(0)                 # the read has started
        loop.call_soon(freed.set)              # runs only if the loop is not blocked
        return threading.get_ident(), await task
    loop_thread, (load_thread, loop_was_free) = asyncio.run(main())
    assert load_thread != loop_thread
    assert loop_was_free


def test_a_hostile_file_comes_back_as_a_config_error(tmp_path):
    path = tmp_path / "vgw.yaml"
    path.write_text(billion_laughs())

    async def main():
        return await commands.read_config_off_loop(str(path))
    with pytest.raises(ConfigError) as info:
        asyncio.run(main())
    assert "billion laughs" in str(info.value)
