"""The gateway's small top-level sections: the VPC behind it, the metrics
endpoint, data path tuning and the limits on unauthenticated IKE traffic.

Its own module so that gateway.py holds the gateway and the checks across its
connections only. Section numbers (§N) are docs/aws.md's.
"""

from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from .values import (Cidr, ConfigModel, Listening, TrueOrFalse, fail, fail_many, listen_address, one_of,
                     whole_number)


def _check_vpc_cidrs(cidrs: list[IPv4Network]) -> list[IPv4Network]:
    if not cidrs:
        raise fail("is empty; list the VPC's CIDR blocks, e.g. cidrs: [10.0.0.0/16]")
    problems = []
    for index, cidr in enumerate(cidrs):
        for earlier in range(index):
            if cidr.overlaps(cidrs[earlier]):
                problems.append(
                    ((index,), f"{cidr} overlaps cidrs[{earlier}] {cidrs[earlier]}; a VPC's CIDR blocks cannot overlap")
                )
                break
    if problems:
        raise fail_many(problems)
    return cidrs


class VpcConfig(ConfigModel):
    """The VPC behind the gateway: traffic from the tunnels is forwarded into these CIDRs."""

    cidrs: Annotated[list[Cidr], AfterValidator(_check_vpc_cidrs)] = Field(
        description="the VPC's CIDR blocks, e.g. cidrs: [10.0.0.0/16]"
    )


class MetricsConfig(Listening, ConfigModel):
    """vgw only: serve AWS's tunnel metrics (docs/aws.md §5.1) in Prometheus format."""

    listen: Annotated[str, listen_address("127.0.0.1:9700")] = Field(
        description="the address and port to serve metrics on, e.g. listen: 127.0.0.1:9700"
    )


TUN_OFFLOADS = ("gro", "tso", "none")  # dataplane/tun.py, dataplane/offload.py


class DataPathConfig(ConfigModel):
    """vgw only: data path tuning (README "Performance").

    tun_offload: gro (default) opens the TUN devices with IFF_VNET_HDR and writes
    decrypted TCP/UDP runs as one super-packet each; tso also takes TCP super-packets
    from the kernel and cuts them in Python (measured slower on a 2-core machine);
    none: one packet per read and write."""

    tun_offload: Annotated[Literal["gro", "tso", "none"], one_of(TUN_OFFLOADS)] = "gro"


class DosProtectionConfig(ConfigModel):
    """vgw only: limits on unauthenticated IKE_SA_INIT traffic (RFC 7296 §2.6).

    AWS does not document its figures; these defaults keep a flood from using
    more than a bounded amount of memory and CPU on a small machine."""

    cookie_threshold: Annotated[int, whole_number(0, 100000, why="vgw range")] = 16
    require_cookies: TrueOrFalse = False
    max_half_open: Annotated[int, whole_number(1, 100000, why="vgw range")] = 1024
    max_half_open_per_source: Annotated[int, whole_number(1, 100000, why="vgw range")] = 8
    max_new_per_second: Annotated[int, whole_number(1, 100000, why="vgw range")] = 200
    max_reassembly_bytes: Annotated[int, whole_number(65536, 1 << 30, why="vgw range")] = 4 << 20
