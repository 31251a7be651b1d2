"""A Docker engine of the test's own: dockerd with its own socket, data and exec
roots and pid file, so that it never touches (or depends on) a Docker the host
may run, and is stopped by PID when the test ends.

No iptables rules (`--iptables=false`): the compose lab needs no NAT or port
publishing, and the host's firewall stays as it is; no default bridge
(`--bridge=none`): the lab's networks are its own. The storage driver is the
engine's default (overlay2); if dockerd cannot start with it, vfs is tried.
The data root is kept between runs (`/var/lib/vgw-test-docker`) so that the
imported base image and built layers are reused.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

DATA_ROOT = "/var/lib/vgw-test-docker"
EXEC_ROOT = "/run/vgw-test-docker"
SOCKET = "/run/vgw-test-docker.sock"
PIDFILE = "/run/vgw-test-docker.pid"
LOG = "/tmp/vgw-test-dockerd.log"
START_TIMEOUT = 40.0


class DockerUnavailable(Exception):
    """Docker cannot run here; the message says what was tried and what failed."""


def missing_tools() -> str | None:
    for tool, package in (("dockerd", "docker.io"), ("docker", "docker.io"), ("docker-compose", "docker-compose"),
                          ("debootstrap", "debootstrap")):
        if not shutil.which(tool):
            return f"{tool} not found (apt-get install {package})"
    return None


class Dockerd:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{SOCKET}")
        self.storage: str | None = None

    def start(self) -> "Dockerd":
        if os.path.exists(PIDFILE):
            try:
                pid = int(open(PIDFILE).read().strip() or 0)
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError, PermissionError):
                os.unlink(PIDFILE)  # a stale pid file of an engine that is gone
            else:
                raise DockerUnavailable(f"a test dockerd (pid {pid}) from another run still owns {PIDFILE}")
        errors = []
        for storage in (None, "vfs"):
            try:
                self._start(storage)
                self.storage = storage or "default"
                return self
            except DockerUnavailable as exc:
                errors.append(f"storage {storage or 'default'}: {exc}")
                self.stop()
        raise DockerUnavailable("; ".join(errors))

    def _start(self, storage: str | None) -> None:
        cmd = ["dockerd", "--data-root", DATA_ROOT, "--exec-root", EXEC_ROOT, "--pidfile", PIDFILE,
               "-H", f"unix://{SOCKET}", "--iptables=false", "--ip6tables=false", "--bridge=none"]
        if storage:
            cmd += ["--storage-driver", storage]
        log = open(LOG, "w")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DockerUnavailable(f"dockerd exited with {self.proc.returncode}: {self.log_tail()}")
            res = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=self.env,
                                 capture_output=True, text=True, timeout=15)
            if res.returncode == 0:
                return
            time.sleep(0.5)
        raise DockerUnavailable(f"dockerd did not answer within {START_TIMEOUT:g} s: {self.log_tail()}")

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = open(LOG, errors="replace").read().splitlines()
        except OSError:
            return "(no log)"
        interesting = [line for line in text if "level=error" in line or "level=fatal" in line] or text
        return " | ".join(interesting[-lines:])

    def run(self, *cmd: str, timeout: float = 120, check: bool = True, cwd: str | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
        res = subprocess.run(list(cmd), env=dict(self.env, **(env or {})), capture_output=True, text=True,
                             timeout=timeout, cwd=cwd)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
        return res

    def stop(self) -> None:
        """SIGTERM (dockerd stops its containers and containerd), SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 5)):
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        try:  # children (containerd) left in the session we created for it
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
