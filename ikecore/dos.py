"""Defences against unauthenticated IKE_SA_INIT traffic (RFC 7296 §2.6).

One DosGuard serves every tunnel of a gateway, so that a flood at one outside
IP counts against the same budget as any other:
- a cap on half-open IKE SAs in total and per source address. The per-source
  cap counts what a source *proved* it can receive at (SAs opened with a valid
  cookie); a source over it that has not is challenged, not dropped. Else
  anyone could lock a customer gateway out by sending a few IKE_SA_INITs with
  its address every 30 s (found by tests/lab/test_hardening.py);
- stateless COOKIE challenges once the half-open count passes a threshold (or
  always, when configured): Cookie = version | HMAC(secret, Ni | IPi | SPIi),
  the secret rotated and the previous one still accepted (§2.6);
- no amplification: an answer to an unauthenticated request is never larger
  than the request, except the IKE_SA_INIT response to a request that returned
  a valid cookie (the peer then proved it receives at its address). The
  responder computes its answer's exact size before any DH work and raises
  CookieRequired (ikecore/exchanges/ike_init.py); the endpoint challenges.

Sans-I/O like the rest of ikecore: time is passed in, randomness injectable.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Callable

COOKIE_MAC_LEN = 16        # 1 version byte + 16 bytes: RFC 7296 §2.6 allows 1..64


@dataclass(frozen=True)
class DosSettings:
    cookie_threshold: int = 16          # half-open SAs (all tunnels) before cookies are asked
    require_cookies: bool = False       # ask every new peer for a cookie
    max_half_open: int = 1024           # all tunnels
    max_half_open_per_source: int = 8
    secret_lifetime: float = 120.0      # seconds before the cookie secret rotates
    max_new_per_second: float = 200.0   # new responder SAs (each costs a DH computation)
    # IKE fragments held for reassembly (RFC 7383) by all SAs together: each SA is
    # limited to one 64 KB message per direction, but 1024 half-open SAs x 64 KB
    # would be 64 MB; 4 MB holds dozens of certificate chains in flight
    max_reassembly_bytes: int = 4 << 20


@dataclass
class DosCounters:
    cookies_sent: int = 0
    cookies_accepted: int = 0
    cookies_rejected: int = 0
    dropped_total_cap: int = 0
    dropped_source_cap: int = 0
    dropped_amplification: int = 0
    dropped_rate: int = 0
    dropped_reassembly_budget: int = 0
    evicted_reassembly: int = 0         # partial messages of others dropped to make room


@dataclass
class DosGuard:
    settings: DosSettings = field(default_factory=DosSettings)
    random_bytes: Callable[[int], bytes] = os.urandom
    counters: DosCounters = field(default_factory=DosCounters)
    _per_source: dict[str, int] = field(default_factory=dict)          # all half-open SAs
    _per_source_proven: dict[str, int] = field(default_factory=dict)   # with a valid cookie
    _total: int = 0
    _secrets: list[tuple[int, bytes]] = field(default_factory=list, repr=False)   # newest first
    _rotated_at: float | None = None
    _tokens: float | None = None
    _tokens_at: float = 0.0
    reassembly_bytes: int = 0
    _holders: OrderedDict = field(default_factory=OrderedDict, repr=False)

    # --- IKE fragment memory (shared budget) ---------------------------------------

    # Each holder is (Reassembler, direction); _holders keeps them least recently
    # grown first. When the budget is full, the partial messages that have waited
    # longest for their next fragment make room (they are dropped; the peer's
    # retransmission starts them over): SAs that hold fragments and send no more
    # (proven half-open SAs of an attacker) cannot keep a customer gateway's
    # certificate chain out, whose fragments arrive back to back.

    def reserve(self, holder, size: int) -> bool:
        """Room for `size` more bytes held by `holder`; False if there is none
        even after evicting every other holder."""
        limit = self.settings.max_reassembly_bytes
        held = self._holders
        while self.reassembly_bytes + size > limit:
            victim = next((h for h in held if h != holder), None)
            if victim is None:
                self.counters.dropped_reassembly_budget += 1
                return False
            self.counters.evicted_reassembly += 1
            victim[0].evict(victim[1])          # calls release(victim)
            if victim in held:                  # an evict that did not release
                self.release(victim)
        self.reassembly_bytes += size
        held[holder] = held.get(holder, 0) + size
        held.move_to_end(holder)
        return True

    def release(self, holder) -> None:
        self.reassembly_bytes = max(0, self.reassembly_bytes - self._holders.pop(holder, 0))

    # --- half-open accounting -------------------------------------------------

    @property
    def half_open(self) -> int:
        return self._total

    def opened(self, source: str, proven: bool = False) -> None:
        self._per_source[source] = self._per_source.get(source, 0) + 1
        if proven:
            self._per_source_proven[source] = self._per_source_proven.get(source, 0) + 1
        self._total += 1

    def closed(self, source: str, proven: bool = False) -> None:
        for table in (self._per_source, self._per_source_proven) if proven else (self._per_source,):
            left = table.get(source, 0) - 1
            if left > 0:
                table[source] = left
            else:
                table.pop(source, None)
        self._total = max(0, self._total - 1)

    # --- admission ---------------------------------------------------------------

    def admit(self, source: str, spi_i: bytes, nonce: bytes, cookie: bytes | None,
              now: float) -> tuple[str, bool]:
        """(verdict, proven): verdict 'accept', 'cookie' (answer with a COOKIE
        challenge) or 'drop'; proven when the request returned a valid cookie."""
        s = self.settings
        if self._total >= s.max_half_open:
            self.counters.dropped_total_cap += 1
            return "drop", False
        if cookie is not None and self.check(cookie, source, spi_i, nonce, now):
            if self._per_source_proven.get(source, 0) >= s.max_half_open_per_source:
                self.counters.dropped_source_cap += 1
                return "drop", False
            self.counters.cookies_accepted += 1
            return self._spend(now), True
        if cookie is not None:
            self.counters.cookies_rejected += 1
        over_source_cap = self._per_source.get(source, 0) >= s.max_half_open_per_source
        if not (s.require_cookies or over_source_cap or self._total >= s.cookie_threshold):
            return self._spend(now), False   # unproven: the answer must not amplify (CookieRequired)
        self.counters.cookies_sent += 1
        return "cookie", False

    def _spend(self, now: float) -> str:
        """A token bucket on new SAs: bounds the DH work a stream of (even
        cookie-proven) requests can cause; one second of burst."""
        rate = self.settings.max_new_per_second
        if self._tokens is None:
            self._tokens, self._tokens_at = rate, now
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens < 1.0:
            self.counters.dropped_rate += 1
            return "drop"
        self._tokens -= 1.0
        return "accept"

    # --- cookies -------------------------------------------------------------------

    def _rotate(self, now: float) -> None:
        if self._rotated_at is None or now - self._rotated_at >= self.settings.secret_lifetime:
            version = (self._secrets[0][0] + 1) % 256 if self._secrets else 0
            self._secrets = [(version, self.random_bytes(32))] + self._secrets[:1]
            self._rotated_at = now

    def _mac(self, secret: bytes, source: str, spi_i: bytes, nonce: bytes) -> bytes:
        data = nonce + ipaddress.ip_address(source).packed + spi_i
        return hmac.new(secret, data, sha256).digest()[:COOKIE_MAC_LEN]

    def make(self, source: str, spi_i: bytes, nonce: bytes, now: float) -> bytes:
        self._rotate(now)
        version, secret = self._secrets[0]
        return bytes([version]) + self._mac(secret, source, spi_i, nonce)

    def check(self, cookie: bytes, source: str, spi_i: bytes, nonce: bytes, now: float) -> bool:
        self._rotate(now)
        if len(cookie) != 1 + COOKIE_MAC_LEN:
            return False
        for version, secret in self._secrets:   # the current and the previous secret
            if cookie[0] == version:
                return hmac.compare_digest(cookie[1:], self._mac(secret, source, spi_i, nonce))
        return False
