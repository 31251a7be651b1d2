"""Loading a config file: bounded YAML with the line of every key (yaml_safe.py),
then the models (gateway.py); pydantic's errors become ConfigIssues that name the
bad key by its path and line in the file and say what to change.

Use `load_config(path)` or `parse_config(text)`; both raise `ConfigError`, which
carries every problem found (`.issues`), not just the first.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from . import yaml_safe
from .connection import ConnectionConfig, CustomerGatewayConfig
from .errors import MAX_ISSUES, ConfigError, ConfigIssue, KeyPath, path_text
from .gateway import GatewayConfig
from .tunnel import TunnelConfig
from .values import (
    ENCRYPTION_ALGORITHMS,
    IKE_VERSIONS,
    INTEGRITY_ALGORITHMS,
    PHASE1_DH_GROUPS,
    PHASE2_DH_GROUPS,
    parse_cidr,
    show,
)

# YAML would turn `pre_shared_key: 012345678` into a number (octal, even); for these
# keys the loader keeps the text exactly as written.
_RAW_TEXT_KEYS = frozenset({"pre_shared_key", "name"})

# AWS options that exist in the EC2 API but make no sense for a VGW emulator: an
# unknown-key error for them says why instead of guessing a near spelling.
_UNSUPPORTED_AWS_KEYS = {
    # docs/aws.md §1.2, §1.8, §1.9: IPv6 and acceleration are transit-gateway only.
    "tunnel_inside_ipv6_cidr": "IPv6 inside addresses exist only on a transit gateway; a VGW has none",
    "tunnel_inside_ip_version": "a VGW carries IPv4 inside its tunnels only",
    "local_ipv6_network_cidr": "IPv6 traffic selectors exist only on a transit gateway",
    "remote_ipv6_network_cidr": "IPv6 traffic selectors exist only on a transit gateway",
    "enable_acceleration": "acceleration exists only on a transit gateway",
    "outside_ip_address_type": "vgw listens on the IPv4 outside_ip you give each tunnel",
    # docs/aws.md §3.1: CloudwatchLogOptions keys that name AWS resources vgw does not have.
    "log_group_arn": "vgw has no CloudWatch; the tunnel log goes to stdout/journal, and to log_file if you set it",
    "bgp_log_group_arn": "vgw has no CloudWatch; the BGP log goes to stdout/journal, and to bgp_log_file if you set it",
}


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a config file; raises ConfigError naming every bad key.
    Any file ends here, in bounded time and memory (daemon/config/yaml_safe.py)."""
    source = str(path)
    try:
        text = yaml_safe.read_text(path)
    except yaml_safe.YamlProblem as problem:
        raise ConfigError(source, [ConfigIssue("", problem.message, problem.line)]) from None
    return parse_config(text, source, base_dir=Path(path).parent)


def parse_config(text: str, source: str = "<string>", base_dir: str | Path | None = None) -> GatewayConfig:
    """Validate config text; `source` names it in error messages; relative file
    names in it (certificates, keys) are taken from `base_dir` (default: the
    current directory)."""
    try:
        doc = yaml_safe.load(text, _RAW_TEXT_KEYS)
    except yaml_safe.YamlProblem as problem:
        raise ConfigError(source, [ConfigIssue("", problem.message, problem.line)]) from None
    if doc is None:
        raise ConfigError(source, [ConfigIssue("", "the file is empty; a config needs at least vpc and"
                                               " connections", 1)])
    issues = [ConfigIssue(path_text(path), message, line) for path, message, line in doc.duplicates]
    total = len(issues)
    try:
        config = GatewayConfig.model_validate(doc.data, context={"base_dir": base_dir})
    except ValidationError as exc:
        found, count = _issues_from(exc, doc.lines)
        issues += found
        total += count
    else:
        if not issues:
            config._warned = [ConfigIssue(path_text(at), message, _line_of(at, doc.lines))
                              for at, message in config._warned]
            return config
    issues.sort(key=lambda issue: issue.line or 0)
    raise ConfigError(source, issues, total)


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
    # a connection option under a tunnel (tunnel_bandwidth, AWS sets it for both tunnels)
    if model is TunnelConfig and _field_for(ConnectionConfig, key) is not None:
        return (f"{key} is a connection option: it applies to both tunnels of the connection;"
                " move it up to the connection, beside tunnels"), None
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
            return f"the file must be a YAML mapping with the keys vpc and connections; got {show(value)}"
        model = _model_at(loc)
        # (customer_gateway: 198.51.100.10 meant {ip: ...}: its first key is the usual one)
        shorthand = model is not None and (len(model.model_fields) == 1 or model is CustomerGatewayConfig)
        if shorthand and value is not None:
            # vpc: [10.0.0.0/16] meant vpc: {cidrs: [10.0.0.0/16]}
            inner = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
            return f"must be a mapping; got {show(value)}: write {key}: {{{next(iter(model.model_fields))}: {inner}}}"
        return f"must be a mapping of keys (key: value); got {show(value)}"
    if kind == "list_type":
        if isinstance(value, dict):
            return f"must be a list; got a mapping: start each entry of {key} with '- '"
        return f"must be a list, e.g. {key}: {_list_example(key, value)}; got {show(value)}"
    if kind == "string_type":
        return f"must be text; got {show(value)}"
    return error["msg"]


def _is_cidr(value: Any) -> bool:
    try:
        parse_cidr(value)
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
    return f"[{show(value)}]" if ok else f"[{example}]"


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
        issues.append(ConfigIssue(path_text(in_file), message, _line_of(in_file, lines)))
    return issues, len(issues) + max(0, len(errors) - MAX_ISSUES)
