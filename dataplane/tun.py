"""TUN devices: the tunnel's inside interface (one per AWS tunnel, carrying its /30).

The device is made with the TUNSETIFF ioctl on /dev/net/tun (linux
Documentation/networking/tuntap.rst); addresses, MTU and link state go through
netlink (pyroute2).  Both act on the network namespace the process is in.

IFF_NO_PI: every read/write is exactly one IP packet, with no 4-byte packet-info
header, which is what ESP tunnel mode carries (RFC 4303 §2.6: the inner IP packet).
The fd is non-blocking so the data path can read until EAGAIN.

``vnet_hdr=True`` adds IFF_VNET_HDR: every read and write then starts with a 10-byte
``struct virtio_net_hdr`` (dataplane/offload.py), which lets the data path write
GRO super-packets (TCP, and UDP where the kernel has TUN USO, Linux 6.2).
``tso=True`` also advertises checksum offload and TSO4 (TUNSETOFFLOAD), so reads may
be TCP super-packets of up to 64 KB, cut into segments before encryption.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import ipaddress
import logging
import os
import struct
import threading

from pyroute2 import IPRoute

__all__ = ["TunDevice", "DEFAULT_MTU", "IFNAMSIZ", "loosen_rp_filter"]

log = logging.getLogger("vgw.tun")

#: Where the sysctls are; the functions below take it as a parameter (tests).
PROC_SYS = "/proc/sys"

TUNSETIFF = 0x400454CA  # _IOW('T', 202, int)
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUNSETOFFLOAD = 0x400454D0  # _IOW('T', 208, unsigned int)
TUNSETVNETHDRSZ = 0x400454D8  # _IOW('T', 216, int)
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40
IFNAMSIZ = 16  # including the NUL: names are at most 15 characters

#: AWS generated configs set "Tunnel interface MTU: 1436" (docs/aws.md §4.2).
DEFAULT_MTU = 1436
#: Packets the kernel queues for us to read (the TUN default is 500).  When the
#: daemon is descheduled for a few ms on a busy machine, 500 packets overflow at
#: 140,000 packets/s; measured vgw <-> vgw, UDP 64 B offered at ~155,000/s: 500 -> 35 %
#: loss at the TUN, 2000 -> 1.8 %, 5000 -> 0.5 %.  2000 bounds the queueing delay a
#: bulk TCP flow can build up to ~15 ms at 1.5 Gbit/s.
DEFAULT_TXQUEUELEN = 2000


def _netlink(fn):
    """Run ``fn(ipr)`` with a fresh IPRoute, and return its result.

    pyroute2 0.9's synchronous IPRoute drives an asyncio loop of its own and fails
    with "This event loop is already running" when called from a coroutine or an
    asyncio callback.  Then the call runs in a short-lived thread: a new thread
    starts in the network namespace of the thread that creates it (namespaces are
    per thread; clone copies them), so the device is still looked up in ours."""

    def call():
        with IPRoute() as ipr:
            return fn(ipr)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call()
    box: dict = {}

    def worker():
        try:
            box["result"] = call()
        except BaseException as e:  # re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=worker, name="vgw-netlink", daemon=True)
    t.start()
    t.join(timeout=10)
    if t.is_alive():
        raise TimeoutError("netlink request did not complete within 10 s")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _read_sysctl(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _write_sysctl(path: str, value: int) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def loosen_rp_filter(ifname: str, proc_sys: str = PROC_SYS) -> bool:
    """Set net.ipv4.conf.<ifname>.rp_filter=2 (loose reverse-path filtering,
    RFC 3704 §2.4); True if set.

    AWS accepts ingress on both tunnels while egress uses the primary only
    (docs/aws.md §1.1, §7): a packet decrypted on the other TUN comes from a
    prefix routed out of the primary, and strict filtering (rp_filter=1, RFC 3704
    §2.2, the default of many distributions) drops it. The kernel filters with
    max(conf.all, conf.<dev>), so 2 on the device gives loose mode whatever `all`
    says. A container's /proc/sys is often read-only: then warn (only if the
    effective mode is strict or unknown), don't fail."""
    conf = os.path.join(proc_sys, "net", "ipv4", "conf")
    try:
        _write_sysctl(os.path.join(conf, ifname, "rp_filter"), 2)
        return True
    except OSError as exc:
        modes = [_read_sysctl(os.path.join(conf, dev, "rp_filter")) for dev in ("all", ifname)]
        effective = None if None in modes else max(m for m in modes if m is not None)
        if effective not in (0, 2):
            log.warning("cannot set net.ipv4.conf.%s.rp_filter=2 (%s); reverse-path filtering is %s, so the"
                        " kernel may drop packets arriving on a tunnel that is not the primary (AWS accepts"
                        " ingress on both): set net.ipv4.conf.default.rp_filter=2 (before vgw starts) or"
                        " net.ipv4.conf.all.rp_filter=2", ifname, exc,
                        "strict (1)" if effective == 1 else "unknown")
        return False


def _set_offload(fd: int, flags: int) -> bool:
    """TUNSETOFFLOAD; False if the kernel refuses these flags (e.g. USO before 6.2)."""
    try:
        fcntl.ioctl(fd, TUNSETOFFLOAD, flags)
        return True
    except OSError:
        return False


class TunDevice:
    """One TUN interface owned by this process; ``close()`` removes it."""

    def __init__(self, fd: int, name: str, ifindex: int, vnet_hdr: bool = False,
                 uso: bool = False, tso: bool = False) -> None:
        self.fd = fd
        self.name = name
        self.ifindex = ifindex
        self.vnet_hdr = vnet_hdr  # reads and writes carry a virtio_net_hdr
        self.uso = uso  # the kernel takes UDP GSO (GSO_UDP_L4) super-packets from us
        self.tso = tso  # reads may be TCP super-packets or have partial checksums

    @classmethod
    def create(cls, name: str, mtu: int = DEFAULT_MTU, vnet_hdr: bool = False,
               tso: bool = False, txqueuelen: int | None = None) -> "TunDevice":
        """Create TUN device ``name`` (IFF_TUN | IFF_NO_PI, non-blocking fd) with ``mtu``;
        ``vnet_hdr``/``tso``: offloads, see the module docstring."""
        if not name or len(name.encode()) >= IFNAMSIZ or "/" in name or " " in name:
            raise ValueError(
                f"TUN device name {name!r} must be 1..{IFNAMSIZ - 1} characters without '/' or spaces"
            )
        if not 68 <= mtu <= 65535:  # RFC 791: every IPv4 link carries 68 bytes
            raise ValueError(f"MTU {mtu} out of range 68..65535")
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
            ifr = struct.pack(f"{IFNAMSIZ}sH", name.encode(), flags)
            try:
                fcntl.ioctl(fd, TUNSETIFF, ifr)
            except OSError as e:
                if e.errno == errno.EBUSY:
                    raise OSError(e.errno, f"TUN device {name!r} already exists and is in use") from None
                if e.errno == errno.EPERM:
                    raise OSError(e.errno, f"creating TUN device {name!r} needs CAP_NET_ADMIN") from None
                raise
            uso = False
            if vnet_hdr:
                fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", 10))
                uso = _set_offload(fd, TUN_F_CSUM | TUN_F_USO4 | TUN_F_USO6)
                # What the kernel may hand us on reads: plain packets unless tso.
                _set_offload(fd, TUN_F_CSUM | TUN_F_TSO4 | (TUN_F_USO4 | TUN_F_USO6 if uso else 0)
                             if tso else 0)
            else:
                tso = False

            def setup(ipr):
                idx = ipr.link_lookup(ifname=name)
                if not idx:
                    raise OSError(errno.ENODEV, f"TUN device {name!r} vanished after creation")
                if txqueuelen:
                    ipr.link("set", index=idx[0], mtu=mtu, txqlen=txqueuelen)
                else:
                    ipr.link("set", index=idx[0], mtu=mtu)
                return idx[0]

            ifindex = _netlink(setup)
        except BaseException:
            os.close(fd)
            raise
        # ingress on both tunnels (docs/aws.md §1.1): see loosen_rp_filter
        loosen_rp_filter(name)
        return cls(fd, name, ifindex, vnet_hdr, uso, tso)

    def add_address(self, cidr: str) -> None:
        """Add an address such as "169.254.10.1/30" (IPv4 or IPv6 with prefix length)."""
        iface = ipaddress.ip_interface(cidr)
        _netlink(
            lambda ipr: ipr.addr(
                "add", index=self.ifindex, address=str(iface.ip), prefixlen=iface.network.prefixlen
            )
        )

    def up(self) -> None:
        _netlink(lambda ipr: ipr.link("set", index=self.ifindex, state="up"))

    def disable_ipv6(self) -> None:
        """Turn IPv6 off on the device, for IPv4-only inside addresses.

        Otherwise the kernel sends router solicitations and MLD reports into the
        tunnel as soon as it is up: traffic AWS's end never sends, which would also
        show in the counters.  /proc/sys/net is that of the caller's namespace."""
        with open(f"/proc/sys/net/ipv6/conf/{self.name}/disable_ipv6", "w") as f:
            f.write("1")

    def close(self) -> None:
        """Close the fd and delete the device (idempotent).

        A non-persistent TUN disappears with its last fd; deleting by index as well
        covers an fd inherited by a child process."""
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        os.close(fd)

        def delete(ipr):
            if ipr.link_lookup(ifname=self.name) == [self.ifindex]:
                ipr.link("del", index=self.ifindex)

        try:
            _netlink(delete)
        except Exception:  # already gone: that is the goal
            pass

    def __enter__(self) -> "TunDevice":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"TunDevice(name={self.name!r}, ifindex={self.ifindex}, fd={self.fd}, "
                f"vnet_hdr={self.vnet_hdr}, uso={self.uso}, tso={self.tso})")
