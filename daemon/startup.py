"""What stops vgw from starting a tunnel, and what to tell the user: StartupError,
and whether a tunnel's outside address can be bound (with the advice for each errno).

Shared by the gateway (at start and for a new tunnel) and a reload (which checks
a new tunnel's address before it changes anything, so that an address that is
not on the host refuses the whole reload instead of half of it).
"""

from __future__ import annotations

import errno
import socket


class StartupError(Exception):
    """A problem the user must fix before vgw can run (message says what)."""


def check_bindable(ip: str, ports: tuple[int, ...] = (500, 4500)) -> None:
    """Raise StartupError (with bind_hint's advice) if vgw could not bind `ip` on
    one of `ports` now. The probe sockets are closed at once; the real ones are
    bound right after, in the same event-loop step."""
    for port in ports:
        probe = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind((ip, port))
        except OSError as exc:
            raise StartupError(bind_hint(ip, port, exc)) from None
        finally:
            probe.close()


def bind_hint(ip: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"cannot bind {ip}:{port}: {ip} is not an address of this host; add it "
                f"(e.g. `ip addr add {ip}/32 dev lo`) or fix outside_ip in the config")
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot bind {ip}:{port}: the port is in use; is another IKE daemon "
                "(strongSwan, libreswan, another vgw) running on this address?")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot bind {ip}:{port}: permission denied; run vgw as root or with CAP_NET_BIND_SERVICE and CAP_NET_ADMIN"
    return f"cannot bind {ip}:{port}: {exc.strerror or exc}"
