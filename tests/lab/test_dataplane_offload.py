"""Lab: the TUN offload path (IFF_VNET_HDR: GRO into the TUN, TSO splitting) keeps data
intact, with both encapsulations (ESP in UDP 4500, raw ESP).

Correctness only, no speed: a TCP transfer whose SHA-256 is compared end to end, and
bursts of UDP datagrams (64 and 1400 bytes) whose every payload is checked against its
sequence number.  The loops' counters show that coalescing really happened (fewer TUN
frames than packets), so a silently disabled GRO fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.lab.netns import topology
from tests.lab.test_dataplane_loop import INSIDE, Peer, _topology
from tests.lab.traffic import ping
from tests.lab.vgwproc import Vgw, gateway_yaml, tunnel_yaml

pytestmark = pytest.mark.lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TCP_SERVER = r"""
import hashlib, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(30)
print("ready", flush=True)
c, _ = s.accept()
c.settimeout(30)
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
c.close()
print(n, h.hexdigest(), flush=True)
"""

TCP_CLIENT = r"""
import hashlib, random, socket, sys
dst, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng, h, sent = random.Random(42), hashlib.sha256(), 0
c = socket.create_connection((dst, port), timeout=30)
while sent < total:
    b = rng.randbytes(min(1 << 16, total - sent))
    c.sendall(b)
    h.update(b)
    sent += len(b)
c.shutdown(socket.SHUT_WR)
c.settimeout(30)
c.recv(1)
print(sent, h.hexdigest(), flush=True)
"""

# Payload i: 4-byte index, then bytes derived from it; a receiver can check each one.
UDP_COMMON = r"""
import hashlib, struct
def payload(i, size):
    body = hashlib.sha256(struct.pack("!I", i)).digest() * (size // 32 + 1)
    return struct.pack("!I", i) + body[: size - 4]
"""

UDP_RECEIVER = UDP_COMMON + r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
size, count = int(sys.argv[3]), int(sys.argv[4])
s.settimeout(1.0)
print("ready", flush=True)
got, bad, seen = 0, 0, set()
deadline = time.monotonic() + 30
while time.monotonic() < deadline and len(seen) < count:
    try:
        d = s.recv(65535)
    except socket.timeout:
        if got:
            break
        continue
    i = struct.unpack("!I", d[:4])[0]
    if len(d) != size or i >= count or d != payload(i, size) or i in seen:
        bad += 1
    else:
        seen.add(i)
    got += 1
print(len(seen), bad, flush=True)
"""

UDP_SENDER = UDP_COMMON + r"""
import socket, sys, time
dst, port, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(count):
    s.sendto(payload(i, size), (dst, port))
    if i % 32 == 31:
        time.sleep(0.002)  # bursts of 32: the receiving loop sees runs to coalesce
print("sent", flush=True)
"""


def _py(lab, ns, script, *args, **kw):
    return lab.popen(ns, sys.executable, "-c", script, *map(str, args), stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, **kw)


def _ready(proc) -> None:
    line = proc.stdout.readline().strip()
    assert line == "ready", f"helper did not start: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"


def tcp_transfer(lab, src_ns, dst_ns, dst_ip, total=20_000_000, port=7001) -> None:
    server = _py(lab, dst_ns, TCP_SERVER, dst_ip, port)
    _ready(server)
    res = lab.run(src_ns, sys.executable, "-c", TCP_CLIENT, dst_ip, port, total, timeout=60)
    out, _ = server.communicate(timeout=30)
    assert res.stdout.split() == out.split(), "the bytes that arrived differ from the bytes sent"
    assert int(out.split()[0]) == total


def udp_bursts(lab, src_ns, dst_ns, dst_ip, size, count=3000, port=7002) -> tuple[int, int]:
    recv = _py(lab, dst_ns, UDP_RECEIVER, dst_ip, port, size, count)
    _ready(recv)
    lab.run(src_ns, sys.executable, "-c", UDP_SENDER, dst_ip, port, size, count, timeout=60)
    out, _ = recv.communicate(timeout=40)
    intact, bad = map(int, out.split())
    return intact, bad


@pytest.mark.parametrize("tun_mode", ["gro", "tso"])
@pytest.mark.parametrize("udp_encap", [True, False], ids=["udp-encap", "raw-esp"])
def test_offload_path_keeps_data_intact(lab, tun_mode, udp_encap):
    a, b = _topology(lab)
    pa = Peer(lab, a, "a", "gcm128", udp_encap, tun_mode)
    pb = Peer(lab, b, "b", "gcm128", udp_encap, tun_mode)
    lab.wait_until(lambda: ping(lab, a, INSIDE["b"], count=1), 10, what="tunnel up")

    tcp_transfer(lab, a, b, INSIDE["b"])
    tcp_transfer(lab, b, a, INSIDE["a"], total=5_000_000, port=7003)
    for size in (64, 1400):
        intact, bad = udp_bursts(lab, a, b, INSIDE["b"], size)
        assert bad == 0, f"{bad} UDP datagrams of {size} bytes arrived damaged, duplicated or resized"
        # integrity is the point (bad == 0); UDP bursts at ~16k packets/s lose some
        # when the other lab tests on this 2-core VM deschedule a receiver (86 %
        # arrived under an extra CPU hog); a broken path delivers next to none
        assert intact >= 0.5 * 3000, f"only {intact}/3000 UDP datagrams of {size} bytes arrived"

    sa, sb = pa.cmd(op="stats"), pb.cmd(op="stats")
    for s in (sa, sb):
        bad_drops = {k: v for k, v in s["tunnel"]["drops"].items()
                     if v and k not in ("no_outbound_sa",)}
        assert not bad_drops, s["tunnel"]["drops"]
        assert s["global"]["errors"] == 0
    g = sb["global"]
    # the receiving side wrote super-packets: fewer TUN frames than packets
    assert g["gro_packets"] > 2 * g["gro_frames"] > 0, g
    if tun_mode == "tso":  # the sending side was handed TSO super-packets and cut them
        assert sa["global"]["tso_frames"] > 0, sa["global"]
    else:
        assert sa["global"]["tso_frames"] == 0, sa["global"]
    lab.stop(pa.proc)
    lab.stop(pb.proc)


PSK = "example_psk_offload_abcdef"


@pytest.mark.parametrize("nat", [True, False], ids=["udp-encap-nat", "raw-esp"])
def test_vgw_pair_transfer_intact(lab, nat):
    """Two vgw daemons (the site initiating); behind the lab's NAT (topology(nat=True))
    the pair negotiates ESP in UDP, without it raw ESP.  The daemons use GRO (the
    default data_path.tun_offload)."""
    topo = topology(lab, nat=nat)
    aws_ip = topo.vgw_outside_ips[0]
    gcm = {"phase2_encryption_algorithms": ["AES128-GCM-16"]}
    aws = Vgw(lab, topo.vgw, name="aws")
    aws.write_config(gateway_yaml(aws.control, ["10.0.0.0/16"], "to-site", topo.cgw_public_ip,
                                  ["172.16.0.0/16"], [tunnel_yaml(aws_ip, "169.254.30.0/30", PSK, **gcm)]))
    site = Vgw(lab, topo.cgw, name="site")
    site.write_config(gateway_yaml(site.control, ["172.16.0.0/16"], "to-aws", aws_ip, ["10.0.0.0/16"],
                                   [tunnel_yaml(topo.cgw_wan_ip, "169.254.31.0/30", PSK,
                                                startup_action="start", **gcm)]))
    aws.start()
    site.start()
    up = aws.wait_up(aws_ip)
    assert up["ike"]["nat_t"] is nat
    assert ping(lab, topo.onprem, topo.vpc_ip)
    tcp_transfer(lab, topo.onprem, topo.vpc, topo.vpc_ip)
    tcp_transfer(lab, topo.vpc, topo.onprem, topo.onprem_ip, total=5_000_000, port=7003)
    for size in (64, 1400):
        intact, bad = udp_bursts(lab, topo.onprem, topo.vpc, topo.vpc_ip, size)
        assert bad == 0 and intact >= 0.5 * 3000, (size, intact, bad)   # as above
    status = aws.status()[0]
    assert status["counters"]["bytes_in"] > 20_000_000
    assert status["drops"].get("bad_icv", 0) == 0
