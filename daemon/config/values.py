"""AWS's values, parsed: one reusable pydantic type per kind of value in the
config file (CIDRs, addresses, ASNs, pre-shared keys, algorithm lists, whole
numbers in AWS's ranges, names), each explaining a bad value in words that say
what to change, and the helpers those explanations share.

Its own module because every section of the config (tunnel.py, connection.py,
sections.py, gateway.py) spells its keys with these types, and the EC2 API layer
checks its parameters against the same constants. Values are spelled as AWS
spells them; section numbers (§N) are docs/aws.md's.
"""

import difflib
import re
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from ikecore.certs import FQDN_RE, Identity

# Allowed values and defaults: docs/aws.md §0 and §1.4 (VpnTunnelOptionsSpecification).
ENCRYPTION_ALGORITHMS = ("AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16")
INTEGRITY_ALGORITHMS = ("SHA1", "SHA2-256", "SHA2-384", "SHA2-512")
PHASE1_DH_GROUPS = (2, *range(14, 25))
PHASE2_DH_GROUPS = (2, 5, *range(14, 25))
IKE_VERSIONS = ("ikev1", "ikev2")
DPD_TIMEOUT_ACTIONS = ("clear", "none", "restart")  # §1.5
LOG_OUTPUT_FORMATS = ("json", "text")  # §3.1: CloudwatchLogOptions.LogOutputFormat
STARTUP_ACTIONS = ("add", "start")  # §1.7
# §1.9, §4.1: AWS's TunnelBandwidth and what a tunnel of it carries at most ("estimated
# maximums"): (bits per second, packets per second). A virtual private gateway has
# standard tunnels only; large (5 Gbps) exists on a transit gateway or Cloud WAN.
TUNNEL_BANDWIDTH_LIMITS = {"standard": (1_250_000_000, 140_000)}
TUNNEL_BANDWIDTHS = tuple(TUNNEL_BANDWIDTH_LIMITS)

EncryptionAlgorithm = Literal["AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"]
IntegrityAlgorithm = Literal["SHA1", "SHA2-256", "SHA2-384", "SHA2-512"]
IkeVersion = Literal["ikev1", "ikev2"]
DpdTimeoutAction = Literal["clear", "none", "restart"]
StartupAction = Literal["add", "start"]
TunnelBandwidthValue = Literal["standard"]
LogOutputFormat = Literal["json", "text"]

# docs/aws.md §1.2: inside CIDRs are /30s in 169.254.0.0/16, minus these reserved blocks.
INSIDE_CIDR_POOL = IPv4Network("169.254.0.0/16")
RESERVED_INSIDE_CIDRS = frozenset(
    [IPv4Network(f"169.254.{i}.0/30") for i in range(6)] + [IPv4Network("169.254.169.252/30")]
)

# §1.11: the Amazon side's ASN (default 64512) and the customer gateway's (default 65000).
DEFAULT_AMAZON_SIDE_ASN = 64512
DEFAULT_CUSTOMER_GATEWAY_ASN = 65000
AMAZON_SIDE_ASN_RANGES = ((64512, 65534), (4200000000, 4294967294))
# AWS's own ASNs (older VGWs' defaults, §1.11), refused for a customer gateway
RESERVED_CUSTOMER_GATEWAY_ASNS = {7224: "all Regions", 9059: "eu-west-1", 10124: "ap-northeast-1",
                                  17493: "ap-southeast-1"}


class ConfigModel(BaseModel):
    """The base of every section of the config."""

    # extra="forbid": a misspelt key is an error, not a silently ignored option.
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------
# Problems in words


def fail(message: str) -> PydanticCustomError:
    """A validation error with our own wording (pydantic's would say "Value error, ...")."""
    return fail_many([((), message)])


def fail_many(problems: list[tuple[tuple, str]]) -> PydanticCustomError:
    """Several problems from one validator (cross-field checks), each with its own path
    relative to the validated value; load.py expands them into ConfigIssues."""
    text = "; ".join(message for _, message in problems)
    return PydanticCustomError("vgw", "{message}", {"message": text, "problems": problems})


def show(value: Any) -> str:
    """A value as a message shows it (a mapping or a list by its kind, not whole)."""
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
    message = f"{show(value)} is not allowed; allowed: {', '.join(allowed)}"
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


def parse_cidr(value: Any) -> IPv4Network:
    if isinstance(value, IPv4Network):
        return value
    if not isinstance(value, str):
        raise fail(f"{show(value)} is not a CIDR; write an IPv4 network with its prefix length, e.g. 10.0.0.0/16")
    text = value.strip()
    if "/" not in text:
        raise fail(f"{text} has no prefix length; write it as a CIDR, e.g. {text}/32 for a single address")
    try:
        return IPv4Network(text)
    except ValueError as exc:
        try:
            network = IPv4Network(text, strict=False)
        except ValueError:
            raise fail(f"{text} is not an IPv4 CIDR ({exc})") from None
        raise fail(f"{text} has host bits set; did you mean {network}?") from None


def _parse_address(value: Any) -> IPv4Address:
    if isinstance(value, IPv4Address):
        address = value
    elif isinstance(value, str):
        text = value.strip()
        if "/" in text:
            raise fail(f"{text} is a CIDR; write the address alone, without a prefix length")
        try:
            address = IPv4Address(text)
        except ValueError as exc:
            try:
                IPv6Address(text)
            except ValueError:
                raise fail(f"{text} is not an IPv4 address ({exc})") from None
            # docs/aws.md §1.9: IPv6 outside addresses exist only on a transit gateway.
            raise fail(f"{text} is IPv6; a VGW uses IPv4 outside addresses only") from None
    else:
        raise fail(f"{show(value)} is not an IPv4 address; write it as four numbers, e.g. 198.51.100.1")
    if address.is_unspecified or address.is_multicast or address.is_reserved or address == IPv4Address("255.255.255.255"):
        raise fail(f"{address} is not a unicast address; give the host's own IPv4 address")
    return address


def whole_number(low: int, high: int | None = None, why: str = "AWS range"):
    """A BeforeValidator for an integer option with AWS's bounds (bool is not a number)."""
    bounds = f"at least {low}" if high is None else f"between {low} and {high}"

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"must be a whole number {bounds} ({why}); got {show(value)}")
        if value < low or (high is not None and value > high):
            raise fail(f"must be {bounds} ({why}); got {value}")
        return value

    return BeforeValidator(check)


def one_of(allowed: tuple, hint: Callable[[Any], str] | None = None):
    """A BeforeValidator for a value AWS spells exactly one way."""

    def check(value: Any) -> Any:
        # isinstance guard: True == 1 in Python, but `true` is not DH group 1.
        if not isinstance(value, bool) and type(value) is type(allowed[0]) and value in allowed:
            return value
        if isinstance(allowed[0], int) and isinstance(value, str) and value.strip().isdigit():
            raise fail(f"'{value}' is quoted text; write the number without quotes: {value.strip()}")
        extra = hint(value) if hint else ""
        raise fail(_not_allowed(value, allowed) + (f" ({extra})" if extra else ""))

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


def _bandwidth_hint(value: Any) -> str:
    if value == "large":
        # docs/aws.md §1.9: large tunnels exist only on a transit gateway or Cloud WAN
        return ("large tunnels (up to 5 Gbps) exist only on a transit gateway or Cloud WAN, never on a"
                " virtual private gateway, which vgw is: use standard or remove the key")
    return ""


def listed_twice(values: list, noun: str) -> list[tuple[tuple, str]]:
    """A problem for each value that an earlier entry of the list already has."""
    seen: dict[Any, int] = {}
    problems = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(((index,), f"{value} is listed twice (also at [{seen[value]}]); list each {noun} once"))
        seen.setdefault(value, index)
    return problems


def _preference_list(allowed: tuple):
    """An AfterValidator for an AWS option list: non-empty, each value once, order kept."""

    def check(values: list) -> list:
        if not values:
            raise fail(
                f"is empty; list at least one of: {', '.join(map(str, allowed))}"
                " (or remove the key to accept all of AWS's defaults)"
            )
        problems = listed_twice(values, "value")
        if problems:
            raise fail_many(problems)
        return values

    return AfterValidator(check)


def _check_psk(value: Any) -> str:
    # docs/aws.md §1.3: 8-64 chars, [0-9A-Za-z_.], must not start with 0. Never echo the key.
    if not isinstance(value, str):
        got = show(value) if isinstance(value, (dict, list)) else type(value).__name__
        raise fail(f"must be a string of 8 to 64 characters; got {got}")
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
        raise fail("; ".join(problems))
    return value


def _check_inside_cidr(network: IPv4Network) -> IPv4Network:
    # docs/aws.md §1.2: a /30 from 169.254.0.0/16, not one of the reserved blocks.
    if network.prefixlen != 30:
        raise fail(f"must be a /30 (AWS gives each tunnel a /30 inside 169.254.0.0/16); got /{network.prefixlen}")
    if not network.subnet_of(INSIDE_CIDR_POOL):
        raise fail(f"{network} is outside 169.254.0.0/16; pick a /30 in 169.254.0.0/16, e.g. 169.254.10.0/30")
    if network in RESERVED_INSIDE_CIDRS:
        raise fail(
            f"{network} is reserved by AWS (169.254.0.0/30 to 169.254.5.0/30 and 169.254.169.252/30);"
            " pick another /30 in 169.254.0.0/16"
        )
    return network


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
        raise fail(
            f"{show(value)!s} is not a valid name; use 1 to 64 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit, e.g. vpn-lab"
        )
    return value


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(f"must be true or false; got {show(value)}")
    return value


def _check_file_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"must be a file name (PEM), e.g. /etc/vgw/vgw.pem; got {show(value)}")
    return value


def _check_identity(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"must be a DN (CN=cgw.example.net), an FQDN or an IPv4 address; got {show(value)}")
    try:
        Identity.parse(value)
    except ValueError as exc:
        raise fail(str(exc)) from None
    return value.strip()


def _check_certificate_identity(value: Any) -> str:
    """A DNS name or an IPv4 address of vgw's certificate (its subjectAltName)."""
    text = value.strip() if isinstance(value, str) else None
    if text:
        try:
            IPv4Address(text)
            return text
        except ValueError:
            pass
    if text is None or "=" in text or not FQDN_RE.fullmatch(text) or text.replace(".", "").isdigit():
        hint = " (vgw presents its subject DN when the key is omitted)" if text and "=" in text else ""
        raise fail("must be a DNS name or an IPv4 address in vgw's certificate, e.g. vgw.example.net"
                   f" or the tunnel's outside_ip; got {show(value)}{hint}")
    return text


def _check_customer_gateway_asn(value: Any) -> int:
    asn = whole_number(1, 4294967295, why="a 2- or 4-octet ASN").func(value)
    if asn in RESERVED_CUSTOMER_GATEWAY_ASNS:
        raise fail(f"{asn} is reserved by AWS ({RESERVED_CUSTOMER_GATEWAY_ASNS[asn]}); use your own ASN, e.g."
                   f" a private one from 64512-65534 such as {DEFAULT_CUSTOMER_GATEWAY_ASN}")
    return asn


def _check_amazon_side_asn(value: Any) -> int:
    asn = whole_number(1, 4294967295, why="a 2- or 4-octet ASN").func(value)
    if not any(low <= asn <= high for low, high in AMAZON_SIDE_ASN_RANGES):
        raise fail(f"{asn} is not an ASN AWS allows for a virtual private gateway: use 64512-65534 or"
                   f" 4200000000-4294967294 (default {DEFAULT_AMAZON_SIDE_ASN})")
    return asn


Cidr = Annotated[IPv4Network, BeforeValidator(parse_cidr)]
CredentialFile = Annotated[str, BeforeValidator(_check_file_name)]
Address = Annotated[IPv4Address, BeforeValidator(_parse_address)]
InsideCidr = Annotated[IPv4Network, BeforeValidator(parse_cidr), AfterValidator(_check_inside_cidr)]
PreSharedKey = Annotated[str, BeforeValidator(_check_psk)]
Name = Annotated[str, BeforeValidator(_check_name)]
TrueOrFalse = Annotated[bool, BeforeValidator(_strict_bool)]
PeerIdentity = Annotated[str, BeforeValidator(_check_identity)]
CertificateIdentity = Annotated[str, BeforeValidator(_check_certificate_identity)]
CustomerGatewayAsn = Annotated[int, BeforeValidator(_check_customer_gateway_asn)]
AmazonSideAsn = Annotated[int, BeforeValidator(_check_amazon_side_asn)]

Encryption = Annotated[EncryptionAlgorithm, one_of(ENCRYPTION_ALGORITHMS)]
Integrity = Annotated[IntegrityAlgorithm, one_of(INTEGRITY_ALGORITHMS)]
Phase1DhGroup = Annotated[int, one_of(PHASE1_DH_GROUPS, _dh_hint(1))]
Phase2DhGroup = Annotated[int, one_of(PHASE2_DH_GROUPS, _dh_hint(2))]
IkeVersionValue = Annotated[IkeVersion, one_of(IKE_VERSIONS)]
TunnelBandwidth = Annotated[TunnelBandwidthValue, one_of(TUNNEL_BANDWIDTHS, _bandwidth_hint)]
EncryptionList = Annotated[list[Encryption], _preference_list(ENCRYPTION_ALGORITHMS)]
IntegrityList = Annotated[list[Integrity], _preference_list(INTEGRITY_ALGORITHMS)]
Phase1DhGroupList = Annotated[list[Phase1DhGroup], _preference_list(PHASE1_DH_GROUPS)]
Phase2DhGroupList = Annotated[list[Phase2DhGroup], _preference_list(PHASE2_DH_GROUPS)]


def _require_ikev2(versions: list) -> list:
    # vgw implements IKEv2 only; ikev1 stays accepted (AWS's default list has it) and is ignored.
    if "ikev2" not in versions:
        raise fail("vgw speaks IKEv2 only: add ikev2 to ike_versions (ikev1 is accepted and ignored)")
    return versions


IkeVersionList = Annotated[list[IkeVersionValue], _preference_list(IKE_VERSIONS), AfterValidator(_require_ikev2)]


def listen_address(example: str, any_port: bool = False) -> BeforeValidator:
    """A BeforeValidator for `listen: host:port` (an IPv4 address, or an IPv6 one in
    brackets); `any_port`: 0 too (a free port: what tests use)."""
    lowest = 0 if any_port else 1

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise fail(f"must be host:port, e.g. {example}; got {show(value)}")
        host, sep, port = value.rpartition(":")
        if not sep or not host:
            raise fail(f"{value} has no port; write host:port, e.g. {example}")
        if not port.isdigit() or not lowest <= int(port) <= 65535:
            raise fail(f"{port} is not a port number ({lowest}-65535); write host:port, e.g. {example}")
        try:
            ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
        except ValueError:
            raise fail(f"{host} is not an IP address; listen on an address, e.g. {example}") from None
        return value

    return BeforeValidator(check)


class Listening:
    """`host` and `port` of a model's `listen` (see listen_address)."""

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])
