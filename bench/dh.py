"""MODP Diffie-Hellman per group: vgw's (gmpy2, constant-time powmod) next to
`cryptography`'s finite-field DH (OpenSSL), the implementation vgw used before,
measured in the same run.

    python -m bench.dh [--seconds S] [--groups 2,14,18]

Per group: the median time of a key generation (the private exponent and g^x)
and of a shared secret (RFC 6989 checks of the peer's value and y^x). The
`cryptography` column loads the peer's value from DER as vgw did (its
DHPublicNumbers path re-checks the prime each time). `cryptography` deprecated
finite-field DH (its warning is silenced here: it is the reference, not vgw) and
will remove it; the column then reads "n/a".
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from ikecore.constants import DhId
from ikecore.crypto.dh import _MODP_PARAMS, get_dh_group

MODP_GROUPS = (2, 5, 14, 15, 16, 17, 18, 22, 23, 24)


ROUNDS = 5   # the implementations take turns, so that a busy spell of the machine hits both


def sample(fn, seconds: float, into: list[float]) -> None:
    """Durations of fn() over repeated calls for about `seconds` (at least 3)."""
    end, count = time.perf_counter() + seconds, 0
    while time.perf_counter() < end or count < 3:
        start = time.perf_counter()
        fn()
        into.append(time.perf_counter() - start)
        count += 1


def vgw_ops(group_id: int):
    """(key generation, shared secret) of vgw's implementation."""
    group = get_dh_group(DhId(group_id))
    peer = group.generate().public_bytes
    key = group.generate()
    return group.generate, lambda: key.shared_secret(peer)


def cryptography_ops(group_id: int):
    """The same with cryptography's FFDH; None where it has none any more."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import dh
        except ImportError:
            return None
        p, g, q = _MODP_PARAMS[DhId(group_id)]
        # as vgw had it: q only for RFC 5114 groups, so OpenSSL spots its named groups
        params = dh.DHParameterNumbers(p, g, q).parameters()
        key = params.generate_private_key()
        spki = params.generate_private_key().public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

        def keygen():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return params.generate_private_key()

        def shared() -> bytes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return key.exchange(serialization.load_der_public_key(spki))

        return keygen, shared


def medians(ours, ref, seconds: float) -> tuple[list[float], list[float] | None]:
    """Median durations of each operation, the two implementations in turns."""
    samples = [[[], []], [[], []]]
    for _ in range(ROUNDS):
        for which, ops in enumerate((ours, ref)):
            for op, into in zip(ops or (), samples[which]):
                sample(op, seconds / ROUNDS, into)
    result = [[statistics.median(s) for s in pair] if pair[0] else None for pair in samples]
    return result[0], result[1]


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.3f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="per group, figure and implementation")
    parser.add_argument("--groups", default=",".join(map(str, MODP_GROUPS)), help="comma-separated group numbers")
    args = parser.parse_args(argv)
    groups = [int(g) for g in args.groups.split(",") if g]
    print(f"{'group':>5}  {'keygen vgw':>12}  {'keygen crypto':>13}  {'ratio':>6}  "
          f"{'secret vgw':>12}  {'secret crypto':>13}  {'ratio':>6}")
    for group_id in groups:
        ours, ref = medians(vgw_ops(group_id), cryptography_ops(group_id), args.seconds)
        ratios = ["-", "-"] if ref is None else [f"{r / o:.2f}x" for o, r in zip(ours, ref)]
        print(f"{group_id:>5}  {ms(ours[0]):>12}  {ms(ref and ref[0]):>13}  {ratios[0]:>6}  "
              f"{ms(ours[1]):>12}  {ms(ref and ref[1]):>13}  {ratios[1]:>6}")
    print("ratio: cryptography's time / vgw's (above 1: vgw is faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
