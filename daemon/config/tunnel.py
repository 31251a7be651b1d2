"""One tunnel of a VPN connection: AWS's VpnTunnelOptionsSpecification (the
crypto lists, lifetimes, rekey, DPD, startup action), its activity log options,
how it authenticates, and the inside /30 vgw picks when the file gives none.

Its own module because a tunnel is what ikecore runs (ike_settings.py turns a
TunnelConfig into an IkeSettings) and the EC2 API layer modifies one at a time.
Section numbers (§N) are docs/aws.md's; an omitted key takes the AWS default
(§0).
"""

import hashlib
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, PrivateAttr, ValidationInfo, model_validator

from ..credentials import identity_in_certificate, load_tunnel_credentials, resolve
from .values import (
    DPD_TIMEOUT_ACTIONS,
    ENCRYPTION_ALGORITHMS,
    IKE_VERSIONS,
    INSIDE_CIDR_POOL,
    INTEGRITY_ALGORITHMS,
    LOG_OUTPUT_FORMATS,
    PHASE1_DH_GROUPS,
    PHASE2_DH_GROUPS,
    RESERVED_INSIDE_CIDRS,
    STARTUP_ACTIONS,
    Address,
    CertificateIdentity,
    ConfigModel,
    CredentialFile,
    DpdTimeoutAction,
    EncryptionList,
    IkeVersionList,
    InsideCidr,
    IntegrityList,
    LogOutputFormat,
    Phase1DhGroupList,
    Phase2DhGroupList,
    PreSharedKey,
    StartupAction,
    TrueOrFalse,
    fail,
    fail_many,
    one_of,
    show,
    whole_number,
)


def choose_inside_cidr(outside_ip: IPv4Address, used: Iterable[IPv4Network] = ()) -> IPv4Network:
    """The /30 for a tunnel whose inside_cidr is omitted.

    AWS picks a random free /30 in 169.254.0.0/16 (docs/aws.md §1.2). vgw derives it
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


def _aws_default(values: tuple) -> Any:
    """A list option's AWS default, as a fresh list per tunnel."""
    return Field(default_factory=lambda: list(values))


def _check_log_file(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"must be a file path, e.g. /var/log/vgw/tunnel1.log; got {show(value)}")
    if not value.startswith("/"):
        raise fail(f"{value} is a relative path; give an absolute path, e.g. /var/log/vgw/tunnel1.log")
    return value


LogFile = Annotated[str, BeforeValidator(_check_log_file)]


class CloudwatchLogOptions(ConfigModel):
    """AWS's CloudwatchLogOptionsSpecification (docs/aws.md §3.1) in snake_case, plus
    vgw's `log_file` (AWS sends the log to a CloudWatch log group; vgw has none)."""

    log_enabled: TrueOrFalse = False  # AWS default: off (§0)
    log_output_format: Annotated[LogOutputFormat, one_of(LOG_OUTPUT_FORMATS)] = "json"
    # vgw only: also append the tunnel's records to this file (one record per line).
    log_file: LogFile | None = None
    # §3.4: the BGP log of a dynamic connection's tunnel (BgpLogEnabled, BgpLogOutputFormat)
    bgp_log_enabled: TrueOrFalse = False
    bgp_log_output_format: Annotated[LogOutputFormat, one_of(LOG_OUTPUT_FORMATS)] = "json"
    # vgw only: also append the tunnel's BGP records to this file
    bgp_log_file: LogFile | None = None


class LogOptions(ConfigModel):
    """AWS's VpnTunnelLogOptionsSpecification: `log_options: {cloudwatch_log_options: {...}}`."""

    cloudwatch_log_options: CloudwatchLogOptions = Field(default_factory=CloudwatchLogOptions)


class TunnelConfig(ConfigModel):
    """One tunnel: AWS's VpnTunnelOptionsSpecification plus the outside IP vgw listens on."""

    outside_ip: Address = Field(
        description="the tunnel's outside (public) IPv4 address that vgw listens on, e.g. outside_ip: 198.51.100.1"
    )
    # Always set after validation: omitted means chosen by choose_inside_cidr().
    inside_cidr: InsideCidr | None = Field(
        None, validation_alias=AliasChoices("inside_cidr", "tunnel_inside_cidr")
    )
    # Exactly one way to authenticate (see _auth_problems): a pre-shared key, or a
    # certificate and its private key (docs/aws.md §2: "PSK or AWS Private CA certificate").
    pre_shared_key: PreSharedKey | None = Field(None, repr=False)
    certificate: CredentialFile | None = None    # PEM: vgw's certificate, then intermediates
    private_key: CredentialFile | None = Field(None, repr=False)   # PEM, unencrypted
    # vgw only: present this DNS name or IPv4 address of the certificate (its
    # subjectAltName) as vgw's ID instead of its subject DN
    certificate_identity: CertificateIdentity | None = None
    # vgw only: RFC 7383 fragments IKE messages larger than this IPv4 datagram size
    ike_fragment_size: Annotated[int, whole_number(576, 9000, why="IPv4 datagram bytes")] = 1280
    phase1_encryption_algorithms: EncryptionList = _aws_default(ENCRYPTION_ALGORITHMS)
    phase2_encryption_algorithms: EncryptionList = _aws_default(ENCRYPTION_ALGORITHMS)
    phase1_integrity_algorithms: IntegrityList = _aws_default(INTEGRITY_ALGORITHMS)
    phase2_integrity_algorithms: IntegrityList = _aws_default(INTEGRITY_ALGORITHMS)
    phase1_dh_group_numbers: Phase1DhGroupList = _aws_default(PHASE1_DH_GROUPS)
    phase2_dh_group_numbers: Phase2DhGroupList = _aws_default(PHASE2_DH_GROUPS)
    ike_versions: IkeVersionList = _aws_default(IKE_VERSIONS)
    phase1_lifetime_seconds: Annotated[int, whole_number(900, 28800)] = 28800
    phase2_lifetime_seconds: Annotated[int, whole_number(900, 3600)] = 3600
    # Upper bound (half of phase 2) checked in _check_tunnel. Default 270 since 2023-04 (§1.6).
    rekey_margin_time_seconds: Annotated[int, whole_number(60)] = 270
    rekey_fuzz_percentage: Annotated[int, whole_number(0, 100)] = 100
    replay_window_size: Annotated[int, whole_number(64, 2048)] = 1024
    # 30 per VpnTunnelOptionsSpecification; the Modify API says 40 (docs/aws.md §1.5, §10).
    dpd_timeout_seconds: Annotated[int, whole_number(30, why="AWS minimum")] = 30
    dpd_timeout_action: Annotated[DpdTimeoutAction, one_of(DPD_TIMEOUT_ACTIONS)] = "clear"
    startup_action: Annotated[StartupAction, one_of(STARTUP_ACTIONS)] = "add"
    enable_tunnel_lifecycle_control: TrueOrFalse = False  # §1.10: accepted only
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
            raise fail_many(problems)
        if self.inside_cidr is None:
            self.inside_cidr = choose_inside_cidr(self.outside_ip)
            self._inside_cidr_auto = True
        return self

    def _auth_problems(self) -> list[tuple[tuple, str]]:
        """Exactly one way to authenticate: a pre-shared key (docs/aws.md §1.3) or a
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
            raise fail_many(found)
        self._chain, self._key_der = chain, key_der
        return self

    @property
    def inside_cidr_is_auto(self) -> bool:
        """True if inside_cidr was omitted and chosen by choose_inside_cidr()."""
        return self._inside_cidr_auto

    @property
    def vgw_inside_ip(self) -> IPv4Address:
        """The AWS (VGW) end of the inside /30: network+1 (docs/aws.md §1.2)."""
        return self.inside_cidr.network_address + 1

    @property
    def cgw_inside_ip(self) -> IPv4Address:
        """The customer gateway end of the inside /30: network+2 (docs/aws.md §1.2)."""
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
