"""Tunnel options between the EC2 API and the YAML config's keys.

The API's VpnTunnelOptionsSpecification (create), ModifyVpnTunnelOptionsSpecification
(modify) and TunnelOption (describe) carry the options the config spells in
snake_case (daemon/config/tunnel.py: phase1_dh_group_numbers, dpd_timeout_seconds, ...).
Options a request sets are stored under their config keys; the config's own
models then validate them and supply AWS's defaults, so the API and a YAML
file accept and refuse exactly the same values, with the same messages.

CloudWatch log group ARNs and the BGP log settings exist only in AWS: vgw
stores and returns them (so a Terraform config written for AWS applies) and
does nothing else with them (docs/api.md).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from pydantic import ValidationError

from daemon.config import ConnectionConfig, TunnelConfig

from .errors import ApiError, combination, invalid_value

# (request member, response member, config key); list options carry [{"Value": x}].
SCALARS = (
    ("Phase1LifetimeSeconds", "Phase1LifetimeSeconds", "phase1_lifetime_seconds"),
    ("Phase2LifetimeSeconds", "Phase2LifetimeSeconds", "phase2_lifetime_seconds"),
    ("RekeyMarginTimeSeconds", "RekeyMarginTimeSeconds", "rekey_margin_time_seconds"),
    ("RekeyFuzzPercentage", "RekeyFuzzPercentage", "rekey_fuzz_percentage"),
    ("ReplayWindowSize", "ReplayWindowSize", "replay_window_size"),
    ("DPDTimeoutSeconds", "DpdTimeoutSeconds", "dpd_timeout_seconds"),
    ("DPDTimeoutAction", "DpdTimeoutAction", "dpd_timeout_action"),
    ("StartupAction", "StartupAction", "startup_action"),
    ("EnableTunnelLifecycleControl", "EnableTunnelLifecycleControl", "enable_tunnel_lifecycle_control"),
)
LISTS = (
    ("Phase1EncryptionAlgorithms", "Phase1EncryptionAlgorithms", "phase1_encryption_algorithms"),
    ("Phase2EncryptionAlgorithms", "Phase2EncryptionAlgorithms", "phase2_encryption_algorithms"),
    ("Phase1IntegrityAlgorithms", "Phase1IntegrityAlgorithms", "phase1_integrity_algorithms"),
    ("Phase2IntegrityAlgorithms", "Phase2IntegrityAlgorithms", "phase2_integrity_algorithms"),
    ("Phase1DHGroupNumbers", "Phase1DHGroupNumbers", "phase1_dh_group_numbers"),
    ("Phase2DHGroupNumbers", "Phase2DHGroupNumbers", "phase2_dh_group_numbers"),
    ("IKEVersions", "IkeVersions", "ike_versions"),
)
# AWS-only CloudWatch settings: stored and echoed (CloudWatchLogOptionsSpecification).
AWS_ONLY_LOG = ("LogGroupArn", "BgpLogEnabled", "BgpLogGroupArn", "BgpLogOutputFormat")

# config key -> the request parameter that sets it, to name it in errors
_PARAMETER = {key: name for name, _, key in SCALARS + LISTS}
_PARAMETER.update({
    "inside_cidr": "TunnelInsideCidr", "tunnel_inside_cidr": "TunnelInsideCidr", "pre_shared_key": "PreSharedKey",
    "log_options": "LogOptions", "cloudwatch_log_options": "CloudWatchLogOptions", "log_enabled": "LogEnabled",
    "log_output_format": "LogOutputFormat", "outside_ip": "VpnTunnelOutsideIpAddress",
    "certificate": "CertificateArn", "private_key": "CertificateArn",
})
_CONNECTION_PARAMETER = {
    "local_network_cidr": "Options.LocalIpv4NetworkCidr",
    "remote_network_cidr": "Options.RemoteIpv4NetworkCidr",
    "static_routes": "DestinationCidrBlock",
    "customer_gateway": "CustomerGatewayId",
}


def options_from_request(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(config options, fields with their own columns, AWS-only log settings) of one
    tunnel's request options. Only what the request sets is returned."""
    if spec.get("TunnelInsideIpv6Cidr"):
        # docs/aws.md §1.2: IPv6 inside addresses exist on a transit gateway only.
        raise invalid_value("TunnelInsideIpv6Cidr is supported on transit gateway connections only;"
                            " a virtual private gateway's tunnels carry IPv4 (use TunnelInsideCidr)")
    options: dict[str, Any] = {}
    for name, _, key in SCALARS:
        if name in spec:
            options[key] = spec[name]
    for name, _, key in LISTS:
        if name in spec:
            options[key] = [item.get("Value") for item in spec[name]]
    own = {key: spec[name] for name, key in (("TunnelInsideCidr", "inside_cidr"), ("PreSharedKey", "pre_shared_key"))
           if name in spec}
    aws_only: dict[str, Any] = {}
    cloudwatch = (spec.get("LogOptions") or {}).get("CloudWatchLogOptions")
    if cloudwatch is not None:
        log: dict[str, Any] = {}
        if "LogEnabled" in cloudwatch:
            log["log_enabled"] = cloudwatch["LogEnabled"]
        if "LogOutputFormat" in cloudwatch:
            log["log_output_format"] = cloudwatch["LogOutputFormat"]
        options["log_options"] = {"cloudwatch_log_options": log}
        aws_only = {name: cloudwatch[name] for name in AWS_ONLY_LOG if name in cloudwatch}
    return options, own, aws_only


def tunnel_option(tunnel: TunnelConfig, aws_only: dict[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """The describe form (TunnelOption) of a validated tunnel: its addresses, its key,
    and of the options only those a request set (`stored`, by config key), as
    EC2 answers: an option left to AWS's default is absent, so Terraform's
    aws_vpn_connection, which reads each one back, sees no change to make
    (docs/api.md)."""
    result: dict[str, Any] = {
        "OutsideIpAddress": str(tunnel.outside_ip),
        "TunnelInsideCidr": str(tunnel.inside_cidr),
    }
    if tunnel.pre_shared_key is not None:
        result["PreSharedKey"] = tunnel.pre_shared_key
    for _, name, key in SCALARS:
        if key in stored:
            result[name] = getattr(tunnel, key)
    for _, name, key in LISTS:
        if key in stored:
            result[name] = [{"Value": value} for value in getattr(tunnel, key)]
    cloudwatch = tunnel.log_options.cloudwatch_log_options
    log = {"LogEnabled": cloudwatch.log_enabled, "LogOutputFormat": cloudwatch.log_output_format}
    log.update(aws_only)
    result["LogOptions"] = {"CloudWatchLogOptions": log}
    return result


def _parameter(loc: tuple, tunnel_prefix) -> str:
    """The request parameter a config error's location stands for."""
    if loc and loc[0] == "tunnels" and len(loc) >= 2 and isinstance(loc[1], int):
        names = [_PARAMETER.get(key, key) for key in loc[2:] if isinstance(key, str)]
        return (tunnel_prefix(loc[1]) + ".".join(names)).rstrip(".")
    if loc and loc[0] in _CONNECTION_PARAMETER:
        return _CONNECTION_PARAMETER[loc[0]]
    return ".".join(str(part) for part in loc) or "VpnConnection"


def _in_api_words(message: str) -> str:
    """The config's message with its key names spelled as the API's parameters."""
    return re.sub(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", lambda m: _PARAMETER.get(m.group(0), m.group(0)), message)


def validate_connection(entry: dict[str, Any], tunnel_prefix) -> ConnectionConfig:
    """The connection entry validated by the config's ConnectionConfig; its first
    complaint becomes AWS's error, naming the request parameter.

    `tunnel_prefix(position)` spells a tunnel's parameters in this request
    ("Options.TunnelOptions.1." for create, "TunnelOptions." for modify)."""
    try:
        return ConnectionConfig.model_validate(entry)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc, message = tuple(error["loc"]), error["msg"]
        # a cross-field check names its key below the validated model (config convention)
        problems = (error.get("ctx") or {}).get("problems")
        if problems:
            at, message = problems[0]
            loc += tuple(at)
        text = f"Invalid value for {_parameter(loc, tunnel_prefix)}: {_in_api_words(message)}"
        # startup_action start / dpd restart without a customer gateway address is a
        # connection-level rule (docs/aws.md §1.7): a combination, not one bad value.
        if loc[-1:] in (("startup_action",), ("dpd_timeout_action",)) and "customer gateway" in message:
            raise combination(text) from None
        raise ApiError("InvalidParameterValue", text) from None
