"""FRR (Debian's frr 8.4) as a lab BGP speaker: zebra + bgpd in one namespace.

Facts established on this machine (Debian 12, frr 8.4.4, several instances at
once, one per namespace):

* Isolation.  Each instance gets every path on its command line: the vty
  sockets (``--vty_socket DIR``: DIR/zebra.vty, DIR/bgpd.vty), zebra's API
  socket (``-z DIR/zserv.api``, given to both), pid files (``-i``) and configs
  (``-f``); ``-P 0`` opens no TCP vty.  No file under /etc/frr or /var/run/frr
  is written; each daemon keeps a directory /var/tmp/frr/<daemon>.<pid>
  while it runs (removed on a clean exit; :meth:`Frr.kill` removes it).
  ``vtysh --vty_socket DIR`` talks to that instance only.
* User.  The daemons must run as ``frr`` (root is refused: "user(root) is not
  part of vty group specified(frrvty)"; the group is compiled in), so DIR is
  owned by frr and the lab's temp root is made traversable (0711).
* zebra.  bgpd installs learned routes through zebra into the namespace's main
  table (``proto bgp``) and asks zebra whether a next hop is reachable: a path
  whose next hop zebra cannot resolve is not valid.  ``bgpd -n`` (``kernel=False``)
  installs nothing.
* Route maps.  A route map must be defined *before* ``router bgp`` in the file:
  when ``neighbor X route-map M out`` is read first, bgpd's first UPDATE run
  finds no map and filters every prefix ("is filtered by route-map"), and only a
  later ``clear bgp soft out`` sends them.
* ``no bgp ebgp-requires-policy``: otherwise (RFC 8212, FRR's default) an eBGP
  session exchanges nothing without in/out policies and shows "(Policy)".
  ``no bgp network import-check``: ``network`` statements are announced without
  a matching route in the RIB (the lab's prefixes need not exist).
* A given configuration.  ``Frr(..., config=TEXT)`` runs TEXT as bgpd's
  configuration byte for byte (e.g. what ``vgw cgw-config --file frr`` printed);
  the instance's own paths stay on the command line as above, and its log goes
  to the same file by ``--log file:PATH --log-level info`` instead of a ``log
  file`` line.  ``bgpd -C -f FILE`` (:func:`frr_config_errors`) checks a file
  without running it: it prints what it cannot parse and exits 0 all the same.
* Logs.  ``bgp log-neighbor-changes`` makes bgpd log every NOTIFICATION with its
  data ("%NOTIFICATION: sent to neighbor X 6/1 (Cease/Maximum Number of Prefixes
  Reached) 7 bytes 00 01 01 00 00 00 64").
* First UPDATE: bgpd waits its subgroup coalesce time (about 1 s) after
  Established before it announces anything.
* ``maximum-prefix N``: 101 prefixes arriving in the first UPDATEs after
  Established were all accepted (only the 75 % warning was logged); the limit
  fired on the first later UPDATE that added one (Cease 6/1 with AFI, SAFI and
  N). Likely: a path counts only once zebra has resolved its next hop, after the
  check. A test of FRR's limit sends N first, then one more.
* Multipath: two equal paths (same AS_PATH length, MED and neighbor AS, e.g. the
  same prefix over both tunnels) are installed as one route with two next hops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from typing import Any, Sequence

from tests.lab.bgpspeaker import BgpSpeaker, Notification, Path, Session, as_numbers, check_alive
from tests.lab.netns import LabError, wait_until

FRR_DIR = "/usr/lib/frr"
FRR_RUNTIME_DIR = "/var/tmp/frr"
VTYSH = "vtysh"
FRR_USER = "frr"
ROUTE_MAP = "ANNOUNCE"
PREFIX_LIST = "ANNOUNCE"

_NOTIFY = re.compile(
    r"%NOTIFICATION(?:\([^)]*\))?: (sent to|received from) neighbor (\S+) (\d+)/(\d+) "
    r"\(([^)]*)\) (\d+) bytes ?([0-9a-fA-F ]*)")


def frr_unavailable_reason() -> str | None:
    for program in ("zebra", "bgpd"):
        if not os.access(os.path.join(FRR_DIR, program), os.X_OK):
            return f"FRR's {program} not found in {FRR_DIR} (apt-get install frr)"
    if not shutil.which(VTYSH):
        return "vtysh not found (apt-get install frr)"
    return None


def frr_config_errors(lab: Any, ns: str, text: str) -> str:
    """What bgpd's dry run (``-C``) says about ``text`` as its config: "" when it
    parses (see the module docstring; bgpd reads it as frr, as when it runs)."""
    folder = lab.tmpdir("frr-check")
    path = os.path.join(folder, "bgpd.conf")
    with open(path, "w") as f:
        f.write(text)
    _give_to_frr(folder)
    res = lab.run(ns, os.path.join(FRR_DIR, "bgpd"), "-C", "-f", path, check=False)
    return (res.stdout + res.stderr).strip()


def _give_to_frr(folder: str) -> None:
    """Make ``folder`` and its files FRR's (the daemons run as frr)."""
    os.chmod(os.path.dirname(folder), 0o711)
    for path in [folder] + [os.path.join(folder, f) for f in os.listdir(folder)]:
        shutil.chown(path, FRR_USER, FRR_USER)


class Frr(BgpSpeaker):
    """zebra + bgpd in ``ns``; arguments as :class:`BgpSpeaker`; ``config``: a
    bgpd configuration to run as given instead of one rendered from the options
    (which then only describe it to the harness: asn, neighbors...)."""

    daemon = "frr"

    def __init__(self, *args: Any, config: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = config
        self.zebra: subprocess.Popen | None = None
        self.bgpd: subprocess.Popen | None = None
        self.log_path = os.path.join(self.dir, "bgpd.log")
        self.zebra_log_path = os.path.join(self.dir, "zebra.log")

    # -- config ---------------------------------------------------------------

    def config_text(self) -> str:
        """bgpd.conf: the given one, or route map first (see the module docstring),
        then ``router bgp``."""
        if self.config is not None:
            return self.config
        lines = ["frr defaults traditional", f"hostname {self.name}",
                 f"log file {self.log_path} informational", "log timestamp precision 3", "!"]
        for seq, prefix in enumerate(self.networks, 1):
            lines.append(f"ip prefix-list {PREFIX_LIST} seq {seq * 5} permit {prefix}")
        if self.networks:
            lines += [f"route-map {ROUTE_MAP} permit 10",
                      f" match ip address prefix-list {PREFIX_LIST}"]
            if self.med is not None:
                lines.append(f" set metric {self.med}")
            if self.prepend:
                lines.append(f" set as-path prepend {' '.join(self._exported())}")
            lines.append("exit")
        if self.export_learned:
            lines += [f"route-map {ROUTE_MAP} permit 20", "exit"]
        # a route map with no clause denies everything: nothing is announced
        lines += [f"route-map {ROUTE_MAP} deny 100", "exit", "!",
                  f"router bgp {self.asn}",
                  f" bgp router-id {self.router_id}",
                  " bgp log-neighbor-changes",
                  " no bgp ebgp-requires-policy",
                  " no bgp network import-check"]
        keepalive = self.keepalive if self.keepalive is not None else self.hold_time // 3
        for n in self.neighbors:
            lines += [f" neighbor {n.ip} remote-as {n.remote_as}",
                      f" neighbor {n.ip} timers {keepalive} {self.hold_time}",
                      f" neighbor {n.ip} timers connect {self.connect_retry}"]
            if n.local_ip:
                lines.append(f" neighbor {n.ip} update-source {n.local_ip}")
        lines.append(" address-family ipv4 unicast")
        lines += [f"  network {prefix}" for prefix in self.networks]
        for n in self.neighbors:
            lines.append(f"  neighbor {n.ip} route-map {ROUTE_MAP} out")
            if self.max_prefixes is not None:
                lines.append(f"  neighbor {n.ip} maximum-prefix {self.max_prefixes}")
        lines += [" exit-address-family", "exit", ""]
        return "\n".join(lines)

    # -- lifecycle -------------------------------------------------------------

    def _common_args(self) -> list[str]:
        return ["--vty_socket", self.dir, "-z", os.path.join(self.dir, "zserv.api"), "-P", "0"]

    def start(self, timeout: float = 15.0) -> "Frr":
        if self.bgpd is not None:
            raise RuntimeError(f"{self.name} already started")
        with open(os.path.join(self.dir, "zebra.conf"), "w") as f:
            f.write(f"hostname {self.name}\nlog file {self.zebra_log_path} informational\n")
        with open(os.path.join(self.dir, "bgpd.conf"), "w") as f:
            f.write(self.config_text())
        _give_to_frr(self.dir)   # the daemons run as frr (see the module docstring)
        self.zebra = self._popen("zebra", "zebra.out", "-f", os.path.join(self.dir, "zebra.conf"),
                                 "-i", os.path.join(self.dir, "zebra.pid"))
        wait_until(lambda: self._check_alive() or os.path.exists(os.path.join(self.dir, "zserv.api")),
                   timeout, 0.05, f"{self.name}: zebra's API socket")
        extra = [] if self.kernel else ["-n"]
        if self.config is not None:   # the given config has no log line of ours
            extra += ["--log", f"file:{self.log_path}", "--log-level", "info"]
        self.bgpd = self._popen("bgpd", "bgpd.out", "-f", os.path.join(self.dir, "bgpd.conf"),
                                "-i", os.path.join(self.dir, "bgpd.pid"), *extra)
        wait_until(lambda: self._check_alive() or self.show("show bgp summary json", check=False),
                   timeout, 0.1, f"{self.name}: bgpd's vty")
        return self

    def _popen(self, program: str, out_name: str, *args: str) -> subprocess.Popen:
        out = open(os.path.join(self.dir, out_name), "w")
        try:
            return self.lab.popen(self.ns, os.path.join(FRR_DIR, program), *self._common_args(), *args,
                                  stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()

    def _check_alive(self) -> None:
        check_alive(self.name, {"bgpd": self.bgpd, "zebra": self.zebra}, self._tail)

    def stop(self) -> None:
        """SIGTERM (bgpd closes its sessions with a NOTIFICATION); start() may follow."""
        for proc in (self.bgpd, self.zebra):
            if proc is not None:
                self.lab.stop(proc)
        self._stopped()

    def _stopped(self) -> None:
        self.bgpd = self.zebra = None
        for name in ("zserv.api", "bgpd.pid", "zebra.pid"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass

    def kill(self) -> None:
        """SIGKILL bgpd and zebra: no NOTIFICATION, and the routes zebra installed stay."""
        for program, proc in (("bgpd", self.bgpd), ("zebra", self.zebra)):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=5)
                # each daemon keeps /var/tmp/frr/<daemon>.<pid> while it runs and
                # removes it on a clean exit only
                shutil.rmtree(os.path.join(FRR_RUNTIME_DIR, f"{program}.{proc.pid}"), ignore_errors=True)
        self._stopped()

    # -- vtysh -----------------------------------------------------------------

    def vtysh(self, *commands: str, check: bool = True, timeout: float = 15.0) -> str:
        """Run vtysh commands against this instance; its output."""
        args = [a for c in commands for a in ("-c", c)]
        res = self.lab.run(self.ns, VTYSH, "--vty_socket", self.dir, *args, check=False, timeout=timeout)
        if check and (res.returncode != 0 or res.stdout.lstrip().startswith("%")):
            raise LabError(f"{self.name}: vtysh {commands} exited {res.returncode}: "
                           f"{res.stdout.strip()} {res.stderr.strip()}")
        return res.stdout

    def show(self, command: str, check: bool = True) -> Any:
        """A ``show ... json`` command's parsed output ({} when it printed nothing)."""
        text = self.vtysh(command, check=check)
        if not check and not text.strip().startswith("{"):
            return None
        return json.loads(text) if text.strip() else {}

    def configure(self, *lines: str) -> None:
        """Apply config lines at run time (``configure terminal`` + lines)."""
        self.vtysh("configure terminal", *lines)

    def announce(self, prefixes: Sequence[str]) -> None:
        new = [p for p in prefixes if p not in self.networks]
        if not self.networks and new:
            # the route map's permit 10 was not rendered without networks
            self.configure(f"route-map {ROUTE_MAP} permit 10",
                           f"match ip address prefix-list {PREFIX_LIST}",
                           *([f"set metric {self.med}"] if self.med is not None else []),
                           *([f"set as-path prepend {' '.join(self._exported())}"] if self.prepend else []))
        seq = 5 * len(self.networks)
        lines = [f"ip prefix-list {PREFIX_LIST} seq {seq + 5 * i} permit {p}" for i, p in enumerate(new, 1)]
        lines += [f"router bgp {self.asn}", "address-family ipv4 unicast"] + [f"network {p}" for p in new]
        self.configure(*lines)
        self.networks += new

    def withdraw(self, prefixes: Sequence[str]) -> None:
        gone = [p for p in prefixes if p in self.networks]
        self.configure(f"router bgp {self.asn}", "address-family ipv4 unicast",
                       *[f"no network {p}" for p in gone])
        self.networks = [p for p in self.networks if p not in gone]

    # -- state -------------------------------------------------------------------

    def sessions(self) -> list[Session]:
        # FRR shows the last NOTIFICATION's reason only until the next reset of the
        # session ("Waiting for peer OPEN" on a retry); the log keeps it
        logged = {n.peer: n.text for n in self.notifications()}
        return [_session(ip, data, logged.get(ip, "")) for ip, data in self.show("show bgp neighbors json").items()]

    def neighbor_json(self, peer: str) -> dict:
        """``show bgp neighbors PEER json`` as FRR prints it (every field)."""
        return self.show(f"show bgp neighbors {peer} json").get(peer, {})

    def routes(self, prefix: str | None = None) -> list[Path]:
        table = self.show("show bgp ipv4 unicast json").get("routes", {})
        return [_path(p, entry) for p, entries in table.items() if prefix in (None, p) for entry in entries]

    def kernel_routes(self) -> list[dict]:
        """The namespace's main table as ``ip -j route`` prints it (zebra's work)."""
        return json.loads(self.lab.run(self.ns, "ip", "-j", "route", "show", "table", "main").stdout)

    def notifications(self) -> list[Notification]:
        out = []
        for m in _NOTIFY.finditer(self.log_text()):
            direction, peer, code, subcode, text, length, data = m.groups()
            pairs = data.split()
            # FRR 8.4 logs the data of some NOTIFICATIONs it sends cut short ("2 bytes f"):
            # keep only what is whole
            raw = bytes.fromhex("".join(pairs)) if all(len(x) == 2 for x in pairs) else b""
            out.append(Notification("sent" if direction == "sent to" else "received", peer,
                                    int(code), int(subcode), text, raw))
        return out

    def log_files(self) -> list[str]:
        return [self.log_path, os.path.join(self.dir, "bgpd.out"), os.path.join(self.dir, "zebra.out")]


def _session(peer: str, d: dict, logged_error: str = "") -> Session:
    established = d.get("bgpState") == "Established"
    af = d.get("addressFamilyInfo", {}).get("ipv4Unicast", {})
    error = d.get("lastNotificationReason") or logged_error
    return Session(
        peer=peer,
        state=d.get("bgpState", ""),
        peer_as=d.get("remoteAs"),
        hold_time=d["bgpTimerHoldTimeMsecs"] // 1000 if established and "bgpTimerHoldTimeMsecs" in d else None,
        keepalive=(d["bgpTimerKeepAliveIntervalMsecs"] // 1000
                   if established and "bgpTimerKeepAliveIntervalMsecs" in d else None),
        prefixes_accepted=af.get("acceptedPrefixCounter"),
        last_error=error,
    )


def _path(prefix: str, e: dict) -> Path:
    hops = [h.get("ip") for h in e.get("nexthops", [])]
    peer = e.get("peerId")
    return Path(prefix=prefix, as_path=as_numbers(e.get("path", "")), med=e.get("metric"),
                next_hop=hops[0] if hops else None, best=bool(e.get("bestpath")),
                origin=e.get("origin"), peer=None if peer in (None, "(unspec)") else peer)
