"""What the lab asks of a customer gateway's BGP speaker, whichever daemon runs it.

:class:`BgpSpeaker` holds the options FRR (tests/lab/frr.py) and BIRD 2
(tests/lab/bird.py) both render into their own config, and the waits built on
the records both return, so a test written for one runs against the other:

* :class:`Path`: one path of a prefix in the speaker's RIB (AS_PATH, MED, next
  hop, best or not, the neighbor it came from).
* :class:`Session`: one neighbor (state, peer AS, the negotiated hold time and
  keepalive, prefixes accepted, the last error in the daemon's words).
* :class:`Notification`: a NOTIFICATION the speaker logged (RFC 4271 §4.5), with
  its code, subcode and data where the daemon logs them.

Defaults are AWS's for a customer gateway (hold time 30 s, keepalive 10 s:
docs/aws.md §5.2) except the connect retry: 2 s instead of RFC 4271's 120 s, so
that a session whose first attempt met no listener (a tunnel not up yet) comes up
within a lab test's time.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from tests.lab.netns import GiveUp, Lab, wait_until

ESTABLISHED = "Established"


@dataclass(frozen=True)
class Neighbor:
    """A BGP neighbor: its address and AS; ``local_ip`` the address to speak from."""

    ip: str
    remote_as: int
    local_ip: str | None = None


@dataclass(frozen=True)
class Path:
    """One path of ``prefix``; ``peer`` is the neighbor it came from (None: our own)."""

    prefix: str
    as_path: tuple[int, ...]
    med: int | None
    next_hop: str | None
    best: bool
    origin: str | None = None
    peer: str | None = None


@dataclass(frozen=True)
class Session:
    """One neighbor's session. ``hold_time``/``keepalive``: the values in use once
    Established (RFC 4271 §4.2: the smaller hold time offered wins). ``last_error``:
    the last NOTIFICATION sent or received, in the daemon's words ("" if none)."""

    peer: str
    state: str
    peer_as: int | None = None
    hold_time: int | None = None
    keepalive: int | None = None
    prefixes_accepted: int | None = None
    last_error: str = ""

    @property
    def established(self) -> bool:
        return self.state == ESTABLISHED


@dataclass(frozen=True)
class Notification:
    """A NOTIFICATION ``direction`` ("sent" or "received") to/from ``peer``."""

    direction: str
    peer: str | None
    code: int | None
    subcode: int | None
    text: str
    data: bytes = b""


def many_prefixes(count: int, base: str = "10.200.0.0/16", length: int = 24) -> list[str]:
    """``count`` consecutive /``length`` prefixes from ``base`` (e.g. 101 /24s to
    go past a limit of 100)."""
    net = ipaddress.ip_network(base)
    subnets = net.subnets(new_prefix=length)
    out = [str(next(subnets)) for _ in range(min(count, 2 ** (length - net.prefixlen)))]
    if len(out) < count:
        raise ValueError(f"{base} holds only {len(out)} /{length} prefixes, not {count}")
    return out


def as_numbers(text: str) -> tuple[int, ...]:
    """The AS numbers of an AS_PATH as a daemon prints it ("65000 {65001,65002}");
    an AS_SET's members are flattened in order."""
    return tuple(int(n) for n in re.findall(r"\d+", text))


def _check_asn(value: int, what: str) -> int:
    if not 1 <= int(value) <= 4294967295:  # RFC 6793: 4-octet AS numbers
        raise ValueError(f"{what} {value} is not an AS number (1-4294967295)")
    return int(value)


class BgpSpeaker:
    """A BGP speaker in one of the lab's namespaces (subclasses run a daemon).

    ``neighbors``: :class:`Neighbor` or ``(ip, remote_as)`` tuples. ``networks``:
    prefixes we announce (nothing else unless ``export_learned``). On what we
    announce: ``med`` sets the MED, ``prepend`` adds our AS that many more times.
    ``max_prefixes``: the most prefixes accepted from a neighbor; one more ends the
    session with Cease / Maximum Number of Prefixes Reached (RFC 4486 §4).
    ``kernel``: install learned routes into the namespace's main table (False for
    a speaker that must not touch the namespace's routes).
    """

    daemon = "bgp"

    def __init__(
        self,
        lab: Lab,
        ns: str,
        asn: int,
        router_id: str,
        neighbors: Iterable[Neighbor | tuple],
        networks: Sequence[str] = (),
        *,
        med: int | None = None,
        prepend: int = 0,
        max_prefixes: int | None = None,
        hold_time: int = 30,
        keepalive: int | None = 10,
        connect_retry: int = 2,
        export_learned: bool = False,
        kernel: bool = True,
        name: str | None = None,
    ) -> None:
        self.lab = lab
        self.ns = ns
        self.asn = _check_asn(asn, "asn")
        self.router_id = str(ipaddress.IPv4Address(router_id))
        self.neighbors = [n if isinstance(n, Neighbor) else Neighbor(*n) for n in neighbors]
        for n in self.neighbors:
            _check_asn(n.remote_as, f"remote AS of {n.ip}")
        self.networks = [str(ipaddress.ip_network(p)) for p in networks]
        self.med = med
        self.prepend = prepend
        self.max_prefixes = max_prefixes
        self.hold_time = hold_time
        self.keepalive = keepalive
        self.connect_retry = connect_retry
        self.export_learned = export_learned
        self.kernel = kernel
        self.name = name or f"{self.daemon}-{ns.rsplit('-', 1)[-1]}"
        self.dir = lab.tmpdir(self.name)

    # -- what a daemon implements -------------------------------------------

    def config_text(self) -> str:
        raise NotImplementedError

    def start(self, timeout: float = 15.0) -> "BgpSpeaker":
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the daemon (SIGTERM: it closes its sessions), bounded."""
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL: no NOTIFICATION goes out; the peer notices by its hold timer."""
        raise NotImplementedError

    def sessions(self) -> list[Session]:
        raise NotImplementedError

    def routes(self, prefix: str | None = None) -> list[Path]:
        """Every path in the RIB (of ``prefix`` only, if given)."""
        raise NotImplementedError

    def notifications(self) -> list[Notification]:
        """The NOTIFICATIONs sent and received so far, oldest first, from the log."""
        raise NotImplementedError

    def announce(self, prefixes: Sequence[str]) -> None:
        """Start announcing more prefixes, at run time."""
        raise NotImplementedError

    def withdraw(self, prefixes: Sequence[str]) -> None:
        """Stop announcing prefixes (withdrawn from every neighbor), at run time."""
        raise NotImplementedError

    def log_files(self) -> list[str]:
        """The daemon's log and its stdout/stderr files."""
        raise NotImplementedError

    def log_text(self) -> str:
        """The daemon's log (then its stdout/stderr), as far as written."""
        text = ""
        for path in self.log_files():
            try:
                with open(path, errors="replace") as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text

    # -- shared ---------------------------------------------------------------

    def _check_alive(self) -> None:
        """Raise :class:`GiveUp` when the daemon has exited (stops a wait at once)."""

    def session(self, peer: str) -> Session:
        for s in self.sessions():
            if s.peer == peer:
                return s
        raise KeyError(f"{self.name} has no neighbor {peer}")

    def wait_session(self, peer: str, predicate: Callable[[Session], bool], timeout: float = 30.0,
                     what: str = "") -> Session:
        """Wait (bounded) until ``predicate(session)`` holds; return that session."""
        box: dict[str, Session] = {}

        def ready() -> bool:
            self._check_alive()
            box["s"] = self.session(peer)
            return predicate(box["s"])

        try:
            wait_until(ready, timeout, 0.2, f"{self.name}: session to {peer} {what}".rstrip())
        except TimeoutError as exc:
            seen = box.get("s")
            raise TimeoutError(f"{exc}; last seen {seen}\n{self._tail()}") from None
        return box["s"]

    def wait_established(self, peer: str, timeout: float = 30.0) -> Session:
        return self.wait_session(peer, lambda s: s.established, timeout, "Established")

    def wait_routes(self, prefix: str, predicate: Callable[[list[Path]], bool] | None = None,
                    timeout: float = 30.0) -> list[Path]:
        """Wait until ``prefix``'s paths satisfy ``predicate`` (default: some path
        exists); return them. ``lambda paths: not paths`` waits for a withdrawal."""
        check = predicate or bool
        box: dict[str, list[Path]] = {}

        def ready() -> bool:
            self._check_alive()
            box["p"] = self.routes(prefix)
            return check(box["p"])

        try:
            wait_until(ready, timeout, 0.2, f"{self.name}: paths of {prefix}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last seen {box.get('p')}\n{self._tail()}") from None
        return box["p"]

    def wait_notification(self, predicate: Callable[[Notification], bool], timeout: float = 30.0,
                          what: str = "a NOTIFICATION") -> Notification:
        """Wait until a logged NOTIFICATION satisfies ``predicate``; return it."""
        def found() -> Notification | None:
            return next((n for n in self.notifications() if predicate(n)), None)

        try:
            return wait_until(found, timeout, 0.2, f"{self.name}: {what}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; logged {self.notifications()}\n{self._tail()}") from None

    def best(self, prefix: str) -> Path | None:
        """The best path of ``prefix``, or None."""
        return next((p for p in self.routes(prefix) if p.best), None)

    def _tail(self, lines: int = 30) -> str:
        return f"{self.name} log tail:\n" + "\n".join(self.log_text().splitlines()[-lines:])

    def _refuse(self, *options: str) -> None:
        """ValueError if any of ``options`` (kernel, max_prefixes, export_learned) is
        asked of a runner whose daemon or adapter has no such thing."""
        asked = [o for o in options if getattr(self, o) not in (None, False)]
        if asked:
            raise ValueError(f"the {self.daemon} runner has no {', '.join(asked)}: leave "
                             + ("kernel=False" if "kernel" in asked else "it unset"))

    def _exported(self) -> tuple[str, ...]:
        """The AS numbers ``prepend`` adds before the daemon adds its own once."""
        return (str(self.asn),) * self.prepend


class OneProcessSpeaker(BgpSpeaker):
    """A speaker that is one daemon process (``self.proc``, named ``daemon``):
    BIRD, GoBGP, ExaBGP. Subclasses start it in :meth:`start`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.proc: subprocess.Popen | None = None

    def _launch(self, *argv: str, output: str, env: dict[str, str] | None = None) -> None:
        """Write the config to ``self.conf_path`` and start ``argv`` in the namespace,
        its stdout and stderr to ``output``."""
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())
        out = open(output, "w")
        try:
            self.proc = self.lab.popen(self.ns, *argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        finally:
            out.close()

    def _check_alive(self) -> None:
        check_alive(self.name, {self.daemon: self.proc}, self._tail)

    def stop(self) -> None:
        """SIGTERM: the daemon closes its sessions with a NOTIFICATION Cease; start() may follow."""
        if self.proc is not None:
            self.lab.stop(self.proc)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no NOTIFICATION, and routes the daemon exported stay in the kernel."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None


def check_alive(name: str, procs: dict, tail: Callable[[], str]) -> None:
    """GiveUp naming the first of ``procs`` (program name -> Popen or None) that exited."""
    for program, proc in procs.items():
        if proc is not None and proc.poll() is not None:
            raise GiveUp(f"{name}: {program} exited with {proc.returncode}\n{tail()}")
