"""GoBGP (Debian's gobgpd 3.10) as a lab BGP speaker, one ``gobgpd`` per namespace.

A third implementation beside FRR and BIRD, written apart from both (Go, its own
FSM and RIB), so that vgw's speaker meets a peer whose choices differ.

Facts established on this machine:

* Isolation.  ``gobgpd -f CONF -t toml --api-hosts 127.0.0.1:PORT`` runs in the
  foreground (the Popen PID is gobgpd's); ``gobgp -u 127.0.0.1 -p PORT`` talks to
  it over gRPC on the namespace's own loopback, so two labs never meet.  Nothing
  under /etc/gobgpd is read.
* Kernel.  gobgpd writes no kernel route (that needs zebra): ``kernel=True`` is
  refused, and a test routes the CGW's return traffic itself.
* Announcing.  ``gobgp global rib add -a ipv4 PREFIX origin igp [med N]
  [aspath ...]`` adds a prefix at run time; on eBGP the next hop becomes the
  session's local address and gobgpd prepends its own AS.
* State.  ``gobgp neighbor -j`` lists sessions (``state.session_state`` 6 is
  Established, the negotiated hold time under ``timers.state``), ``gobgp global
  rib -a ipv4 -j`` the RIB: a prefix -> its paths, each with its attributes as
  typed objects (type 2 AS_PATH, 3 NEXT_HOP, 4 MED), ``neighbor-ip`` and ``best``.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Sequence

from tests.lab.bgpspeaker import OneProcessSpeaker, Path, Session
from tests.lab.netns import LabError, wait_until

GOBGPD = "gobgpd"
GOBGP = "gobgp"
API_PORT = 50051
# RFC 4271 §8.2.2 states as gobgp's JSON numbers them (its api.PeerState)
_STATES = {0: "Unknown", 1: "Idle", 2: "Connect", 3: "Active", 4: "OpenSent", 5: "OpenConfirm",
           6: "Established"}
# RFC 4271 §4.3 path attribute type codes
_AS_PATH, _NEXT_HOP, _MED, _ORIGIN = 2, 3, 4, 1
_ORIGINS = {0: "IGP", 1: "EGP", 2: "Incomplete"}


def gobgp_unavailable_reason() -> str | None:
    for program in (GOBGPD, GOBGP):
        if not shutil.which(program):
            return f"{program} not found (apt-get install gobgpd)"
    return None


class GoBgp(OneProcessSpeaker):
    """One gobgpd in ``ns``; arguments as :class:`BgpSpeaker` (no ``kernel``,
    ``max_prefixes`` or ``export_learned``: the lab does not need them here)."""

    daemon = "gobgp"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refuse("kernel", "max_prefixes", "export_learned")
        self.conf_path = os.path.join(self.dir, "gobgpd.toml")
        self.log_path = os.path.join(self.dir, "gobgpd.log")

    def config_text(self) -> str:
        lines = ["[global.config]", f"  as = {self.asn}", f'  router-id = "{self.router_id}"',
                 "  port = 179", ""]
        for n in self.neighbors:
            lines += ["[[neighbors]]", "  [neighbors.config]", f'    neighbor-address = "{n.ip}"',
                      f"    peer-as = {n.remote_as}", "  [neighbors.timers.config]",
                      f"    hold-time = {self.hold_time}", f"    connect-retry = {self.connect_retry}"]
            if self.keepalive is not None:
                lines.append(f"    keepalive-interval = {self.keepalive}")
            if n.local_ip:
                lines += ["  [neighbors.transport.config]", f'    local-address = "{n.local_ip}"']
            lines += ["  [[neighbors.afi-safis]]", "    [neighbors.afi-safis.config]",
                      '      afi-safi-name = "ipv4-unicast"', ""]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 15.0) -> "GoBgp":
        self._launch(GOBGPD, "-f", self.conf_path, "-t", "toml", "--api-hosts", f"127.0.0.1:{API_PORT}",
                     "--log-plain", output=self.log_path)
        wait_until(lambda: self._check_alive() or self.gobgp("global", check=False), timeout, 0.1,
                   f"{self.name}: gobgpd's API")
        # the configured neighbors are read at start; the prefixes go in by the API
        self._add(self.networks)
        return self

    def gobgp(self, *args: str, check: bool = True) -> str:
        """One gobgp CLI command against this gobgpd; its stdout ("" when it failed
        and ``check`` is False)."""
        res = self.lab.run(self.ns, GOBGP, "-u", "127.0.0.1", "-p", str(API_PORT), *args,
                           check=False, timeout=15)
        if res.returncode != 0:
            if check:
                raise LabError(f"{self.name}: gobgp {' '.join(args)} exited {res.returncode}: "
                               f"{res.stdout.strip()} {res.stderr.strip()}")
            return ""
        return res.stdout

    def _add(self, prefixes: Sequence[str]) -> None:
        for prefix in prefixes:
            args = ["global", "rib", "add", "-a", "ipv4", prefix, "origin", "igp"]
            if self.med is not None:
                args += ["med", str(self.med)]
            if self.prepend:
                args += ["aspath", ",".join(self._exported())]
            self.gobgp(*args)

    def announce(self, prefixes: Sequence[str]) -> None:
        new = [p for p in prefixes if p not in self.networks]
        self.networks += new
        self._add(new)

    def withdraw(self, prefixes: Sequence[str]) -> None:
        for prefix in prefixes:
            if prefix in self.networks:
                self.gobgp("global", "rib", "del", "-a", "ipv4", prefix)
        self.networks = [p for p in self.networks if p not in prefixes]

    def sessions(self) -> list[Session]:
        peers = {p["state"]["neighbor_address"]: p for p in json.loads(self.gobgp("neighbor", "-j") or "[]")}
        return [parse_peer(n.ip, peers.get(n.ip, {})) for n in self.neighbors]

    def routes(self, prefix: str | None = None) -> list[Path]:
        args = ["global", "rib", "-a", "ipv4", "-j"] + ([prefix] if prefix else [])
        text = self.gobgp(*args, check=prefix is None)
        return parse_rib(json.loads(text) if text.strip() else {})

    def log_files(self) -> list[str]:
        return [self.log_path]


def parse_peer(address: str, peer: dict) -> Session:
    """A :class:`Session` from one entry of ``gobgp neighbor -j``."""
    state = peer.get("state", {})
    timers = peer.get("timers", {}).get("state", {})
    name = _STATES.get(state.get("session_state", 0), str(state.get("session_state")))
    established = name == "Established"
    received = peer.get("afi_safis", [{}])[0].get("state", {}).get("received")
    return Session(
        peer=address,
        state=name,
        peer_as=state.get("peer_asn"),
        hold_time=timers.get("negotiated_hold_time") if established else None,
        keepalive=timers.get("keepalive_interval") if established else None,
        prefixes_accepted=received,
        last_error="",
    )


def parse_rib(rib: dict) -> list[Path]:
    """Paths from ``gobgp global rib -j``: {prefix: [path, ...]}."""
    out = []
    for prefix, paths in rib.items():
        for p in paths:
            attrs = {a.get("type"): a for a in p.get("attrs", [])}
            as_path: list[int] = []
            for segment in attrs.get(_AS_PATH, {}).get("as_paths", []):
                as_path += segment.get("asns", [])
            med = attrs.get(_MED, {}).get("metric")
            origin = attrs.get(_ORIGIN, {}).get("value")
            peer = p.get("neighbor-ip")
            out.append(Path(prefix=prefix, as_path=tuple(as_path), med=med,
                            next_hop=attrs.get(_NEXT_HOP, {}).get("nexthop"), best=bool(p.get("best")),
                            origin=_ORIGINS.get(origin) if origin is not None else None,
                            peer=None if peer in (None, "<nil>", "0.0.0.0") else peer))
    return out
