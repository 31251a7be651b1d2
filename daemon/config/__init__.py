"""vgw configuration: the YAML file, its pydantic models and a loader whose errors
name the bad key by its path in the file and say what to change.

Keys are the EC2 API's option names (VpnTunnelOptionsSpecification,
VpnConnectionOptionsSpecification) in snake_case; values are spelled as AWS spells
them; an omitted key takes the AWS default (aws-facts §0). Lists keep the order the
user wrote: it is the preference order vgw walks, as AWS walks its own (§1.1).

Use `load_config(path)` or `parse_config(text)`; both raise `ConfigError`, which
carries every problem found (`.issues`), not just the first.
"""

import difflib
import hashlib
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from . import yaml_safe as yamlload

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "CloudwatchLogOptions",
    "ConnectionConfig",
    "CustomerGatewayConfig",
    "GatewayConfig",
    "LogOptions",
    "MetricsConfig",
    "TunnelConfig",
    "VpcConfig",
    "choose_inside_cidr",
    "load_config",
    "parse_config",
]

DEFAULT_CONTROL_SOCKET = "/run/vgw/vgw.sock"

# Allowed values and defaults: aws-facts §0 and §1.4 (VpnTunnelOptionsSpecification).
ENCRYPTION_ALGORITHMS = ("AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16")
INTEGRITY_ALGORITHMS = ("SHA1", "SHA2-256", "SHA2-384", "SHA2-512")
PHASE1_DH_GROUPS = (2, *range(14, 25))
PHASE2_DH_GROUPS = (2, 5, *range(14, 25))
IKE_VERSIONS = ("ikev1", "ikev2")
DPD_TIMEOUT_ACTIONS = ("clear", "none", "restart")  # §1.5
LOG_OUTPUT_FORMATS = ("json", "text")  # §3.1: CloudwatchLogOptions.LogOutputFormat
STARTUP_ACTIONS = ("add", "start")  # §1.7

EncryptionAlgorithm = Literal["AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"]
IntegrityAlgorithm = Literal["SHA1", "SHA2-256", "SHA2-384", "SHA2-512"]
IkeVersion = Literal["ikev1", "ikev2"]
DpdTimeoutAction = Literal["clear", "none", "restart"]
StartupAction = Literal["add", "start"]
LogOutputFormat = Literal["json", "text"]

# aws-facts §1.2: inside CIDRs are /30s in 169.254.0.0/16, minus these reserved blocks.
INSIDE_CIDR_POOL = IPv4Network("169.254.0.0/16")
RESERVED_INSIDE_CIDRS = frozenset(
    [IPv4Network(f"169.254.{i}.0/30") for i in range(6)] + [IPv4Network("169.254.169.252/30")]
)
MAX_TUNNELS_PER_CONNECTION = 2  # §1.1: AWS always creates exactly two
MAX_STATIC_ROUTES = 100  # §4.1: static routes from CGW to a VGW connection, not adjustable
MAX_UNIX_SOCKET_PATH = 107  # sun_path is 108 bytes including the terminating NUL
MAX_ISSUES = 100    # problems listed (a hostile file may have 100,000); ConfigError.total counts all
MAX_MESSAGE = 500   # characters of one problem's message
MAX_CONNECTIONS = 10  # §4.1: Site-to-Site VPN connections per virtual private gateway (default quota)

# §1.11: the Amazon side's ASN (default 64512) and the customer gateway's (default 65000).
DEFAULT_AMAZON_SIDE_ASN = 64512
DEFAULT_CUSTOMER_GATEWAY_ASN = 65000
AMAZON_SIDE_ASN_RANGES = ((64512, 65534), (4200000000, 4294967294))
# AWS's own ASNs (older VGWs' defaults, §1.11), refused for a customer gateway
RESERVED_CUSTOMER_GATEWAY_ASNS = {7224: "all Regions", 9059: "eu-west-1", 10124: "ap-northeast-1",
                                  17493: "ap-southeast-1"}

# YAML would turn `pre_shared_key: 012345678` into a number (octal, even); for these
# keys the loader keeps the text exactly as written.
_RAW_TEXT_KEYS = frozenset({"pre_shared_key", "name"})

# AWS options that exist in the EC2 API but make no sense for a VGW emulator: an
# unknown-key error for them says why instead of guessing a near spelling.
_UNSUPPORTED_AWS_KEYS = {
    # aws-facts §1.2, §1.8, §1.9: IPv6, acceleration and large tunnels are transit-gateway only.
    "tunnel_inside_ipv6_cidr": "IPv6 inside addresses exist only on a transit gateway; a VGW has none",
    "tunnel_inside_ip_version": "a VGW carries IPv4 inside its tunnels only",
    "local_ipv6_network_cidr": "IPv6 traffic selectors exist only on a transit gateway",
    "remote_ipv6_network_cidr": "IPv6 traffic selectors exist only on a transit gateway",
    "enable_acceleration": "acceleration exists only on a transit gateway",
    "tunnel_bandwidth": "large tunnels exist only on a transit gateway; a VGW tunnel is standard",
    "outside_ip_address_type": "vgw listens on the IPv4 outside_ip you give each tunnel",
    # aws-facts §3.1: CloudwatchLogOptions keys that name AWS resources vgw does not have.
    "log_group_arn": "vgw has no CloudWatch; the tunnel log goes to stdout/journal, and to log_file if you set it",
    "bgp_log_group_arn": "vgw has no CloudWatch; the BGP log goes to stdout/journal, and to bgp_log_file if you set it",
}


# ---------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: where (dotted key path, line) and what to change."""

    path: str  # e.g. "connections[0].tunnels[1].pre_shared_key"; "" for the whole file
    message: str
    line: int | None = None

    def format(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        message = self.message
        if len(message) > MAX_MESSAGE:   # a hostile file's 1 MB value is not echoed whole
            message = f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE:,} characters more)"
        return f"{where}: {self.path}: {message}" if self.path else f"{where}: {message}"


class ConfigError(Exception):
    """A config that vgw cannot run; `issues` lists the problems found, the first
    MAX_ISSUES of them; `total` counts them all."""

    def __init__(self, source: str, issues: list[ConfigIssue], total: int | None = None):
        self.source = source
        self.issues = issues
        self.total = len(issues) if total is None else max(total, len(issues))
        lines = [issue.format(source) for issue in issues]
        if self.total > len(issues):
            lines.append(f"{source}: ... and {self.total - len(issues):,} more problems (only the first"
                         f" {len(issues)} are listed)")
        super().__init__("\n".join(lines))


def _fail(message: str) -> PydanticCustomError:
    """A validation error with our own wording (pydantic's would say "Value error, ...")."""
    return _fail_many([((), message)])


def _fail_many(problems: list[tuple[tuple, str]]) -> PydanticCustomError:
    """Several problems from one validator (cross-field checks), each with its own path
    relative to the validated value; _issues_from() expands them into ConfigIssues."""
    text = "; ".join(message for _, message in problems)
    return PydanticCustomError("vgw", "{message}", {"message": text, "problems": problems})


def _show(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _not_allowed(value: Any, allowed: Iterable) -> str:
    allowed = [str(a) for a in allowed]
    message = f"{_show(value)} is not allowed; allowed: {', '.join(allowed)}"
    if isinstance(value, str):
        same_but_case = [a for a in allowed if a.lower() == value.lower()]
        close = same_but_case or difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]}?"
            if same_but_case:
                message += " (values are case-sensitive, spelled as AWS spells them)"
    return message


# ---------------------------------------------------------------------------
# Value types: each parses one YAML value and explains a bad one.


def _parse_cidr(value: Any) -> IPv4Network:
    if isinstance(value, IPv4Network):
        return value
    if not isinstance(value, str):
        raise _fail(f"{_show(value)} is not a CIDR; write an IPv4 network with its prefix length, e.g. 10.0.0.0/16")
    text = value.strip()
    if "/" not in text:
        raise _fail(f"{text} has no prefix length; write it as a CIDR, e.g. {text}/32 for a single address")
    try:
        return IPv4Network(text)
    except ValueError as exc:
        try:
            network = IPv4Network(text, strict=False)
        except ValueError:
            raise _fail(f"{text} is not an IPv4 CIDR ({exc})") from None
        raise _fail(f"{text} has host bits set; did you mean {network}?") from None


def _parse_address(value: Any) -> IPv4Address:
    if isinstance(value, IPv4Address):
        address = value
    elif isinstance(value, str):
        text = value.strip()
        if "/" in text:
            raise _fail(f"{text} is a CIDR; write the address alone, without a prefix length")
        try:
            address = IPv4Address(text)
        except ValueError as exc:
            try:
                IPv6Address(text)
            except ValueError:
                raise _fail(f"{text} is not an IPv4 address ({exc})") from None
            # aws-facts §1.9: IPv6 outside addresses exist only on a transit gateway.
            raise _fail(f"{text} is IPv6; a VGW uses IPv4 outside addresses only") from None
    else:
        raise _fail(f"{_show(value)} is not an IPv4 address; write it as four numbers, e.g. 198.51.100.1")
    if address.is_unspecified or address.is_multicast or address.is_reserved or address == IPv4Address("255.255.255.255"):
        raise _fail(f"{address} is not a unicast address; give the host's own IPv4 address")
    return address


def _whole_number(low: int, high: int | None = None, why: str = "AWS range"):
    """A BeforeValidator for an integer option with AWS's bounds (bool is not a number)."""
    bounds = f"at least {low}" if high is None else f"between {low} and {high}"

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(f"must be a whole number {bounds} ({why}); got {_show(value)}")
        if value < low or (high is not None and value > high):
            raise _fail(f"must be {bounds} ({why}); got {value}")
        return value

    return BeforeValidator(check)


def _one_of(allowed: tuple, hint: Callable[[Any], str] | None = None):
    """A BeforeValidator for a value AWS spells exactly one way."""

    def check(value: Any) -> Any:
        # isinstance guard: True == 1 in Python, but `true` is not DH group 1.
        if not isinstance(value, bool) and type(value) is type(allowed[0]) and value in allowed:
            return value
        if isinstance(allowed[0], int) and isinstance(value, str) and value.strip().isdigit():
            raise _fail(f"'{value}' is quoted text; write the number without quotes: {value.strip()}")
        extra = hint(value) if hint else ""
        raise _fail(_not_allowed(value, allowed) + (f" ({extra})" if extra else ""))

    return BeforeValidator(check)


def _dh_hint(phase: int):
    def hint(value: Any) -> str:
        digits = re.fullmatch(r"\D*(\d+)", value) if isinstance(value, str) else None
        if digits:
            return f"write the group number only, e.g. {digits.group(1)}"
        if phase == 1 and value == 5:
            return "group 5 is allowed in phase 2 only"
        return ""

    return hint


def _preference_list(allowed: tuple):
    """An AfterValidator for an AWS option list: non-empty, each value once, order kept."""

    def check(values: list) -> list:
        if not values:
            raise _fail(
                f"is empty; list at least one of: {', '.join(map(str, allowed))}"
                " (or remove the key to accept all of AWS's defaults)"
            )
        seen: dict[Any, int] = {}
        problems = []
        for index, value in enumerate(values):
            if value in seen:
                problems.append(((index,), f"{value} is listed twice (also at [{seen[value]}]); list each value once"))
            seen.setdefault(value, index)
        if problems:
            raise _fail_many(problems)
        return values

    return AfterValidator(check)


def _check_psk(value: Any) -> str:
    # aws-facts §1.3: 8-64 chars, [0-9A-Za-z_.], must not start with 0. Never echo the key.
    if not isinstance(value, str):
        got = _show(value) if isinstance(value, (dict, list)) else type(value).__name__
        raise _fail(f"must be a string of 8 to 64 characters; got {got}")
    problems = []
    if not 8 <= len(value) <= 64:
        problems.append(f"must be 8 to 64 characters long (it has {len(value)})")
    bad = re.sub(r"[0-9A-Za-z_.]", "", value)
    if bad:
        # not even the offending characters: they are part of the secret
        problems.append(f"contains {len(bad)} character{'s' if len(bad) > 1 else ''} AWS does not allow;"
                        " use only letters, digits, '.' and '_'")
    if value.startswith("0"):
        problems.append("must not start with 0 (AWS rule)")
    if problems:
        raise _fail("; ".join(problems))
    return value


def _check_inside_cidr(network: IPv4Network) -> IPv4Network:
    # aws-facts §1.2: a /30 from 169.254.0.0/16, not one of the reserved blocks.
    if network.prefixlen != 30:
        raise _fail(f"must be a /30 (AWS gives each tunnel a /30 inside 169.254.0.0/16); got /{network.prefixlen}")
    if not network.subnet_of(INSIDE_CIDR_POOL):
        raise _fail(f"{network} is outside 169.254.0.0/16; pick a /30 in 169.254.0.0/16, e.g. 169.254.10.0/30")
    if network in RESERVED_INSIDE_CIDRS:
        raise _fail(
            f"{network} is reserved by AWS (169.254.0.0/30 to 169.254.5.0/30 and 169.254.169.252/30);"
            " pick another /30 in 169.254.0.0/16"
        )
    return network


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
        raise _fail(
            f"{_show(value)!s} is not a valid name; use 1 to 64 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit, e.g. vpn-lab"
        )
    return value


def _check_socket_path(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(f"must be a file path, e.g. {DEFAULT_CONTROL_SOCKET}; got {_show(value)}")
    if len(value.encode()) > MAX_UNIX_SOCKET_PATH:
        raise _fail(
            f"is {len(value.encode())} bytes long; a Unix socket path can have at most"
            f" {MAX_UNIX_SOCKET_PATH}: choose a shorter path"
        )
    return value


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(f"must be true or false; got {_show(value)}")
    return value


def _check_file_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"must be a file name (PEM), e.g. /etc/vgw/vgw.pem; got {_show(value)}")
    return value


def _check_identity(value: Any) -> str:
    from ikecore.certs import Identity
    if not isinstance(value, str):
        raise _fail(f"must be a DN (CN=cgw.example.net), an FQDN or an IPv4 address; got {_show(value)}")
    try:
        Identity.parse(value)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return value.strip()


def _check_certificate_identity(value: Any) -> str:
    """A DNS name or an IPv4 address of vgw's certificate (its subjectAltName)."""
    from ikecore.certs import FQDN_RE
    text = value.strip() if isinstance(value, str) else None
    if text:
        try:
            IPv4Address(text)
            return text
        except ValueError:
            pass
    if text is None or "=" in text or not FQDN_RE.fullmatch(text) or text.replace(".", "").isdigit():
        hint = " (vgw presents its subject DN when the key is omitted)" if text and "=" in text else ""
        raise _fail("must be a DNS name or an IPv4 address in vgw's certificate, e.g. vgw.example.net"
                    f" or the tunnel's outside_ip; got {_show(value)}{hint}")
    return text


Cidr = Annotated[IPv4Network, BeforeValidator(_parse_cidr)]
CredentialFile = Annotated[str, BeforeValidator(_check_file_name)]
Address = Annotated[IPv4Address, BeforeValidator(_parse_address)]
InsideCidr = Annotated[IPv4Network, BeforeValidator(_parse_cidr), AfterValidator(_check_inside_cidr)]
PreSharedKey = Annotated[str, BeforeValidator(_check_psk)]
Name = Annotated[str, BeforeValidator(_check_name)]

Encryption = Annotated[EncryptionAlgorithm, _one_of(ENCRYPTION_ALGORITHMS)]
Integrity = Annotated[IntegrityAlgorithm, _one_of(INTEGRITY_ALGORITHMS)]
Phase1DhGroup = Annotated[int, _one_of(PHASE1_DH_GROUPS, _dh_hint(1))]
Phase2DhGroup = Annotated[int, _one_of(PHASE2_DH_GROUPS, _dh_hint(2))]
IkeVersionValue = Annotated[IkeVersion, _one_of(IKE_VERSIONS)]
EncryptionList = Annotated[list[Encryption], _preference_list(ENCRYPTION_ALGORITHMS)]
IntegrityList = Annotated[list[Integrity], _preference_list(INTEGRITY_ALGORITHMS)]
Phase1DhGroupList = Annotated[list[Phase1DhGroup], _preference_list(PHASE1_DH_GROUPS)]
Phase2DhGroupList = Annotated[list[Phase2DhGroup], _preference_list(PHASE2_DH_GROUPS)]


def _require_ikev2(versions: list) -> list:
    # vgw implements IKEv2 only; ikev1 stays accepted (AWS's default list has it) and is ignored.
    if "ikev2" not in versions:
        raise _fail("vgw speaks IKEv2 only: add ikev2 to ike_versions (ikev1 is accepted and ignored)")
    return versions


IkeVersionList = Annotated[list[IkeVersionValue], _preference_list(IKE_VERSIONS), AfterValidator(_require_ikev2)]


# ---------------------------------------------------------------------------
# Inside CIDR choice


def choose_inside_cidr(outside_ip: IPv4Address, used: Iterable[IPv4Network] = ()) -> IPv4Network:
    """The /30 for a tunnel whose inside_cidr is omitted.

    AWS picks a random free /30 in 169.254.0.0/16 (aws-facts §1.2). vgw derives it
    from a hash of the outside IP instead, so the same config gets the same
    addresses after every restart, and probes forward past reserved or used blocks.
    """
    blocked = RESERVED_INSIDE_CIDRS | set(used)
    count = INSIDE_CIDR_POOL.num_addresses // 4
    digest = hashlib.sha256(b"vgw tunnel inside cidr\0" + IPv4Address(outside_ip).packed).digest()
    start = int.from_bytes(digest[:8], "big") % count
    base = int(INSIDE_CIDR_POOL.network_address)
    for step in range(count):
        candidate = IPv4Network((base + ((start + step) % count) * 4, 30))
        if candidate not in blocked:
            return candidate
    raise ValueError("no free /30 is left in 169.254.0.0/16")


# ---------------------------------------------------------------------------
# Models


def _aws_default(values: tuple) -> Any:
    """A list option's AWS default, as a fresh list per tunnel."""
    return Field(default_factory=lambda: list(values))


class _Model(BaseModel):
    # extra="forbid": a misspelt key is an error, not a silently ignored option.
    model_config = ConfigDict(extra="forbid")


def _check_log_file(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"must be a file path, e.g. /var/log/vgw/tunnel1.log; got {_show(value)}")
    if not value.startswith("/"):
        raise _fail(f"{value} is a relative path; give an absolute path, e.g. /var/log/vgw/tunnel1.log")
    return value


class CloudwatchLogOptions(_Model):
    """AWS's CloudwatchLogOptionsSpecification (aws-facts §3.1) in snake_case, plus
    vgw's `log_file` (AWS sends the log to a CloudWatch log group; vgw has none)."""

    log_enabled: Annotated[bool, BeforeValidator(_strict_bool)] = False  # AWS default: off (§0)
    log_output_format: Annotated[LogOutputFormat, _one_of(LOG_OUTPUT_FORMATS)] = "json"
    # vgw only: also append the tunnel's records to this file (one record per line).
    log_file: Annotated[str, BeforeValidator(_check_log_file)] | None = None
    # §3.4: the BGP log of a dynamic connection's tunnel (BgpLogEnabled, BgpLogOutputFormat)
    bgp_log_enabled: Annotated[bool, BeforeValidator(_strict_bool)] = False
    bgp_log_output_format: Annotated[LogOutputFormat, _one_of(LOG_OUTPUT_FORMATS)] = "json"
    # vgw only: also append the tunnel's BGP records to this file
    bgp_log_file: Annotated[str, BeforeValidator(_check_log_file)] | None = None


class LogOptions(_Model):
    """AWS's VpnTunnelLogOptionsSpecification: `log_options: {cloudwatch_log_options: {...}}`."""

    cloudwatch_log_options: CloudwatchLogOptions = Field(default_factory=CloudwatchLogOptions)


class TunnelConfig(_Model):
    """One tunnel: AWS's VpnTunnelOptionsSpecification plus the outside IP vgw listens on."""

    outside_ip: Address = Field(
        description="the tunnel's outside (public) IPv4 address that vgw listens on, e.g. outside_ip: 198.51.100.1"
    )
    # Always set after validation: omitted means chosen by choose_inside_cidr().
    inside_cidr: InsideCidr | None = Field(
        None, validation_alias=AliasChoices("inside_cidr", "tunnel_inside_cidr")
    )
    # Exactly one way to authenticate (see _auth_problems): a pre-shared key, or a
    # certificate and its private key (aws-facts §2: "PSK or AWS Private CA certificate").
    pre_shared_key: PreSharedKey | None = Field(None, repr=False)
    certificate: CredentialFile | None = None    # PEM: vgw's certificate, then intermediates
    private_key: CredentialFile | None = Field(None, repr=False)   # PEM, unencrypted
    # vgw only: present this DNS name or IPv4 address of the certificate (its
    # subjectAltName) as vgw's ID instead of its subject DN
    certificate_identity: Annotated[str, BeforeValidator(_check_certificate_identity)] | None = None
    # vgw only: RFC 7383 fragments IKE messages larger than this IPv4 datagram size
    ike_fragment_size: Annotated[int, _whole_number(576, 9000, why="IPv4 datagram bytes")] = 1280
    phase1_encryption_algorithms: EncryptionList = _aws_default(ENCRYPTION_ALGORITHMS)
    phase2_encryption_algorithms: EncryptionList = _aws_default(ENCRYPTION_ALGORITHMS)
    phase1_integrity_algorithms: IntegrityList = _aws_default(INTEGRITY_ALGORITHMS)
    phase2_integrity_algorithms: IntegrityList = _aws_default(INTEGRITY_ALGORITHMS)
    phase1_dh_group_numbers: Phase1DhGroupList = _aws_default(PHASE1_DH_GROUPS)
    phase2_dh_group_numbers: Phase2DhGroupList = _aws_default(PHASE2_DH_GROUPS)
    ike_versions: IkeVersionList = _aws_default(IKE_VERSIONS)
    phase1_lifetime_seconds: Annotated[int, _whole_number(900, 28800)] = 28800
    phase2_lifetime_seconds: Annotated[int, _whole_number(900, 3600)] = 3600
    # Upper bound (half of phase 2) checked in _check_tunnel. Default 270 since 2023-04 (§1.6).
    rekey_margin_time_seconds: Annotated[int, _whole_number(60)] = 270
    rekey_fuzz_percentage: Annotated[int, _whole_number(0, 100)] = 100
    replay_window_size: Annotated[int, _whole_number(64, 2048)] = 1024
    # 30 per VpnTunnelOptionsSpecification; the Modify API says 40 (aws-facts §1.5, §10).
    dpd_timeout_seconds: Annotated[int, _whole_number(30, why="AWS minimum")] = 30
    dpd_timeout_action: Annotated[DpdTimeoutAction, _one_of(DPD_TIMEOUT_ACTIONS)] = "clear"
    startup_action: Annotated[StartupAction, _one_of(STARTUP_ACTIONS)] = "add"
    enable_tunnel_lifecycle_control: Annotated[bool, BeforeValidator(_strict_bool)] = False  # §1.10: accepted only
    log_options: LogOptions = Field(default_factory=LogOptions)  # §3: the tunnel activity log

    _inside_cidr_auto: bool = PrivateAttr(False)
    _chain: tuple[bytes, ...] = PrivateAttr(())       # DER, from `certificate`
    _key_der: bytes = PrivateAttr(b"")                # PKCS#8 DER, from `private_key`
    _trust: tuple[bytes, ...] = PrivateAttr(())       # the gateway's ca_certificates, as DER

    @model_validator(mode="after")
    def _check_tunnel(self) -> "TunnelConfig":
        problems = self._auth_problems()
        # §0: phase 2 lifetime must be less than phase 1.
        if self.phase2_lifetime_seconds >= self.phase1_lifetime_seconds:
            if self.phase1_lifetime_seconds <= 900:
                fix = "raise phase1_lifetime_seconds (phase 2 cannot go below 900)"
            else:
                fix = "lower phase 2 or raise phase 1"
            problems.append(
                (
                    ("phase2_lifetime_seconds",),
                    f"must be less than phase1_lifetime_seconds ({self.phase1_lifetime_seconds}); got"
                    f" {self.phase2_lifetime_seconds}: {fix}",
                )
            )
        # §1.6: margin between 60 and half of the phase 2 lifetime.
        if self.rekey_margin_time_seconds * 2 > self.phase2_lifetime_seconds:
            problems.append(
                (
                    ("rekey_margin_time_seconds",),
                    f"must be between 60 and {self.phase2_lifetime_seconds // 2} (half of"
                    f" phase2_lifetime_seconds {self.phase2_lifetime_seconds}); got {self.rekey_margin_time_seconds}",
                )
            )
        if problems:
            raise _fail_many(problems)
        if self.inside_cidr is None:
            self.inside_cidr = choose_inside_cidr(self.outside_ip)
            self._inside_cidr_auto = True
        return self

    def _auth_problems(self) -> list[tuple[tuple, str]]:
        """Exactly one way to authenticate: a pre-shared key (aws-facts §1.3) or a
        certificate with its private key (§2)."""
        cert = self.certificate is not None or self.private_key is not None
        if self.pre_shared_key is None and not cert:
            return [
                (
                    ("pre_shared_key",),
                    "required key is missing; add pre_shared_key: 8 to 64 letters, digits, '.' or '_',"
                    " not starting with 0, or certificate: FILE and private_key: FILE for certificate"
                    " authentication",
                )
            ]
        if self.pre_shared_key is not None and cert:
            key = "certificate" if self.certificate is not None else "private_key"
            return [((key,), "a tunnel authenticates with pre_shared_key or with certificate and"
                     " private_key, not both: remove one")]
        if cert and self.certificate is None:
            return [(("certificate",), "required key is missing: private_key goes with certificate: FILE"
                     " (vgw's certificate in PEM)")]
        if cert and self.private_key is None:
            return [(("private_key",), "required key is missing: certificate goes with private_key: FILE"
                     " (the certificate's key in PEM, unencrypted)")]
        if self.certificate_identity is not None and not cert:
            return [(("certificate_identity",), "applies to certificate authentication only; remove it"
                     " or use certificate and private_key")]
        return []

    @model_validator(mode="after")
    def _load_credentials(self, info: ValidationInfo) -> "TunnelConfig":
        """Read and check the certificate files now, so `vgw validate` catches them."""
        if self.certificate is None or self.private_key is None:
            return self
        from ..credentials import identity_in_certificate, load_tunnel_credentials, resolve
        base = (info.context or {}).get("base_dir")
        chain, key_der, problems = load_tunnel_credentials(resolve(self.certificate, base),
                                                           resolve(self.private_key, base))
        found = [((key,), message) for key, message in problems]
        identity = self.certificate_identity
        if chain and identity and not identity_in_certificate(chain, identity):
            kind = "a DNS name" if any(c.isalpha() for c in identity) else "an IP address"
            found.append((("certificate_identity",), f"{identity} is not {kind} (subjectAltName) of the"
                          f" certificate in {self.certificate}, so the customer gateway would refuse it;"
                          " use one of its names or addresses, or remove the key (vgw then presents"
                          " the subject DN)"))
        if found:
            raise _fail_many(found)
        self._chain, self._key_der = chain, key_der
        return self

    @property
    def inside_cidr_is_auto(self) -> bool:
        """True if inside_cidr was omitted and chosen by choose_inside_cidr()."""
        return self._inside_cidr_auto

    @property
    def vgw_inside_ip(self) -> IPv4Address:
        """The AWS (VGW) end of the inside /30: network+1 (aws-facts §1.2)."""
        return self.inside_cidr.network_address + 1

    @property
    def cgw_inside_ip(self) -> IPv4Address:
        """The customer gateway end of the inside /30: network+2 (aws-facts §1.2)."""
        return self.inside_cidr.network_address + 2

    @property
    def auth_method(self) -> Literal["psk", "certificate"]:
        """How the tunnel authenticates."""
        return "certificate" if self.certificate is not None else "psk"

    @property
    def certificate_chain(self) -> tuple[bytes, ...]:
        """vgw's certificate and intermediates (DER), read at validation time."""
        return self._chain

    @property
    def private_key_der(self) -> bytes:
        return self._key_der

    @property
    def trust_anchors(self) -> tuple[bytes, ...]:
        """The gateway's ca_certificates (DER), for certificate tunnels."""
        return self._trust


def _check_customer_gateway_asn(value: Any) -> int:
    asn = _whole_number(1, 4294967295, why="a 2- or 4-octet ASN").func(value)
    if asn in RESERVED_CUSTOMER_GATEWAY_ASNS:
        raise _fail(f"{asn} is reserved by AWS ({RESERVED_CUSTOMER_GATEWAY_ASNS[asn]}); use your own ASN, e.g."
                    f" a private one from 64512-65534 such as {DEFAULT_CUSTOMER_GATEWAY_ASN}")
    return asn


def _check_amazon_side_asn(value: Any) -> int:
    asn = _whole_number(1, 4294967295, why="a 2- or 4-octet ASN").func(value)
    if not any(low <= asn <= high for low, high in AMAZON_SIDE_ASN_RANGES):
        raise _fail(f"{asn} is not an ASN AWS allows for a virtual private gateway: use 64512-65534 or"
                    f" 4200000000-4294967294 (default {DEFAULT_AMAZON_SIDE_ASN})")
    return asn


class CustomerGatewayConfig(_Model):
    """The customer gateway (AWS's CustomerGateway); without ip any address may connect.

    `identity` (vgw only): the ID the customer gateway must present, a DN
    (`CN=cgw.example.net`), an FQDN or an IPv4 address; without it any identity its
    certificate vouches for (or, with a pre-shared key, any). AWS needs it for a
    customer gateway behind NAT when AWS initiates (aws-facts §1.7)."""

    ip: Address | None = None
    identity: Annotated[str, BeforeValidator(_check_identity)] | None = None
    # §1.11: the customer gateway's BGP ASN (CreateCustomerGateway BgpAsn / BgpAsnExtended)
    bgp_asn: Annotated[int, BeforeValidator(_check_customer_gateway_asn)] = DEFAULT_CUSTOMER_GATEWAY_ASN


def _check_static_routes(routes: list[IPv4Network]) -> list[IPv4Network]:
    if len(routes) > MAX_STATIC_ROUTES:
        # aws-facts §4.1: 100 static routes per VGW connection, not adjustable.
        raise _fail(f"has {len(routes)} routes; AWS allows at most {MAX_STATIC_ROUTES} static routes per VPN connection")
    seen: dict[IPv4Network, int] = {}
    problems = []
    for index, route in enumerate(routes):
        if route in seen:
            problems.append(((index,), f"{route} is listed twice (also at [{seen[route]}]); list each route once"))
        seen.setdefault(route, index)
    if problems:
        raise _fail_many(problems)
    return routes


def _check_tunnel_count(tunnels: list[TunnelConfig]) -> list[TunnelConfig]:
    # aws-facts §1.1: AWS creates exactly two tunnels per connection; one is enough to test with.
    if not tunnels:
        raise _fail("is empty; add one or two tunnels, each with outside_ip and pre_shared_key")
    if len(tunnels) > MAX_TUNNELS_PER_CONNECTION:
        raise _fail(
            f"has {len(tunnels)} tunnels; an AWS VPN connection has two at most:"
            " remove the extra ones or put them in another connection"
        )
    return tunnels


class ConnectionConfig(_Model):
    """One VPN connection (AWS's VpnConnection): a customer gateway and its tunnels."""

    name: Name = Field(description="a name for the connection, e.g. name: vpn-lab")
    customer_gateway: CustomerGatewayConfig = Field(default_factory=CustomerGatewayConfig)
    static_routes: Annotated[list[Cidr], AfterValidator(_check_static_routes)] = Field(default_factory=list)
    # AWS's StaticRoutesOnly; omitted: true when static_routes are listed, else false (BGP)
    static_routes_only: Annotated[bool, BeforeValidator(_strict_bool)] | None = None
    # §1.8: traffic selectors; local is the customer side, remote the AWS side.
    local_network_cidr: Cidr = IPv4Network("0.0.0.0/0")
    remote_network_cidr: Cidr = IPv4Network("0.0.0.0/0")
    tunnels: Annotated[list[TunnelConfig], AfterValidator(_check_tunnel_count)] = Field(
        description="a list of one or two tunnels, each with outside_ip and pre_shared_key"
    )

    @property
    def dynamic(self) -> bool:
        """BGP runs in each tunnel (StaticRoutesOnly false, docs/aws.md §7)."""
        return not self.static_routes_only

    @model_validator(mode="after")
    def _check_connection(self) -> "ConnectionConfig":
        problems: list[tuple[tuple, str]] = []
        if self.static_routes_only is None:
            self.static_routes_only = bool(self.static_routes)
        elif not self.static_routes_only and self.static_routes:
            # §7: "If you select the option to use BGP advertisement, then you cannot specify static routes."
            problems.append(
                (
                    ("static_routes",),
                    "a dynamic connection (static_routes_only: false) learns the customer's prefixes by BGP and"
                    " cannot have static routes (AWS's rule): remove static_routes, or set"
                    " static_routes_only: true to route statically",
                )
            )
        for index, tunnel in enumerate(self.tunnels):
            # §1.7: AWS can initiate only if it knows where the customer gateway is.
            if tunnel.startup_action == "start" and self.customer_gateway.ip is None:
                problems.append(
                    (
                        ("tunnels", index, "startup_action"),
                        "start needs the customer gateway's address: set customer_gateway.ip,"
                        " or use startup_action: add (the customer gateway initiates); behind a NAT"
                        " give the NAT's public address and set customer_gateway.identity (aws-facts §1.7)",
                    )
                )
            # restart means vgw initiates again after DPD: same need as start
            if tunnel.dpd_timeout_action == "restart" and self.customer_gateway.ip is None:
                problems.append(
                    (
                        ("tunnels", index, "dpd_timeout_action"),
                        "restart makes vgw initiate again, which needs the customer gateway's address:"
                        " set customer_gateway.ip, or use dpd_timeout_action: clear",
                    )
                )
        for index, route in enumerate(self.static_routes):
            # Route-based VPN with one SA pair per tunnel (§1.8): a route outside the
            # customer-side selector could never pass the tunnel.
            if not route.subnet_of(self.local_network_cidr):
                problems.append(
                    (
                        ("static_routes", index),
                        f"{route} is outside local_network_cidr {self.local_network_cidr}: traffic to it would not"
                        " match the tunnel's traffic selector; widen local_network_cidr or remove the route",
                    )
                )
        if problems:
            raise _fail_many(problems)
        return self


def _check_vpc_cidrs(cidrs: list[IPv4Network]) -> list[IPv4Network]:
    if not cidrs:
        raise _fail("is empty; list the VPC's CIDR blocks, e.g. cidrs: [10.0.0.0/16]")
    problems = []
    for index, cidr in enumerate(cidrs):
        for earlier in range(index):
            if cidr.overlaps(cidrs[earlier]):
                problems.append(
                    ((index,), f"{cidr} overlaps cidrs[{earlier}] {cidrs[earlier]}; a VPC's CIDR blocks cannot overlap")
                )
                break
    if problems:
        raise _fail_many(problems)
    return cidrs


class VpcConfig(_Model):
    """The VPC behind the gateway: traffic from the tunnels is forwarded into these CIDRs."""

    cidrs: Annotated[list[Cidr], AfterValidator(_check_vpc_cidrs)] = Field(
        description="the VPC's CIDR blocks, e.g. cidrs: [10.0.0.0/16]"
    )


def _check_listen(value: Any) -> str:
    """host:port (IPv4 or [IPv6]) for the metrics endpoint."""
    if not isinstance(value, str):
        raise _fail(f"must be host:port, e.g. 127.0.0.1:9700; got {_show(value)}")
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise _fail(f"{value} has no port; write host:port, e.g. 127.0.0.1:9700")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _fail(f"{port} is not a port number (1-65535); write host:port, e.g. 127.0.0.1:9700")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        IPv4Address(bare)
    except ValueError:
        try:
            IPv6Address(bare)
        except ValueError:
            raise _fail(f"{host} is not an IP address; listen on an address, e.g. 127.0.0.1:9700") from None
    return value


class MetricsConfig(_Model):
    """vgw only: serve AWS's tunnel metrics (aws-facts §5.1) in Prometheus format."""

    listen: Annotated[str, BeforeValidator(_check_listen)] = Field(
        description="the address and port to serve metrics on, e.g. listen: 127.0.0.1:9700"
    )

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


TUN_OFFLOADS = ("gro", "tso", "none")  # dataplane/tun.py, dataplane/offload.py


class DataPathConfig(_Model):
    """vgw only: data path tuning (README "Performance").

    tun_offload: gro (default) opens the TUN devices with IFF_VNET_HDR and writes
    decrypted TCP/UDP runs as one super-packet each; tso also takes TCP super-packets
    from the kernel and cuts them in Python (measured slower on a 2-core machine);
    none: one packet per read and write."""

    tun_offload: Annotated[Literal["gro", "tso", "none"], _one_of(TUN_OFFLOADS)] = "gro"


class DosProtectionConfig(_Model):
    """vgw only: limits on unauthenticated IKE_SA_INIT traffic (RFC 7296 §2.6).

    AWS does not document its figures; these defaults keep a flood from using
    more than a bounded amount of memory and CPU on a small machine."""

    cookie_threshold: Annotated[int, _whole_number(0, 100000, why="vgw range")] = 16
    require_cookies: Annotated[bool, BeforeValidator(_strict_bool)] = False
    max_half_open: Annotated[int, _whole_number(1, 100000, why="vgw range")] = 1024
    max_half_open_per_source: Annotated[int, _whole_number(1, 100000, why="vgw range")] = 8
    max_new_per_second: Annotated[int, _whole_number(1, 100000, why="vgw range")] = 200
    max_reassembly_bytes: Annotated[int, _whole_number(65536, 1 << 30, why="vgw range")] = 4 << 20


def _check_ca_files(paths: list[str], info: ValidationInfo) -> list[str]:
    """Each CA file must be readable and hold CA certificates. Checked as a field,
    so that its problems are reported beside the tunnels' own (a model check runs
    only when every field passed)."""
    from ..credentials import read_ca, resolve
    base = (info.context or {}).get("base_dir")
    problems = []
    for index, path in enumerate(paths):
        try:
            read_ca(resolve(path, base))
        except ValueError as exc:
            problems.append(((index,), str(exc)))
    if problems:
        raise _fail_many(problems)
    return paths


def _check_connection_list(connections: list[ConnectionConfig]) -> list[ConnectionConfig]:
    if not connections:
        raise _fail("is empty; add at least one connection with a name and its tunnels")
    return connections


class GatewayConfig(_Model):
    """One vgw process: the virtual private gateway, its VPC and its VPN connections."""

    _warned: list = PrivateAttr(default_factory=list)   # (key path, message) or ConfigIssue

    control_socket: Annotated[str, BeforeValidator(_check_socket_path)] = DEFAULT_CONTROL_SOCKET
    # The CAs that vouch for customer gateways' certificates (the stand-in for AWS
    # Private CA); certificate tunnels need at least one. PEM files.
    ca_certificates: Annotated[list[CredentialFile], AfterValidator(_check_ca_files)] = Field(default_factory=list)
    metrics: MetricsConfig | None = None  # vgw only; off by default
    dos_protection: DosProtectionConfig = Field(default_factory=DosProtectionConfig)  # vgw only
    data_path: DataPathConfig = Field(default_factory=DataPathConfig)  # vgw only
    # §4.1: "Site-to-Site VPN connections per virtual private gateway", 10 by default and
    # adjustable (a quota increase at AWS); vgw only: raise it here
    max_connections: Annotated[int, _whole_number(1, 1000)] = MAX_CONNECTIONS
    # §1.11: the virtual private gateway's ASN (AmazonSideAsn)
    amazon_side_asn: Annotated[int, BeforeValidator(_check_amazon_side_asn)] = DEFAULT_AMAZON_SIDE_ASN
    # omitted: a VPN CloudHub hub with no VPC behind it (docs/aws.md §7)
    vpc: VpcConfig | None = None
    connections: Annotated[list[ConnectionConfig], AfterValidator(_check_connection_list)] = Field(
        description="a list of VPN connections, each with a name and its tunnels"
    )

    @model_validator(mode="after")
    def _check_gateway(self) -> "GatewayConfig":
        problems: list[tuple[tuple, str]] = []

        if len(self.connections) > self.max_connections:
            # §4.1: "Site-to-Site VPN connections per virtual private gateway: 10" (adjustable)
            problems.append(
                (
                    ("connections",),
                    f"has {len(self.connections)} connections; the quota of Site-to-Site VPN connections per"
                    f" virtual private gateway is {self.max_connections} (AWS's default is {MAX_CONNECTIONS}):"
                    " remove some, or raise max_connections as you would ask AWS for a quota increase",
                )
            )

        names: dict[str, int] = {}
        for ci, connection in enumerate(self.connections):
            if connection.name in names:
                problems.append(
                    (
                        ("connections", ci, "name"),
                        f"{connection.name} is already the name of connections[{names[connection.name]}];"
                        " give each connection its own name",
                    )
                )
            names.setdefault(connection.name, ci)

        # Outside IPs identify tunnels (CloudWatch's TunnelIpAddress; DESIGN.md): unique.
        outside: dict[IPv4Address, str] = {}
        for ci, ti, tunnel in self._indexed_tunnels():
            where = f"connections[{ci}].tunnels[{ti}]"
            if tunnel.outside_ip in outside:
                problems.append(
                    (
                        ("connections", ci, "tunnels", ti, "outside_ip"),
                        f"{tunnel.outside_ip} is already the outside IP of {outside[tunnel.outside_ip]};"
                        " each tunnel needs its own outside IP",
                    )
                )
            outside.setdefault(tunnel.outside_ip, where)

        for ci, connection in enumerate(self.connections):
            cgw = connection.customer_gateway.ip
            if cgw is not None and cgw in outside:
                problems.append(
                    (
                        ("connections", ci, "customer_gateway", "ip"),
                        f"{cgw} is also the outside IP of {outside[cgw]}; the customer gateway is the other end"
                        " of the tunnel and needs an address of its own",
                    )
                )

        # §1.2: inside CIDRs unique across all connections of one VGW. Explicit ones
        # first, then automatic ones avoid every block already taken.
        inside: dict[IPv4Network, str] = {}
        for ci, ti, tunnel in self._indexed_tunnels():
            if tunnel.inside_cidr_is_auto:
                continue
            if tunnel.inside_cidr in inside:
                problems.append(
                    (
                        ("connections", ci, "tunnels", ti, "inside_cidr"),
                        f"{tunnel.inside_cidr} is already the inside CIDR of {inside[tunnel.inside_cidr]};"
                        " the inside /30 must be unique across the gateway's connections",
                    )
                )
            inside.setdefault(tunnel.inside_cidr, f"connections[{ci}].tunnels[{ti}]")
        for ci, ti, tunnel in self._indexed_tunnels():
            if tunnel.inside_cidr_is_auto:
                tunnel.inside_cidr = choose_inside_cidr(tunnel.outside_ip, inside)
                inside[tunnel.inside_cidr] = f"connections[{ci}].tunnels[{ti}]"

        # §1.11: "The VGW ASN must differ from the CGW ASN" (for BGP to be eBGP at all)
        for ci, connection in enumerate(self.connections):
            if connection.dynamic and connection.customer_gateway.bgp_asn == self.amazon_side_asn:
                problems.append(
                    (
                        ("connections", ci, "customer_gateway", "bgp_asn"),
                        f"{connection.customer_gateway.bgp_asn} is also amazon_side_asn: the customer gateway"
                        " needs an ASN of its own (e.g. 65000), or change amazon_side_asn",
                    )
                )

        # vgw puts static routes in the host's main routing table (daemon/routes.py), so
        # a route must not capture vgw's own IKE/ESP packets to a customer gateway
        # (they would loop into the TUN) nor replace the host's default route.
        cgw_ips = [(ci, c.customer_gateway.ip) for ci, c in enumerate(self.connections)
                   if c.customer_gateway.ip is not None]
        for ci, connection in enumerate(self.connections):
            for ri, route in enumerate(connection.static_routes):
                route_key = ("connections", ci, "static_routes", ri)
                if route.prefixlen == 0:
                    problems.append(
                        (
                            route_key,
                            f"{route} would replace the host's default route (vgw installs static routes in the"
                            " main routing table) and send vgw's own IKE/ESP packets into the tunnel; list the"
                            " customer's prefixes instead",
                        )
                    )
                    continue
                captured = [(cj, ip) for cj, ip in cgw_ips if ip in route]
                if captured:
                    cj, ip = captured[0]
                    owner = "this connection's" if cj == ci else f"connections[{cj}]'s"
                    problems.append(
                        (
                            route_key,
                            f"{route} contains {ip}, {owner} customer_gateway.ip: vgw's IKE/ESP packets to the"
                            " customer gateway would be routed into the tunnel itself; split the route so that"
                            f" it leaves out {ip}, or remove it",
                        )
                    )
                    continue
                for vpc_cidr in (self.vpc.cidrs if self.vpc else ()):
                    # A supernet of the VPC (e.g. 10.0.0.0/8 around 10.0.0.0/16) is fine:
                    # the VPC's local route is more specific.
                    if route.subnet_of(vpc_cidr):
                        problems.append(
                            (
                                ("connections", ci, "static_routes", ri),
                                f"{route} is inside the VPC CIDR {vpc_cidr}: those addresses are in the VPC,"
                                " not behind the customer gateway; remove the route",
                            )
                        )
                        break

        self._warn_shared_asns()
        if problems:
            raise _fail_many(problems)
        return self

    @model_validator(mode="after")
    def _check_certificates(self, info: ValidationInfo) -> "GatewayConfig":
        """Read ca_certificates; every certificate tunnel's chain must lead to one of them."""
        from ..credentials import check_issued, read_ca, resolve
        base = (info.context or {}).get("base_dir")
        problems: list[tuple[tuple, str]] = []
        ders: list[bytes] = []
        for path in self.ca_certificates:
            ders += read_ca(resolve(path, base))      # read and checked by _check_ca_files
        for ci, ti, tunnel in self._indexed_tunnels():
            if tunnel.auth_method != "certificate":
                continue
            where = ("connections", ci, "tunnels", ti, "certificate")
            if not self.ca_certificates:
                problems.append((where, "certificate authentication needs ca_certificates at the top level:"
                                 " the CA certificate(s) (PEM) that issue the customer gateway's certificate"))
            elif ders:
                problem, warning = check_issued(tunnel.certificate_chain, tuple(ders), tunnel.certificate)
                if problem:
                    problems.append((where, problem))
                if warning:
                    self._warned.append((where, warning))
            tunnel._trust = tuple(ders)
        if problems:
            raise _fail_many(problems)
        return self

    @property
    def warnings(self) -> list[ConfigIssue]:
        """What vgw runs with but the user should know (e.g. an intermediate CA
        missing from vgw's certificate file, CloudHub sites sharing an ASN), with
        lines once parse_config set them."""
        return [issue if isinstance(issue, ConfigIssue) else ConfigIssue(_path_text(issue[0]), issue[1])
                for issue in self._warned]

    @property
    def vpc_cidrs(self) -> list[IPv4Network]:
        """The VPC's CIDR blocks; none for a CloudHub hub without a VPC."""
        return list(self.vpc.cidrs) if self.vpc else []

    def _warn_shared_asns(self) -> None:
        """§7 (CloudHub): "You must use a unique BGP ASN for each customer gateway": a
        site drops the routes of another site that has its own ASN in their AS_PATH.
        Several connections of one customer gateway (one IP) may share its ASN."""
        by_asn: dict[int, list[int]] = {}
        for ci, connection in enumerate(self.connections):
            if connection.dynamic:
                by_asn.setdefault(connection.customer_gateway.bgp_asn, []).append(ci)
        for asn, indexes in by_asn.items():
            cgw_ips = {str(self.connections[ci].customer_gateway.ip) for ci in indexes}
            if len(indexes) > 1 and len(cgw_ips) > 1:
                names = ", ".join(self.connections[ci].name for ci in indexes)
                for ci in indexes[1:]:
                    self._warned.append((("connections", ci, "customer_gateway", "bgp_asn"),
                                         f"connections {names} have customer gateways with the same bgp_asn {asn}:"
                                         " with VPN CloudHub each site drops the others' routes (their AS_PATH"
                                         " holds its own ASN); give each site's customer gateway its own ASN"))

    def _indexed_tunnels(self):
        for ci, connection in enumerate(self.connections):
            for ti, tunnel in enumerate(connection.tunnels):
                yield ci, ti, tunnel

    def all_tunnels(self) -> list[tuple[ConnectionConfig, TunnelConfig]]:
        """Every (connection, tunnel) pair, in file order."""
        return [(connection, tunnel) for connection in self.connections for tunnel in connection.tunnels]

    def find_tunnel(self, outside_ip: IPv4Address | str) -> tuple[ConnectionConfig, TunnelConfig] | None:
        """The tunnel with this outside IP (the tunnel's name on the command line), or None."""
        address = IPv4Address(outside_ip)
        for connection, tunnel in self.all_tunnels():
            if tunnel.outside_ip == address:
                return connection, tunnel
        return None


# ---------------------------------------------------------------------------
# Loading: YAML with line numbers, then the models; errors become ConfigIssues.


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a config file; raises ConfigError naming every bad key.
    Any file ends here, in bounded time and memory (daemon/yamlload.py)."""
    source = str(path)
    try:
        text = yamlload.read_text(path)
    except yamlload.YamlProblem as problem:
        raise ConfigError(source, [ConfigIssue("", problem.message, problem.line)]) from None
    return parse_config(text, source, base_dir=Path(path).parent)


def parse_config(text: str, source: str = "<string>", base_dir: str | Path | None = None) -> GatewayConfig:
    """Validate config text; `source` names it in error messages; relative file
    names in it (certificates, keys) are taken from `base_dir` (default: the
    current directory)."""
    try:
        doc = yamlload.load(text, _RAW_TEXT_KEYS)
    except yamlload.YamlProblem as problem:
        raise ConfigError(source, [ConfigIssue("", problem.message, problem.line)]) from None
    if doc is None:
        raise ConfigError(source, [ConfigIssue("", "the file is empty; a config needs at least vpc and"
                                               " connections", 1)])
    issues = [ConfigIssue(_path_text(path), message, line) for path, message, line in doc.duplicates]
    total = len(issues)
    try:
        config = GatewayConfig.model_validate(doc.data, context={"base_dir": base_dir})
    except ValidationError as exc:
        found, count = _issues_from(exc, doc.lines)
        issues += found
        total += count
    else:
        if not issues:
            config._warned = [ConfigIssue(_path_text(at), message, _line_of(at, doc.lines))
                              for at, message in config._warned]
            return config
    issues.sort(key=lambda issue: issue.line or 0)
    raise ConfigError(source, issues, total)


KeyPath = tuple  # a key path: str keys and int list indexes, as in pydantic's loc


def _path_text(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _field_for(model: type[BaseModel] | None, key: Any):
    """(name, FieldInfo) of the model field spelled `key` (by name or alias), or None."""
    if model is None:
        return None
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        if key == name or (isinstance(alias, AliasChoices) and key in alias.choices):
            return name, field
    return None


def _keys_of(model: type[BaseModel]) -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        keys += list(alias.choices) if isinstance(alias, AliasChoices) else [name]
    return keys


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def _model_at(loc: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc`."""
    model: type[BaseModel] | None = GatewayConfig
    for part in loc:
        if isinstance(part, int):
            continue
        found = _field_for(model, part)
        model = _find_model(found[1].annotation) if found else None
        if model is None:
            return None
    return model


def _as_in_file(loc: KeyPath, lines: dict[KeyPath, int]) -> KeyPath:
    """`loc` with each field name replaced by the alias the file used (inside_cidr vs tunnel_inside_cidr)."""
    result: KeyPath = ()
    for part in loc:
        if isinstance(part, str) and result + (part,) not in lines:
            found = _field_for(_model_at(result), part)
            alias = found[1].validation_alias if found else None
            if isinstance(alias, AliasChoices):
                part = next((a for a in alias.choices if result + (a,) in lines), part)
        result += (part,)
    return result


def _line_of(loc: KeyPath, lines: dict[KeyPath, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _snake(key: str) -> str:
    """EC2 API spelling (Phase1DHGroupNumbers) or dashes to the config's snake_case."""
    key = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", key)
    key = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
    return key.replace("-", "_").lower()


def _unknown_key(loc: KeyPath) -> tuple[str, str | None]:
    """Message for a key no model knows, and the key it probably meant."""
    key = loc[-1]
    model = _model_at(loc[:-1])
    if key in _UNSUPPORTED_AWS_KEYS:
        return f"{key} is an AWS option vgw does not support: {_UNSUPPORTED_AWS_KEYS[key]}; remove it", None
    if model is None:
        return f"unknown key {key}; remove it", None
    same = _field_for(model, key)
    if same is not None:
        other = [a for a in same[1].validation_alias.choices if a != key]
        return f"{key} and {', '.join(other)} are the same option; give only one of them", None
    valid = _keys_of(model)
    close = difflib.get_close_matches(_snake(str(key)), valid, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key}; did you mean {close[0]}?", close[0]
    return f"unknown key {key}; valid keys here: {', '.join(valid)}", None


def _translate(error: dict, loc: KeyPath) -> str:
    """Pydantic's own errors (missing key, wrong YAML shape) in words that say what to change."""
    kind, value = error["type"], error.get("input")
    key = next((part for part in reversed(loc) if isinstance(part, str)), "")
    if kind == "missing":
        found = _field_for(_model_at(loc[:-1]), loc[-1])
        description = found[1].description if found else None
        return f"required key is missing; add {description}" if description else "required key is missing; add it"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        if loc == ():
            return f"the file must be a YAML mapping with the keys vpc and connections; got {_show(value)}"
        model = _model_at(loc)
        # (customer_gateway: 198.51.100.10 meant {ip: ...}: its first key is the usual one)
        shorthand = model is not None and (len(model.model_fields) == 1 or model is CustomerGatewayConfig)
        if shorthand and value is not None:
            # vpc: [10.0.0.0/16] meant vpc: {cidrs: [10.0.0.0/16]}
            inner = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
            return f"must be a mapping; got {_show(value)}: write {key}: {{{next(iter(model.model_fields))}: {inner}}}"
        return f"must be a mapping of keys (key: value); got {_show(value)}"
    if kind == "list_type":
        if isinstance(value, dict):
            return f"must be a list; got a mapping: start each entry of {key} with '- '"
        return f"must be a list, e.g. {key}: {_list_example(key, value)}; got {_show(value)}"
    if kind == "string_type":
        return f"must be text; got {_show(value)}"
    return error["msg"]


def _is_cidr(value: Any) -> bool:
    try:
        _parse_cidr(value)
    except PydanticCustomError:
        return False
    return True


# Per list option: is a value one valid entry, and a valid entry to show otherwise.
_LIST_ENTRIES: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{f"phase{n}_encryption_algorithms": (lambda v: v in ENCRYPTION_ALGORITHMS, "AES128") for n in (1, 2)},
    **{f"phase{n}_integrity_algorithms": (lambda v: v in INTEGRITY_ALGORITHMS, "SHA2-256") for n in (1, 2)},
    "phase1_dh_group_numbers": (lambda v: type(v) is int and v in PHASE1_DH_GROUPS, "14"),
    "phase2_dh_group_numbers": (lambda v: type(v) is int and v in PHASE2_DH_GROUPS, "14"),
    "ike_versions": (lambda v: v in IKE_VERSIONS, "ikev2"),
    "static_routes": (_is_cidr, "172.16.0.0/16"),
    "cidrs": (_is_cidr, "10.0.0.0/16"),
    "ca_certificates": (lambda v: isinstance(v, str) and bool(v.strip()), "/etc/vgw/pki/ca.pem"),
}


def _list_example(key: str, value: Any) -> str:
    """`[value]` when the value is one valid entry of the list, else a valid example."""
    valid, example = _LIST_ENTRIES.get(key, (lambda v: False, "a, b"))
    try:
        ok = valid(value)
    except TypeError:   # an unhashable value
        ok = False
    return f"[{_show(value)}]" if ok else f"[{example}]"


def _issues_from(exc: ValidationError, lines: dict[KeyPath, int]) -> tuple[list[ConfigIssue], int]:
    """The first MAX_ISSUES problems as ConfigIssues, and how many there are."""
    found: list[tuple[KeyPath, str, str]] = []  # (loc, message, pydantic type)
    suggested: set[KeyPath] = set()
    errors = exc.errors(include_url=False)
    for error in errors[:MAX_ISSUES]:
        loc = tuple(error["loc"])
        if error["type"] == "vgw":
            for at, message in error["ctx"]["problems"]:
                found.append((loc + tuple(at), message, "vgw"))
        elif error["type"] == "extra_forbidden":
            message, meant = _unknown_key(loc)
            if meant is not None:
                suggested.add(loc[:-1] + (meant,))
            found.append((loc, message, "extra_forbidden"))
        else:
            found.append((loc, _translate(error, loc), error["type"]))
    issues = []
    for loc, message, kind in found:
        if kind == "missing" and loc in suggested:
            continue  # "unknown key outside_ips; did you mean outside_ip?" already says it
        in_file = _as_in_file(loc, lines)
        issues.append(ConfigIssue(_path_text(in_file), message, _line_of(in_file, lines)))
    return issues, len(issues) + max(0, len(errors) - MAX_ISSUES)
