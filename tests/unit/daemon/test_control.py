"""The control socket (daemon/control.py): mode 0600 whatever the umask, so only
root (or the daemon's user) may steer the gateway; one JSON request, one answer."""

import asyncio
import os
import stat

import pytest

from daemon.control import ControlServer, request


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o002])
def test_control_socket_is_created_with_mode_0600(tmp_path, umask):
    path = str(tmp_path / "run" / "vgw.sock")

    async def main():
        server = ControlServer(path, lambda req: {"ok": True, "echo": req})
        old = os.umask(umask)
        try:
            await server.start()
        finally:
            os.umask(old)
        try:
            mode = os.stat(path).st_mode
            answer = await asyncio.get_running_loop().run_in_executor(
                None, request, path, {"cmd": "status"})
        finally:
            await server.close()
        return mode, answer
    mode, answer = asyncio.run(main())
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600, oct(stat.S_IMODE(mode))
    assert answer == {"ok": True, "echo": {"cmd": "status"}}
    assert not os.path.exists(path)                # removed on close


def test_the_umask_of_the_process_is_restored(tmp_path):
    path = str(tmp_path / "vgw.sock")

    async def main():
        server = ControlServer(path, lambda req: {"ok": True})
        await server.start()
        await server.close()
    old = os.umask(0o027)
    try:
        asyncio.run(main())
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)
