"""The EC2 API in the lab: vgw with an `api:` section, boto3 and the AWS CLI in
vgw's namespace against the endpoint on that namespace's loopback, and customer
gateways built from what the API returns.

boto3 runs in the test process, in a thread that entered vgw's network namespace
(setns(2) acts on the calling thread only): every socket botocore opens is then
that namespace's, and 127.0.0.1:8787 is vgw's own loopback, as a client on the
gateway's host would see it. The AWS CLI runs there with `ip netns exec`.

The customer gateway is configured from the CustomerGatewayConfiguration XML
(docs/aws.md §6.1): each `ipsec_tunnel`'s outside address, inside addresses and
PSK become a tunnel of strongSwan (tests/lab/bgplab.py's dual-tunnel CGW), and
for a dynamic connection the `bgp` elements (both ASNs) the FRR speaker's.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from tests.lab.bgplab import CgwNode, TunnelPlan
from tests.lab.netns import Lab, Topo, wait_until
from tests.lab.vgwproc import Vgw

API_PORT = 8787
ENDPOINT = f"http://127.0.0.1:{API_PORT}"
POOL = "198.51.100.32/29"        # .33-.38: on vgw's WAN link (198.51.100.0/24), so vgw adds them to wan0
VPC_CIDR = "10.0.0.0/16"
KEY_ID, SECRET = "AKIDEXAMPLE00000001", "example-secret-key-not-real-0001"
REGION = "us-east-1"
CLONE_NEWNET = 0x40000000


def api_config(vgw: Vgw, vpc_cidrs: tuple[str, ...] = (VPC_CIDR,), extra: str = "") -> str:
    """vgw's YAML: a VPC, the API (SigV4 with one key pair), no connection."""
    db = os.path.join(vgw.dir, "api.sqlite3")
    vpc = f"vpc: {{cidrs: {json.dumps(list(vpc_cidrs))}}}\n" if vpc_cidrs else ""
    return (f"control_socket: {vgw.control}\n{vpc}api:\n  listen: 127.0.0.1:{API_PORT}\n"
            f"  outside_ip_pool: {POOL}\n  database: {db}\n"
            f"  access_keys: [{{access_key_id: {KEY_ID}, secret_access_key: {SECRET}}}]\n{extra}")


def _enter(ns: str) -> None:
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
    finally:
        os.close(fd)


class Ec2:
    """A boto3 EC2 client living in a thread inside namespace `ns`: `ec2.describe_vpcs()`
    runs there and returns its result (or raises its ClientError)."""

    def __init__(self, ns: str, retries: int = 3):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"ec2-{ns}", initializer=_enter, initargs=(ns,))
        self.client = self.pool.submit(self._make, retries).result(30)

    @staticmethod
    def _make(retries: int):
        import boto3
        from botocore.config import Config

        return boto3.client("ec2", endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id=KEY_ID,
                            aws_secret_access_key=SECRET,
                            config=Config(retries={"max_attempts": retries, "mode": "standard"},
                                          connect_timeout=5, read_timeout=20))

    def run(self, fn: Callable[[Any], Any], timeout: float = 60) -> Any:
        """fn(client) in the namespace's thread."""
        return self.pool.submit(fn, self.client).result(timeout)

    def __getattr__(self, name: str):
        method = getattr(self.client, name)
        return lambda *args, **kwargs: self.pool.submit(method, *args, **kwargs).result(60)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def aws_cli(lab: Lab, ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`aws --endpoint-url ... ec2 ARGS` in `ns` (no config or credentials file of the host)."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_PAGER": ""}
    return lab.run(ns, "aws", "--endpoint-url", ENDPOINT, "--output", "json", "ec2", *args, env=env, check=check,
                   timeout=120)


# -- what the API says ------------------------------------------------------------


def wait_state(ec2: Ec2, vpn_id: str, state: str, timeout: float = 60, poll: float = 1.0) -> dict:
    """DescribeVpnConnections until the connection is `state`, as Terraform's waiter
    polls (every `poll` s here; Terraform waits 10 s)."""
    box: dict[str, dict] = {}

    def reached() -> bool:
        box["c"] = ec2.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"][0]
        return box["c"]["State"] == state
    wait_until(reached, timeout, poll, f"{vpn_id} {state}")
    return box["c"]


def telemetry(ec2: Ec2, vpn_id: str) -> dict[str, dict]:
    """VgwTelemetry by outside IP."""
    connection = ec2.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"][0]
    return {t["OutsideIpAddress"]: t for t in connection["VgwTelemetry"]}


def wait_telemetry(ec2: Ec2, vpn_id: str, check: Callable[[dict], bool], timeout: float = 45,
                   what: str = "telemetry") -> dict[str, dict]:
    """Until `check(telemetry of each tunnel)` holds for both tunnels."""
    box: dict[str, dict] = {}

    def ok() -> bool:
        box["t"] = telemetry(ec2, vpn_id)
        return all(check(t) for t in box["t"].values())
    wait_until(ok, timeout, 0.5, f"{vpn_id} {what}")
    return box["t"]


def propagated_routes(ec2: Ec2) -> list[dict]:
    """The main route table's routes through a virtual private gateway."""
    table = ec2.describe_route_tables()["RouteTables"][0]
    return [r for r in table["Routes"] if r["GatewayId"] != "local"]


# -- the customer gateway from the XML ----------------------------------------------


def node_from_xml(xml: str, name: str, topo: Topo, prefixes: list[str]) -> tuple[CgwNode, int | None]:
    """The customer gateway the XML describes (the standard lab's cgw namespace and
    addresses), and the VGW's BGP ASN when the connection is dynamic."""
    root = ET.fromstring(xml)
    tunnels, cgw_asn, vgw_asn = [], None, None
    for tunnel in root.findall("ipsec_tunnel"):
        vgw_inside = tunnel.findtext("vpn_gateway/tunnel_inside_address/ip_address")
        cidr = tunnel.findtext("vpn_gateway/tunnel_inside_address/network_cidr")
        tunnels.append(TunnelPlan(tunnel.findtext("vpn_gateway/tunnel_outside_address/ip_address"),
                                  str(ipaddress.ip_interface(f"{vgw_inside}/{cidr}").network),
                                  tunnel.findtext("ike/pre_shared_key")))
        if tunnel.find("customer_gateway/bgp") is not None:
            cgw_asn = int(tunnel.findtext("customer_gateway/bgp/asn"))
            vgw_asn = int(tunnel.findtext("vpn_gateway/bgp/asn"))
        assert tunnel.findtext("customer_gateway/tunnel_outside_address/ip_address") == topo.cgw_wan_ip
    node = CgwNode(name, topo.cgw, topo.cgw_wan_ip, topo.cgw_lan_ip, prefixes, tunnels,
                   **({"asn": cgw_asn} if cgw_asn else {}))
    return node, vgw_asn


# -- what vgw does on its host --------------------------------------------------------


def host_addresses(lab: Lab, ns: str) -> set[str]:
    """Every IPv4 address in `ns`."""
    out = lab.run(ns, "ip", "-j", "-4", "addr", "show").stdout
    return {a["local"] for link in json.loads(out) for a in link.get("addr_info", [])}


def child_spis(vgw: Vgw) -> dict[str, set[str]]:
    """Each tunnel's inbound CHILD SA SPIs, by outside IP."""
    return {t["outside_ip"]: {c["spi_in"] for c in t["children"]} for t in vgw.status()}


def vgw_routes(lab: Lab, ns: str, table: str = "main") -> str:
    """vgw's routes (protocol 190) in a table of `ns`."""
    return lab.run(ns, "ip", "route", "show", "table", table, "proto", "190").stdout.strip()


# -- a flood of requests ------------------------------------------------------------


def oversize_head(length: int = 2_000_000) -> bytes:
    """A request head announcing a body over the endpoint's 1 MB limit."""
    return f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()


def oversize_answer(ns: str) -> bytes:
    """What the endpoint answers to `oversize_head()`, asked from a thread in `ns`."""
    def ask() -> bytes:
        with socket.create_connection(("127.0.0.1", API_PORT), timeout=10) as sock:
            sock.sendall(oversize_head())
            return sock.recv(4096)
    with ThreadPoolExecutor(1, initializer=_enter, initargs=(ns,)) as pool:
        return pool.submit(ask).result(20)


def flood(ns: str, seconds: float = 10.0, clients: int = 64) -> dict[str, int]:
    """`clients` at once against the endpoint for `seconds` (bounded): three in four
    send signed DescribeVpnConnections as fast as they are answered, the others in
    turn announce a body over the 1 MB limit or send half a request head and stop.
    Returns what happened: answered, busy (503 at the client cap), too_large (413),
    cut (connections the server ended), errors."""
    import threading

    from botocore.exceptions import ClientError

    counts = {"answered": 0, "busy": 0, "too_large": 0, "cut": 0, "errors": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def count(what: str) -> None:
        with lock:
            counts[what] += 1

    def describer(_: int) -> None:
        client = Ec2._make(retries=1)
        while time.monotonic() < stop_at:
            try:
                client.describe_vpn_connections()
                count("answered")
            except ClientError as exc:
                count("busy" if exc.response["Error"]["Code"] == "RequestLimitExceeded" else "errors")
            except Exception:   # noqa: BLE001 - a connection the server closed under load
                count("cut")

    def abuser(n: int) -> None:
        while time.monotonic() < stop_at:
            try:
                with socket.create_connection(("127.0.0.1", API_PORT), timeout=12) as sock:
                    if n % 2:
                        sock.sendall(oversize_head())
                        answer = sock.recv(4096)
                        count("too_large" if b" 413 " in answer else "busy" if b" 503 " in answer else "errors")
                    else:
                        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")   # and nothing more
                        count("cut" if not sock.recv(4096) else "busy")
            except OSError:   # reset: refused at the client cap before the head was read
                count("cut")

    with ThreadPoolExecutor(clients, initializer=_enter, initargs=(ns,)) as pool:
        jobs = [pool.submit(describer if i % 4 else abuser, i) for i in range(clients)]
        for job in jobs:
            job.result(seconds + 30)
    return counts
