"""The outside sockets of one local address: UDP 4500 (RFC 3948) and raw ESP.

An ESP packet enters and leaves vgw here.  ``OutsideSockets`` holds, for one of the
host's outside addresses (a tunnel's outside IP), the UDP socket that carries IKE and
ESP-in-UDP on port 4500 and, unless turned off, a raw IP protocol 50 socket for ESP
without NAT.  What is read from them goes to receive.py; send.py writes to them.

Both sockets are non-blocking (the data path reads until EAGAIN), get 4 MB buffers
(bursts at line rate) and send with DF clear.  The UDP socket uses UDP GSO
(UDP_SEGMENT, Linux 4.18: a run of equal-sized datagrams in one sendmsg) and UDP GRO
(UDP_GRO, Linux 5.0: a run of one flow's datagrams in one recvmsg) where the kernel
has them; per packet, syscalls cost more than the crypto.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

from . import encap

__all__ = ["OutsideSockets", "open_outside_sockets", "gro_segment_size", "GRO_CMSG_SPACE", "UDP_SEGMENT"]

_RCVBUF = 4 << 20
_SNDBUF = 4 << 20
IPPROTO_ESP = 50
SO_NO_CHECK = 11  # linux/asm-generic/socket.h
UDP_SEGMENT = 103  # linux/udp.h: UDP GSO (Linux 4.18)
UDP_GRO = 104  # linux/udp.h: receive coalesced datagrams (Linux 5.0)
GRO_CMSG_SPACE = socket.CMSG_SPACE(4)  # the kernel reports gso_size as an int
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT = getattr(socket, "IP_PMTUDISC_DONT", 0)


class OutsideSockets:
    """UDP (port 4500 by default) and raw ESP sockets of one local outside address,
    and which tunnels use it (drops on it are charged to ``owner`` if just one)."""

    __slots__ = ("local_ip", "port", "family", "udp", "raw", "tunnels", "owner", "gso", "gso_limit", "gro")

    def __init__(
        self, local_ip: str, port: int, family: int, udp, raw, gso: bool = False, gro: bool = False
    ) -> None:
        self.gro = gro  # UDP GRO enabled: recvmsg may return several datagrams at once
        self.gso = gso  # UDP GSO (UDP_SEGMENT) usable on the UDP socket
        self.gso_limit = 65535  # largest segment size known to pass (lowered on EMSGSIZE)
        self.local_ip = local_ip
        self.port = port
        self.family = family
        self.udp = udp
        self.raw = raw
        self.tunnels: set[str] = set()
        self.owner = None  # the TunBinding of the one tunnel using this address, if just one

    @property
    def local_addr(self) -> tuple[str, int]:
        return (self.local_ip, self.port)

    def close(self) -> None:
        for s in (self.udp, self.raw):
            if s is not None:
                s.close()

    def __repr__(self) -> str:
        return f"OutsideSockets({self.local_ip}:{self.port}, raw_esp={self.raw is not None})"


def open_outside_sockets(local_ip: str, port: int = encap.NAT_T_PORT, raw_esp: bool = True,
                         gso: bool = True, gro: bool = True) -> OutsideSockets:
    """Bind UDP ``local_ip:port`` (and a raw ESP socket on ``local_ip`` if ``raw_esp``).
    ``gso``/``gro``: use UDP GSO/GRO if the kernel has them."""
    family = socket.AF_INET6 if ipaddress.ip_address(local_ip).version == 6 else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    raw = None
    try:
        udp.setblocking(False)
        _tune(udp, family)
        gso = gso and _probe_gso(udp)
        gro = gro and _enable_gro(udp)
        if not gso and family == socket.AF_INET:
            # RFC 3948 §2.1: the UDP checksum SHOULD be sent as zero.  But the
            # kernel refuses GSO sends without a checksum (EINVAL), and GSO saves
            # ~2.3 us per packet, so the zero checksum is only used without GSO;
            # receivers MUST NOT depend on it being zero (same section).
            try:
                udp.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
            except OSError:
                pass
        try:
            udp.bind((local_ip, port))
        except OSError as e:
            raise OSError(e.errno, f"cannot bind UDP {local_ip}:{port}: {e.strerror} "
                          "(is another IKE daemon running, or is the address not on this host?)") from None
        if raw_esp:
            raw = socket.socket(family, socket.SOCK_RAW, IPPROTO_ESP)
            raw.setblocking(False)
            _tune(raw, family)
            raw.bind((local_ip, 0))
    except BaseException:
        udp.close()
        if raw is not None:
            raw.close()
        raise
    return OutsideSockets(local_ip, udp.getsockname()[1], family, udp, raw, gso, gro)


def gro_segment_size(ancdata: list) -> int:
    """The segment size of a UDP GRO run from recvmsg's ancillary data (0: one datagram)."""
    return int.from_bytes(ancdata[0][2][:4], sys.byteorder) if ancdata else 0


def _enable_gro(sock: socket.socket) -> bool:
    try:
        sock.setsockopt(socket.SOL_UDP, UDP_GRO, 1)
        return True
    except OSError:
        return False


def _probe_gso(sock: socket.socket) -> bool:
    """True if the kernel knows UDP_SEGMENT (setting the socket default 0 = off)."""
    try:
        sock.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 0)
        return True
    except OSError:
        return False


def _tune(sock: socket.socket, family: int) -> None:
    """Big buffers (bursts at line rate) and DF clear on the outer packets: AWS VPN
    does not do Path MTU Discovery and clears DF (docs/aws.md §4.2)."""
    for opt, force, size in ((socket.SO_RCVBUF, 33, _RCVBUF), (socket.SO_SNDBUF, 32, _SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)  # SO_RCVBUFFORCE/SO_SNDBUFFORCE (root)
        except OSError:
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, size)
            except OSError:
                pass
    if family == socket.AF_INET:
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
        except OSError:
            pass
