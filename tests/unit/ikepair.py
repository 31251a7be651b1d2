"""Two IKE cores back to back in memory, with a synthetic clock.

Modelled on aioquic's connection tests: nothing here opens a socket, reads a
clock or sleeps. A test builds an `IkePair` (side A initiates, side B answers,
as AWS with startup_action start against a responder), then moves datagrams
by hand:

    pair = IkePair(policy_a(), policy_b())
    pair.initiate()
    assert pair.transfer(pair.a) == 1       # IKE_SA_INIT request A -> B
    assert pair.roundtrip(pair.b) == (1, 1)  # B answers, A sends IKE_AUTH
    ...
    pair.run()                               # or: until nothing moves

Unreliable networks are modelled with hooks on `transfer`/`run` (drop,
duplicate, hold back and deliver later), and time only moves when the test
calls `advance`/`run_timers`. `Nat` rewrites one side's source address and
port as a NAPT would, so NAT detection (RFC 7296 §2.23) sees a real NAT.

The module also holds an independent oracle for IKEv2 crypto (prf+, the SK
payload, NAT detection hashes, PSK AUTH) written from RFC 7296 / RFC 5282 with
`hmac`/`hashlib` and raw `cryptography` ciphers, so tests can check what the
core produced without trusting the core's own crypto code.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import struct
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ikecore.events import (
    ChildSaDown, ChildSaUp, Datagram, Event, IkeSaDown, IkeSaUp, LogLine,
)
from ikecore.exchanges.informational import DeleteChild, Liveness
from ikecore.message import Header, encode_message
from ikecore.policy import TunnelPolicy
from ikecore.sa import IkeSa, State
from ikecore.tunnel import IkeTunnel

ADDR_A = "198.51.100.1"     # side A: vgw that initiates (startup_action start)
ADDR_B = "198.51.100.10"    # side B: vgw as responder
PSK = b"example_psk_abcdef"

Hook = Callable[[list[Datagram]], list[Datagram]]


def seeded_random(seed: int) -> Callable[[int], bytes]:
    """A deterministic `random_bytes` for TunnelPolicy (reproducible tests)."""
    return random.Random(seed).randbytes


def policy_a(**kw) -> TunnelPolicy:
    """The initiating side. Fast DH group 19 unless the test says otherwise.

    The test calls initiate() itself; startup_action stays "add" so that the
    tunnel does not also re-initiate on its own after a failure (tests of that
    pass startup_action="start")."""
    args = dict(name="a", local_ip=ADDR_A, remote_ip=ADDR_B, psk=PSK,
                phase1_dh_groups=(19,), random_bytes=seeded_random(1))
    args.update(kw)
    return TunnelPolicy(**args)


def policy_b(**kw) -> TunnelPolicy:
    """The responding side."""
    args = dict(name="b", local_ip=ADDR_B, remote_ip=ADDR_A, psk=PSK,
                phase1_dh_groups=(19,), random_bytes=seeded_random(2))
    args.update(kw)
    return TunnelPolicy(**args)


# --- network -------------------------------------------------------------------------


@dataclass
class Nat:
    """A NAPT in front of one side: its private (ip, port) leaves as
    (public_ip, a fresh port) and answers to that mapping come back in."""

    public_ip: str
    next_port: int = 40000
    out_map: dict = field(default_factory=dict)
    in_map: dict = field(default_factory=dict)

    def outbound(self, private: tuple) -> tuple:
        if private not in self.out_map:
            public = (self.public_ip, self.next_port)
            self.next_port += 1
            self.out_map[private] = public
            self.in_map[public] = private
        return self.out_map[private]

    def inbound(self, public: tuple) -> tuple | None:
        return self.in_map.get(public)


class Side:
    """One tunnel in the pair, with every event it has produced so far."""

    def __init__(self, name: str, tunnel: IkeTunnel, nat: Nat | None = None):
        self.name = name
        self.tunnel = tunnel
        self.nat = nat
        self.events: list[Event] = []

    def __repr__(self) -> str:
        return f"<Side {self.name}>"

    @property
    def ip(self) -> str:
        return self.tunnel.policy.local_ip

    @property
    def public_ip(self) -> str:
        return self.nat.public_ip if self.nat else self.ip

    def drain(self) -> None:
        while (ev := self.tunnel.next_event()) is not None:
            self.events.append(ev)

    def of(self, cls) -> list:
        self.drain()
        return [e for e in self.events if isinstance(e, cls)]

    @property
    def logs(self) -> list[str]:
        return [e.text for e in self.of(LogLine)]

    def logged(self, text: str) -> bool:
        """Is there a log line that starts with `text`?"""
        return any(line.startswith(text) for line in self.logs)

    @property
    def ups(self) -> list[IkeSaUp]:
        return self.of(IkeSaUp)

    @property
    def downs(self) -> list[IkeSaDown]:
        return self.of(IkeSaDown)

    @property
    def child_ups(self) -> list[ChildSaUp]:
        return self.of(ChildSaUp)

    @property
    def child_downs(self) -> list[ChildSaDown]:
        return self.of(ChildSaDown)

    @property
    def sas(self) -> list[IkeSa]:
        """Every IKE SA the tunnel holds (established, half-open, negotiating)."""
        return self.tunnel._all()

    @property
    def sa(self) -> IkeSa:
        """The one IKE SA of this side (fails if there is not exactly one)."""
        sas = self.sas
        assert len(sas) == 1, f"{self.name} holds {len(sas)} IKE SAs: {sas}"
        return sas[0]


class IkePair:
    """Side A (initiator) and side B (responder) joined by an in-memory wire."""

    def __init__(self, a: TunnelPolicy | None = None, b: TunnelPolicy | None = None,
                 nat_a: Nat | None = None, now: float = 0.0):
        self.a = Side("a", IkeTunnel(a or policy_a()), nat_a)
        self.b = Side("b", IkeTunnel(b or policy_b()))
        self.now = now
        # every datagram a side handed out, in order: (sender name, datagram)
        self.wire: list[tuple[str, Datagram]] = []
        self.misrouted: list[Datagram] = []

    def other(self, side: Side) -> Side:
        return self.b if side is self.a else self.a

    # --- moving datagrams -------------------------------------------------------

    def initiate(self) -> None:
        self.a.tunnel.initiate(self.now)
        self.a.drain()

    def outgoing(self, side: Side) -> list[Datagram]:
        """Take what `side` wants to send now (and record it on the wire)."""
        side.tunnel._collect(self.now)  # output of exchanges started on an SA directly
        out = side.tunnel.datagrams_to_send()
        self.wire.extend((side.name, d) for d in out)
        side.drain()
        return out

    def deliver(self, receiver: Side, d: Datagram, now: float | None = None) -> bool:
        """Hand one datagram, sent by the other side, to `receiver`, with the
        addresses a NAT in front of the sender or the receiver would produce."""
        sender = self.other(receiver)
        src, dst = d.local, d.remote
        if sender.nat is not None:
            src = sender.nat.outbound(src)
        if receiver.nat is not None:
            if dst[0] != receiver.nat.public_ip:
                self.misrouted.append(d)
                return False
            dst = receiver.nat.inbound(dst)
            if dst is None:
                self.misrouted.append(d)  # no mapping: a NAT drops it
                return False
        elif dst[0] != receiver.ip:
            self.misrouted.append(d)
            return False
        receiver.tunnel.receive(d.data, dst, src, self.now if now is None else now)
        receiver.drain()
        return True

    def transfer(self, sender: Side, hook: Hook | None = None) -> int:
        """Move everything `sender` wants to send to the other side; returns how
        many datagrams were delivered (after the hook dropped/duplicated some)."""
        out = self.outgoing(sender)
        if hook is not None:
            out = hook(out)
        receiver = self.other(sender)
        return sum(self.deliver(receiver, d) for d in out)

    def roundtrip(self, sender: Side, hook: Hook | None = None) -> tuple[int, int]:
        """transfer(sender) then transfer(other side), as aioquic's roundtrip()."""
        return self.transfer(sender, hook), self.transfer(self.other(sender), hook)

    def drop(self, sender: Side) -> int:
        """Lose everything `sender` wants to send now."""
        return len(self.outgoing(sender))

    def run(self, hook: Hook | None = None, max_rounds: int = 50) -> int:
        """Alternate transfers until neither side has anything to send."""
        moved = 0
        for _ in range(max_rounds):
            n = self.transfer(self.a, hook) + self.transfer(self.b, hook)
            moved += n
            if n == 0 and not self._pending_output():
                return moved
        raise AssertionError("the two sides did not go quiet")

    def _pending_output(self) -> bool:
        for side in (self.a, self.b):
            side.tunnel._collect(self.now)
            if side.tunnel._out:
                return True
        return False

    def handshake(self, hook: Hook | None = None) -> None:
        self.initiate()
        self.run(hook)

    # --- time ---------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        times = [t for t in (s.tunnel.next_deadline() for s in (self.a, self.b)) if t is not None]
        return min(times) if times else None

    def advance(self, to: float) -> None:
        """Move the clock to `to` and fire whatever timers are due (no transfers)."""
        assert to >= self.now, "time does not go back"
        self.now = to
        for side in (self.a, self.b):
            deadline = side.tunnel.next_deadline()
            if deadline is not None and deadline <= to:
                side.tunnel.handle_timer(to)
            side.drain()

    def run_timers(self, until: float, hook: Hook | None = None, deliver: bool = True) -> list[float]:
        """Step from deadline to deadline up to `until`, firing timers and (with
        `deliver`) moving what they produce. Returns the times timers fired."""
        fired = []
        while (t := self.next_deadline()) is not None and t <= until:
            self.advance(t)
            fired.append(t)
            if deliver:
                self.run(hook)
        self.now = max(self.now, until)
        return fired

    # --- starting exchanges directly on an SA ---------------------------------------

    def liveness(self, side: Side) -> None:
        """An empty INFORMATIONAL request (DPD) from `side`'s established SA."""
        side.tunnel.current.start(Liveness(), self.now)

    def delete_child(self, side: Side, spi_in: int) -> None:
        side.tunnel.current.start(DeleteChild(spi_in), self.now)


# --- hooks -------------------------------------------------------------------------------


def drop_all(out: list[Datagram]) -> list[Datagram]:
    return []


def duplicate(out: list[Datagram]) -> list[Datagram]:
    return [d for d in out for _ in (0, 1)]


def drop_first(n: int) -> Hook:
    """Lose the first `n` datagrams that pass this hook, then let all through."""
    state = {"left": n}

    def hook(out):
        kept = []
        for d in out:
            if state["left"] > 0:
                state["left"] -= 1
            else:
                kept.append(d)
        return kept
    return hook


# --- state snapshots (for "nothing changed" checks) ---------------------------------------


def snapshot(sa: IkeSa) -> dict:
    """What must not change when junk arrives at an established SA."""
    k = sa.keys
    return {
        "state": sa.state,
        "spis": (sa.spi_i, sa.spi_r),
        "keys": (k.sk_ei, k.sk_er, k.sk_ai, k.sk_ar, sa.sk_d, sa.sk_pi, sa.sk_pr) if k else None,
        "suite": sa.suite,
        "addresses": (sa.local, sa.remote),
        "message_ids": (sa.next_request_id, sa.expected_request_id),
        "pending": sa.pending.message_id if sa.pending else None,
        "children": {
            spi: (c.spi_out, c.state, c.suite, c.local_ts, c.remote_ts,
                  (c.keys.encr_i, c.keys.integ_i, c.keys.encr_r, c.keys.integ_r))
            for spi, c in sa.children.items()
        },
    }


# --- forging messages with an SA's keys (to build authenticated bad input) -----------------


def seal_raw(sa: IkeSa, exchange: int, message_id: int, inner_first: int, inner: bytes,
             response: bool = False) -> bytes:
    """An SK-protected message from `sa` with arbitrary inner bytes (RFC 7296 §3.14):
    what a peer holding the keys could send, malformed or not."""
    flags = (0x08 if sa.initiator else 0) | (0x20 if response else 0)
    cipher = sa.keys.cipher
    sealed_len = cipher.encrypted_length(len(inner))
    total = 28 + 4 + sealed_len
    assoc = (Header(sa.spi_i, sa.spi_r, 46, exchange, flags, message_id, total).encode()
             + struct.pack("!BBH", inner_first, 0, 4 + sealed_len))
    sk_e, sk_a = sa.keys.for_sender(sa.initiator)
    return assoc + cipher.seal(sk_e, sk_a, assoc, inner)


def seal_payloads(sa: IkeSa, exchange: int, message_id: int, payloads, response: bool = False) -> bytes:
    flags = (0x08 if sa.initiator else 0) | (0x20 if response else 0)
    return encode_message(Header(sa.spi_i, sa.spi_r, 0, exchange, flags, message_id, 0),
                          list(payloads), sa.keys, initiator_sent=sa.initiator)


# --- independent IKEv2 crypto (RFC 7296 §2.13-§2.17, §2.23, §3.14; RFC 5282) ---------------

# AWS integrity name -> (hashlib name, PRF output = preferred key size, INTEG key size, ICV size)
# RFC 4868 §2.1 (SHA-2: key = output length, ICV = half), RFC 2404 (SHA1-96).
HASHES = {
    "SHA1": ("sha1", 20, 20, 12),
    "SHA2-256": ("sha256", 32, 32, 16),
    "SHA2-384": ("sha384", 48, 48, 24),
    "SHA2-512": ("sha512", 64, 64, 32),
}
# AWS encryption name -> (IANA ENCR id, key bits, AEAD?)  (IANA IKEv2 registry)
CIPHERS = {
    "AES128": (12, 128, False),
    "AES256": (12, 256, False),
    "AES128-GCM-16": (20, 128, True),
    "AES256-GCM-16": (20, 256, True),
}


def prf(hash_name: str, key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, HASHES[hash_name][0]).digest()


def prf_plus(hash_name: str, key: bytes, seed: bytes, length: int) -> bytes:
    """RFC 7296 §2.13: T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n)."""
    out, t, n = b"", b"", 1
    while len(out) < length:
        t = prf(hash_name, key, t + seed + bytes([n]))
        out += t
        n += 1
    return out[:length]


def split(material: bytes, sizes: Iterable[int]) -> list[bytes]:
    parts, pos = [], 0
    for s in sizes:
        parts.append(material[pos:pos + s])
        pos += s
    return parts


def ike_keys(hash_name: str, encr: str, integ: str | None, ni: bytes, nr: bytes,
             spi_i: bytes, spi_r: bytes, shared: bytes) -> dict[str, bytes]:
    """SKEYSEED and the seven SK_* keys (RFC 7296 §2.14; RFC 5282 §7.1 salt)."""
    _, prf_len, _, _ = HASHES[hash_name]
    _, key_bits, aead = CIPHERS[encr]
    e_len = key_bits // 8 + (4 if aead else 0)
    a_len = 0 if aead else HASHES[integ][2]
    seed = prf(hash_name, ni + nr, shared)
    sizes = (prf_len, a_len, a_len, e_len, e_len, prf_len, prf_len)
    names = ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr")
    return dict(zip(names, split(prf_plus(hash_name, seed, ni + nr + spi_i + spi_r, sum(sizes)), sizes)))


def child_keys(hash_name: str, sk_d: bytes, ni: bytes, nr: bytes, encr: str,
               integ: str | None) -> dict[str, bytes]:
    """KEYMAT = prf+(SK_d, Ni | Nr) for the first CHILD SA (RFC 7296 §2.17), taken
    as initiator->responder encryption, integrity, then responder->initiator."""
    _, key_bits, aead = CIPHERS[encr]
    e_len = key_bits // 8 + (4 if aead else 0)   # RFC 4106 §8.1: key | 4-byte salt
    a_len = 0 if aead else HASHES[integ][2]
    sizes = (e_len, a_len, e_len, a_len)
    names = ("encr_i", "integ_i", "encr_r", "integ_r")
    return dict(zip(names, split(prf_plus(hash_name, sk_d, ni + nr, sum(sizes)), sizes)))


def open_sk(message: bytes, encr: str, integ: str | None, sk_e: bytes, sk_a: bytes) -> tuple[int, bytes]:
    """Decrypt the SK payload of `message` (it must be the only payload, as vgw
    sends it). Returns (type of the first inner payload, inner payload bytes)."""
    assert message[16] == 46, "first payload is not SK"
    first_inner = message[28]
    sk_len = struct.unpack("!H", message[30:32])[0]
    assert 28 + sk_len == len(message)
    assoc, body = message[:32], message[32:]
    _, key_bits, aead = CIPHERS[encr]
    if aead:
        # RFC 5282 §3-§5: nonce = salt (last 4 bytes of SK_e) | 8-byte IV; AAD =
        # IKE header and SK generic header; 16-byte ICV.
        key, salt, iv = sk_e[:-4], sk_e[-4:], body[:8]
        padded = AESGCM(key).decrypt(salt + iv, body[8:], assoc)
    else:
        icv_len = HASHES[integ][3]
        signed, icv = body[:-icv_len], body[-icv_len:]
        want = hmac.new(sk_a, assoc + signed, HASHES[integ][0]).digest()[:icv_len]
        assert hmac.compare_digest(want, icv), "ICV does not verify"
        dec = Cipher(algorithms.AES(sk_e), modes.CBC(signed[:16])).decryptor()
        padded = dec.update(signed[16:]) + dec.finalize()
    pad = padded[-1]
    return first_inner, padded[:len(padded) - 1 - pad]


def nat_hash(spi_i: bytes, spi_r: bytes, ip: str, port: int) -> bytes:
    """RFC 7296 §2.23: SHA-1(SPIi | SPIr | IP | Port)."""
    return hashlib.sha1(spi_i + spi_r + ipaddress.ip_address(ip).packed
                        + struct.pack("!H", port)).digest()


def psk_auth(hash_name: str, psk: bytes, real_message: bytes, peer_nonce: bytes,
             sk_p: bytes, id_body: bytes) -> bytes:
    """RFC 7296 §2.15: prf(prf(PSK, "Key Pad for IKEv2"), RealMessage | Nonce | prf(SK_p, ID'))."""
    octets = real_message + peer_nonce + prf(hash_name, sk_p, id_body)
    return prf(hash_name, prf(hash_name, psk, b"Key Pad for IKEv2"), octets)


__all__ = [
    "ADDR_A", "ADDR_B", "PSK", "IkePair", "Nat", "Side", "policy_a", "policy_b",
    "seeded_random", "drop_all", "duplicate", "drop_first", "snapshot", "seal_raw",
    "seal_payloads", "prf", "prf_plus", "ike_keys", "child_keys", "open_sk", "nat_hash",
    "psk_auth", "HASHES", "CIPHERS", "State", "replace",
]
