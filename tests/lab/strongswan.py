"""strongSwan (charon + swanctl) as a lab peer, one isolated daemon per namespace.

Facts established on this machine (Debian 12, strongSwan 5.9.8, a kernel
without XFRM ESP, so every charon here runs the kernel-libipsec plugin):

* Isolation.  charon's pid file is compiled in (``/var/run/charon.pid``, and
  /var/run -> /run), so two charons on one host clash.  Each :class:`Charon`
  runs as ``ip netns exec NS unshare -m --propagation private sh -c 'mount
  --bind DIR/run /run && exec charon'``: a private mount namespace with its
  own /run (the pid file lands in DIR/run, visible from outside).  Every
  ``exec`` keeps the PID, so the Popen PID *is* charon's.  Its config comes
  from ``STRONGSWAN_CONF`` (also read by swanctl, which then loads only the
  plugins it needs), the vici socket is ``DIR/vici`` (well under the 108-byte
  sun_path limit) and swanctl is always pointed at it with ``--uri``.
  ``swanctl --load-all --file F`` reads credentials from the subdirectories
  next to F (x509/, private/, ...), so they are created empty.
* Logging.  With a ``filelog`` section charon writes nothing to stdout;
  ``flush_line = yes`` (docs/design.md §7.2: without it the file fills in 4 KB chunks,
  so a failing test would show a stale log).
* TUN.  kernel-libipsec creates ``ipsec0`` (MTU 1400, POINTOPOINT, NOARP) at
  start-up, before any SA; one per charon, so one per namespace.  5.9.8 has
  no ``mtu``/``fwmark``/``raw_esp`` options (raw ESP arrived in 5.9.11); only
  ``allow_peer_ts``.  Do not raise the MTU with ``ip link``: libipsec keeps
  reading with its 1400-byte buffer and larger packets vanish (MTU 1436:
  ``ping -s 1380`` got no answer, TCP stalled).  Inner packets above 1400
  bytes are therefore fragmented before encryption (UDP payloads > 1372).
* NAT-T.  The initiator logs "remote host is behind NAT" although there is
  none: libipsec can only do UDP-encapsulated ESP, so it fakes NAT detection;
  IKE_AUTH already goes to UDP 4500 and ``list-sas`` shows ``nat-remote=yes
  nat-any=yes encap=yes`` on both sides.  Raw ESP cannot be tested against it.
* Routes.  With ``charon.install_routes = yes`` each CHILD SA installs
  ``<remote_ts> dev ipsec0 table 220 proto static src <addr>``, where src is
  a local address inside the local TS (172.16.1.1 on cgw, 10.0.1.1 on vgw),
  and kernel-netlink adds ``ip rule 220: from all lookup 220``.  A responder
  with 0.0.0.0/0 selectors narrows to the initiator's proposal, and installs
  the narrowed route.  Terminating one of two tunnels with the same route
  keeps it; terminating the last removes it.  kernel-libipsec installs these
  routes even with ``install_routes = no``.
* 0.0.0.0/0 on both sides (AWS's default selectors): the route becomes
  ``default dev ipsec0 table 220`` plus ``throw <peer IP>`` so IKE and ESP
  still reach the peer.  As rule 220 comes before main, it also swallows the
  lab's own LAN (decrypted packets loop back into the tunnel, ping fails).
  Fix: ``settings={"routing_table_prio": 32767}`` puts table 220 after main,
  which holds only connected routes in cgw and vgw.
* CHILD SAs.  The first CHILD SA (in IKE_AUTH) carries no KE, so the PFS group
  in ``esp_proposals`` only matters for CHILD rekeys (``CREATE_CHILD_SA
  [ N(REKEY_SA) SA No KE TSi TSr ]``).  ``swanctl --rekey`` returns at once;
  poll list_sas for the new SPIs.  ``--reauth`` in 5.9.8 is break-before-make:
  DELETE of the old IKE SA, then a new IKE_SA_INIT (traffic gap of a few ms),
  and it is postponed ("unable to reauthenticate in CHILD_SA DELETED state,
  delaying for 8s") while a rekeyed CHILD SA lingers, which it does for
  ``charon.delete_rekeyed_delay`` (5 s) after every CHILD rekey.
* Two tunnels.  With two CHILD SAs of identical selectors (one per IKE SA),
  libipsec sends on the most recently installed one (both directions: only
  tun2's counters move); when that one is deleted it falls back to the other.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any, Iterable, Mapping, Sequence

from tests.lab.netns import GiveUp, Lab, LabError, wait_until

CHARON_BIN = "/usr/lib/ipsec/charon"
SWANCTL_BIN = "swanctl"

# Explicit list, so the host's /etc/strongswan.d cannot change what a lab
# charon does.  kernel-libipsec must come before kernel-netlink: in the other
# order netlink's XFRM backend wins and every CHILD SA fails to install here.
CHARON_PLUGINS = (
    "random nonce openssl aes sha1 sha2 hmac gcm cmac xcbc kdf curve25519 gmp "
    "pem pkcs1 pkcs8 x509 pubkey constraints revocation "
    "kernel-libipsec kernel-netlink socket-default vici"
)
SWANCTL_PLUGINS = "random nonce openssl pem pkcs1 pkcs8 x509 pubkey constraints revocation"

# Per subsystem.  net 1 logs each IKE message (net 2 also logs every ESP
# packet of libipsec: 300k lines per iperf run), ike/chd/cfg/knl 2 show
# proposals, traffic selectors, SPIs and the routes charon installs; esp
# stays at 1 (libipsec logs per packet above that).
DEFAULT_LOG_LEVELS: Mapping[str, int] = {
    "default": 1,
    "ike": 2,
    "chd": 2,
    "cfg": 2,
    "knl": 2,
    "net": 1,
    "enc": 1,
    "esp": 1,
    "lib": 1,
    "asn": 0,
    "tls": 0,
}

SWANCTL_CRED_DIRS = (
    "x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey",
    "private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12",
)


def render_settings(tree: Mapping[str, Any], indent: int = 0) -> str:
    """Render a nested dict as strongswan.conf/swanctl.conf text.

    Keys with dots become nested sections (``"plugins.vici.socket"``); None
    values are skipped; lists are joined with commas; bools become yes/no.
    """
    nested: dict[str, Any] = {}
    for key, value in tree.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})
            if not isinstance(nested[head], dict):
                raise ValueError(f"setting {head!r} is both a value and a section")
            nested[head][rest] = value
        elif isinstance(value, Mapping):
            nested.setdefault(head, {}).update(value)
        else:
            nested[head] = value
    pad = "  " * indent
    lines = []
    for key, value in nested.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            lines.append(f"{pad}{key} {{")
            lines.append(render_settings(value, indent + 1))
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{key} = {_value(value)}")
    return "\n".join(line for line in lines if line)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    text = str(value)
    if "\n" in text or "}" in text or "{" in text:
        raise ValueError(f"value {text!r} cannot be written to a strongSwan config")
    return text


class Charon:
    """One strongSwan charon in one of the lab's namespaces, isolated from all others."""

    def __init__(
        self,
        lab: Lab,
        ns: str,
        name: str | None = None,
        settings: Mapping[str, Any] | None = None,
        log_levels: Mapping[str, int] | None = None,
    ) -> None:
        """``settings`` are extra ``charon.*`` keys (dotted), e.g.
        ``{"retransmit_tries": 2, "plugins.kernel-libipsec.allow_peer_ts": True}``."""
        self.lab = lab
        self.ns = ns
        self.name = name or ns.rsplit("-", 1)[-1]
        self.dir = lab.tmpdir(f"charon-{self.name}")
        self.vici_path = os.path.join(self.dir, "vici")
        if len(self.vici_path.encode()) >= 108:
            raise ValueError(f"vici socket path {self.vici_path!r} is too long for AF_UNIX")
        self.uri = "unix://" + self.vici_path
        self.conf_path = os.path.join(self.dir, "strongswan.conf")
        self.log_path = os.path.join(self.dir, "charon.log")
        self.swanctl_dir = os.path.join(self.dir, "swanctl")
        self.run_dir = os.path.join(self.dir, "run")
        self.settings = dict(settings or {})
        self.log_levels = dict(DEFAULT_LOG_LEVELS, **(log_levels or {}))
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, STRONGSWAN_CONF=self.conf_path)

    # -- lifecycle -------------------------------------------------------

    def config_text(self) -> str:
        charon: dict[str, Any] = {
            "load": CHARON_PLUGINS,
            "install_routes": True,
            # The lab hands out no virtual IPs.
            "install_virtual_ip": False,
            "plugins.vici.socket": self.uri,
            "filelog.main": {
                "path": self.log_path,
                "append": False,
                "flush_line": True,
                "time_format": "%H:%M:%S",
                "ike_name": True,
                **self.log_levels,
            },
        }
        charon.update(self.settings)
        swanctl = {"load": SWANCTL_PLUGINS, "socket": self.uri}
        return render_settings({"charon": charon, "swanctl": swanctl}) + "\n"

    def start(self, timeout: float = 15.0) -> "Charon":
        """Start charon and wait (bounded) until its vici socket answers."""
        if self.proc is not None:
            raise RuntimeError(f"charon {self.name} already started")
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(self.swanctl_dir, exist_ok=True)
        for sub in SWANCTL_CRED_DIRS:
            os.makedirs(os.path.join(self.swanctl_dir, sub), exist_ok=True)
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())
        out = open(os.path.join(self.dir, "charon.out"), "w")
        # The bind mount gives this charon its own /run (pid file); "exec"
        # keeps the PID so that teardown kills charon itself.
        script = f"mount --bind {_q(self.run_dir)} /run && exec {CHARON_BIN}"
        try:
            self.proc = self.lab.popen(
                self.ns, "unshare", "-m", "--propagation", "private", "sh", "-c", script,
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )
        finally:
            out.close()

        def vici_answers() -> bool:
            self._check_alive()
            return self.swanctl("--stats", check=False, timeout=5).returncode == 0

        try:
            wait_until(vici_answers, timeout, 0.1, f"charon {self.name} vici at {self.uri}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self._tail()}") from None
        return self

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise GiveUp(f"charon {self.name} exited with {self.proc.returncode}:\n{self._tail()}")

    def stop(self) -> None:
        """Stop charon by PID (SIGTERM, then SIGKILL); its routes and TUN go with it.
        start() may follow (a customer gateway that comes back)."""
        if self.proc is not None:
            self.lab.stop(self.proc)
        self.proc = None
        for name in os.listdir(self.run_dir) if os.path.isdir(self.run_dir) else ():
            if name.endswith((".pid", ".vici")):   # charon's, from its own /run
                os.unlink(os.path.join(self.run_dir, name))

    def __enter__(self) -> "Charon":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"charon {self.name} not started")
        return self.proc.pid

    # -- swanctl -----------------------------------------------------------

    def swanctl(self, *args: Any, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run ``swanctl ARGS --uri <our vici>`` in our namespace."""
        res = self.lab.run(
            self.ns, SWANCTL_BIN, *args, "--uri", self.uri, check=False, timeout=timeout, env=self.env
        )
        if check and res.returncode != 0:
            raise LabError(
                f"[{self.name}] swanctl {' '.join(map(str, args))} exited {res.returncode}\n"
                f"stdout: {res.stdout.strip()}\nstderr: {res.stderr.strip()}\n"
                f"charon log tail:\n{self._tail()}"
            )
        return res

    def load(self, swanctl_conf: str) -> subprocess.CompletedProcess:
        """Write swanctl.conf text and load it all (connections and secrets)."""
        path = os.path.join(self.swanctl_dir, "swanctl.conf")
        with open(path, "w") as f:
            f.write(swanctl_conf)
        return self.swanctl("--load-all", "--noprompt", "--file", path)

    def initiate(self, child: str, ike: str | None = None, timeout: float = 20.0) -> subprocess.CompletedProcess:
        """Initiate a CHILD SA (and its IKE SA); returns when it is up or failed."""
        args = ["--initiate", "--child", child, "--timeout", str(int(timeout))]
        if ike:
            args += ["--ike", ike]
        return self.swanctl(*args, timeout=timeout + 10)

    def terminate(
        self, ike: str | None = None, child: str | None = None, timeout: float = 10.0, force: bool = False
    ) -> subprocess.CompletedProcess:
        """Delete an IKE SA (with its children) or one CHILD SA, sending DELETE."""
        if not (ike or child):
            raise ValueError("terminate needs ike= or child=")
        args = ["--terminate", "--ike", ike] if ike else ["--terminate", "--child", child]
        args += ["--timeout", str(int(timeout))]
        if force:
            args.append("--force")
        return self.swanctl(*args, timeout=timeout + 10)

    def rekey(self, ike: str | None = None, child: str | None = None, reauth: bool = False) -> subprocess.CompletedProcess:
        """Trigger a rekey (or IKEv2 reauthentication) by name; asynchronous in charon."""
        if bool(ike) == bool(child):
            raise ValueError("rekey needs exactly one of ike= or child=")
        args = ["--rekey", "--ike", ike] if ike else ["--rekey", "--child", child]
        if reauth:
            args.append("--reauth")
        return self.swanctl(*args)

    def list_sas(self, ike: str | None = None) -> list[dict]:
        """IKE SAs as dicts, parsed from ``swanctl --list-sas --raw``.

        Each dict holds swanctl's keys (``state``, ``encr-alg``,
        ``initiator-spi``, ``nat-any`` ...) plus ``name``; ``child-sas`` is a
        list of dicts (``name``, ``state``, ``spi-in``, ``spi-out``, ``encap``,
        ``bytes-in`` ...).  Counters and times are ints, SPIs stay hex strings.
        """
        args = ["--list-sas", "--raw", "--noblock"]
        if ike:
            args += ["--ike", ike]
        return parse_list_sas(self.swanctl(*args).stdout)

    def wait_sa(self, ike: str, child: str | None = None, timeout: float = 20.0) -> dict:
        """Wait until IKE SA ``ike`` is ESTABLISHED (and CHILD ``child`` INSTALLED)."""

        def ready() -> dict | None:
            self._check_alive()
            for sa in self.list_sas(ike):
                if sa["name"] != ike or sa.get("state") != "ESTABLISHED":
                    continue
                if child is None or any(
                    c.get("name") == child and c.get("state") == "INSTALLED" for c in sa["child-sas"]
                ):
                    return sa
            return None

        what = f"{self.name}: IKE SA {ike} ESTABLISHED" + (f" with CHILD {child} INSTALLED" if child else "")
        return wait_until(ready, timeout, 0.2, what)

    def add_credentials(self, cas: Sequence[str] = (), certs: Sequence[str] = (),
                        keys: Sequence[str] = ()) -> None:
        """Copy PEM files where ``swanctl --load-all`` looks for them (next to its
        swanctl.conf, as the ``net2net-cert`` scenario lays them out): CA
        certificates in x509ca/, end-entity certificates in x509/, keys in
        private/. A certificate file may hold a chain (leaf, then intermediates):
        the intermediates go to x509ca/ as well, so charon can send them."""
        if self.proc is None:
            raise RuntimeError("start charon first (it creates the credential directories)")
        for path in cas:
            shutil.copy(path, os.path.join(self.swanctl_dir, "x509ca", os.path.basename(path)))
        for path in certs:
            base = os.path.basename(path)
            with open(path) as f:
                blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", f.read(), re.S)
            with open(os.path.join(self.swanctl_dir, "x509", base), "w") as f:
                f.write(blocks[0])
            for i, block in enumerate(blocks[1:]):
                with open(os.path.join(self.swanctl_dir, "x509ca", f"{base}.issuer{i}.pem"), "w") as f:
                    f.write(block)
        for path in keys:
            dst = os.path.join(self.swanctl_dir, "private", os.path.basename(path))
            shutil.copy(path, dst)
            os.chmod(dst, 0o600)

    def log_text(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _tail(self, lines: int = 40) -> str:
        text = self.log_text()
        out_path = os.path.join(self.dir, "charon.out")
        if os.path.exists(out_path):
            with open(out_path, errors="replace") as f:
                text += f.read()
        return "\n".join(text.splitlines()[-lines:])


def _q(path: str) -> str:
    if not re.fullmatch(r"[\w./-]+", path):
        raise ValueError(f"unsafe path for a shell command: {path!r}")
    return path


# -- swanctl --list-sas --raw parsing --------------------------------------

_TOKEN = re.compile(r"[{}\[\]]|[^\s{}\[\]]+")
_INT_KEYS = re.compile(r"(^|-)(bytes|packets|time|port|keysize|uniqueid|reqid|established|use)(-|$)")


def parse_list_sas(text: str) -> list[dict]:
    """Parse the ``list-sa event {...}`` lines of ``swanctl --list-sas --raw``.

    The raw format is vici's: ``key=value``, ``name {...}`` sections and
    ``key=[a b]`` lists.  Values with spaces (e.g. X.509 DNs) are not
    supported: the lab only uses IP address identities.
    """
    sas: list[dict] = []
    for line in text.splitlines():
        if not line.startswith("list-sa event"):
            continue
        tokens = _TOKEN.findall(line[len("list-sa event"):])
        pos, tree = _parse_section(tokens, 1) if tokens and tokens[0] == "{" else (0, {})
        for name, ike in tree.items():
            if not isinstance(ike, dict):
                continue
            ike = dict(ike, name=name)
            ike["child-sas"] = [
                dict(child, **{"key": key}) for key, child in (ike.get("child-sas") or {}).items()
            ]
            sas.append(ike)
    return sas


def _parse_section(tokens: list[str], pos: int) -> tuple[int, dict]:
    out: dict[str, Any] = {}
    while pos < len(tokens):
        tok = tokens[pos]
        if tok == "}":
            return pos + 1, out
        if pos + 1 < len(tokens) and tokens[pos + 1] == "{":
            pos, out[tok] = _parse_section(tokens, pos + 2)
            continue
        key, eq, value = tok.partition("=")
        pos += 1
        if eq and value == "" and pos < len(tokens) and tokens[pos] == "[":
            items = []
            pos += 1
            while pos < len(tokens) and tokens[pos] != "]":
                items.append(tokens[pos])
                pos += 1
            out[key] = items
            pos += 1
            continue
        out[key] = int(value) if _INT_KEYS.search(key) and value.isdigit() else value
    return pos, out


# -- swanctl.conf rendering ------------------------------------------------


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _tunnel_names(names: Sequence[str] | None, count: int, **lists: list[str]) -> list[str]:
    """Check that every per-tunnel list has 1 or `count` entries; the tunnel names."""
    for what, values in lists.items():
        if len(values) not in (1, count):
            raise ValueError(f"{what} must have 1 or {count} entries, not {len(values)}")
    names = list(names or [f"tun{i + 1}" for i in range(count)])
    if len(names) != count:
        raise ValueError(f"names must have {count} entries")
    return names


def _pick(values: list[str], i: int) -> str:
    """Tunnel i's entry of a per-tunnel list (a single value serves all)."""
    return values[i] if len(values) > 1 else values[0]


def _selectors(value: str | Sequence[str] | Sequence[Sequence[str]], count: int, what: str) -> list[list[str]]:
    """Each tunnel's selector list: one CIDR or one list serves every tunnel; a list
    of lists gives each tunnel its own (e.g. its inside /30 beside the site's prefixes)."""
    if isinstance(value, str) or all(isinstance(v, str) for v in value):
        return [_as_list(value)] * count
    per_tunnel = [_as_list(v) for v in value]
    if len(per_tunnel) != count:
        raise ValueError(f"{what} has {len(per_tunnel)} per-tunnel lists for {count} tunnels")
    return per_tunnel


def swanctl_conf_psk(
    local_ips: str | Sequence[str],
    remote_ips: str | Sequence[str],
    psks: str | Sequence[str],
    *,
    names: Sequence[str] | None = None,
    child: str = "net",
    local_ts: str | Sequence[str] | Sequence[Sequence[str]] = "0.0.0.0/0",
    remote_ts: str | Sequence[str] | Sequence[Sequence[str]] = "0.0.0.0/0",
    ike_proposals: str | Sequence[str] = "aes128-sha256-modp2048",
    esp_proposals: str | Sequence[str] = "aes128gcm16-modp2048",
    dpd_delay: str | None = "10s",
    dpd_action: str | None = None,
    rekey_time: str | None = None,
    child_rekey_time: str | None = None,
    start_action: str = "none",
    close_action: str | None = None,
    encap: bool | None = None,
    extra_conn: Mapping[str, Any] | None = None,
    extra_child: Mapping[str, Any] | None = None,
) -> str:
    """swanctl.conf for one or two PSK tunnels, AWS style, usable on either side.

    A CGW gives one local IP and the two AWS outside IPs; the "AWS" side gives
    its two outside IPs and the CGW's IP.  Identities are the IP addresses
    (ID_IPV4_ADDR, as AWS uses), one PSK per tunnel (a single string is used
    for all).  Tunnel i is named ``names[i]`` (default ``tun1``, ``tun2``)
    with one CHILD ``child``.  MOBIKE is off (AWS does not support it; with
    two tunnels it would only confuse the address pairs).  ``local_ts`` and
    ``remote_ts`` are one list for all tunnels or a list per tunnel.
    """
    locals_, remotes, keys = _as_list(local_ips), _as_list(remote_ips), _as_list(psks)
    names = _tunnel_names(names, max(len(locals_), len(remotes)),
                          local_ips=locals_, remote_ips=remotes, psks=keys)
    pick = _pick
    local_sel = _selectors(local_ts, len(names), "local_ts")
    remote_sel = _selectors(remote_ts, len(names), "remote_ts")

    connections: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for i, name in enumerate(names):
        local, remote, psk = pick(locals_, i), pick(remotes, i), pick(keys, i)
        child_cfg: dict[str, Any] = {
            "local_ts": local_sel[i],
            "remote_ts": remote_sel[i],
            "esp_proposals": _as_list(esp_proposals),
            "rekey_time": child_rekey_time,
            "dpd_action": dpd_action,
            "start_action": start_action,
            "close_action": close_action,
        }
        child_cfg.update(extra_child or {})
        conn: dict[str, Any] = {
            "version": 2,
            "local_addrs": local,
            "remote_addrs": remote,
            "proposals": _as_list(ike_proposals),
            "dpd_delay": dpd_delay,
            "rekey_time": rekey_time,
            "mobike": False,
            "encap": encap,
            "local": {"auth": "psk", "id": local},
            "remote": {"auth": "psk", "id": remote},
            "children": {child: child_cfg},
        }
        conn.update(extra_conn or {})
        connections[name] = conn
        if not re.fullmatch(r"[\w.\-]+", psk):
            # AWS's PSK alphabet is [0-9A-Za-z_.] (docs/aws.md §1.3); with '-' added
            # it still needs no escaping inside the quoted secret.
            raise ValueError(f"PSK for {name} may contain only letters, digits, '.', '_' and '-'")
        secrets[f"ike-{name}"] = {"id-1": local, "id-2": remote, "secret": f'"{psk}"'}
    return render_settings({"connections": connections, "secrets": secrets}) + "\n"


def swanctl_conf_pubkey(
    local_ip: str,
    remote_ips: str | Sequence[str],
    certs: str | Sequence[str],
    local_ids: str | Sequence[str],
    remote_id: str = "%any",
    *,
    names: Sequence[str] | None = None,
    child: str = "net",
    ike_proposals: str | Sequence[str] = "aes128-sha256-ecp256",
    esp_proposals: str | Sequence[str] = "aes128gcm16",
    dpd_delay: str | None = "10s",
    start_action: str = "none",
    extra_conn: Mapping[str, Any] | None = None,
) -> str:
    """swanctl.conf for certificate tunnels (``auth = pubkey``): per connection
    ``local { auth = pubkey certs = CERT id = LOCAL_ID }`` and ``remote { auth =
    pubkey id = REMOTE_ID }`` (docs/design.md §1.1, the ``net2net-cert`` layout). CERT is
    a file name in x509/ (see :meth:`Charon.add_credentials`); IDs are DNs or
    FQDNs, "%any" accepts any identity the CA vouches for. Connection i (default
    ``tun1``, ``tun2``...) takes remote_ips[i], certs[i], local_ids[i] (a single
    value serves all). Selectors 0.0.0.0/0 both ways, MOBIKE off, as
    :func:`swanctl_conf_psk`."""
    remotes, cert_list, ids = _as_list(remote_ips), _as_list(certs), _as_list(local_ids)
    names = _tunnel_names(names, max(len(remotes), len(cert_list), len(ids)),
                          remote_ips=remotes, certs=cert_list, local_ids=ids)
    pick = _pick

    connections: dict[str, Any] = {}
    for i, name in enumerate(names):
        local_id = pick(ids, i)
        for value in (local_id, remote_id):
            if '"' in value:
                raise ValueError(f"identity {value!r} cannot be quoted in swanctl.conf")
        conn: dict[str, Any] = {
            "version": 2,
            "local_addrs": local_ip,
            "remote_addrs": pick(remotes, i),
            "proposals": _as_list(ike_proposals),
            "dpd_delay": dpd_delay,
            "mobike": False,
            "local": {"auth": "pubkey", "certs": pick(cert_list, i), "id": f'"{local_id}"'},
            "remote": {"auth": "pubkey", "id": f'"{remote_id}"'},
            "children": {child: {"local_ts": ["0.0.0.0/0"], "remote_ts": ["0.0.0.0/0"],
                                 "esp_proposals": _as_list(esp_proposals),
                                 "start_action": start_action}},
        }
        conn.update(extra_conn or {})
        connections[name] = conn
    return render_settings({"connections": connections}) + "\n"


def installed_children(sas: Iterable[dict]) -> list[dict]:
    """All CHILD SAs in state INSTALLED across the given IKE SAs."""
    return [c for sa in sas for c in sa["child-sas"] if c.get("state") == "INSTALLED"]
