"""Two IKE cores back to back in memory, with a synthetic clock.

Modelled on aioquic's connection tests: nothing here opens a socket, reads a
clock or sleeps. A test builds an `IkePair` (side A initiates, side B answers,
as AWS with startup_action start against a responder), then moves datagrams
by hand:

    pair = IkePair(settings_a(), settings_b())
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

For the lifecycle tests: `ScriptedRandom` steers a side's random source (the
uniform value behind the rekey fuzz, the nonces that decide collisions),
`Holder` keeps datagrams back to reorder them, `open_message` decrypts and walks
a message independently (`IkePair.sa_of` finds the keys, also of an SA that is
gone), and `DhRecorder` hands out DH keys whose private values the test knows,
so that g^ir, KEYMAT and a rekeyed SKEYSEED can be recomputed here.
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
from ikecore.settings import IkeSettings
from ikecore.sa import IkeSa
from ikecore.endpoint import IkeEndpoint

ADDR_A = "198.51.100.1"     # side A: vgw that initiates (startup_action start)
ADDR_B = "198.51.100.10"    # side B: vgw as responder
PSK = b"example_psk_abcdef"

Hook = Callable[[list[Datagram]], list[Datagram]]


def seeded_random(seed: int) -> Callable[[int], bytes]:
    """A deterministic `random_bytes` for IkeSettings (reproducible tests)."""
    return random.Random(seed).randbytes


def settings_a(**kw) -> IkeSettings:
    """The initiating side. Fast DH group 19 unless the test says otherwise.

    The test calls initiate() itself; startup_action stays "add" so that the
    endpoint does not also re-initiate on its own after a failure (tests of that
    pass startup_action="start")."""
    args = dict(name="a", local_ip=ADDR_A, remote_ip=ADDR_B, psk=PSK,
                phase1_dh_groups=(19,), random_bytes=seeded_random(1))
    args.update(kw)
    return IkeSettings(**args)


def settings_b(**kw) -> IkeSettings:
    """The responding side."""
    args = dict(name="b", local_ip=ADDR_B, remote_ip=ADDR_A, psk=PSK,
                phase1_dh_groups=(19,), random_bytes=seeded_random(2))
    args.update(kw)
    return IkeSettings(**args)


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
    """One endpoint in the pair, with every event it has produced so far."""

    def __init__(self, name: str, endpoint: IkeEndpoint, nat: Nat | None = None):
        self.name = name
        self.endpoint = endpoint
        self.nat = nat
        self.events: list[Event] = []

    def __repr__(self) -> str:
        return f"<Side {self.name}>"

    @property
    def ip(self) -> str:
        return self.endpoint.settings.local_ip

    @property
    def public_ip(self) -> str:
        return self.nat.public_ip if self.nat else self.ip

    def drain(self) -> None:
        while (ev := self.endpoint.next_event()) is not None:
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
        """Every IKE SA the endpoint holds (established, half-open, negotiating)."""
        return self.endpoint._all()

    @property
    def sa(self) -> IkeSa:
        """The one IKE SA of this side (fails if there is not exactly one)."""
        sas = self.sas
        assert len(sas) == 1, f"{self.name} holds {len(sas)} IKE SAs: {sas}"
        return sas[0]


class IkePair:
    """Side A (initiator) and side B (responder) joined by an in-memory wire."""

    def __init__(self, a: IkeSettings | None = None, b: IkeSettings | None = None,
                 nat_a: Nat | None = None, now: float = 0.0):
        self.a = Side("a", IkeEndpoint(a or settings_a()), nat_a)
        self.b = Side("b", IkeEndpoint(b or settings_b()))
        self.now = now
        # every datagram a side handed out, in order: (sender name, datagram)
        self.wire: list[tuple[str, Datagram]] = []
        self.misrouted: list[Datagram] = []
        # every keyed IKE SA either side ever held, by (SPIi, SPIr): the keys of an
        # SA that is gone still open the datagrams it sent (see sa_of)
        self.known_sas: dict[tuple[bytes, bytes], IkeSa] = {}

    def other(self, side: Side) -> Side:
        return self.b if side is self.a else self.a

    # --- moving datagrams -------------------------------------------------------

    def initiate(self) -> None:
        self.a.endpoint.initiate(self.now)
        self.a.drain()

    def outgoing(self, side: Side) -> list[Datagram]:
        """Take what `side` wants to send now (and record it on the wire)."""
        side.endpoint._collect(self.now)  # output of exchanges started on an SA directly
        self._remember(side)
        out = side.endpoint.datagrams_to_send()
        self.wire.extend((side.name, d) for d in out)
        side.drain()
        return out

    def _remember(self, side: Side) -> None:
        for sa in side.sas:
            if sa.keys is not None and sa.spi_r != bytes(8):
                self.known_sas.setdefault((sa.spi_i, sa.spi_r), sa)

    def sa_of(self, d: Datagram | bytes) -> IkeSa:
        """The IKE SA (of either side, alive or not) a datagram belongs to."""
        data = d.data if isinstance(d, Datagram) else d
        return self.known_sas[(data[:8], data[8:16])]

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
        receiver.endpoint.receive(d.data, dst, src, self.now if now is None else now)
        self._remember(receiver)
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
            side.endpoint._collect(self.now)
            if side.endpoint._out:
                return True
        return False

    def handshake(self, hook: Hook | None = None) -> None:
        self.initiate()
        self.run(hook)

    # --- time ---------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        times = [t for t in (s.endpoint.next_deadline() for s in (self.a, self.b)) if t is not None]
        return min(times) if times else None

    def advance(self, to: float) -> None:
        """Move the clock to `to` and fire whatever timers are due (no transfers)."""
        assert to >= self.now, "time does not go back"
        self.now = to
        for side in (self.a, self.b):
            deadline = side.endpoint.next_deadline()
            if deadline is not None and deadline <= to:
                side.endpoint.handle_timer(to)
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
        side.endpoint.current.start(Liveness(), self.now)

    def delete_child(self, side: Side, spi_in: int) -> None:
        side.endpoint.current.start(DeleteChild(spi_in), self.now)


# --- hooks -------------------------------------------------------------------------------


def drop_all(out: list[Datagram]) -> list[Datagram]:
    return []


def duplicate(out: list[Datagram]) -> list[Datagram]:
    return [d for d in out for _ in (0, 1)]


def nth(n: int, action: str) -> Hook:
    """Drop ("drop") or duplicate ("dup") the n-th datagram (0-based) this hook sees."""
    seen = {"count": 0}

    def hook(out):
        result = []
        for d in out:
            i = seen["count"]
            seen["count"] += 1
            if i == n and action == "drop":
                continue
            result.append(d)
            if i == n and action == "dup":
                result.append(d)
        return result
    return hook


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
             spi_i: bytes, spi_r: bytes, shared: bytes,
             skeyseed: bytes | None = None) -> dict[str, bytes]:
    """SKEYSEED and the seven SK_* keys (RFC 7296 §2.14; RFC 5282 §7.1 salt).
    `skeyseed` overrides prf(Ni | Nr, g^ir), e.g. for a rekeyed IKE SA (§2.18)."""
    _, prf_len, _, _ = HASHES[hash_name]
    _, key_bits, aead = CIPHERS[encr]
    e_len = key_bits // 8 + (4 if aead else 0)
    a_len = 0 if aead else HASHES[integ][2]
    seed = prf(hash_name, ni + nr, shared) if skeyseed is None else skeyseed
    sizes = (prf_len, a_len, a_len, e_len, e_len, prf_len, prf_len)
    names = ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr")
    return dict(zip(names, split(prf_plus(hash_name, seed, ni + nr + spi_i + spi_r, sum(sizes)), sizes)))


def child_keys(hash_name: str, sk_d: bytes, ni: bytes, nr: bytes, encr: str,
               integ: str | None, shared: bytes = b"") -> dict[str, bytes]:
    """KEYMAT = prf+(SK_d, Ni | Nr) for the first CHILD SA (RFC 7296 §2.17), taken
    as initiator->responder encryption, integrity, then responder->initiator.
    With `shared` (PFS in CREATE_CHILD_SA): prf+(SK_d, g^ir (new) | Ni | Nr)."""
    _, key_bits, aead = CIPHERS[encr]
    e_len = key_bits // 8 + (4 if aead else 0)   # RFC 4106 §8.1: key | 4-byte salt
    a_len = 0 if aead else HASHES[integ][2]
    sizes = (e_len, a_len, e_len, a_len)
    names = ("encr_i", "integ_i", "encr_r", "integ_r")
    return dict(zip(names, split(prf_plus(hash_name, sk_d, shared + ni + nr, sum(sizes)), sizes)))


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


# --- steering randomness (rekey times, nonces) ----------------------------------------------


class ScriptedRandom:
    """A `random_bytes` for IkeSettings that a test can steer.

    - Nonces (draws of `nonce_size` bytes) come from the `nonces` queue while it
      holds any (RFC 7296 §2.8.1 collisions are decided by the nonces).
    - With `fraction` set, every draw that is neither an SPI (4 or 8 bytes, RFC
      7296 §3.3.1) nor a nonce (the core's uniform() draws) returns `fraction` as
      a big-endian binary fraction of the draw: b"\x80\x00.." is 0.5 at any width.
    - Everything else comes from a seeded generator.
    """

    def __init__(self, seed: int, fraction: float | None = None, nonce_size: int = 32):
        self._rng = random.Random(seed)
        self.fraction = fraction
        self.nonce_size = nonce_size
        self.nonces: list[bytes] = []
        self.draws: list[int] = []      # sizes drawn, in order

    def __call__(self, n: int) -> bytes:
        self.draws.append(n)
        if n == self.nonce_size and self.nonces:
            return self.nonces.pop(0)
        if self.fraction is not None and n not in (4, 8, self.nonce_size):
            value = min(int(self.fraction * 256 ** n), 256 ** n - 1)
            return value.to_bytes(n, "big")
        return self._rng.randbytes(n)


def nonce(first: int, size: int = 32) -> bytes:
    """A nonce whose first octet decides the comparison of RFC 7296 §2.8.1."""
    return bytes([first]) + bytes([0x55]) * (size - 1)


# --- holding datagrams back (reordering) -------------------------------------------------


class Holder:
    """A hook that keeps back the datagrams `match` selects (all of them until
    `limit` are held), to be delivered later with `release`."""

    def __init__(self, match: Callable[[Datagram], bool], limit: int = 1):
        self.match = match
        self.limit = limit
        self.held: list[Datagram] = []

    def __call__(self, out: list[Datagram]) -> list[Datagram]:
        kept = []
        for d in out:
            if len(self.held) < self.limit and self.match(d):
                self.held.append(d)
            else:
                kept.append(d)
        return kept

    def release(self, pair: "IkePair", receiver: Side) -> int:
        held, self.held = self.held, []
        self.limit = 0
        return sum(pair.deliver(receiver, d) for d in held)


# --- reading IKE messages independently (RFC 7296 §3) ---------------------------------------

# RFC 7296 §3.1 exchange types, §3.2 payload types, §3.10.1 notify types (IANA registry)
EXCHANGES = {"IKE_SA_INIT": 34, "IKE_AUTH": 35, "CREATE_CHILD_SA": 36, "INFORMATIONAL": 37}
PAYLOADS = {"SA": 33, "KE": 34, "IDi": 35, "IDr": 36, "AUTH": 39, "Ni": 40, "N": 41, "D": 42,
            "TSi": 44, "TSr": 45, "SK": 46}
NOTIFIES = {"INVALID_SYNTAX": 7, "NO_PROPOSAL_CHOSEN": 14, "INVALID_KE_PAYLOAD": 17,
            "NO_ADDITIONAL_SAS": 35, "TEMPORARY_FAILURE": 43, "CHILD_SA_NOT_FOUND": 44,
            "REKEY_SA": 16393}
FLAG_I, FLAG_R = 0x08, 0x20   # §3.1


def exchange_of(d: Datagram | bytes) -> int:
    data = d.data if isinstance(d, Datagram) else d
    return data[18]


def is_response(d: Datagram | bytes) -> bool:
    data = d.data if isinstance(d, Datagram) else d
    return bool(data[19] & FLAG_R)


def is_request(exchange: str) -> Callable[[Datagram], bool]:
    """A predicate for Holder / filters: a request of the named exchange."""
    return lambda d: exchange_of(d) == EXCHANGES[exchange] and not is_response(d)


def is_answer(exchange: str) -> Callable[[Datagram], bool]:
    return lambda d: exchange_of(d) == EXCHANGES[exchange] and is_response(d)


@dataclass
class Opened:
    """One decrypted message, its payloads as (type, body) in order."""

    spi_i: bytes
    spi_r: bytes
    exchange: int
    flags: int
    message_id: int
    payloads: list[tuple[int, bytes]]

    @property
    def response(self) -> bool:
        return bool(self.flags & FLAG_R)

    def bodies(self, name: str) -> list[bytes]:
        return [b for t, b in self.payloads if t == PAYLOADS[name]]

    def body(self, name: str) -> bytes | None:
        found = self.bodies(name)
        return found[0] if found else None

    @property
    def types(self) -> list[int]:
        return [t for t, _ in self.payloads]

    def notifies(self) -> list[tuple[int, int, bytes, bytes]]:
        """(notify type, protocol, SPI, data) per Notify payload (§3.10)."""
        out = []
        for b in self.bodies("N"):
            proto, spi_size, ntype = struct.unpack("!BBH", b[:4])
            out.append((ntype, proto, b[4:4 + spi_size], b[4 + spi_size:]))
        return out

    def notify_types(self) -> list[int]:
        return [n[0] for n in self.notifies()]

    def ke(self) -> tuple[int, bytes] | None:
        """(DH group, key exchange data) of the KE payload (§3.4)."""
        b = self.body("KE")
        return None if b is None else (struct.unpack("!H", b[:2])[0], b[4:])

    def nonce(self) -> bytes | None:
        return self.body("Ni")

    def proposals(self) -> list[dict]:
        """The proposals of the SA payload (§3.3): num, protocol, spi, transforms
        as (type, id, key length or None)."""
        b = self.body("SA")
        out, pos = [], 0
        while b is not None and pos < len(b):
            _, _, plen, num, proto, spi_size, _ = struct.unpack("!BBHBBBB", b[pos:pos + 8])
            spi = b[pos + 8:pos + 8 + spi_size]
            tpos, transforms = pos + 8 + spi_size, []
            while tpos < pos + plen:
                _, _, tlen, ttype, _, tid = struct.unpack("!BBHBBH", b[tpos:tpos + 8])
                keylen = None
                if tlen >= 12 and struct.unpack("!H", b[tpos + 8:tpos + 10])[0] == 0x800E:
                    keylen = struct.unpack("!H", b[tpos + 10:tpos + 12])[0]  # §3.3.5
                transforms.append((ttype, tid, keylen))
                tpos += tlen
            out.append({"num": num, "protocol": proto, "spi": spi, "transforms": transforms})
            pos += plen
        return out

    def deletes(self) -> list[tuple[int, list[bytes]]]:
        """(protocol, SPIs) per Delete payload (§3.11)."""
        out = []
        for b in self.bodies("D"):
            proto, spi_size, count = struct.unpack("!BBH", b[:4])
            out.append((proto, [b[4 + i * spi_size:4 + (i + 1) * spi_size] for i in range(count)]))
        return out


def walk_payloads(first: int, data: bytes) -> list[tuple[int, bytes]]:
    """The generic payload chain (RFC 7296 §3.2)."""
    out, pos, nxt = [], 0, first
    while nxt != 0:
        following, _, length = struct.unpack("!BBH", data[pos:pos + 4])
        out.append((nxt, data[pos + 4:pos + length]))
        pos += length
        nxt = following
    assert pos == len(data), "bytes after the last payload"
    return out


def open_message(sa: IkeSa, data: bytes | Datagram) -> Opened:
    """Decrypt an SK-protected message of `sa`'s IKE SA with the independent
    crypto above (the keys are those both sides hold; which pair protects the
    message follows the I flag, §2.14) and walk its payloads."""
    data = data.data if isinstance(data, Datagram) else data
    spi_i, spi_r, _, _, exch, flags, mid, length = struct.unpack("!8s8sBBBBII", data[:28])
    assert length == len(data)
    from ikecore.transforms import integ_name
    encr, integ = sa.suite.encr.aws_name, integ_name(sa.suite.integ)
    k = sa.keys
    sk_e, sk_a = (k.sk_ei, k.sk_ai) if flags & FLAG_I else (k.sk_er, k.sk_ar)
    first, inner = open_sk(data, encr, integ, sk_e, sk_a)
    return Opened(spi_i, spi_r, exch, flags, mid, walk_payloads(first, inner))


# --- Diffie-Hellman with private values the test knows ---------------------------------------


class DhRecorder:
    """Stands in for `get_dh_group` in an exchange module (monkeypatch): every key
    it hands out is made from a private value drawn here, recorded in `keys` as
    (group, private value, public KE data), so a test can compute g^ir itself."""

    def __init__(self, real, seed: int = 7):
        self.real = real
        self.rng = random.Random(seed)
        self.keys: list[tuple[int, int, bytes]] = []

    def __call__(self, group_id):
        group, recorder = self.real(group_id), self

        class _Group:
            id = group.id
            public_size = group.public_size

            def check_public(self, data):
                return group.check_public(data)

            def generate(self):
                x = recorder.rng.getrandbits(150) | (1 << 149)
                key = group.from_private_int(x)
                recorder.keys.append((int(group.id), x, key.public_bytes))
                return key
        return _Group()

    def private_for(self, public: bytes) -> tuple[int, int]:
        for group, x, pub in self.keys:
            if pub == public:
                return group, x
        raise KeyError("no recorded key with that public value")


def ecp_shared_secret(group: int, x: int, peer_public: bytes) -> bytes:
    """g^ir for the ECP groups of RFC 5903 computed with `cryptography` alone: the
    KE data is x | y without the 0x04 prefix, the secret is the x coordinate (§7)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    curve = {19: ec.SECP256R1(), 20: ec.SECP384R1(), 21: ec.SECP521R1()}[group]
    mine = ec.derive_private_key(x, curve)
    theirs = ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + peer_public)
    return mine.exchange(ec.ECDH(), theirs)


__all__ = [
    "ADDR_A", "ADDR_B", "PSK", "IkePair", "Nat", "Side", "settings_a", "settings_b",
    "seeded_random", "drop_all", "duplicate", "drop_first", "snapshot", "seal_raw",
    "seal_payloads", "prf", "prf_plus", "ike_keys", "child_keys", "open_sk", "nat_hash",
    "psk_auth", "HASHES", "CIPHERS", "replace",
    "ScriptedRandom", "nonce", "Holder", "EXCHANGES", "PAYLOADS", "NOTIFIES", "exchange_of",
    "is_response", "is_request", "is_answer", "Opened", "walk_payloads", "open_message",
    "DhRecorder", "ecp_shared_secret",
]
