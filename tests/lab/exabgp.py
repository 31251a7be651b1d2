"""ExaBGP (Debian's exabgp 4.2) as a lab BGP speaker, one ``exabgp`` per namespace.

A fourth implementation beside FRR, BIRD and GoBGP: Python, no FIB and no
best-path selection of its own, the speaker route servers and health checkers
use. It meets vgw's speaker with its own choices (it only connects, never
listens here; keepalive a third of the hold time).

Facts established on this machine:

* Isolation.  ``exabgp CONF`` runs in the foreground (the Popen PID is its own)
  with its settings in the environment (``exabgp.daemon.user=root``, the log in
  the lab's directory, no CLI pipes under /run, no listening socket, no API
  acknowledgements).
* The API.  ExaBGP writes every message it receives (JSON, a line each) to the
  stdin of the process the config names and reads commands from its stdout;
  tests/lab/exabgp_pipe.py keeps the messages in ``messages.jsonl`` and passes
  on the commands written to the FIFO ``commands``.  Sessions, the negotiated
  hold time, the routes received and the NOTIFICATIONs received are read back
  from those messages (replayed in order; a session that goes down takes its
  routes along).  ExaBGP logs the NOTIFICATIONs it sends only in free text, so
  :meth:`ExaBgp.notifications` lists the received ones.
* Kernel.  ExaBGP writes no kernel route: ``kernel=True`` is refused.
* Announcing.  ``announce route P next-hop self [med N] [as-path [...]]``; on
  eBGP ExaBGP puts its own AS in front.  The prefixes of the config are
  announced by the config's ``static`` block.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Sequence

from tests.lab.bgpspeaker import Notification, OneProcessSpeaker, Path, Session
from tests.lab.netns import wait_until

EXABGP = "exabgp"
SYSTEM_PYTHON = "/usr/bin/python3"     # the interpreter Debian's exabgp runs on
PIPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exabgp_pipe.py")


def exabgp_unavailable_reason() -> str | None:
    if not shutil.which(EXABGP):
        return f"{EXABGP} not found (apt-get install exabgp)"
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found (exabgp's API process runs on it)"
    return None


class ExaBgp(OneProcessSpeaker):
    """One exabgp in ``ns``; arguments as :class:`BgpSpeaker` (no ``kernel``,
    ``max_prefixes`` or ``export_learned``; ``connect_retry`` is ExaBGP's own)."""

    daemon = "exabgp"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refuse("kernel", "max_prefixes", "export_learned")
        if self.keepalive is not None and self.keepalive != self.hold_time // 3:
            raise ValueError("exabgp's keepalive is a third of the hold time")
        self.conf_path = os.path.join(self.dir, "exabgp.conf")
        self.log_path = os.path.join(self.dir, "exabgp.log")
        self.out_path = os.path.join(self.dir, "exabgp.out")
        self.fifo = os.path.join(self.dir, "commands")
        self.messages_path = os.path.join(self.dir, "messages.jsonl")

    def _attributes(self) -> str:
        text = "next-hop self"
        if self.med is not None:
            text += f" med {self.med}"
        if self.prepend:
            text += f" as-path [ {' '.join(self._exported())} ]"
        return text

    def config_text(self) -> str:
        lines = ["process vgwlab {", f"  run {SYSTEM_PYTHON} {PIPE} {self.dir};", "  encoder json;", "}", ""]
        for n in self.neighbors:
            lines += [f"neighbor {n.ip} {{", f"  router-id {self.router_id};"]
            if n.local_ip:
                lines.append(f"  local-address {n.local_ip};")
            lines += [f"  local-as {self.asn};", f"  peer-as {n.remote_as};", f"  hold-time {self.hold_time};",
                      "  family { ipv4 unicast; }",
                      "  api {", "    processes [ vgwlab ];", "    neighbor-changes;", "    negotiated;",
                      "    receive { parsed; update; notification; }", "  }"]
            if self.networks:
                lines += ["  static {"] + [f"    route {p} {self._attributes()};" for p in self.networks] + ["  }"]
            lines += ["}", ""]
        return "\n".join(lines)

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("exabgp")}
        env.update({"exabgp.daemon.user": "root", "exabgp.daemon.daemonize": "false",
                    "exabgp.log.destination": self.log_path, "exabgp.log.level": "INFO",
                    "exabgp.api.cli": "false", "exabgp.api.ack": "false", "exabgp.tcp.bind": "",
                    "exabgp.api.respawn": "false"})
        env.pop("PYTHONPATH", None)
        return env

    def start(self, timeout: float = 15.0) -> "ExaBgp":
        if not os.path.exists(self.fifo):
            os.mkfifo(self.fifo, 0o600)
        self._launch(EXABGP, self.conf_path, output=self.out_path, env=self._environment())
        wait_until(lambda: self._check_alive() or self._pipe_running(), timeout, 0.1,
                   f"{self.name}: exabgp's API process")
        return self

    def _pipe_running(self) -> bool:
        """True once exabgp_pipe.py holds the FIFO (its messages file exists)."""
        return os.path.exists(self.messages_path)

    def command(self, line: str) -> None:
        """One API command to exabgp (through the FIFO the API process reads)."""
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def announce(self, prefixes: Sequence[str]) -> None:
        new = [p for p in prefixes if p not in self.networks]
        self.networks += new
        for prefix in new:
            self.command(f"announce route {prefix} {self._attributes()}")

    def withdraw(self, prefixes: Sequence[str]) -> None:
        for prefix in prefixes:
            if prefix in self.networks:
                self.command(f"withdraw route {prefix} next-hop self")
        self.networks = [p for p in self.networks if p not in prefixes]

    # -- state, from the API messages ------------------------------------------

    def messages(self) -> list[dict]:
        try:
            with open(self.messages_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def sessions(self) -> list[Session]:
        replay = replay_messages(self.messages())
        return [replay.session(n.ip) for n in self.neighbors]

    def routes(self, prefix: str | None = None) -> list[Path]:
        paths = [p for per_peer in replay_messages(self.messages()).rib.values() for p in per_peer.values()]
        return sorted((p for p in paths if prefix is None or p.prefix == prefix), key=lambda p: (p.prefix, p.peer))

    def notifications(self) -> list[Notification]:
        return replay_messages(self.messages()).notifications

    def announcements(self, prefix: str) -> list[Path]:
        """Every path of ``prefix`` received, in order, also those replaced or
        withdrawn since (ExaBGP's API passes on every UPDATE)."""
        return [p for p in replay_messages(self.messages()).announced if p.prefix == prefix]

    def log_files(self) -> list[str]:
        return [self.log_path, self.out_path]


class Replay:
    """What ExaBGP's API messages say, replayed in order."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}
        self.peer_as: dict[str, int] = {}
        self.hold: dict[str, int] = {}
        self.rib: dict[str, dict[str, Path]] = {}
        self.notifications: list[Notification] = []
        self.announced: list[Path] = []     # every path announced, in order (withdrawn or not)

    def session(self, peer: str) -> Session:
        up = self.state.get(peer) == "up"
        hold = self.hold.get(peer) if up else None
        return Session(peer=peer, state="Established" if up else (self.state.get(peer) or "Idle"),
                       peer_as=self.peer_as.get(peer), hold_time=hold,
                       keepalive=hold // 3 if hold else None,
                       prefixes_accepted=len(self.rib.get(peer, {})) if up else None, last_error="")

    def apply(self, message: dict) -> None:
        neighbor = message.get("neighbor", {})
        peer = neighbor.get("address", {}).get("peer")
        kind = message.get("type")
        if peer is None:
            return
        if "peer" in neighbor.get("asn", {}):
            self.peer_as[peer] = int(neighbor["asn"]["peer"])
        if kind == "state":
            self.state[peer] = neighbor.get("state", "")
            if self.state[peer] != "up":
                self.rib.pop(peer, None)       # RFC 4271 §8.2.2: the session's routes go with it
        elif kind == "negotiated":
            self.hold[peer] = int(neighbor["negotiated"]["hold_time"])
        elif kind == "notification" and neighbor.get("direction") == "receive":
            n = neighbor["notification"]
            data = (n.get("data") or "").removeprefix("0x")      # ExaBGP writes "0x" + hex
            self.notifications.append(Notification("received", peer, int(n["code"]), int(n["subcode"]),
                                                   "", bytes.fromhex(data)))
        elif kind == "update":
            self._update(peer, neighbor.get("message", {}).get("update", {}))

    def _update(self, peer: str, update: dict) -> None:
        rib = self.rib.setdefault(peer, {})
        for nlris in update.get("withdraw", {}).get("ipv4 unicast", []) or []:
            rib.pop(_nlri(nlris), None)
        attrs = update.get("attribute", {})
        for next_hop, nlris in update.get("announce", {}).get("ipv4 unicast", {}).items():
            for nlri in nlris:
                prefix = _nlri(nlri)
                rib[prefix] = Path(prefix=prefix, as_path=_as_path(attrs.get("as-path")), med=attrs.get("med"),
                                   next_hop=next_hop, best=False, origin=(attrs.get("origin") or "").upper() or None,
                                   peer=peer)
                self.announced.append(rib[prefix])


def replay_messages(messages: list[dict]) -> Replay:
    replay = Replay()
    for message in messages:
        replay.apply(message)
    return replay


def _nlri(value: Any) -> str:
    return value["nlri"] if isinstance(value, dict) else str(value)


def _as_path(value: Any) -> tuple[int, ...]:
    """ExaBGP's as-path: a list of AS numbers, or segments keyed by position."""
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(int(a) for a in value)
    out: list[int] = []
    for _, segment in sorted(value.items(), key=lambda kv: int(kv[0])):
        out += [int(a) for a in segment.get("value", [])]
    return tuple(out)
