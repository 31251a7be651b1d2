"""ESP with AES-GCM-16 (RFC 4106): the sealing and opening of esp.EspSa for "aes-gcm-16".

Inbound, a run of packets of one SA comes from receive.py and is opened here in one
``open_spans`` call; what passes goes back to receive.py for the TUN.  Outbound,
send.py hands a batch of inner packets to ``seal_batch``.  Nonce = salt | IV, the IV
being the 64-bit sequence number (RFC 4106 §3.1, §4); AAD = SPI | sequence number
(RFC 4106 §5).  Why the code looks the way it does: esp.py's docstring.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag

from .esp_format import (
    GCM_ICV,
    GCM_IV,
    PAD,
    TRAILERS_BY_VERSION,
    VERSION_BY_NH,
    MAX_SEQ,
    DropReason,
    ip_version_of_nh,
    pack_hdr,
    pack_iv64,
)

_from_bytes = int.from_bytes

__all__ = ["GcmCodec"]


class GcmCodec:
    """aes-gcm-16 (RFC 4106): seal and open for EspSa (esp.py), whose attributes
    (``_aead``, ``_salt``, ``replay``, counters) they use."""

    __slots__ = ()

    def seal(self, inner):
        seq = self.seq + 1
        if seq > MAX_SEQ:
            return self._drop(DropReason.SEQ_EXHAUSTED)
        n = len(inner)
        trailers = TRAILERS_BY_VERSION[inner[0] >> 4] if n else None
        if trailers is None:
            return self._drop(DropReason.NOT_IP)
        self.seq = seq
        hdr = pack_hdr(self.spi, seq)
        iv = pack_iv64(seq)  # RFC 4106 §3.1: the counter as IV
        # RFC 4303 §2.4: ciphertext ends on a 4-byte boundary.
        ct = self._aead.encrypt(self._salt + iv, inner + trailers[-(n + 2) & 3], hdr)
        self.packets += 1
        self.bytes += n
        return hdr + iv + ct

    def seal_batch(self, inners):
        # seal() for a list, with the per-packet attribute lookups and the method
        # call hoisted out of the per-packet code (the data path reads the TUN in batches)
        self.last_drop = None
        out = []
        add = out.append
        seq = self.seq
        spi = self.spi
        salt = self._salt
        encrypt = self._aead.encrypt
        by_version = TRAILERS_BY_VERSION
        pack_spi_seq = pack_hdr
        pack_iv = pack_iv64
        nbytes = 0
        for inner in inners:
            n = len(inner)
            trailers = by_version[inner[0] >> 4] if n else None
            if trailers is None:
                self._drop(DropReason.NOT_IP)
                continue
            if seq >= MAX_SEQ:
                self._drop(DropReason.SEQ_EXHAUSTED)
                continue
            seq += 1
            hdr = pack_spi_seq(spi, seq)
            iv = pack_iv(seq)  # RFC 4106 §3.1: the counter as IV
            # RFC 4303 §2.4: ciphertext ends on a 4-byte boundary.
            add(hdr + iv + encrypt(salt + iv, inner + trailers[-(n + 2) & 3], hdr))
            nbytes += n
        self.seq = seq
        self.packets += len(out)
        self.bytes += nbytes
        return out

    def open_batch(self, pkts):
        bufs, ends = self.open_spans(pkts)
        return [b[:e] for b, e in zip(bufs, ends)]

    def open_spans(self, pkts):
        # open() for a list (a run of one SA), lookups hoisted out of the per-packet
        # code; the same checks in the same order.  A plaintext is returned whole:
        # the inner packet is its start (GCM has no IV block in front of it).
        self.last_drop = None
        out = []
        add = out.append
        ends = []
        add_end = ends.append
        replay = self.replay
        decrypt = self._aead.decrypt
        salt = self._salt
        min_len = self._min_len
        pad = PAD
        version_by_nh = VERSION_BY_NH
        drop = self._drop
        selectors = self.selectors
        packets = nbytes = 0
        for pkt in pkts:
            n = len(pkt)
            if n < min_len or (n - 8 - GCM_IV - GCM_ICV) & 3:
                drop(DropReason.MALFORMED)
                continue
            seq = _from_bytes(pkt[4:8], "big")
            if seq <= replay.top and not replay.check(seq):
                drop(DropReason.REPLAY)
                continue
            try:
                pt = decrypt(salt + pkt[8:16], pkt[16:], pkt[:8])
            except InvalidTag:
                drop(DropReason.BAD_ICV)
                continue
            if not replay.check_and_update(seq):
                drop(DropReason.REPLAY)
                continue
            pad_len = pt[-2]
            end = len(pt) - 2 - pad_len
            if end <= 0 or (pad_len and pt[end:-2] != pad[pad_len]) or version_by_nh.get(pt[-1]) != pt[0] >> 4:
                inner = self._finish(pt, 0)  # counts what it passes
                if inner is not None:
                    add(inner)
                    add_end(len(inner))
                continue
            if selectors is not None and not selectors.admits(pt):
                drop(DropReason.POLICY)
                continue
            packets += 1
            nbytes += end
            add(pt)
            add_end(end)
        self.packets += packets
        self.bytes += nbytes
        return out, ends

    def open(self, pkt):
        n = len(pkt)
        # RFC 4303 §2.4: the ciphertext (between IV and ICV) is a multiple of 4.
        if n < self._min_len or (n - 8 - GCM_IV - GCM_ICV) & 3:
            return self._drop(DropReason.MALFORMED)
        seq = _from_bytes(pkt[4:8], "big")
        replay = self.replay
        # Cheap check before the ICV (RFC 4303 §3.4.3); in-order packets skip the call.
        if seq <= replay.top and not replay.check(seq):
            return self._drop(DropReason.REPLAY)
        try:
            # RFC 4106 §4: nonce = salt | IV; §5: AAD = SPI | seq.
            pt = self._aead.decrypt(self._salt + pkt[8:16], pkt[16:], pkt[:8])
        except InvalidTag:
            return self._drop(DropReason.BAD_ICV)
        if not replay.check_and_update(seq):  # again, now that it is authentic
            return self._drop(DropReason.REPLAY)
        # Inlined fast path of _finish (saves ~100 ns a packet); anything unusual
        # goes to _finish for the precise reason.
        pad_len = pt[-2]
        end = len(pt) - 2 - pad_len
        if end <= 0 or (pad_len and pt[end:-2] != PAD[pad_len]) or ip_version_of_nh(pt[-1]) != pt[0] >> 4:
            return self._finish(pt, 0)
        if self.selectors is not None and not self.selectors.admits(pt):
            return self._drop(DropReason.POLICY)
        self.packets += 1
        self.bytes += end
        return pt[:end]
