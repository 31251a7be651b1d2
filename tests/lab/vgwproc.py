"""vgw as a lab process: write a config, run `vgw run` in a namespace, ask its
control socket, stop it by PID.

Uses `python -m daemon` with this checkout on PYTHONPATH, so the lab tests the
tree under test even when an older vgw is installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from tests.lab.netns import Lab, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def unit_capabilities(unit_path: str = os.path.join(REPO, "systemd", "vgw.service")) -> list[str]:
    """The capabilities systemd/vgw.service leaves vgw (CapabilityBoundingSet)."""
    with open(unit_path) as f:
        for line in f:
            if line.startswith("CapabilityBoundingSet="):
                return line.split("=", 1)[1].split()
    raise ValueError(f"{unit_path} has no CapabilityBoundingSet")


def as_the_unit_runs_it(unit_path: str = os.path.join(REPO, "systemd", "vgw.service")) -> tuple[str, ...]:
    """A wrapper (for Vgw) that runs vgw as root with only the unit's capabilities
    and no_new_privs, as systemd would (no systemd in the lab: setpriv does it)."""
    caps = ",".join(["-all"] + [f"+{c.lower().removeprefix('cap_')}" for c in unit_capabilities(unit_path)])
    return ("setpriv", f"--bounding-set={caps}", "--inh-caps=-all", "--no-new-privs", "--")


def tunnel_yaml(outside_ip: str, inside_cidr: str, psk: str | None, **options) -> str:
    """One tunnel; psk None for a certificate tunnel (pass certificate= and
    private_key= as options)."""
    lines = [f"- outside_ip: {outside_ip}", f"  inside_cidr: {inside_cidr}"]
    if psk is not None:
        lines.append(f"  pre_shared_key: {psk}")
    for key, value in options.items():
        lines.append(f"  {key}: {json.dumps(value)}")
    return "\n".join(lines)


def connection_yaml(name: str, cgw_ip: str | None, static_routes: list[str] | None, tunnels: list[str],
                    local_cidr: str = "0.0.0.0/0", remote_cidr: str = "0.0.0.0/0",
                    cgw_identity: str | None = None, cgw_extra: dict | None = None,
                    extra: dict | None = None) -> str:
    """One entry of ``connections:`` (starting "- name:"). ``static_routes`` None
    leaves the key out; ``cgw_extra`` adds customer_gateway keys and ``extra``
    connection keys (e.g. the dynamic routing keys, once vgw knows them)."""
    cgw_keys = ([f"ip: {cgw_ip}"] if cgw_ip else []) + (
        [f"identity: {json.dumps(cgw_identity)}"] if cgw_identity else []) + [
        f"{key}: {json.dumps(value)}" for key, value in (cgw_extra or {}).items()]
    lines = [f"- name: {name}", f"  customer_gateway: {{{', '.join(cgw_keys)}}}"]
    if static_routes is not None:
        lines.append(f"  static_routes: {json.dumps(static_routes)}")
    lines += [f"  {key}: {json.dumps(value)}" for key, value in (extra or {}).items()]
    lines += [f"  local_network_cidr: {local_cidr}", f"  remote_network_cidr: {remote_cidr}",
              "  tunnels:", textwrap.indent("\n".join(tunnels), " " * 4)]
    return "\n".join(lines)


def gateway_yaml_multi(control: str, vpc_cidrs: list[str] | None, connections: list[str],
                       top_level: dict | None = None, ca_certificates: list[str] | None = None) -> str:
    """A gateway with several connections (:func:`connection_yaml` entries); no
    ``vpc`` key when ``vpc_cidrs`` is None; ``top_level`` adds keys (e.g.
    ``amazon_side_asn``)."""
    head = [f"control_socket: {control}"]
    if ca_certificates:
        head.append(f"ca_certificates: {json.dumps(ca_certificates)}")
    head += [f"{key}: {json.dumps(value)}" for key, value in (top_level or {}).items()]
    if vpc_cidrs is not None:
        head.append(f"vpc: {{cidrs: {json.dumps(vpc_cidrs)}}}")
    body = textwrap.indent("\n".join(connections), " " * 2)
    return "\n".join(head) + f"\nconnections:\n{body}\n"


def gateway_yaml(control: str, vpc_cidrs: list[str], name: str, cgw_ip: str | None,
                 static_routes: list[str], tunnels: list[str],
                 local_cidr: str = "0.0.0.0/0", remote_cidr: str = "0.0.0.0/0",
                 ca_certificates: list[str] | None = None, cgw_identity: str | None = None) -> str:
    """A gateway with one connection."""
    return gateway_yaml_multi(control, vpc_cidrs, [connection_yaml(
        name, cgw_ip, static_routes, tunnels, local_cidr, remote_cidr, cgw_identity)],
        ca_certificates=ca_certificates)


class Vgw:
    """One `vgw run` in one namespace of a Lab."""

    def __init__(self, lab: Lab, ns: str, config_text: str | None = None, name: str = "vgw",
                 wrapper: tuple[str, ...] = ()):
        self.lab = lab
        self.ns = ns
        self.wrapper = wrapper          # a command that execs vgw (e.g. setpriv ... --)
        self.dir = lab.tmpdir(name)
        self.control = os.path.join(self.dir, "vgw.sock")
        self.config_path = os.path.join(self.dir, "vgw.yaml")
        self.log_path = os.path.join(self.dir, "vgw.log")
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, PYTHONPATH=REPO, VGW_LOG_LEVEL="DEBUG")
        if config_text is not None:
            self.write_config(config_text)

    def write_config(self, text: str) -> None:
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, timeout: float = 15.0) -> "Vgw":
        log = open(self.log_path, "w")
        self.proc = self.lab.popen(self.ns, *self.wrapper, sys.executable, "-m", "daemon", "run", "--config",
                                   self.config_path, stdout=log, stderr=subprocess.STDOUT,
                                   env=self.env)
        log.close()

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vgw exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            if not os.path.exists(self.control):
                return False
            return self.cli("status", "--json", check=False).returncode == 0
        wait_until(ready, timeout, interval=0.2, what=f"vgw in {self.ns} to start")
        return self

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.lab.run(self.ns, sys.executable, "-m", "daemon", *args, "--control",
                            self.control, check=check, env=self.env, timeout=20)

    def status(self) -> list[dict]:
        return json.loads(self.cli("status", "--json").stdout)["tunnels"]

    def tunnel(self, outside_ip: str) -> dict:
        for t in self.status():
            if t["outside_ip"] == outside_ip:
                return t
        raise KeyError(outside_ip)

    def wait_up(self, outside_ip: str, timeout: float = 20.0) -> dict:
        box = {}

        def up() -> bool:
            box["t"] = self.tunnel(outside_ip)
            return box["t"]["status"] == "UP"
        wait_until(up, timeout, what=f"vgw tunnel {outside_ip} UP")
        return box["t"]

    def reload(self) -> None:
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self) -> int | None:
        """SIGTERM (the daemon deletes its SAs and cleans up), bounded wait."""
        if self.proc is None:
            return None
        code = self.lab.stop(self.proc)
        return code

    def wait_log(self, text: str, timeout: float = 5.0) -> None:
        """Wait until `text` is in vgw's log. For lines about something the test saw
        through the peer: vgw sends its answer before it writes the line about it."""
        wait_until(lambda: text in self.log_text(), timeout, interval=0.05, what=f"{text!r} in vgw's log")

    def log_text(self) -> str:
        try:
            with open(self.log_path) as f:
                return f.read()
        except FileNotFoundError:
            return ""
