"""Network-namespace lab for vgw's interop tests and benchmarks.

A :class:`Lab` owns everything it creates: namespaces named ``<prefix>-<role>``
(the prefix is random per run, so two runs never collide, and short, because
interface and namespace names end up in 15-byte fields), the processes it
started (tracked by PID) and its temporary directories.  Teardown removes
exactly those things, also when the body raised, was interrupted with Ctrl-C
or the process got SIGTERM, and never touches anything else.

:func:`topology` builds the standard vgw lab::

    onprem --- cgw ===== WAN 198.51.100.0/24 ===== vgw --- vpc
    172.16.1.10  .1  .10                       .1 .2  .1   10.0.1.10
                                  (both AWS outside IPs)

The core has no pytest dependency; :func:`require_lab` is the only pytest
helper (imported lazily) so benchmarks can use the same code.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

DEFAULT_TIMEOUT = 30.0
# SIGTERM first, SIGKILL after this many seconds, then give up waiting.
KILL_GRACE = 3.0


class LabError(RuntimeError):
    """A lab command failed; the message carries the command and its output."""


class GiveUp(Exception):
    """Raised by a :func:`wait_until` predicate: stop waiting now (e.g. the daemon died)."""


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    interval: float = 0.1,
    what: str | None = None,
) -> Any:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Exceptions raised by the predicate count as "not yet" (the last one is
    reported), so a predicate may be a command that fails until the thing it
    checks is ready; :class:`GiveUp` propagates at once.  Raises
    :class:`TimeoutError` naming ``what`` it waited for.
    """
    what = what or getattr(predicate, "__name__", repr(predicate))
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
        except GiveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - reported on timeout
            value, last_exc = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds a process (all its threads) has used, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # comm may contain spaces
    # fields[0] is stat field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cmd_text(cmd: Sequence[str]) -> str:
    return " ".join(str(c) for c in cmd)


class Lab:
    """Context manager owning namespaces, processes and temp dirs of one run."""

    def __init__(self, prefix: str | None = None, keep_tmp: bool = False) -> None:
        # "v" + 5 hex chars: "vab12c-onprem" is 13 bytes, room for short roles.
        self.prefix = prefix or "v" + secrets.token_hex(3)[:5]
        self.keep_tmp = keep_tmp
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self._tmp_root: str | None = None
        self._closed = False
        self._old_sigterm: Any = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------

    def __enter__(self) -> "Lab":
        atexit.register(self.close)
        # SIGTERM (e.g. a CI timeout) would otherwise kill Python without
        # running __exit__; turn it into SystemExit so teardown runs.
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                self._old_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_exit)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Kill tracked processes, delete our namespaces and temp dirs (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        in_main = threading.current_thread() is threading.main_thread()
        old_int = None
        if in_main:
            # A second Ctrl-C must not abort the cleanup half-way.
            old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Every step is attempted even if an earlier one failed.
        steps: list[tuple[str, Callable[[], Any]]] = [
            (f"kill pid {p.pid}", lambda p=p: _terminate(p)) for p in reversed(self.procs)
        ]
        for ns in reversed(self.namespaces):
            steps.append((f"reap {ns}", lambda ns=ns: self._reap_ns(ns)))
            steps.append((f"delete {ns}", lambda ns=ns: subprocess.run(
                ["ip", "netns", "delete", ns], capture_output=True, timeout=10)))
        if self._tmp_root and not self.keep_tmp:
            steps.append((f"remove {self._tmp_root}", lambda: shutil.rmtree(self._tmp_root, ignore_errors=True)))
        try:
            for what, step in steps:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - keep cleaning up
                    print(f"lab teardown: {what} failed: {exc!r}", file=sys.stderr)
        finally:
            if in_main:
                signal.signal(signal.SIGINT, old_int)
                if self._old_sigterm is not None:
                    signal.signal(signal.SIGTERM, self._old_sigterm)
            atexit.unregister(self.close)

    def _reap_ns(self, ns: str) -> None:
        """SIGKILL processes still living in one of *our* namespaces.

        They were started by us indirectly (e.g. charon's updown children); a
        leftover would keep the namespace and its sockets alive after delete.
        """
        res = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10)
        for pid in res.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    # -- namespaces and links ---------------------------------------------

    def add_ns(self, role: str) -> str:
        """Create namespace ``<prefix>-<role>`` with lo up; return its name."""
        name = f"{self.prefix}-{role}"
        if len(name) > 15:
            raise ValueError(f"namespace name {name!r} is longer than 15 bytes; use a shorter role")
        self._host("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.run(name, "ip", "link", "set", "lo", "up")
        return name

    def veth(
        self,
        ns_a: str,
        ns_b: str,
        addr_a: str | Sequence[str] | None = None,
        addr_b: str | Sequence[str] | None = None,
        name_a: str | None = None,
        name_b: str | None = None,
        mtu: int | None = None,
    ) -> tuple[str, str]:
        """Link two of our namespaces with a veth pair; return the two ifnames.

        The pair is created inside ``ns_a`` with its peer moved straight to
        ``ns_b``, so no name ever appears in the host namespace.  Addresses
        may be one CIDR or a list of them; links are set up.
        """
        name_a = name_a or _short(f"to-{self._role(ns_b)}")
        name_b = name_b or _short(f"to-{self._role(ns_a)}")
        cmd = ["ip", "link", "add", name_a]
        if mtu:
            cmd += ["mtu", str(mtu)]
        cmd += ["type", "veth", "peer", "name", name_b, "netns", ns_b]
        if mtu:
            cmd += ["mtu", str(mtu)]
        self.run(ns_a, *cmd)
        for ns, ifname, addrs in ((ns_a, name_a, addr_a), (ns_b, name_b, addr_b)):
            for cidr in [addrs] if isinstance(addrs, str) else (addrs or []):
                self.addr(ns, ifname, cidr)
            self.run(ns, "ip", "link", "set", ifname, "up")
        return name_a, name_b

    def addr(self, ns: str, ifname: str, cidr: str) -> None:
        """Add an address and set the link up."""
        self.run(ns, "ip", "addr", "add", cidr, "dev", ifname)
        self.run(ns, "ip", "link", "set", ifname, "up")

    def route(
        self,
        ns: str,
        dst: str,
        via: str | None = None,
        dev: str | None = None,
        table: int | str | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        """``ip route replace dst [via] [dev] [table] [extra...]`` in ``ns``."""
        cmd = ["ip", "route", "replace", dst]
        if via:
            cmd += ["via", via]
        if dev:
            cmd += ["dev", dev]
        if table is not None:
            cmd += ["table", str(table)]
        self.run(ns, *cmd, *extra)

    def sysctl(self, ns: str, key: str, value: Any) -> None:
        self.run(ns, "sysctl", "-q", "-w", f"{key}={value}")

    # -- processes ---------------------------------------------------------

    def run(
        self,
        ns: str,
        *cmd: Any,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a command in ``ns`` (text output captured), bounded by ``timeout``."""
        self._check_ours(ns)
        full = ["ip", "netns", "exec", ns, *map(str, cmd)]
        try:
            res = subprocess.run(
                full, capture_output=True, text=True, timeout=timeout, env=env, input=input
            )
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"[{ns}] {_cmd_text(cmd)}: no result within {timeout:g} s") from exc
        if check and res.returncode != 0:
            raise LabError(
                f"[{ns}] {_cmd_text(cmd)} exited {res.returncode}\n"
                f"stdout: {res.stdout.strip()}\nstderr: {res.stderr.strip()}"
            )
        return res

    def popen(self, ns: str, *cmd: Any, **kw: Any) -> subprocess.Popen:
        """Start a tracked process in ``ns``; it is killed by PID on teardown.

        ``ip netns exec`` execs the command, so the PID is the command's own.
        It runs in a new session so that a stray Ctrl-C in the terminal does
        not reach it before our orderly teardown does.
        """
        self._check_ours(ns)
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *map(str, cmd)], **kw)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> int | None:
        """Terminate one tracked process now (SIGTERM, then SIGKILL); return its code."""
        _terminate(proc)
        return proc.returncode

    wait_until = staticmethod(wait_until)

    # -- temp dirs ---------------------------------------------------------

    def tmpdir(self, name: str) -> str:
        """A fresh directory under this run's temp root (removed on teardown).

        The root is short (``/tmp/vgw-<prefix>-XXXX``) so unix socket paths in
        it stay far below the 108-byte sun_path limit.
        """
        if self._tmp_root is None:
            self._tmp_root = tempfile.mkdtemp(prefix=f"vgw-{self.prefix}-", dir="/tmp")
        path = os.path.join(self._tmp_root, name)
        os.makedirs(path)
        return path

    # -- helpers -----------------------------------------------------------

    def _role(self, ns: str) -> str:
        return ns[len(self.prefix) + 1 :] if ns.startswith(self.prefix + "-") else ns

    def _check_ours(self, ns: str) -> None:
        if ns not in self.namespaces:
            raise ValueError(f"namespace {ns!r} was not created by this lab")

    def _host(self, *cmd: str) -> None:
        res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=DEFAULT_TIMEOUT)
        if res.returncode != 0:
            raise LabError(f"{_cmd_text(cmd)} exited {res.returncode}: {res.stderr.strip()}")


def _sigterm_to_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _short(name: str) -> str:
    return name[:15]


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM, wait, SIGKILL, wait: all bounded; by PID and its own group only."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=KILL_GRACE)
            break
        except subprocess.TimeoutExpired:
            continue
    # Children it left in the process group we created for it (start_new_session).
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# -- the standard topology ------------------------------------------------


@dataclass(frozen=True)
class Topo:
    """Names and addresses of the standard vgw lab (documentation/private ranges)."""

    onprem: str
    cgw: str
    vgw: str
    vpc: str
    wan_cidr: str = "198.51.100.0/24"
    cgw_wan_ip: str = "198.51.100.10"
    vgw_outside_ips: tuple[str, str] = ("198.51.100.1", "198.51.100.2")
    onprem_cidr: str = "172.16.1.0/24"
    cgw_lan_ip: str = "172.16.1.1"
    onprem_ip: str = "172.16.1.10"
    vpc_cidr: str = "10.0.1.0/24"
    vgw_vpc_ip: str = "10.0.1.1"
    vpc_ip: str = "10.0.1.10"
    # Interface names inside each namespace.
    cgw_wan_if: str = "wan0"
    cgw_lan_if: str = "lan0"
    vgw_wan_if: str = "wan0"
    vgw_vpc_if: str = "vpc0"
    onprem_if: str = "eth0"
    vpc_if: str = "eth0"
    nat: bool = False
    # NAT variant: the CGW's WAN side is a private net behind a masquerading router
    # in namespace `nat_ns`, whose WAN address is the CGW's public address.
    nat_ns: str | None = None
    cgw_public_ip: str = "198.51.100.10"   # what vgw sees (== cgw_wan_ip without NAT)
    nat_inside_ip: str = "192.168.77.1"
    nat_inside_if: str = "lan0"
    nat_wan_if: str = "wan0"


def topology(lab: Lab, nat: bool = False) -> Topo:
    """Build onprem -- cgw == wan == vgw -- vpc in ``lab`` and return a :class:`Topo`.

    cgw and vgw forward (ip_forward=1) with rp_filter=0: with two tunnels,
    traffic may leave on one and come back on the other.

    ``nat=True``: onprem -- cgw == 192.168.77.0/24 == nat == wan == vgw -- vpc.
    The CGW's WAN address is 192.168.77.10 (``cgw_wan_ip``); namespace
    ``nat_ns`` masquerades it behind 198.51.100.10 (``cgw_public_ip``) with
    nftables, ports chosen at random for each new mapping (``masquerade
    random``), as a carrier-grade NAT does; :func:`nat_flush` forgets the
    mappings, so the CGW's next packet leaves from a new port.
    """
    t = Topo(
        onprem=lab.add_ns("onprem"),
        cgw=lab.add_ns("cgw"),
        vgw=lab.add_ns("vgw"),
        vpc=lab.add_ns("vpc"),
        nat=nat,
        nat_ns=lab.add_ns("nat") if nat else None,
        cgw_wan_ip="192.168.77.10" if nat else Topo.cgw_wan_ip,
    )
    lab.veth(t.onprem, t.cgw, f"{t.onprem_ip}/24", f"{t.cgw_lan_ip}/24", t.onprem_if, t.cgw_lan_if)
    if nat:
        lab.veth(t.cgw, t.nat_ns, f"{t.cgw_wan_ip}/24", f"{t.nat_inside_ip}/24", t.cgw_wan_if,
                 t.nat_inside_if)
        lab.veth(t.nat_ns, t.vgw, f"{t.cgw_public_ip}/24", [f"{ip}/24" for ip in t.vgw_outside_ips],
                 t.nat_wan_if, t.vgw_wan_if)
        # the CGW reaches the WAN through the NAT; the NAT only knows its two nets
        lab.route(t.cgw, t.wan_cidr, via=t.nat_inside_ip)
        lab.sysctl(t.nat_ns, "net.ipv4.ip_forward", 1)
        lab.run(t.nat_ns, "nft", "-f", "-", input=(
            "table ip vgwlab_nat {\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            f"    oifname \"{t.nat_wan_if}\" masquerade random\n"
            "  }\n"
            "}\n"))
    else:
        lab.veth(
            t.cgw,
            t.vgw,
            f"{t.cgw_wan_ip}/24",
            [f"{ip}/24" for ip in t.vgw_outside_ips],
            t.cgw_wan_if,
            t.vgw_wan_if,
        )
    lab.veth(t.vgw, t.vpc, f"{t.vgw_vpc_ip}/24", f"{t.vpc_ip}/24", t.vgw_vpc_if, t.vpc_if)
    lab.route(t.onprem, "default", via=t.cgw_lan_ip)
    lab.route(t.vpc, "default", via=t.vgw_vpc_ip)
    for ns in (t.cgw, t.vgw):
        lab.sysctl(ns, "net.ipv4.ip_forward", 1)
        lab.sysctl(ns, "net.ipv4.conf.all.rp_filter", 0)
        lab.sysctl(ns, "net.ipv4.conf.default.rp_filter", 0)
    return t


def nat_mappings(lab: Lab, topo: Topo) -> list[str]:
    """The NAT's UDP mappings, one line each (``proto src sport -> dport``), from
    its conntrack table (read with pyroute2: no conntrack tool needed)."""
    script = ("from pyroute2 import Conntrack\n"
              "for e in Conntrack().dump_entries():\n"
              "    o, r = e.tuple_orig, e.tuple_reply\n"
              "    if o.proto == 17: print(o.saddr, o.sport, '->', r.daddr, r.dport)\n")
    return lab.run(topo.nat_ns, sys.executable, "-c", script).stdout.splitlines()


def nat_flush(lab: Lab, topo: Topo) -> None:
    """Forget every mapping of the NAT (as a NAT reboot or a conntrack flush would):
    the CGW's next packet gets a new random source port."""
    lab.run(topo.nat_ns, sys.executable, "-c", "from pyroute2 import Conntrack; Conntrack().flush()")


# -- pytest helper --------------------------------------------------------


def lab_unavailable_reason(strongswan: bool = True) -> str | None:
    """Why the lab cannot run here, or None if it can (no pytest needed).
    `strongswan=False`: namespaces and TUN only (data path tests)."""
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces, TUN devices)"
    if not shutil.which("ip"):
        return "iproute2 'ip' not found"
    try:
        res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"'ip netns' not usable: {exc}"
    if res.returncode != 0:
        return f"'ip netns' not usable: {res.stderr.strip()}"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (no TUN support)"
    if not strongswan:
        return None
    from tests.lab.strongswan import CHARON_BIN, SWANCTL_BIN  # no cycle at import time

    if not os.access(CHARON_BIN, os.X_OK):
        return f"strongSwan charon not found at {CHARON_BIN} (apt-get install strongswan-charon)"
    if not shutil.which(SWANCTL_BIN):
        return "swanctl not found (apt-get install strongswan-swanctl)"
    for tool, package in (("ping", "iputils-ping"), ("iperf3", "iperf3"), ("unshare", "util-linux")):
        if not shutil.which(tool):
            return f"{tool} not found (apt-get install {package})"
    return None


def require_lab(strongswan: bool = True, more: Callable[[], str | None] | None = None) -> None:
    """pytest.skip with a clear reason when the lab cannot run (``more``: a
    further check, e.g. that FRR and BIRD are installed).

    Under CI (``CI`` set) a missing prerequisite fails instead: a skipped lab
    test proves nothing there.
    """
    import pytest

    reason = lab_unavailable_reason(strongswan) or (more() if more else None)
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"lab prerequisites missing in CI: {reason}")
    pytest.skip(reason)
