"""ESP with AES-CBC and an HMAC (RFC 3602, RFC 2404, RFC 4868): the sealing and
opening of esp.EspSa for "aes-cbc".

One packet at a time (the batch methods of EspSa call these): receive.py hands
packets to ``open``, send.py inner packets to ``seal``.  Each SA keeps one streaming
encryptor and one decryptor for its whole life; esp.py's docstring says why that is
correct CBC and what it saves.
"""

from __future__ import annotations

from hmac import compare_digest  # constant-time compare (C implementation)

from .esp_format import (
    CBC_BLOCK,
    NH_BY_VERSION,
    PAD,
    R_POOL_BLOCKS,
    TRAILER,
    MAX_SEQ,
    DropReason,
    ip_version_of_nh,
    pack_hdr,
)

_from_bytes = int.from_bytes

__all__ = ["CbcCodec"]


class CbcCodec:
    """aes-cbc (RFC 3602) + HMAC (RFC 2404, RFC 4868), encrypt-then-MAC (RFC 4303
    §3.3.2): seal and open for EspSa (esp.py), whose long-lived cipher contexts and
    HMAC (``_enc``, ``_dec``, ``_mac``) they use."""

    __slots__ = ()

    def seal(self, inner):
        seq = self.seq + 1
        if seq > MAX_SEQ:
            return self._drop(DropReason.SEQ_EXHAUSTED)
        n = len(inner)
        try:
            trailers = TRAILER[NH_BY_VERSION[inner[0] >> 4]]
        except (KeyError, IndexError):
            return self._drop(DropReason.NOT_IP)
        self.seq = seq
        pos = self._rpos
        if pos == 0:
            self._rpool = self._rgen.update(bytes(CBC_BLOCK * R_POOL_BLOCKS))
        self._rpos = (pos + CBC_BLOCK) % (CBC_BLOCK * R_POOL_BLOCKS)
        # R | inner | pad | padlen | nh -> IV | ciphertext (module docstring);
        # RFC 3602 §2.4: plaintext padded to the 16-byte block.
        body = self._enc.update(
            self._rpool[pos : pos + CBC_BLOCK] + inner + trailers[-(n + 2) & 15]
        )
        hdr = pack_hdr(self.spi, seq)
        mac = self._mac.copy()
        mac.update(hdr)
        mac.update(body)  # RFC 4303 §2.8: ICV over SPI | seq | IV | ciphertext
        self.packets += 1
        self.bytes += n
        return hdr + body + mac.finalize()[: self._icv_len]

    def open(self, pkt):
        n = len(pkt)
        icv_len = self._icv_len
        end = n - icv_len
        if n < self._min_len or (end - 8) & 15:  # IV + ciphertext: whole blocks
            return self._drop(DropReason.MALFORMED)
        seq = _from_bytes(pkt[4:8], "big")
        replay = self.replay
        # Cheap check before the ICV (RFC 4303 §3.4.3); in-order packets skip the call.
        if seq <= replay.top and not replay.check(seq):
            return self._drop(DropReason.REPLAY)
        mv = memoryview(pkt)
        mac = self._mac.copy()
        mac.update(mv[:end])
        if not compare_digest(mac.finalize()[:icv_len], pkt[end:]):
            return self._drop(DropReason.BAD_ICV)
        if not replay.check_and_update(seq):
            return self._drop(DropReason.REPLAY)
        # Long-lived decryptor: the first output block is garbage (module docstring).
        pt = self._dec.update(mv[8:end])
        pad_len = pt[-2]
        inner_end = len(pt) - 2 - pad_len
        # Inlined fast path of _finish, as in _GcmSa.open.
        if (
            inner_end <= CBC_BLOCK
            or (pad_len and pt[inner_end:-2] != PAD[pad_len])
            or ip_version_of_nh(pt[-1]) != pt[CBC_BLOCK] >> 4
        ):
            return self._finish(pt, CBC_BLOCK)
        inner = pt[CBC_BLOCK:inner_end]
        if self.selectors is not None and not self.selectors.admits(inner):
            return self._drop(DropReason.POLICY)
        self.packets += 1
        self.bytes += inner_end - CBC_BLOCK
        return inner
