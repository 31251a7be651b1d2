"""ESP seal/open throughput of dataplane.esp next to raw OpenSSL, measured in the same run.

    python -m bench.crypto [--seconds S] [--all] [--sizes 64,512,1400] [--jobs N]

For each suite and inner packet size: packets/s and Gbit/s (inner bytes) of
``EspSa.seal`` and ``EspSa.open`` on one core, and what ``openssl speed`` does with
the same algorithms on buffers of the same size.  For AES-CBC + HMAC the OpenSSL
figure combines ``-evp aes-N-cbc`` and ``-hmac shaN`` (time per packet = sum of both).
The ratio says how much of OpenSSL's speed survives the per-packet Python work.
Python figures are the median over batches of 2048 packets, which keeps this VM's
CPU steal from swinging them by 20 % between runs.

The default suites cover every AWS phase 2 algorithm once (AES128/256-GCM-16,
AES128/256-CBC, SHA1, SHA2-256/384/512); ``--all`` runs the full cross product.
OpenSSL's shortest run is 1 s per algorithm and size, so those runs go ``--jobs`` at a
time (default: number of CPUs) before the Python measurements start.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from dataplane.esp import EspSa
from dataplane.replay import ReplayWindow

# name -> (encr, key bytes, integ, integ key bytes, openssl cipher, openssl hmac digest)
SUITES = {
    "AES128-GCM-16": ("aes-gcm-16", 20, None, 0, "aes-128-gcm", None),
    "AES256-GCM-16": ("aes-gcm-16", 36, None, 0, "aes-256-gcm", None),
}
for _bits in (128, 256):
    for _name, _integ, _ik, _dg in (
        ("SHA1", "hmac-sha1-96", 20, "sha1"),
        ("SHA2-256", "hmac-sha2-256-128", 32, "sha256"),
        ("SHA2-384", "hmac-sha2-384-192", 48, "sha384"),
        ("SHA2-512", "hmac-sha2-512-256", 64, "sha512"),
    ):
        SUITES[f"AES{_bits}-CBC/{_name}"] = ("aes-cbc", _bits // 8, _integ, _ik, f"aes-{_bits}-cbc", _dg)

DEFAULT_SUITES = [
    "AES128-GCM-16",
    "AES256-GCM-16",
    "AES128-CBC/SHA1",
    "AES256-CBC/SHA2-256",
    "AES128-CBC/SHA2-384",
    "AES256-CBC/SHA2-512",
]

BATCH = 2048


def inner_packet(size: int) -> bytes:
    """An IPv4-looking packet of ``size`` bytes (EspSa checks the version nibble)."""
    return bytes([0x45]) + os.urandom(size - 1)


def make_sa(suite: str, window: int = 2048) -> tuple[EspSa, EspSa]:
    encr, kl, integ, ikl, _, _ = SUITES[suite]
    rnd = os.urandom(kl + ikl)
    key, ikey = rnd[:kl], (rnd[kl:] or None)
    return (EspSa(0x1000, encr, key, integ, ikey, window), EspSa(0x1000, encr, key, integ, ikey, window))


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2]


def bench_seal(sa: EspSa, inner: bytes, seconds: float) -> float:
    """Packets/s: median over batches of BATCH packets (robust to VM CPU steal)."""
    seal = sa.seal
    rng = range(BATCH)
    rates = []
    deadline = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        for _ in rng:
            seal(inner)
        t1 = time.perf_counter()
        rates.append(BATCH / (t1 - t0))
        if t1 >= deadline:
            return _median(rates)


def bench_open(tx: EspSa, rx: EspSa, inner: bytes, seconds: float) -> float:
    """Packets/s: median over batches; the same BATCH packets each time, with the
    replay window reset between batches, outside the timing."""
    pkts = [tx.seal(inner) for _ in range(BATCH)]
    open_ = rx.open
    assert open_(pkts[0]) == inner, "open does not invert seal"
    rates = []
    deadline = time.perf_counter() + seconds
    while True:
        rx.replay = ReplayWindow(rx.replay.size)
        t0 = time.perf_counter()
        for p in pkts:
            open_(p)
        t1 = time.perf_counter()
        rates.append(BATCH / (t1 - t0))
        if t1 >= deadline:
            break
    assert rx.drops == [0] * len(rx.drops), rx.drop_counts()
    return _median(rates)


def openssl_speed(args: list[str], size: int, seconds: int) -> float | None:
    """Bytes/s from ``openssl speed ... -bytes size -seconds s -mr`` (last "+F:" field)."""
    cmd = ["openssl", "speed", *args, "-bytes", str(size), "-seconds", str(seconds), "-mr"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"^\+F:\d+:[^:]+:([\d.]+)\s*$", out, re.M)
    return float(m.group(1)) if m else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.crypto", description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=0.15,
                    help="Python time per suite, size and direction (default 0.15); OpenSSL "
                         "runs max(1, round(S)) s each, its minimum")
    ap.add_argument("--sizes", default="64,512,1400", help="inner packet sizes in bytes")
    ap.add_argument("--all", action="store_true", help="all AES x SHA combinations, not only the default set")
    ap.add_argument("--suite", action="append", choices=sorted(SUITES), help="run only these suites")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel openssl speed runs")
    ap.add_argument("--no-openssl", action="store_true", help="skip the OpenSSL reference")
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")]
    suites = a.suite or (list(SUITES) if a.all else DEFAULT_SUITES)
    started = time.monotonic()

    # -- OpenSSL reference first (parallel), so it does not share the CPU with us.
    ref: dict[tuple[str, int], float | None] = {}
    if not a.no_openssl and shutil.which("openssl"):
        jobs = {}
        osec = max(1, round(a.seconds))
        for s in suites:
            _, _, _, _, cipher, digest = SUITES[s]
            for size in sizes:
                jobs[(cipher, size)] = ["-evp", cipher]
                if digest:
                    # ICV covers SPI | seq | IV | ciphertext: 24 bytes + padded payload.
                    jobs[(digest, size)] = ["-hmac", digest]
        with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            futs = {k: ex.submit(openssl_speed, v, k[1], osec) for k, v in jobs.items()}
            raw = {k: f.result() for k, f in futs.items()}
        for s in suites:
            _, _, _, _, cipher, digest = SUITES[s]
            for size in sizes:
                c = raw.get((cipher, size))
                h = raw.get((digest, size)) if digest else None
                if not c or (digest and not h):
                    ref[(s, size)] = None
                    continue
                t = size / c + (size / h if digest else 0.0)  # seconds per packet
                ref[(s, size)] = 1.0 / t
        ossl_version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    else:
        ossl_version = "not measured"

    print(f"ESP seal/open on one core, Python {sys.version.split()[0]}, "
          f"cryptography {__import__('cryptography').__version__}; reference: {ossl_version}")
    hdr = (f"{'suite':22s} {'size':>5s} | {'seal pkt/s':>11s} {'Gbit/s':>7s} | {'open pkt/s':>11s} "
           f"{'Gbit/s':>7s} | {'openssl pkt/s':>13s} {'Gbit/s':>7s} | {'seal/ossl':>9s} {'open/ossl':>9s}")
    print(hdr)
    print("-" * len(hdr))
    for s in suites:
        for size in sizes:
            inner = inner_packet(size)
            tx, rx = make_sa(s)
            ps = bench_seal(tx, inner, a.seconds)
            tx, rx = make_sa(s)
            po = bench_open(tx, rx, inner, a.seconds)
            r = ref.get((s, size))
            g = lambda pps: pps * size * 8 / 1e9  # noqa: E731 - inner bits/s
            rs = f"{r:13,.0f} {g(r):7.2f}" if r else f"{'-':>13s} {'-':>7s}"
            ratio = f"{ps / r:9.1%} {po / r:9.1%}" if r else f"{'-':>9s} {'-':>9s}"
            print(f"{s:22s} {size:5d} | {ps:11,.0f} {g(ps):7.2f} | {po:11,.0f} {g(po):7.2f} | {rs} | {ratio}")
    print(f"(total {time.monotonic() - started:.1f} s; Gbit/s = inner packet bytes; OpenSSL on "
          f"buffers of the inner size, CBC suites = cipher + HMAC time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
