"""Hardening (issue 8): attacks on a running vgw with an established tunnel to
strongSwan. Nothing from the network may take the tunnel down, exhaust the
daemon or slip a packet through.

- test_ike_fuzz_campaign: 20,000 mutated IKE messages to UDP 500 and 4500.
- test_esp_replay_and_forgery: captured ESP replayed, reordered and forged.
- test_ike_sa_init_flood: IKE_SA_INIT from 254 spoofed sources for 20 s.

Attack traffic is sent from the cgw namespace (it sits on the WAN) with
sockets the test opens in that namespace (tests/lab/attack.py); spoofed
sources exist only inside the lab, and vgw's answers to them are routed to
cgw, where a blackhole route ends them.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import deque

import pytest

from tests.lab.attack import (
    MARKER, Capture, FuzzContext, RttPing, cookie_of, fd_count, fuzz_messages, ike_of_udp,
    ipv4_udp, ns_socket, paced, parse_udp, percentile, rss_kb, udp_filter, udp_socket, with_cookie,
    with_spi,
)
from tests.lab.awspair import INSIDE, PSKS, VGW_IPS, bring_up
from tests.lab.strongswan import Charon, swanctl_conf_psk
from tests.lab.traffic import BackgroundPing, assert_few_lost, run_iperf
from tests.lab.vgwproc import Vgw, gateway_yaml, tunnel_yaml

# heavy: these floods and the fuzz campaign measure vgw under load; with the
# other timing-sensitive tests they run one after another (scripts/test.sh)
pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("heavy")]

TUN = VGW_IPS[0]

# The fuzz campaign: 20,000 messages at 1,000 per second (20 s). The rate is
# bounded so that the test measures vgw, not a starved 2-core VM: the sender,
# strongSwan, the ping and vgw share the two cores; vgw drops a junk message in
# ~30-100 us, so 1,000/s keeps it well below one core.
FUZZ_COUNT = 20000
FUZZ_RATE = 1000.0
FUZZ_SEED = 8
# All fuzz comes from the customer gateway's address (vgw drops other sources
# unread): with the default caps its 8 half-open slots fill in the first
# second and every later IKE_SA_INIT mutant stops at the guard. Raised caps let
# the mutants reach proposal, KE and nonce handling (~500 half-open SAs, each
# with a DH computation, in 20 s).
FUZZ_DOS = "dos_protection: {max_half_open_per_source: 1024, cookie_threshold: 1024}\n"


def _start(lab, topo, cgw_ip: str | None, extra: str = ""):
    """vgw with one tunnel (customer_gateway.ip = cgw_ip, or any address) and
    `extra` top-level YAML, and a strongSwan CGW with the tunnel loaded."""
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(gateway_yaml(vgw.control, ["10.0.0.0/16"], "vpn-lab", cgw_ip, ["172.16.0.0/16"],
                                  [tunnel_yaml(TUN, INSIDE[0], PSKS[0])]) + extra)
    vgw.start()
    cgw = Charon(lab, topo.cgw, settings={"routing_table_prio": 32767}).start()
    cgw.load(swanctl_conf_psk(topo.cgw_wan_ip, [TUN], [PSKS[0]]))
    return vgw, cgw


def _sa_ids(vgw) -> tuple:
    t = vgw.tunnel(TUN)
    ike = t["ike"] or {}
    return (ike.get("spi_i"), ike.get("spi_r"), tuple(sorted(c["spi_in"] for c in t["children"])))


def _rekey_child(lab, vgw, cgw, by: str) -> None:
    before = _sa_ids(vgw)[2]
    if by == "vgw":
        vgw.cli("rekey", TUN, "--child")
    else:
        cgw.rekey(child="net")

    def done() -> bool:
        children = _sa_ids(vgw)[2]
        return children != before and len(children) == 1
    lab.wait_until(done, 20, what=f"CHILD rekey by {by}")


def _drain(sock: socket.socket, tally: list[int]) -> None:
    for _ in range(256):
        try:
            data = sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            continue   # ICMP errors reported on the socket
        tally[0] += 1
        tally[1] += len(data)


def _log_problems(vgw) -> list[str]:
    return [line for line in vgw.log_text().splitlines()
            if "internal error" in line or "Traceback" in line or "cannot apply" in line]


@pytest.mark.alone   # zero lost pings asserted: nothing else on the CPU (marker alone)
def test_ike_fuzz_campaign(lab, topo):
    vgw, cgw = _start(lab, topo, topo.cgw_wan_ip, FUZZ_DOS)

    # The corpus: real IKE messages captured on the WAN (AF_PACKET in cgw), both
    # directions: IKE_SA_INIT, IKE_AUTH, then CHILD rekeys (CREATE_CHILD_SA and
    # INFORMATIONAL DELETE) from each side. Captured rather than generated with
    # ikecore: the messages of the established SA are sealed with its live keys,
    # which an in-process initiator could not produce; these are the bytes that
    # would act if they arrived intact.
    def is_ike(p) -> bool:
        u = parse_udp(p.ip)
        return u is not None and ike_of_udp(u) is not None
    cap = Capture(lab, topo.cgw, topo.cgw_wan_if, is_ike, limit=200, max_seconds=120)
    try:
        bring_up(vgw, cgw, tunnels=1)
        _rekey_child(lab, vgw, cgw, "vgw")
        _rekey_child(lab, vgw, cgw, "strongswan")
    finally:
        packets = cap.stop()
    corpus = [ike_of_udp(parse_udp(p.ip)) for p in packets]
    init_requests = [m for m in corpus if m[8:16] == bytes(8) and m[18] == 34 and not m[19] & 0x20]
    ike_spi_i, ike_spi_r, children = _sa_ids(vgw)
    spis = (bytes.fromhex(ike_spi_i), bytes.fromhex(ike_spi_r))
    of_sa = [m for m in corpus if m[:16] == spis[0] + spis[1]]
    assert init_requests and len(of_sa) >= 6, f"capture too small: {len(corpus)} messages"

    ctx = FuzzContext(corpus, spis, init_requests)
    messages = fuzz_messages(ctx, FUZZ_COUNT, FUZZ_SEED)
    sock = udp_socket(lab, topo.cgw, (topo.cgw_wan_ip, 0))
    sock.setblocking(False)

    time.sleep(6)   # the rekeyed inbound SAs retire (5 s grace): a steady state
    pid = vgw.proc.pid
    rss_before = rss_kb(pid)
    ike_before = vgw.tunnel(TUN)["ike_counters"]
    log_before = len(vgw.log_text().splitlines())
    duration = FUZZ_COUNT / FUZZ_RATE
    ping = BackgroundPing(lab, topo.onprem, topo.vpc_ip, interval=0.05, duration=duration + 4)
    time.sleep(1)
    sent = sent_bytes = 0
    answers = [0, 0]
    rss_peak = rss_before
    started = time.monotonic()
    for i, msg in enumerate(paced(messages, FUZZ_RATE, max_seconds=2 * duration)):
        if i % 2:
            dst, data = (TUN, 4500), MARKER + msg
        else:
            dst, data = (TUN, 500), msg
        try:
            sock.sendto(data, dst)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        except OSError:
            continue   # e.g. EMSGSIZE for the very largest
        sent += 1
        sent_bytes += len(data)
        if i % 64 == 0:
            _drain(sock, answers)
        if i % 2000 == 0:
            rss_peak = max(rss_peak, rss_kb(pid))
    took = time.monotonic() - started
    time.sleep(1)
    _drain(sock, answers)
    lost = ping.finish()
    sock.close()

    assert vgw.proc.poll() is None, f"vgw died:\n{vgw.log_text()[-3000:]}"
    rss_after = rss_kb(pid)
    t = vgw.tunnel(TUN)
    log_lines = len(vgw.log_text().splitlines()) - log_before
    print(f"\nfuzz: {sent} messages ({sent_bytes} bytes) in {took:.1f} s "
          f"({sent / took:.0f}/s), kinds {ctx.kinds}")
    print(f"fuzz: vgw answered {answers[0]} datagrams ({answers[1]} bytes); "
          f"RSS {rss_before} kB before, peak {rss_peak} kB, {rss_after} kB after; "
          f"fds {fd_count(pid)}")
    print(f"fuzz: {log_lines} log lines (DEBUG level)")
    print(f"fuzz: tunnel counters {json.dumps(t['ike_counters'])}; "
          f"SA counters {json.dumps((t['ike'] or {}).get('counters'))}")
    assert sent >= FUZZ_COUNT * 0.99
    ping_sent, ping_received = lost
    assert_few_lost(ping_sent, ping_received, 0, "during the fuzzing")   # no iperf3: none may be lost
    # the same IKE SA and the same CHILD SA, still up
    assert _sa_ids(vgw) == (ike_spi_i, ike_spi_r, children)
    assert t["status"] == "UP" and t["ike"]["state"] == "ESTABLISHED"
    assert rss_after <= 2 * rss_before and rss_peak <= 2 * rss_before
    # no amplification: vgw sent back fewer bytes than it was sent
    assert answers[1] <= sent_bytes
    # the junk was seen and counted, not silently lost
    counted = sum(t["ike_counters"].values()) - sum(ike_before.values())
    counted += sum((t["ike"].get("counters") or {}).values())
    assert counted >= 0.5 * sent, f"only {counted} of {sent} messages were counted as drops"
    assert not _log_problems(vgw), _log_problems(vgw)[:5]
    # noise is logged rate-limited (daemon/ratelimit.py): 20 lines of a kind a
    # minute; ~500 half-open SAs with 5 lines each made 2,700 lines before
    assert log_lines < 1000, f"{log_lines} log lines for the campaign"


# --- ESP: replays and forgeries -------------------------------------------------------------

MARK_PORT = 40000
MARK_LEN = 100


def _mark(n: int) -> bytes:
    return f"VGWMARK {n:06d} ".encode().ljust(MARK_LEN, b".")


def _received_marks(sock: socket.socket, into: list[int]) -> None:
    for _ in range(10000):
        try:
            data = sock.recv(2048)
        except (BlockingIOError, InterruptedError):
            return
        into.append(int(data[8:14]) if data.startswith(b"VGWMARK ") else -1)


def _send_marks(lab, sender, receiver, ids, got: list[int]) -> None:
    """Marker datagrams onprem -> VPC through the tunnel; wait (bounded) for all."""
    for n in ids:
        sender.send(_mark(n))
        time.sleep(0.02)

    def arrived() -> bool:
        _received_marks(receiver, got)
        return set(ids) <= set(got)
    lab.wait_until(arrived, 10, interval=0.05, what=f"marker datagrams {ids[0]}..{ids[-1]} in the VPC")


def _drops(vgw) -> dict:
    return dict(vgw.tunnel(TUN)["drops"])


@pytest.mark.alone   # zero lost pings asserted: nothing else on the CPU (marker alone)
def test_esp_replay_and_forgery(lab, topo):
    vgw, cgw = _start(lab, topo, topo.cgw_wan_ip)
    bring_up(vgw, cgw, tunnels=1)
    receiver = udp_socket(lab, topo.vpc, (topo.vpc_ip, MARK_PORT))
    receiver.setblocking(False)
    sender = udp_socket(lab, topo.onprem, (topo.onprem_ip, 0))
    sender.connect((topo.vpc_ip, MARK_PORT))
    got: list[int] = []

    # ESP as vgw receives it (AF_PACKET in the vgw namespace on its WAN
    # interface): strongSwan's ESP in UDP 4500, taken before netfilter
    def esp_in(p) -> bool:
        u = parse_udp(p.ip)
        return (u is not None and not p.outgoing and u.dport == 4500 and u.src == topo.cgw_wan_ip
                and len(u.payload) > 8 and u.payload[:4] != MARKER)

    def capture(ids: list[int], delivered: bool) -> list[bytes]:
        cap = Capture(lab, topo.vgw, topo.vgw_wan_if, esp_in, limit=1000, max_seconds=60)
        try:
            if delivered:
                _send_marks(lab, sender, receiver, ids, got)
            else:
                for n in ids:
                    sender.send(_mark(n))
                    time.sleep(0.02)
                lab.wait_until(lambda: len(cap.packets) >= len(ids), 10, interval=0.05,
                               what="the ESP of the held-back markers")
        finally:
            packets = cap.stop()
        return [parse_udp(p.ip).payload for p in packets]

    # markers 0..19 reach the VPC: their ESP is replay material
    seen = capture(list(range(20)), delivered=True)
    # markers 20..29 are captured but dropped before vgw (nftables): fresh ESP,
    # valid and never seen by vgw, to forge from and to deliver late
    lab.run(topo.vgw, "nft", "-f", "-", input=(
        "table ip vgwhold {\n chain pre {\n  type filter hook prerouting priority -300;\n"
        f'  iifname "{topo.vgw_wan_if}" udp dport 4500 drop\n }}\n}}\n'))
    try:
        fresh = capture(list(range(20, 30)), delivered=False)
    finally:
        lab.run(topo.vgw, "nft", "delete", "table", "ip", "vgwhold")
    time.sleep(0.3)
    _received_marks(receiver, got)
    assert sorted(got) == list(range(20)), got
    spi = seen[0][:4]
    assert len(seen) == 20 and len(fresh) == 10 and all(e[:4] == spi for e in seen + fresh)

    attacker = udp_socket(lab, topo.cgw, (topo.cgw_wan_ip, 0))
    raw = ns_socket(lab, topo.cgw, socket.AF_INET, socket.SOCK_RAW, 50)   # ESP, IP protocol 50
    before = _drops(vgw)
    ping = BackgroundPing(lab, topo.vpc, topo.onprem_ip, interval=0.05, duration=10)
    time.sleep(0.5)
    rng = random.Random(4303)
    sent = {"replay": 0, "bad_icv": 0, "malformed": 0, "unknown_spi": 0}

    def send(data: bytes, reason: str | None, over_raw: bool = False) -> None:
        if over_raw:
            raw.sendto(data, (TUN, 0))
        else:
            attacker.sendto(data, (TUN, 4500))
        if reason:
            sent[reason] += 1
        time.sleep(0.002)

    # replays: in order, reordered, and over raw ESP (IP protocol 50) too
    for e in seen:
        send(e, "replay")
    for e in reversed(seen):
        send(e, "replay")
    shuffled = list(seen)
    rng.shuffle(shuffled)
    for e in shuffled:
        send(e, "replay", over_raw=True)
    # a valid SPI with a huge sequence number: a real body (its ICV covers the
    # sequence number, so it fails) and junk; the window must not move
    for e in seen[:5]:
        send(spi + struct.pack("!I", 0xFFFFFF00 + rng.randrange(255)) + e[8:], "bad_icv")
        send(spi + struct.pack("!I", 0xFFFFFFFF) + rng.randbytes(len(e) - 8), "bad_icv")
    # forgeries of the fresh packets: flipped ciphertext, flipped ICV, truncated
    # (shorter than any ESP packet, or no longer 4-byte aligned: RFC 4303 §2.4),
    # another SPI
    for i, e in enumerate(fresh):
        body = bytearray(e)
        body[16 + rng.randrange(len(e) - 32)] ^= 1 << rng.randrange(8)   # after SPI, seq and IV
        send(bytes(body), "bad_icv", over_raw=bool(i % 2))
        icv = bytearray(e)
        icv[-1 - rng.randrange(16)] ^= 0x80
        send(bytes(icv), "bad_icv", over_raw=not i % 2)
        for n in (8, 9, 12, 20, 31, len(e) - 1, len(e) - 2, len(e) - 3):
            send(e[:n], "malformed")
        send(rng.getrandbits(32).to_bytes(4, "big") + e[4:], "unknown_spi")
    time.sleep(0.5)
    # the intact fresh packets, late: each is delivered once; the forgeries with
    # their sequence numbers burnt nothing. Then again: replays.
    for e in fresh:
        send(e, None)
    lab.wait_until(lambda: _received_marks(receiver, got) or set(range(20, 30)) <= set(got), 10,
                   what="the late fresh markers in the VPC")
    for e in fresh:
        send(e, "replay")
    time.sleep(0.5)
    # valid traffic continues, past the forged huge sequence numbers
    _send_marks(lab, sender, receiver, list(range(100, 120)), got)
    ping_sent, ping_received = ping.finish()
    time.sleep(0.5)
    _received_marks(receiver, got)
    after = _drops(vgw)
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    print(f"\nesp: sent {sent}; vgw drops {delta}; VPC got {len(got)} marker datagrams; "
          f"ping {ping_received}/{ping_sent}")
    for s in (attacker, raw, sender, receiver):
        s.close()
    # nothing replayed or forged reached the VPC: each marker exactly once
    assert sorted(got) == list(range(30)) + list(range(100, 120)), sorted(got)
    # every attack packet was dropped and counted under its reason, exactly (the
    # genuine traffic beside them, pings and markers, drops nothing)
    assert delta == {reason: count for reason, count in sent.items() if count}, (delta, sent)
    assert_few_lost(ping_sent, ping_received, 0, "during the ESP attacks")   # no iperf3: none may be lost
    assert vgw.tunnel(TUN)["status"] == "UP"
    assert not _log_problems(vgw), _log_problems(vgw)[:5]


# --- IKE_SA_INIT flood from spoofed sources ----------------------------------------------------

FLOOD_SECONDS = 20.0
# 2,000 requests per second from 254 addresses: past the cookie threshold (16
# half-open SAs) within 10 ms. Parsing and answering one costs vgw 40-100 us,
# so the flood alone would take 10-20 % of a core; the test's sender and
# capture take a few % of the other core, which strongSwan and iperf3 need.
# Faster floods only measure this 2-core VM: vgw spends at most a quarter of
# its time on them (daemon/gateway.py INIT_SHARE) and drops the rest.
FLOOD_RATE = 2000.0
SPOOFED = [f"203.0.113.{i}" for i in range(1, 255)]
# Every 2nd source returns the cookies it is sent (an attacker that receives at
# those addresses): its requests pass the cookie check and cost a DH
# computation each (groups 14, 2, 18 and 24 in turn), until the half-open caps
# (default dos_protection: 8 per source, 1,024 in all) stop them.
REFLECTING = set(SPOOFED[::2])


def _init_template(src: str, group: int) -> bytes:
    """A real IKE_SA_INIT request made by vgw's own IKE core (an initiator for
    `src`) offering AWS's default phase 1 suite with one DH group."""
    from ikecore.settings import IkeSettings
    from ikecore.endpoint import IkeEndpoint
    endpoint = IkeEndpoint(IkeSettings(name="flood", local_ip=src, remote_ip=TUN, psk=b"x" * 16,
                                      phase1_dh_groups=(group,)))
    endpoint.initiate(0.0)
    [datagram] = endpoint.datagrams_to_send()
    return datagram.data


def _iperf_best(lab, topo, runs: int, seconds: float, until: float | None = None,
                enough: float | None = None) -> float:
    """The best of `runs` iperf3 TCP runs onprem -> VPC (Gbit/s): the other
    lab tests share this 2-core VM, and the best run is the one least disturbed
    by them. With `until` (monotonic), no run starts that would end after it;
    with `enough`, no run starts once one reached it."""
    best = 0.0
    for _ in range(runs):
        if until is not None and time.monotonic() + seconds + 1 > until:
            break
        if enough is not None and best >= enough:
            break
        best = max(best, run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=seconds)["gbps"])
    return best


# Throughput before, during and after the flood is compared: measured alone, with
# no other test on the 2-core VM (marker alone: scripts/test.sh runs these after
# the parallel pass; side by side, a neighbouring test's load moved the ratio by
# 20 % in CI rehearsals).
@pytest.mark.alone
def test_ike_sa_init_flood(lab, topo):
    from daemon.control import request as control
    from daemon.initqueue import InitQueueSettings
    from ikecore.dos import DosSettings
    # any customer gateway address (customer_gateway: {}): otherwise vgw drops
    # every spoofed request unread as an unknown peer
    vgw, cgw = _start(lab, topo, None)
    bring_up(vgw, cgw, tunnels=1)
    # vgw's answers to the spoofed sources go to cgw, which throws them away
    lab.route(topo.vgw, "203.0.113.0/24", via=topo.cgw_wan_ip)
    lab.run(topo.cgw, "ip", "route", "replace", "blackhole", "203.0.113.0/24")
    cap_half_open = DosSettings().max_half_open
    templates = {g: _init_template("203.0.113.1", g) for g in (14, 2, 18, 24)}
    groups = list(templates)

    pid = vgw.proc.pid
    baseline = _iperf_best(lab, topo, 3, 3)
    rss_before = rss_kb(pid)

    # answers to the spoofed addresses, as they reach cgw (kernel-filtered: UDP from port 500)
    pending: deque = deque()
    answers = {"cookie": 0, "other": 0, "first_cookie": None}
    t0 = [0.0]

    def on_answer(p) -> bool:
        u = parse_udp(p.ip)
        if u is None or p.outgoing or not u.dst.startswith("203.0.113."):
            return False
        cookie = cookie_of(u.payload)
        if cookie is None:
            answers["other"] += 1
            return False
        answers["cookie"] += 1
        if answers["first_cookie"] is None:
            answers["first_cookie"] = p.t - t0[0]
        if u.dst in REFLECTING and len(pending) < 10000:
            pending.append((u.dst, u.payload[:8], cookie))
        return False
    cap = Capture(lab, topo.cgw, topo.cgw_wan_if, on_answer, bpf=udp_filter(sport=500),
                  max_seconds=FLOOD_SECONDS + 30)
    raw = ns_socket(lab, topo.cgw, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent_requests: dict[bytes, bytes] = {}    # SPIi -> the request sent (for its cookie)
    samples: list[dict] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            try:
                st = control(vgw.control, {"cmd": "status"})
            except OSError:
                continue
            samples.append({"half_open": st["ike_dos"]["half_open"], "rss": rss_kb(pid),
                            "status": st["tunnels"][0]["status"]})
    sampler = threading.Thread(target=sample, daemon=True)
    during: dict = {}
    iperf = threading.Thread(target=lambda: (time.sleep(0.5), during.update(gbps=_iperf_best(
        lab, topo, 3, 5, until=t0[0] + FLOOD_SECONDS))), daemon=True)
    rng = random.Random(2006)
    sent = with_cookies = 0
    t0[0] = time.monotonic()
    sampler.start()
    iperf.start()
    ping = RttPing(lab, topo.vpc, topo.onprem_ip, interval=0.05, duration=FLOOD_SECONDS)
    try:
        for i in paced(range(int(FLOOD_SECONDS * FLOOD_RATE)), FLOOD_RATE, FLOOD_SECONDS + 5):
            if pending and i % 2:   # a reflecting source answers its cookie
                src, spi, cookie = pending.popleft()
                req = sent_requests.pop(spi, None)
                if req is None:
                    continue
                data = with_cookie(req, cookie)
                with_cookies += 1
            else:
                src = SPOOFED[i % len(SPOOFED)]
                spi = rng.getrandbits(64).to_bytes(8, "big")
                data = with_spi(templates[groups[(i // len(SPOOFED)) % len(groups)]], spi)
                if src in REFLECTING and len(sent_requests) < 20000:
                    sent_requests[spi] = data
            raw.sendto(ipv4_udp(src, TUN, 500, 500, data, i), (TUN, 0))
            sent += 1
    finally:
        flood_end = time.monotonic()
        stop.set()
        raw.close()
    iperf.join(FLOOD_SECONDS + 30)
    ping_sent, ping_received, rtts = ping.finish()
    ping_p90, ping_max = percentile(rtts, 90), max(rtts, default=float("inf"))
    sampler.join(5)
    time.sleep(0.5)
    cap.stop()
    # back right after. First what vgw does: no flood work left 2.5 s after
    # the flood (the queue serves the newest and drops what waited 2 s:
    # daemon/initqueue.py; before, it worked off ~1,000 queued requests at a
    # quarter of its time for seconds).
    # Then the throughput: up to 6 runs until one reaches 0.9x the baseline.
    # Single 3 s runs on this VM spread 0.6-1.0 Gbit/s through strongSwan's
    # userspace ESP, alike right after the flood and 35 s later with every
    # half-open SA gone (measured), so the best of 3 before is often a high
    # outlier: that vgw has no flood work left is asserted exactly; the
    # throughput only as a sanity bound of 0.7x (measured 0.78-1.26x from 2.5 s on,
    # with no IKE_SA_INIT work at all in vgw: the spread is the VM's).
    # the queue holds a request at most 2 s (InitQueueSettings.max_age): then
    # it must be empty and stay so
    time.sleep(max(0.0, flood_end + InitQueueSettings().max_age + 0.5 - time.monotonic()))
    settled = control(vgw.control, {"cmd": "status"})["ike_dos"]
    after_start = time.monotonic()
    after = _iperf_best(lab, topo, 6, 3, enough=0.9 * baseline)
    after_seconds = time.monotonic() - after_start
    st = control(vgw.control, {"cmd": "status"})
    rss_after = rss_kb(pid)
    dos = st["ike_dos"]
    print(f"\nflood: {sent} requests in {flood_end - t0[0]:.1f} s from {len(SPOOFED)} addresses "
          f"({with_cookies} returning a cookie); answers seen: {answers}")
    print(f"flood: iperf3 TCP baseline {baseline:.3f} Gbit/s, during {during.get('gbps', 0):.3f}, "
          f"after {after:.3f}; RSS {rss_before} kB before, max "
          f"{max((s['rss'] for s in samples), default=0)} kB, {rss_after} kB after")
    print(f"flood: ping {ping_received}/{ping_sent}, RTT median {percentile(rtts, 50):.1f} ms, "
          f"90th percentile {ping_p90:.1f} ms, max {ping_max:.0f} ms")
    print(f"flood: half-open max {max((s['half_open'] for s in samples), default=0)}; ike_dos {dos}")
    print(f"flood: after {after_start - flood_end:.1f} s: queue {settled['init_queue']}; "
          f"IKE_SA_INIT work in the next {after_seconds:.1f} s: "
          f"{dos['init_work_seconds'] - settled['init_work_seconds']:.3f} s, "
          f"cookies sent {dos['cookies_sent'] - settled['cookies_sent']}")

    assert vgw.proc.poll() is None
    # the first COOKIE must come before a real initiator retransmits (strongSwan:
    # 4 s) for the challenge to spare it a round; 1 s is generous against the
    # 30-45 ms measured on 2026-11-25 and leaves a busy 2-core machine room
    assert answers["first_cookie"] is not None and answers["first_cookie"] < 1.0
    assert during.get("gbps"), "no iperf3 result during the flood"
    assert during["gbps"] >= 0.5 * baseline, f"{during['gbps']:.3f} Gbit/s under flood, baseline {baseline:.3f}"
    assert settled["init_queue"] == 0 and dos["init_queue"] == 0, (settled, dos)
    assert dos["init_work_seconds"] - settled["init_work_seconds"] < 0.01 * after_seconds, (settled, dos)
    assert after >= 0.7 * baseline, f"{after:.3f} Gbit/s after the flood, baseline {baseline:.3f}"
    assert samples and all(s["status"] == "UP" for s in samples)
    # unauthenticated work never holds the event loop for long: at most 5 % of
    # the pings lost (the reply shares its queue with iperf3's TCP: 0.25 % in CI
    # runs, 2.25 % with two CPU hogs added; a stalled loop delays replies rather
    # than losing them, which the RTTs show), and
    # 9 in 10 wait no more than 100 ms (a batch of 32 DH computations held the
    # loop 0.4 s, and each such stall delays the ~8 pings sent meanwhile; the
    # other tests on this VM cause a rare long wait, hence not the maximum)
    assert_few_lost(ping_sent, ping_received, ping_sent // 20, "during the flood (iperf3 fills the path)")
    assert ping_p90 < 100, f"9 in 10 pings took up to {ping_p90:.0f} ms"
    assert max(s["half_open"] for s in samples) <= cap_half_open
    assert max(s["rss"] for s in samples) <= 2 * rss_before and rss_after <= 2 * rss_before
    assert dos["cookies_sent"] > 0 and dos["cookies_accepted"] > 0
    assert st["tunnels"][0]["status"] == "UP"
    assert not _log_problems(vgw), _log_problems(vgw)[:5]


def test_a_spoofer_of_the_cgw_address_cannot_lock_it_out(lab, topo):
    """IKE_SA_INIT with the customer gateway's own address, 10 a second, from
    someone who never sees the answers: the real CGW must still get in. Before
    the per-source cap counted proven SAs only, 8 such requests per 30 s kept
    its half-open slots full and its own IKE_SA_INIT was dropped."""
    vgw, cgw = _start(lab, topo, topo.cgw_wan_ip)
    bring_up(vgw, cgw, tunnels=1)
    template = _init_template(topo.cgw_wan_ip, 14)
    raw = ns_socket(lab, topo.cgw, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    stop = threading.Event()
    sent = [0]

    def spoof() -> None:
        rng = random.Random(8)
        deadline = time.monotonic() + 90
        while not stop.wait(0.1) and time.monotonic() < deadline:
            data = with_spi(template, rng.getrandbits(64).to_bytes(8, "big"))
            raw.sendto(ipv4_udp(topo.cgw_wan_ip, TUN, 500, 500, data), (TUN, 0))
            sent[0] += 1
    spoofer = threading.Thread(target=spoof, daemon=True)
    spoofer.start()
    try:
        time.sleep(3)     # the cgw's half-open slots are full of spoofed SAs by now
        before = _sa_ids(vgw)[:2]
        cgw.terminate(ike="tun1")
        lab.wait_until(lambda: vgw.tunnel(TUN)["status"] == "DOWN", 10, what="the tunnel down")
        cgw.initiate("net", ike="tun1", timeout=40)
        vgw.wait_up(TUN, timeout=30)
    finally:
        stop.set()
        spoofer.join(5)
        raw.close()
    from daemon.control import request as control
    dos = control(vgw.control, {"cmd": "status"})["ike_dos"]
    print(f"\nspoofed cgw: {sent[0]} requests; ike_dos {dos}")
    assert _sa_ids(vgw)[:2] != before
    assert dos["cookies_accepted"] >= 1 and dos["dropped_source_cap"] == 0
