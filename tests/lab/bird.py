"""BIRD 2 (Debian's bird2 2.0.12) as a lab BGP speaker, one ``bird`` per namespace.

Facts established on this machine:

* Isolation.  ``bird -f -c CONF -s SOCK -P PIDFILE`` runs in the foreground (the
  Popen PID is bird's) with every path under the lab's temp dir; ``birdc -s SOCK``
  talks to that instance.  It runs as root; nothing under /etc/bird or /run/bird
  is used.
* Announcing.  ``protocol static`` holds the prefixes to announce as blackhole
  routes; they reach BGP only (the kernel protocol exports ``source = RTS_BGP``
  alone, so they never enter the kernel).  Each BGP channel exports ``where net ~
  [ ... ]`` the announced set, with ``bgp_med`` and ``bgp_path.prepend`` set in
  that filter (BIRD adds its own AS once more on eBGP export).
* Kernel.  ``protocol kernel`` exports learned routes into the namespace's main
  table (``proto bird``); ``protocol device`` makes interfaces known, which eBGP
  needs: a neighbor must be on a directly connected network ("direct" is the
  eBGP default), as must the next hop of a route.
* Errors.  ``show protocols all`` keeps the last error ("Last error: Received:
  Bad peer AS", "Error: Bad peer AS" when BIRD sent it); the log has one line per
  NOTIFICATION, with the data of one it received.  After an error BIRD waits
  ``error wait time`` (60 s by default) before it tries again: 2-16 s here; after
  start-up ``connect delay time`` (5 s by default): 1 s here.
* ``receive limit N action restart``: the (N+1)th prefix ends the session with
  Cease / Maximum Number of Prefixes Reached.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any, Sequence

from tests.lab.bgpspeaker import Notification, OneProcessSpeaker, Path, Session, as_numbers
from tests.lab.netns import LabError, wait_until

BIRD = "bird"
BIRDC = "birdc"

# log lines: "<proto>: Received: <text>" (from the peer), "<proto>: Error: <text>" (sent),
# "<proto>: Route limit exceeded, shutting down" (sent: Cease / Maximum Number of Prefixes)
_LOG_ERROR = re.compile(r"^\S+ \S+ <\w+> (\S+): (?:(Received|Error): (.+)|(Route limit exceeded), "
                        r"shutting down)$", re.M)
# route header: "172.16.1.0/24  unicast [peer1 03:51:29.444] * (100) [AS65000i]"
_ROUTE = re.compile(r"^(\S+)?\s+(\w+) \[(\S+)[^\]]*\](\s+\*)?\s+\((\d+)\)")
# RFC 4271 §4.5 / RFC 4486: the errors BIRD names, so that both daemons report codes
_ERROR_CODES = {
    "bad peer as": (2, 2),
    "maximum number of prefixes reached": (6, 1),
    "hold timer expired": (4, 0),
    "administrative shutdown": (6, 2),
    "peer de-configured": (6, 3),
    "administrative reset": (6, 4),
    "connection rejected": (6, 5),
    "connection collision resolution": (6, 7),
}


def bird_unavailable_reason() -> str | None:
    for program, package in ((BIRD, "bird2"), (BIRDC, "bird2")):
        if not shutil.which(program):
            return f"{program} not found (apt-get install {package})"
    return None


class Bird(OneProcessSpeaker):
    """One bird in ``ns``; arguments as :class:`BgpSpeaker`. Neighbor i is the
    BGP protocol ``peer<i+1>``."""

    daemon = "bird"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conf_path = os.path.join(self.dir, "bird.conf")
        self.sock = os.path.join(self.dir, "bird.ctl")
        self.log_path = os.path.join(self.dir, "bird.log")
        if len(self.sock.encode()) >= 108:
            raise ValueError(f"control socket path {self.sock!r} is too long for AF_UNIX")

    def protocol(self, peer: str) -> str:
        """The BGP protocol name of neighbor ``peer``."""
        for i, n in enumerate(self.neighbors):
            if n.ip == peer:
                return f"peer{i + 1}"
        raise KeyError(f"{self.name} has no neighbor {peer}")

    # -- config ---------------------------------------------------------------

    def config_text(self) -> str:
        own = ", ".join(self.networks)
        actions = ([f"bgp_med = {self.med};"] if self.med is not None else []) + [
            f"bgp_path.prepend({asn});" for asn in self._exported()]
        export = ["    export filter {"]
        if self.networks:
            export.append(f"      if net ~ [ {own} ] then {{ {' '.join(actions)} accept; }}")
        if self.export_learned:
            export.append("      if source = RTS_BGP then accept;")
        export += ["      reject;", "    };"]
        lines = [f'log "{self.log_path}" all;', f"router id {self.router_id};",
                 "protocol device { scan time 5; }"]
        if self.kernel:
            lines.append("protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }")
        lines.append("protocol static announced {")
        lines.append("  ipv4;")
        lines += [f"  route {prefix} blackhole;" for prefix in self.networks]
        lines.append("}")
        for i, n in enumerate(self.neighbors):
            local = f"local {n.local_ip} " if n.local_ip else "local "
            lines += [f"protocol bgp peer{i + 1} {{",
                      f"  {local}as {self.asn};",
                      f"  neighbor {n.ip} as {n.remote_as};",
                      f"  hold time {self.hold_time};"]
            if self.keepalive is not None:
                lines.append(f"  keepalive time {self.keepalive};")
            lines += [f"  connect retry time {self.connect_retry};",
                      "  connect delay time 1;",
                      "  error wait time 2, 16;",
                      "  ipv4 {",
                      "    import all;"]
            if self.max_prefixes is not None:
                lines.append(f"    receive limit {self.max_prefixes} action restart;")
            lines += export + ["  };", "}"]
        return "\n".join(lines) + "\n"

    # -- lifecycle -------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> "Bird":
        self._launch(BIRD, "-f", "-c", self.conf_path, "-s", self.sock, "-P", os.path.join(self.dir, "bird.pid"),
                     output=os.path.join(self.dir, "bird.out"))
        wait_until(lambda: self._check_alive() or self.birdc("show status", check=False),
                   timeout, 0.1, f"{self.name}: bird's control socket")
        return self

    def birdc(self, command: str, check: bool = True, timeout: float = 15.0) -> str:
        """One birdc command; its output without the "BIRD x.y ready." banner ("" when
        it failed and ``check`` is False)."""
        res = self.lab.run(self.ns, BIRDC, "-s", self.sock, command, check=False, timeout=timeout)
        if res.returncode != 0:
            if check:
                raise LabError(f"{self.name}: birdc {command!r} exited {res.returncode}: "
                               f"{res.stdout.strip()} {res.stderr.strip()}")
            return ""
        return res.stdout.split("\n", 1)[1] if res.stdout.startswith("BIRD ") else res.stdout

    def reconfigure(self) -> None:
        """Write the config from the current options and make bird read it."""
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())
        out = self.birdc("configure")
        if "Reconfigured" not in out and "Reconfiguration in progress" not in out:
            raise LabError(f"{self.name}: configure said {out.strip()!r}")

    def announce(self, prefixes: Sequence[str]) -> None:
        self.networks += [p for p in prefixes if p not in self.networks]
        self.reconfigure()

    def withdraw(self, prefixes: Sequence[str]) -> None:
        self.networks = [p for p in self.networks if p not in prefixes]
        self.reconfigure()

    # -- state -------------------------------------------------------------------

    def sessions(self) -> list[Session]:
        return [self._session(n.ip) for n in self.neighbors]

    def _session(self, peer: str) -> Session:
        return parse_protocol(peer, self.birdc(f"show protocols all {self.protocol(peer)}"))

    def routes(self, prefix: str | None = None) -> list[Path]:
        text = self.birdc(f"show route all {prefix}" if prefix else "show route all", check=prefix is None)
        peers = {f"peer{i + 1}": n.ip for i, n in enumerate(self.neighbors)}
        return parse_routes(text, peers)

    def notifications(self) -> list[Notification]:
        peers = {f"peer{i + 1}": n.ip for i, n in enumerate(self.neighbors)}
        out = []
        for m in _LOG_ERROR.finditer(self.log_text()):
            proto, kind, text, limit = m.groups()
            if proto not in peers:
                continue
            if limit:
                kind, text = "Error", "Maximum number of prefixes reached"
            # "Maximum number of prefixes reached: 00010100000064": the data in hex;
            # "Bad peer AS: 64512": BIRD prints that one's data as a number
            head, _, tail = text.strip().rpartition(": ")
            data = b""
            if head and head.lower() != "bad peer as" and re.fullmatch(r"(?:[0-9a-f]{2})+", tail):
                text, data = head, bytes.fromhex(tail)
            code, subcode = _ERROR_CODES.get(text.split(":")[0].strip().lower(), (None, None))
            out.append(Notification("received" if kind == "Received" else "sent", peers[proto],
                                    code, subcode, text.strip(), data))
        return out

    def log_files(self) -> list[str]:
        return [self.log_path, os.path.join(self.dir, "bird.out")]


def _field(text: str, name: str) -> str | None:
    m = re.search(rf"^\s*{re.escape(name)}:\s*(.*?)\s*$", text, re.M)
    return m.group(1) if m else None


def parse_protocol(peer: str, text: str) -> Session:
    """A :class:`Session` from ``show protocols all <bgp protocol>``."""
    state = _field(text, "BGP state") or ""
    established = state == "Established"
    peer_as = _field(text, "Neighbor AS")
    hold = _field(text, "Hold timer")           # "28.868/30": left now, right negotiated
    keep = _field(text, "Keepalive timer")
    routes = _field(text, "Routes")             # "2 imported, 0 exported, 2 preferred"
    accepted = re.match(r"(\d+) imported", routes or "")
    return Session(
        peer=peer,
        state=state,
        peer_as=int(peer_as) if peer_as and peer_as.isdigit() else None,
        hold_time=int(hold.rsplit("/", 1)[1]) if established and hold and "/" in hold else None,
        keepalive=int(keep.rsplit("/", 1)[1]) if established and keep and "/" in keep else None,
        prefixes_accepted=int(accepted.group(1)) if accepted else None,
        last_error=_field(text, "Last error") or "",
    )


def parse_routes(text: str, peers: dict[str, str]) -> list[Path]:
    """Paths from ``show route all``: a header line per path (the prefix only on the
    first path of a prefix, "*" on the best), then tab-indented attributes.
    ``peers`` maps protocol names to neighbor addresses."""
    paths: list[dict] = []
    prefix = None
    for line in text.splitlines():
        m = _ROUTE.match(line)
        if m and not line.startswith("\t"):
            prefix = m.group(1) or prefix
            paths.append({"prefix": prefix, "proto": m.group(3), "best": bool(m.group(4)), "attrs": {}})
            continue
        if not paths or not line.startswith("\t"):
            continue
        body = line.strip()
        if body.startswith("via "):
            paths[-1]["attrs"].setdefault("via", body.split()[1])
        elif ":" in body:
            key, _, value = body.partition(":")
            paths[-1]["attrs"][key.strip()] = value.strip()
    out = []
    for p in paths:
        a = p["attrs"]
        med = a.get("BGP.med")
        out.append(Path(prefix=p["prefix"], as_path=as_numbers(a.get("BGP.as_path", "")),
                        med=int(med) if med and med.isdigit() else None,
                        next_hop=a.get("BGP.next_hop", a.get("via")), best=p["best"],
                        origin=a.get("BGP.origin"), peer=peers.get(p["proto"])))
    return out
