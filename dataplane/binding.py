"""One tunnel's TUN device bound to its ESP SAs: the record both packet paths share.

The daemon's tunnel (one AWS tunnel: IKE, routes, status) owns one TUN device; the
data path binds that device to the tunnel's SAs: packets read from the TUN leave on
``out_sa`` (send.py), ESP opened by one of the ``inbound`` SAs is written to the TUN
(receive.py).  The binding also keeps what must survive a rekey: counters of retired
SAs (so totals never go back), drops, and when authentic ESP last arrived (DPD),
and the tunnel's emulated limits: a token bucket per direction, or None (limits.py).
"""

from __future__ import annotations

from .accounting import add_counts, named_counts, new_counts
from .esp import EspSa
from .limits import TokenBucket, TunnelLimits
from .offload import Gro

__all__ = ["TunBinding", "PEER_MOVE_INTERVAL"]

#: Authenticated ESP from a new address is reported at most this often per tunnel
#: (seconds): packets still in flight from the old NAT mapping must not swing the
#: tunnel back.
PEER_MOVE_INTERVAL = 1.0


class TunBinding:
    """The TUN device of tunnel ``id`` and the SAs bound to it, with its counters.

    Outbound: ``out_sa`` seals, ``out_send(packet, out_addr)`` sends (the bound
    ``sendto`` of ``out_sockets.udp`` or ``.raw``; ``out_udp`` says which).
    Inbound: ``inbound`` maps SPI -> EspSa (the DataPath's SPI table points here).
    Limits: ``limit_in`` and ``limit_out`` are the TokenBuckets of each direction,
    both None when the tunnel has no limits (the packet paths test them per batch)."""

    __slots__ = (
        "id", "tun", "fd", "out_sa", "out_send", "out_addr", "out_sockets", "out_udp",
        "inbound", "drops", "last_in",
        "old_in_packets", "old_in_bytes", "old_out_packets", "old_out_bytes", "reader",
        "vnet", "gro", "moved_at", "limits", "limit_in", "limit_out",
    )

    def __init__(self, tunnel_id: str, tun) -> None:
        self.id = tunnel_id
        self.tun = tun
        self.fd = tun.fd
        self.out_sa: EspSa | None = None
        self.out_send = None  # bound sendto of the socket to use
        self.out_addr = None  # its destination
        self.out_sockets = None  # the OutsideSockets it belongs to
        self.out_udp = False
        self.inbound: dict[int, EspSa] = {}
        # Drops counted by the data path and folded in from retired SAs, by reason.
        self.drops = new_counts()
        self.last_in: float | None = None
        # Counters of SAs no longer installed (rekeyed away), so totals never go back.
        self.old_in_packets = self.old_in_bytes = 0
        self.old_out_packets = self.old_out_bytes = 0
        self.reader = False  # registered with the asyncio loop
        # IFF_VNET_HDR: reads start with a virtio_net_hdr, writes go through GRO.
        self.vnet = bool(getattr(tun, "vnet_hdr", False))
        self.gro: Gro | None = Gro(uso=bool(getattr(tun, "uso", False))) if self.vnet else None
        self.moved_at = -PEER_MOVE_INTERVAL  # when ESP from a new peer address was last reported
        self.limits: TunnelLimits | None = None
        self.limit_in: TokenBucket | None = None
        self.limit_out: TokenBucket | None = None

    def set_limits(self, limits: TunnelLimits | None, now: float) -> None:
        """Enforce ``limits`` from now on (None: none).  The same limits again keep
        the buckets as they are; new ones start full."""
        if limits == self.limits:
            return
        self.limits = limits
        self.limit_in = None if limits is None else TokenBucket(limits, now)
        self.limit_out = None if limits is None else TokenBucket(limits, now)

    def set_out(self, sa: EspSa, send, addr: tuple, sockets, udp: bool) -> None:
        if self.out_sa is not None and self.out_sa is not sa:
            self._retire_out()
        self.out_sa, self.out_send, self.out_addr, self.out_sockets, self.out_udp = sa, send, addr, sockets, udp

    def clear_out(self) -> None:
        if self.out_sa is not None:
            self._retire_out()
        self.out_sa = self.out_send = self.out_addr = self.out_sockets = None
        self.out_udp = False

    def retire_in(self, sa: EspSa) -> None:
        """``sa`` no longer receives for this tunnel: keep its counts."""
        if self.inbound.get(sa.spi) is sa:
            del self.inbound[sa.spi]
        self.old_in_packets += sa.packets
        self.old_in_bytes += sa.bytes
        add_counts(self.drops, sa.drops)

    def _retire_out(self) -> None:
        sa = self.out_sa
        self.old_out_packets += sa.packets
        self.old_out_bytes += sa.bytes
        add_counts(self.drops, sa.drops)

    def stats(self) -> dict:
        """Inner bytes/packets (AWS TunnelDataIn after decryption, TunnelDataOut before
        encryption), drops by reason, last authenticated inbound time."""
        drops = list(self.drops)
        pin, bin_ = self.old_in_packets, self.old_in_bytes
        for sa in self.inbound.values():
            pin += sa.packets
            bin_ += sa.bytes
            add_counts(drops, sa.drops)
        pout, bout = self.old_out_packets, self.old_out_bytes
        if self.out_sa is not None:
            pout += self.out_sa.packets
            bout += self.out_sa.bytes
            add_counts(drops, self.out_sa.drops)
        return {
            "packets_in": pin,
            "bytes_in": bin_,
            "packets_out": pout,
            "bytes_out": bout,
            "drops": named_counts(drops),
            "last_inbound": self.last_in,
            "inbound_spis": sorted(self.inbound),
            "outbound_spi": None if self.out_sa is None else self.out_sa.spi,
            # what rate_limit dropped in each direction since these limits were set
            "limits": None if self.limits is None else {
                **self.limits.as_dict(), "dropped_in": self.limit_in.dropped, "dropped_out": self.limit_out.dropped},
        }
