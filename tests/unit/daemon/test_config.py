"""daemon.config and `vgw validate`: the example of docs/design.md §6.4, AWS defaults and ranges,
and error messages that name the bad key by its path in the file."""

import copy
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import re

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import cli
from daemon.config import (
    RESERVED_INSIDE_CIDRS,
    ConfigError,
    GatewayConfig,
    TunnelConfig,
    choose_inside_cidr,
    load_config,
    parse_config,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

# docs/design.md §6.4: this must keep loading as written.
DESIGN_EXAMPLE = """\
control_socket: /run/vgw/vgw.sock
vpc:
  cidrs: [10.0.0.0/16]
connections:
  - name: vpn-lab
    customer_gateway: {ip: 198.51.100.10}   # ip may be omitted: then any address
    static_routes: [172.16.0.0/16]
    local_network_cidr: 0.0.0.0/0           # customer side traffic selector
    remote_network_cidr: 0.0.0.0/0          # AWS side traffic selector
    tunnels:
      - outside_ip: 198.51.100.1
        inside_cidr: 169.254.10.0/30
        pre_shared_key: example_psk_tunnel1_abcdef
        phase1_encryption_algorithms: [AES128]
        phase1_integrity_algorithms: [SHA2-256]
        phase1_dh_group_numbers: [14]
        phase2_encryption_algorithms: [AES128-GCM-16]
        phase2_integrity_algorithms: [SHA2-256]
        phase2_dh_group_numbers: [14]
        ike_versions: [ikev2]
      - outside_ip: 198.51.100.2
        inside_cidr: 169.254.11.0/30
        pre_shared_key: example_psk_tunnel2_abcdef
"""

# docs/aws.md §0: the defaults every omitted key must take.
AWS_DEFAULTS = {
    "phase1_encryption_algorithms": ["AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"],
    "phase2_encryption_algorithms": ["AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"],
    "phase1_integrity_algorithms": ["SHA1", "SHA2-256", "SHA2-384", "SHA2-512"],
    "phase2_integrity_algorithms": ["SHA1", "SHA2-256", "SHA2-384", "SHA2-512"],
    "phase1_dh_group_numbers": [2, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24],
    "phase2_dh_group_numbers": [2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24],
    "ike_versions": ["ikev1", "ikev2"],
    "phase1_lifetime_seconds": 28800,
    "phase2_lifetime_seconds": 3600,
    "rekey_margin_time_seconds": 270,
    "rekey_fuzz_percentage": 100,
    "replay_window_size": 1024,
    "dpd_timeout_seconds": 30,
    "dpd_timeout_action": "clear",
    "startup_action": "add",
    "enable_tunnel_lifecycle_control": False,
}

PSK1 = "example_psk_tunnel1_abcdef"
PSK2 = "example_psk_tunnel2_abcdef"


def base() -> dict:
    """A small valid config as plain data, for tests to break one key at a time."""
    return {
        "vpc": {"cidrs": ["10.0.0.0/16"]},
        "connections": [
            {
                "name": "vpn-lab",
                "customer_gateway": {"ip": "198.51.100.10"},
                "static_routes": ["172.16.0.0/16"],
                "tunnels": [
                    {"outside_ip": "198.51.100.1", "inside_cidr": "169.254.10.0/30", "pre_shared_key": PSK1},
                    {"outside_ip": "198.51.100.2", "inside_cidr": "169.254.11.0/30", "pre_shared_key": PSK2},
                ],
            }
        ],
    }


def dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def issues_of(text: str) -> list:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "t.yaml")
    return info.value.issues


def only_issue(data_or_text) -> "tuple[str, str]":
    text = data_or_text if isinstance(data_or_text, str) else dump(data_or_text)
    issues = issues_of(text)
    assert len(issues) == 1, [i.format("t.yaml") for i in issues]
    return issues[0].path, issues[0].message


def tunnel0(data: dict) -> dict:
    return data["connections"][0]["tunnels"][0]


T0 = "connections[0].tunnels[0]"


# ---------------------------------------------------------------------------
# The example of docs/design.md §6.4 and the defaults


def test_examples_vgw_yaml_is_the_design_example_verbatim():
    assert (EXAMPLES / "vgw.yaml").read_text() == DESIGN_EXAMPLE


def test_design_example_loads_as_written():
    config = parse_config(DESIGN_EXAMPLE)
    assert config.control_socket == "/run/vgw/vgw.sock"
    assert config.vpc.cidrs == [IPv4Network("10.0.0.0/16")]
    (connection,) = config.connections
    assert connection.name == "vpn-lab"
    assert connection.customer_gateway.ip == IPv4Address("198.51.100.10")
    assert connection.static_routes == [IPv4Network("172.16.0.0/16")]
    assert connection.local_network_cidr == IPv4Network("0.0.0.0/0")
    assert connection.remote_network_cidr == IPv4Network("0.0.0.0/0")
    first, second = connection.tunnels
    assert first.outside_ip == IPv4Address("198.51.100.1")
    assert first.inside_cidr == IPv4Network("169.254.10.0/30")
    assert (first.vgw_inside_ip, first.cgw_inside_ip) == (IPv4Address("169.254.10.1"), IPv4Address("169.254.10.2"))
    assert first.pre_shared_key == PSK1
    assert first.phase1_encryption_algorithms == ["AES128"]
    assert first.phase1_integrity_algorithms == ["SHA2-256"]
    assert first.phase1_dh_group_numbers == [14]
    assert first.phase2_encryption_algorithms == ["AES128-GCM-16"]
    assert first.phase2_integrity_algorithms == ["SHA2-256"]
    assert first.phase2_dh_group_numbers == [14]
    assert first.ike_versions == ["ikev2"]
    assert second.outside_ip == IPv4Address("198.51.100.2")
    assert (second.vgw_inside_ip, second.cgw_inside_ip) == (IPv4Address("169.254.11.1"), IPv4Address("169.254.11.2"))
    assert not first.inside_cidr_is_auto and not second.inside_cidr_is_auto


def test_design_example_second_tunnel_gets_every_aws_default():
    second = parse_config(DESIGN_EXAMPLE).connections[0].tunnels[1]
    for key, value in AWS_DEFAULTS.items():
        assert getattr(second, key) == value, key
    # and the first tunnel takes the defaults for the keys it leaves out
    first = parse_config(DESIGN_EXAMPLE).connections[0].tunnels[0]
    assert first.phase1_lifetime_seconds == 28800 and first.dpd_timeout_action == "clear"


def test_connection_and_gateway_defaults():
    config = parse_config(dump({"vpc": {"cidrs": ["10.0.0.0/16"]},
                                "connections": [{"name": "c", "tunnels": [{"outside_ip": "198.51.100.1",
                                                                           "pre_shared_key": PSK1}]}]}))
    assert config.control_socket == "/run/vgw/vgw.sock"
    connection = config.connections[0]
    assert connection.customer_gateway.ip is None
    assert connection.static_routes == []
    assert connection.local_network_cidr == connection.remote_network_cidr == IPv4Network("0.0.0.0/0")
    assert connection.tunnels[0].inside_cidr_is_auto


def test_full_example_spells_out_exactly_the_defaults():
    from daemon.config import DosProtectionConfig
    full = load_config(EXAMPLES / "vgw-full.yaml")
    first, second = full.connections[0].tunnels
    assert full.dos_protection == DosProtectionConfig()
    for key, value in AWS_DEFAULTS.items():
        assert getattr(first, key) == value, key
    assert first.model_dump(exclude={"outside_ip", "pre_shared_key", "inside_cidr"}) == second.model_dump(
        exclude={"outside_ip", "pre_shared_key", "inside_cidr"}
    )
    # every tunnel key except the optional inside CIDR and the certificate keys (the
    # alternative to pre_shared_key, shown as comments) is written out
    written = yaml.safe_load((EXAMPLES / "vgw-full.yaml").read_text())["connections"][0]["tunnels"][0]
    cert_keys = {"certificate", "private_key", "certificate_identity"}
    assert set(written) == set(TunnelConfig.model_fields) - {"inside_cidr"} - cert_keys
    for key in cert_keys:
        assert f"# {key}:" in (EXAMPLES / "vgw-full.yaml").read_text()
    assert "inside_cidr" in (EXAMPLES / "vgw-full.yaml").read_text()
    # every top-level, connection, customer gateway and log option key is written or shown commented
    from daemon.config import (CloudwatchLogOptions, ConnectionConfig, CustomerGatewayConfig, GatewayConfig)
    text = (EXAMPLES / "vgw-full.yaml").read_text()
    for model in (GatewayConfig, ConnectionConfig, CustomerGatewayConfig, CloudwatchLogOptions):
        for key in model.model_fields:
            assert re.search(rf"^\s*#?\s*-?\s*{key}:", text, re.M), f"{model.__name__}.{key} not in vgw-full.yaml"


def test_list_order_is_kept_as_preference_order():
    data = base()
    tunnel0(data)["phase1_dh_group_numbers"] = [21, 14, 2]
    tunnel0(data)["phase2_encryption_algorithms"] = ["AES256-GCM-16", "AES128"]
    t = parse_config(dump(data)).connections[0].tunnels[0]
    assert t.phase1_dh_group_numbers == [21, 14, 2]
    assert t.phase2_encryption_algorithms == ["AES256-GCM-16", "AES128"]


def test_tunnel_inside_cidr_is_accepted_as_alias():
    data = base()
    tunnel0(data)["tunnel_inside_cidr"] = tunnel0(data).pop("inside_cidr")
    assert parse_config(dump(data)).connections[0].tunnels[0].inside_cidr == IPv4Network("169.254.10.0/30")


def test_one_tunnel_and_ikev1_are_accepted():
    data = base()
    del data["connections"][0]["tunnels"][1]
    tunnel0(data)["ike_versions"] = ["ikev1", "ikev2"]
    assert len(parse_config(dump(data)).connections[0].tunnels) == 1


def test_psk_is_kept_as_written_even_when_yaml_would_read_a_number():
    text = DESIGN_EXAMPLE.replace(PSK1, "1234_5678").replace("name: vpn-lab", "name: 2024")
    config = parse_config(text)
    assert config.connections[0].tunnels[0].pre_shared_key == "1234_5678"
    assert config.connections[0].name == "2024"


def test_psk_is_not_in_repr():
    assert PSK1 not in repr(parse_config(DESIGN_EXAMPLE))


def test_psk_is_not_in_the_core_policy_repr():
    from daemon.config.ike_settings import ike_settings
    from ikecore.sa import IkeSa

    config = parse_config(DESIGN_EXAMPLE)
    conn = config.connections[0]
    policy = ike_settings(conn, conn.tunnels[0])
    assert policy.psk == PSK1.encode()
    sa = IkeSa(policy, initiator=True, local=("198.51.100.1", 500), remote=("198.51.100.10", 500), created=0.0)
    assert PSK1 not in repr(policy) and PSK1 not in repr(sa)


def test_find_tunnel_by_outside_ip():
    config = parse_config(DESIGN_EXAMPLE)
    connection, tunnel = config.find_tunnel("198.51.100.2")
    assert connection.name == "vpn-lab" and tunnel.inside_cidr == IPv4Network("169.254.11.0/30")
    assert config.find_tunnel("192.0.2.1") is None


# ---------------------------------------------------------------------------
# One failing case per rule: the message names the key path and says what to do.


def _set(path: str, value):
    """A mutation: set `connections.0.tunnels.0.key` (dots, ints for indexes) to value."""

    def mutate(data):
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = data
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def _delete(path: str):
    def mutate(data):
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = data
        for part in parents:
            target = target[part]
        del target[last]

    return mutate


TP = "connections.0.tunnels.0."

RULES = [
    # (mutation, expected path, fragments of the message)
    (_set(TP + "pre_shared_key", "short"), f"{T0}.pre_shared_key", ["8 to 64 characters"]),
    (_set(TP + "pre_shared_key", "x" * 65), f"{T0}.pre_shared_key", ["8 to 64 characters", "65"]),
    (_set(TP + "pre_shared_key", "bad-key!x"), f"{T0}.pre_shared_key",
     ["contains 2 characters AWS does not allow", "letters, digits, '.' and '_'"]),
    (_set(TP + "pre_shared_key", "0abcdefgh"), f"{T0}.pre_shared_key", ["must not start with 0"]),
    (_delete(TP + "pre_shared_key"), f"{T0}.pre_shared_key", ["missing", "add pre_shared_key"]),
    (_delete(TP + "outside_ip"), f"{T0}.outside_ip", ["missing", "outside_ip: 198.51.100.1"]),
    (_set(TP + "outside_ip", "198.51.100.300"), f"{T0}.outside_ip", ["not an IPv4 address"]),
    (_set(TP + "outside_ip", "198.51.100.1/32"), f"{T0}.outside_ip", ["without a prefix length"]),
    (_set(TP + "outside_ip", "2001:db8::1"), f"{T0}.outside_ip", ["IPv6"]),
    (_set(TP + "outside_ip", "0.0.0.0"), f"{T0}.outside_ip", ["not a unicast address"]),
    (_set(TP + "inside_cidr", "169.254.10.0/29"), f"{T0}.inside_cidr", ["must be a /30", "/29"]),
    (_set(TP + "inside_cidr", "10.0.0.0/30"), f"{T0}.inside_cidr", ["169.254.0.0/16"]),
    (_set(TP + "inside_cidr", "169.254.3.0/30"), f"{T0}.inside_cidr", ["reserved by AWS", "pick another"]),
    (_set(TP + "inside_cidr", "169.254.169.252/30"), f"{T0}.inside_cidr", ["reserved by AWS"]),
    (_set(TP + "inside_cidr", "169.254.10.1/30"), f"{T0}.inside_cidr", ["host bits", "did you mean 169.254.10.0/30"]),
    (_set(TP + "phase1_encryption_algorithms", ["AES128", "AES129"]), f"{T0}.phase1_encryption_algorithms[1]",
     ["AES129 is not allowed", "allowed: AES128, AES256, AES128-GCM-16, AES256-GCM-16", "did you mean AES128?"]),
    (_set(TP + "phase2_encryption_algorithms", ["aes256"]), f"{T0}.phase2_encryption_algorithms[0]",
     ["did you mean AES256?", "case-sensitive"]),
    (_set(TP + "phase1_integrity_algorithms", ["SHA256"]), f"{T0}.phase1_integrity_algorithms[0]",
     ["SHA256 is not allowed", "allowed: SHA1, SHA2-256, SHA2-384, SHA2-512"]),
    (_set(TP + "phase2_integrity_algorithms", ["MD5"]), f"{T0}.phase2_integrity_algorithms[0]", ["MD5 is not allowed"]),
    (_set(TP + "phase1_dh_group_numbers", [14, 13]), f"{T0}.phase1_dh_group_numbers[1]",
     ["13 is not allowed; allowed: 2, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24"]),
    (_set(TP + "phase1_dh_group_numbers", [5]), f"{T0}.phase1_dh_group_numbers[0]", ["phase 2 only"]),
    (_set(TP + "phase1_dh_group_numbers", ["group14"]), f"{T0}.phase1_dh_group_numbers[0]", ["e.g. 14"]),
    (_set(TP + "phase2_dh_group_numbers", [31]), f"{T0}.phase2_dh_group_numbers[0]", ["allowed: 2, 5, 14"]),
    (_set(TP + "phase2_dh_group_numbers", [14, 19, 14]), f"{T0}.phase2_dh_group_numbers[2]", ["listed twice", "[0]"]),
    (_set(TP + "phase1_integrity_algorithms", []), f"{T0}.phase1_integrity_algorithms", ["is empty", "SHA1"]),
    (_set(TP + "phase1_dh_group_numbers", 14), f"{T0}.phase1_dh_group_numbers", ["must be a list", "[14]"]),
    (_set(TP + "ike_versions", ["ikev1"]), f"{T0}.ike_versions", ["IKEv2 only", "add ikev2"]),
    (_set(TP + "ike_versions", ["ikev3"]), f"{T0}.ike_versions[0]", ["allowed: ikev1, ikev2"]),
    (_set(TP + "phase1_lifetime_seconds", 899), f"{T0}.phase1_lifetime_seconds", ["between 900 and 28800", "899"]),
    (_set(TP + "phase1_lifetime_seconds", 28801), f"{T0}.phase1_lifetime_seconds", ["between 900 and 28800"]),
    (_set(TP + "phase2_lifetime_seconds", 3601), f"{T0}.phase2_lifetime_seconds", ["between 900 and 3600"]),
    (_set(TP + "phase2_lifetime_seconds", "1h"), f"{T0}.phase2_lifetime_seconds", ["whole number", "1h"]),
    (_set(TP + "rekey_margin_time_seconds", 59), f"{T0}.rekey_margin_time_seconds", ["at least 60"]),
    (_set(TP + "rekey_margin_time_seconds", 1801), f"{T0}.rekey_margin_time_seconds", ["between 60 and 1800", "half"]),
    (_set(TP + "rekey_fuzz_percentage", 101), f"{T0}.rekey_fuzz_percentage", ["between 0 and 100"]),
    (_set(TP + "rekey_fuzz_percentage", 1.5), f"{T0}.rekey_fuzz_percentage", ["whole number"]),
    (_set(TP + "replay_window_size", 32), f"{T0}.replay_window_size", ["between 64 and 2048"]),
    (_set(TP + "replay_window_size", 4096), f"{T0}.replay_window_size", ["between 64 and 2048"]),
    (_set(TP + "dpd_timeout_seconds", 10), f"{T0}.dpd_timeout_seconds", ["at least 30"]),
    (_set(TP + "dpd_timeout_seconds", True), f"{T0}.dpd_timeout_seconds", ["whole number"]),
    (_set(TP + "dpd_timeout_action", "Restart"), f"{T0}.dpd_timeout_action", ["allowed: clear, none, restart",
                                                                              "did you mean restart?"]),
    (_set(TP + "startup_action", "initiate"), f"{T0}.startup_action", ["allowed: add, start"]),
    (_set(TP + "enable_tunnel_lifecycle_control", "maybe"), f"{T0}.enable_tunnel_lifecycle_control",
     ["true or false"]),
    (_set(TP + "pre_shared_keys", "x"), f"{T0}.pre_shared_keys", ["unknown key pre_shared_keys",
                                                                  "did you mean pre_shared_key?"]),
    (_set(TP + "Phase1DHGroupNumbers", [14]), f"{T0}.Phase1DHGroupNumbers", ["did you mean phase1_dh_group_numbers?"]),
    (_set(TP + "tunnel_inside_ipv6_cidr", "fd00::/126"), f"{T0}.tunnel_inside_ipv6_cidr", ["does not support",
                                                                                          "transit gateway"]),
    (_set(TP + "tunnel_inside_cidr", "169.254.10.0/30"), f"{T0}.tunnel_inside_cidr", ["same option",
                                                                                      "only one"]),
    (_set("connections.0.customer_gateway.ipaddress", "198.51.100.10"), "connections[0].customer_gateway.ipaddress",
     ["unknown key ipaddress", "valid keys here: ip"]),
    (_set("connections.0.customer_gateway", "198.51.100.10"), "connections[0].customer_gateway",
     ["customer_gateway: {ip: 198.51.100.10}"]),
    (_set("connections.0.name", "vpn lab"), "connections[0].name", ["not a valid name", "letters, digits"]),
    (_set("connections.0.name", ""), "connections[0].name", ["not a valid name"]),
    (_delete("connections.0.name"), "connections[0].name", ["missing"]),
    (_set("connections.0.customer_gateway.ip", "198.51.100.1"), "connections[0].customer_gateway.ip",
     ["also the outside IP of connections[0].tunnels[0]"]),
    (_set("connections.0.static_routes", ["172.16.0.0/16", "10.0.1.0/24"]), "connections[0].static_routes[1]",
     ["inside the VPC CIDR 10.0.0.0/16"]),
    (_set("connections.0.static_routes", ["172.16.0.0/16", "172.16.0.0/16"]), "connections[0].static_routes[1]",
     ["listed twice"]),
    (_set("connections.0.static_routes", [f"172.16.{i}.0/24" for i in range(101)]), "connections[0].static_routes",
     ["at most 100"]),
    (_set("connections.0.static_routes", ["172.16.0.0"]), "connections[0].static_routes[0]", ["no prefix length"]),
    (_set("connections.0.local_network_cidr", "192.168.0.0/16"), "connections[0].static_routes[0]",
     ["outside local_network_cidr 192.168.0.0/16"]),
    (_set("connections.0.tunnels", []), "connections[0].tunnels", ["is empty"]),
    (_set("connections.0.tunnels.1.outside_ip", "198.51.100.1"), "connections[0].tunnels[1].outside_ip",
     ["already the outside IP of connections[0].tunnels[0]"]),
    (_set("connections.0.tunnels.1.inside_cidr", "169.254.10.0/30"), "connections[0].tunnels[1].inside_cidr",
     ["already the inside CIDR of connections[0].tunnels[0]"]),
    (_set("vpc.cidrs", []), "vpc.cidrs", ["is empty"]),
    (_set("vpc.cidrs", ["10.0.0.0/16", "10.0.128.0/17"]), "vpc.cidrs[1]", ["overlaps cidrs[0]"]),
    (_set("vpc", ["10.0.0.0/16"]), "vpc", ["vpc: {cidrs: [10.0.0.0/16]}"]),
    (_set("connections", []), "connections", ["is empty"]),
    (_set("control_socket", "/" + "x" * 120), "control_socket", ["at most 107"]),
]


@pytest.mark.parametrize("mutate,path,fragments", RULES, ids=[f"{i}-{r[1]}" for i, r in enumerate(RULES)])
def test_rule_violation_names_the_key(mutate, path, fragments):
    data = base()
    mutate(data)
    got_path, message = only_issue(data)
    assert got_path == path
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("psk", ["bad-key!x", "abc#defg~h", "key@with*stars", "s3cr3t/%+x"])
def test_psk_error_does_not_repeat_the_disallowed_characters(psk):
    """Issue 16: they are part of the secret; the message counts them instead."""
    data = base()
    tunnel0(data)["pre_shared_key"] = psk
    path, message = only_issue(data)
    assert path == f"{T0}.pre_shared_key" and "AWS does not allow" in message
    for char in set(psk) - set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_."):
        assert char not in message.replace("'.' and '_'", ""), (char, message)


@pytest.mark.parametrize("value,example", [
    ("fourteen", "phase1_dh_group_numbers: [14]"),      # not a group: a valid one is shown
    (19, "phase1_dh_group_numbers: [19]"),              # one valid group: the list of it
    (13, "phase1_dh_group_numbers: [14]"),
    (True, "phase1_dh_group_numbers: [14]"),
])
def test_wrong_type_hint_suggests_a_valid_value(value, example):
    data = base()
    tunnel0(data)["phase1_dh_group_numbers"] = value
    path, message = only_issue(data)
    assert path == f"{T0}.phase1_dh_group_numbers" and f"must be a list, e.g. {example}" in message


@pytest.mark.parametrize("key,value,example", [
    ("phase2_encryption_algorithms", "AES-128", "[AES128]"),
    ("phase2_integrity_algorithms", "SHA2-256", "[SHA2-256]"),
    ("ike_versions", "v2", "[ikev2]"),
])
def test_wrong_type_hints_of_other_lists(key, value, example):
    data = base()
    tunnel0(data)[key] = value
    path, message = only_issue(data)
    assert f"must be a list, e.g. {key}: {example}" in message


def test_phase2_lifetime_must_be_less_than_phase1():
    data = base()
    tunnel0(data).update(phase1_lifetime_seconds=1800, phase2_lifetime_seconds=1800)
    path, message = only_issue(data)
    assert path == f"{T0}.phase2_lifetime_seconds"
    assert "less than phase1_lifetime_seconds (1800)" in message
    tunnel0(data).update(phase1_lifetime_seconds=900, phase2_lifetime_seconds=900)
    assert "raise phase1_lifetime_seconds" in only_issue(data)[1]


def test_rekey_margin_limit_follows_phase2_lifetime():
    data = base()
    tunnel0(data).update(phase2_lifetime_seconds=900, rekey_margin_time_seconds=450)
    parse_config(dump(data))
    tunnel0(data)["rekey_margin_time_seconds"] = 451
    path, message = only_issue(data)
    assert path == f"{T0}.rekey_margin_time_seconds" and "between 60 and 450" in message


def test_startup_action_start_needs_customer_gateway_ip():
    data = base()
    tunnel0(data)["startup_action"] = "start"
    parse_config(dump(data))  # fine with the customer gateway's ip
    del data["connections"][0]["customer_gateway"]["ip"]
    path, message = only_issue(data)
    assert path == f"{T0}.startup_action"
    assert "set customer_gateway.ip" in message and "startup_action: add" in message


def test_at_most_two_tunnels():
    data = base()
    data["connections"][0]["tunnels"].append({"outside_ip": "198.51.100.3", "pre_shared_key": PSK1})
    path, message = only_issue(data)
    assert path == "connections[0].tunnels" and "has 3 tunnels" in message and "two at most" in message


def test_connection_names_are_unique():
    data = base()
    second = copy.deepcopy(data["connections"][0])
    second["tunnels"] = [{"outside_ip": "198.51.100.3", "pre_shared_key": PSK1}]
    second["customer_gateway"] = {"ip": "198.51.100.11"}
    data["connections"].append(second)
    path, message = only_issue(data)
    assert path == "connections[1].name" and "already the name of connections[0]" in message


def test_outside_ip_and_inside_cidr_unique_across_connections():
    data = base()
    data["connections"].append(
        {"name": "other", "tunnels": [{"outside_ip": "198.51.100.2", "tunnel_inside_cidr": "169.254.10.0/30",
                                       "pre_shared_key": PSK1}]}
    )
    issues = issues_of(dump(data))
    assert [i.path for i in issues] == [
        "connections[1].tunnels[0].outside_ip",
        "connections[1].tunnels[0].tunnel_inside_cidr",  # spelled as in the file
    ]


def test_static_route_that_contains_the_vpc_is_allowed():
    # A supernet of the VPC via the VPN is legitimate: the VPC's local route is more specific.
    data = base()
    data["connections"][0]["static_routes"] = ["10.0.0.0/8"]
    assert parse_config(dump(data)).connections[0].static_routes == [IPv4Network("10.0.0.0/8")]


def test_default_route_is_refused():
    """vgw's routes go into the host's main table: a /0 would replace the host's
    default route (and carry vgw's own IKE/ESP into the tunnel)."""
    data = base()
    del data["connections"][0]["customer_gateway"]["ip"]   # refused even with no CGW address known
    data["connections"][0]["static_routes"] = ["172.16.0.0/16", "0.0.0.0/0"]
    path, message = only_issue(data)
    assert path == "connections[0].static_routes[1]"
    assert "default route" in message and "list the customer's prefixes" in message


@pytest.mark.parametrize("route", ["198.51.100.0/24", "198.51.100.10/32", "128.0.0.0/1"])
def test_static_route_containing_the_customer_gateway_is_refused(route):
    """IKE/ESP to the customer gateway would be routed into the TUN it feeds."""
    data = base()
    data["connections"][0]["static_routes"] = ["172.16.0.0/16", route]
    path, message = only_issue(data)
    assert path == "connections[0].static_routes[1]"
    assert "contains 198.51.100.10" in message and "this connection's customer_gateway.ip" in message
    assert "split the route" in message
    # the neighbouring prefix that leaves the address out is fine
    data["connections"][0]["static_routes"] = ["172.16.0.0/16", "198.51.101.0/24"]
    parse_config(dump(data))


def test_static_route_containing_another_connections_customer_gateway_is_refused():
    data = base()
    data["connections"].append(
        {"name": "other", "customer_gateway": {"ip": "203.0.113.7"}, "static_routes": ["172.17.0.0/16"],
         "tunnels": [{"outside_ip": "198.51.100.3", "inside_cidr": "169.254.12.0/30", "pre_shared_key": PSK1}]}
    )
    data["connections"][0]["static_routes"] = ["203.0.113.0/24"]
    path, message = only_issue(data)
    assert path == "connections[0].static_routes[0]"
    assert "contains 203.0.113.7, connections[1]'s customer_gateway.ip" in message


def test_psk_value_never_appears_in_messages():
    data = base()
    tunnel0(data)["pre_shared_key"] = "secret-value"
    path, message = only_issue(data)
    assert "secret" not in message


# ---------------------------------------------------------------------------
# YAML-level problems, lines, collecting every error


def test_all_errors_are_collected_with_lines():
    text = DESIGN_EXAMPLE.replace("pre_shared_key: example_psk_tunnel2_abcdef", "pre_shared_key: short")
    text = text.replace("phase1_dh_group_numbers: [14]", "phase1_dh_group_numbers: [14, 13]")
    text = text.replace("cidrs: [10.0.0.0/16]", "cidrs: [10.0.0.0/16]\n  extra: 1")
    issues = issues_of(text)
    assert [(i.line, i.path) for i in issues] == [
        (4, "vpc.extra"),
        (17, f"{T0}.phase1_dh_group_numbers[1]"),
        (24, "connections[0].tunnels[1].pre_shared_key"),
    ]
    formatted = str(ConfigError("t.yaml", issues))
    assert "t.yaml:17: connections[0].tunnels[0].phase1_dh_group_numbers[1]: 13 is not allowed" in formatted


def test_yaml_syntax_error_names_the_line():
    (issue,) = issues_of("vpc:\n  cidrs: [10.0.0.0/16\nconnections: []\n")
    assert issue.line == 3 and "YAML syntax error" in issue.message


def test_tabs_get_a_hint():
    (issue,) = issues_of("vpc:\n\tcidrs: [10.0.0.0/16]\n")
    assert issue.line == 2 and "spaces, not tabs" in issue.message


def test_duplicate_keys_are_reported_not_silently_dropped():
    text = DESIGN_EXAMPLE.replace(
        "        pre_shared_key: example_psk_tunnel2_abcdef\n",
        "        pre_shared_key: example_psk_tunnel2_abcdef\n        pre_shared_key: other_key_12345\n",
    )
    (issue,) = issues_of(text)
    assert issue.path == "connections[0].tunnels[1].pre_shared_key"
    assert "appears twice" in issue.message and "lines 23 and 24" in issue.message


def test_yaml_merge_keys_work_and_are_not_duplicates():
    text = """\
vpc: {cidrs: [10.0.0.0/16]}
connections:
  - name: c
    tunnels:
      - &t {outside_ip: 198.51.100.1, pre_shared_key: abcdefgh1, phase1_dh_group_numbers: [19, 14]}
      - {<<: *t, outside_ip: 198.51.100.2}
"""
    second = parse_config(text).connections[0].tunnels[1]
    assert second.outside_ip == IPv4Address("198.51.100.2") and second.phase1_dh_group_numbers == [19, 14]


def test_empty_file_and_non_mapping():
    assert "empty" in issues_of("# nothing\n")[0].message
    assert "must be a YAML mapping" in issues_of("- a\n")[0].message


def test_missing_key_is_not_repeated_after_a_typo_suggestion():
    data = base()
    tunnel0(data)["outside_ips"] = tunnel0(data).pop("outside_ip")
    path, message = only_issue(data)
    assert path == f"{T0}.outside_ips" and "did you mean outside_ip?" in message


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read the file" in str(info.value)


def test_direct_model_validation_still_works():
    # Consumers may build configs from data without YAML.
    config = GatewayConfig.model_validate(yaml.safe_load(DESIGN_EXAMPLE))
    assert config == parse_config(DESIGN_EXAMPLE)


# ---------------------------------------------------------------------------
# Inside CIDR chosen when omitted (AWS picks a random free /30, docs/aws.md §1.2)


def _omit_inside(data: dict) -> dict:
    for tunnel in data["connections"][0]["tunnels"]:
        tunnel.pop("inside_cidr", None)
    return data


def test_auto_inside_cidr_is_stable_and_valid():
    text = dump(_omit_inside(base()))
    first = [t.inside_cidr for _, t in parse_config(text).all_tunnels()]
    again = [t.inside_cidr for _, t in parse_config(text).all_tunnels()]
    assert first == again
    assert len(set(first)) == 2
    for network in first:
        assert network.prefixlen == 30 and network.subnet_of(IPv4Network("169.254.0.0/16"))
        assert network not in RESERVED_INSIDE_CIDRS
    tunnel = parse_config(text).connections[0].tunnels[0]
    assert tunnel.inside_cidr_is_auto
    assert tunnel.vgw_inside_ip == tunnel.inside_cidr.network_address + 1
    assert tunnel.cgw_inside_ip == tunnel.inside_cidr.network_address + 2


def test_auto_inside_cidr_avoids_an_explicit_one_declared_later():
    natural = choose_inside_cidr(IPv4Address("198.51.100.1"))
    data = _omit_inside(base())
    data["connections"][0]["tunnels"][1]["inside_cidr"] = str(natural)
    first, second = parse_config(dump(data)).connections[0].tunnels
    assert second.inside_cidr == natural
    assert first.inside_cidr != natural and first.inside_cidr_is_auto


def test_auto_inside_cidr_does_not_depend_on_other_tunnels_when_free():
    alone = choose_inside_cidr(IPv4Address("198.51.100.1"))
    data = _omit_inside(base())
    assert parse_config(dump(data)).connections[0].tunnels[0].inside_cidr == alone


@settings(max_examples=200, deadline=None)
@given(
    outside=st.ip_addresses(v=4),
    used_indexes=st.sets(st.integers(min_value=0, max_value=16383), max_size=50),
    block_natural=st.booleans(),
)
def test_choose_inside_cidr_property(outside, used_indexes, block_natural):
    used = {IPv4Network((int(IPv4Address("169.254.0.0")) + i * 4, 30)) for i in used_indexes}
    if block_natural:
        used.add(choose_inside_cidr(outside))
    chosen = choose_inside_cidr(outside, used)
    assert chosen == choose_inside_cidr(outside, used)  # deterministic
    assert chosen.prefixlen == 30 and chosen.subnet_of(IPv4Network("169.254.0.0/16"))
    assert chosen not in RESERVED_INSIDE_CIDRS and chosen not in used


def test_choose_inside_cidr_skips_reserved_blocks():
    every_free = {IPv4Network((int(IPv4Address("169.254.0.0")) + i * 4, 30)) for i in range(16384)}
    every_free -= RESERVED_INSIDE_CIDRS
    last = IPv4Network("169.254.77.0/30")
    assert choose_inside_cidr(IPv4Address("198.51.100.1"), every_free - {last}) == last
    with pytest.raises(ValueError):
        choose_inside_cidr(IPv4Address("198.51.100.1"), every_free)


# ---------------------------------------------------------------------------
# vgw validate and the other subcommands


def test_validate_ok(capsys):
    assert cli.main(["validate", "--config", str(EXAMPLES / "vgw.yaml")]) == 0
    out = capsys.readouterr().out
    assert "connection vpn-lab: customer gateway 198.51.100.10" in out
    assert "tunnel 198.51.100.1: inside 169.254.10.0/30 (VGW 169.254.10.1, CGW 169.254.10.2)" in out
    assert "phase 1 AES128 / SHA2-256 / DH 14" in out
    assert "DH 2,14-24" in out and "DH 2,5,14-24" in out
    assert "OK, 1 connection, 2 tunnels" in out


def test_validate_says_how_a_dynamic_connection_routes(tmp_path, capsys):
    path = tmp_path / "dyn.yaml"
    path.write_text(dump({"amazon_side_asn": 64700, "connections": [_dynamic(asn=65010)]}))
    assert cli.main(["validate", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "connection dyn: customer gateway 198.51.100.10; BGP: the customer gateway's AS 65010 peers" \
           " with AS 64700 in each tunnel;" in out
    assert "; BGP 169.254.20.1 <-> 169.254.20.2, hold time 30 s" in out


def test_validate_full_example_ok():
    assert cli.main(["validate", "--config", str(EXAMPLES / "vgw-full.yaml")]) == 0


def test_validate_error_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(DESIGN_EXAMPLE.replace("example_psk_tunnel2_abcdef", "short"))
    assert cli.main(["validate", "--config", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{bad}:23: connections[0].tunnels[1].pre_shared_key: must be 8 to 64 characters" in captured.err
    assert "1 problem" in captured.err


def test_validate_missing_file_exit_2(tmp_path, capsys):
    assert cli.main(["validate", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_usage_errors_return_2(capsys):
    assert cli.main(["validate"]) == 2
    assert cli.main(["tunnel", "sideways", "198.51.100.1"]) == 2
    assert cli.main(["tunnel", "down", "not-an-ip"]) == 2
    assert cli.main(["rekey", "198.51.100.1", "--ike", "--child"]) == 2
    assert cli.main(["--help"]) == 0


def test_other_commands_dispatch_to_daemon_commands(monkeypatch):
    import sys
    import types

    seen = []
    fake = types.ModuleType("daemon.commands")
    for name in ("run", "status", "tunnel", "rekey"):
        setattr(fake, name, lambda args, name=name: seen.append((name, vars(args))) or 0)
    monkeypatch.setitem(sys.modules, "daemon.commands", fake)
    assert cli.main(["status", "--json"]) == 0
    assert cli.main(["tunnel", "down", "198.51.100.1", "--control", "/tmp/x.sock"]) == 0
    assert cli.main(["rekey", "198.51.100.2", "--ike"]) == 0
    assert cli.main(["rekey", "198.51.100.2"]) == 0
    assert cli.main(["run", "--config", "x.yaml"]) == 0
    assert seen[0] == ("status", {"command": "status", "control": "/run/vgw/vgw.sock", "json": True})
    assert seen[1][1]["action"] == "down" and seen[1][1]["tunnel"] == "198.51.100.1"
    assert seen[1][1]["control"] == "/tmp/x.sock"
    assert seen[2][1]["sa"] == "ike" and seen[3][1]["sa"] == "child"
    assert seen[4] == ("run", {"command": "run", "config": "x.yaml"})


def test_dpd_restart_needs_the_customer_gateway_ip():
    text = """
vpc: {cidrs: [10.0.0.0/16]}
connections:
  - name: c
    tunnels:
      - outside_ip: 198.51.100.1
        pre_shared_key: example_psk_abcdefgh
        dpd_timeout_action: restart
"""
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert "connections[0].tunnels[0].dpd_timeout_action" in str(err.value)
    assert "customer_gateway.ip" in str(err.value)


def test_readme_dos_protection_block_lists_every_key_with_its_default():
    """README's dos_protection block (issue 16: max_reassembly_bytes was missing)."""
    from daemon.config import DosProtectionConfig
    readme = (EXAMPLES.parent / "README.md").read_text()
    block = readme.split("```yaml\ndos_protection:", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load("dos_protection:" + block)["dos_protection"]
    assert documented == DosProtectionConfig().model_dump()


# --- dynamic routing and many connections (docs/aws.md §1.11, §4.1, §7) --------------------

def _dynamic(name="dyn", asn=65000, first_octet=20, cgw="198.51.100.10", **extra):
    connection = {"name": name, "customer_gateway": {"ip": cgw, "bgp_asn": asn},
                  "tunnels": [{"outside_ip": f"198.51.100.{first_octet}",
                               "inside_cidr": f"169.254.{first_octet}.0/30",
                               "pre_shared_key": "example_psk_tunnel1_abcdef"}]}
    connection.update(extra)
    return connection


def test_a_connection_without_static_routes_is_dynamic_and_takes_aws_defaults():
    config = parse_config(dump({"vpc": {"cidrs": ["10.0.0.0/16"]}, "connections": [_dynamic()]}))
    connection = config.connections[0]
    assert connection.dynamic and connection.static_routes_only is False
    assert config.amazon_side_asn == 64512 and connection.customer_gateway.bgp_asn == 65000
    static = parse_config(dump({"vpc": {"cidrs": ["10.0.0.0/16"]},
                                "connections": [_dynamic(static_routes=["172.16.0.0/16"])]}))
    assert static.connections[0].static_routes_only is True and not static.connections[0].dynamic


def test_a_hub_without_a_vpc_is_valid():
    config = parse_config(dump({"connections": [_dynamic("a"), _dynamic("b", 65001, 21, "198.51.100.11")]}))
    assert config.vpc is None and config.vpc_cidrs == []


@pytest.mark.parametrize("change, key, words", [
    ({"static_routes_only": False, "static_routes": ["172.16.0.0/16"]}, "connections[0].static_routes",
     ["cannot have static routes", "static_routes_only: true"]),
    ({"customer_gateway": {"ip": "198.51.100.10", "bgp_asn": 7224}}, "connections[0].customer_gateway.bgp_asn",
     ["reserved by AWS"]),
    ({"customer_gateway": {"ip": "198.51.100.10", "bgp_asn": 0}}, "connections[0].customer_gateway.bgp_asn",
     ["ASN"]),
    ({"customer_gateway": {"ip": "198.51.100.10", "bgp_asn": 64512}}, "connections[0].customer_gateway.bgp_asn",
     ["also amazon_side_asn"]),
])
def test_dynamic_routing_mistakes_name_the_key(change, key, words):
    text = dump({"vpc": {"cidrs": ["10.0.0.0/16"]}, "connections": [_dynamic(**change)]})
    messages = [i.format("f") for i in issues_of(text)]
    assert any(key in m and all(w in m for w in words) for m in messages), messages


@pytest.mark.parametrize("asn, ok", [(64512, True), (65534, True), (4200000000, True), (65535, False),
                                     (64511, False), (4294967295, False), (100, False)])
def test_amazon_side_asn_ranges(asn, ok):
    text = dump({"amazon_side_asn": asn, "vpc": {"cidrs": ["10.0.0.0/16"]}, "connections": [_dynamic()]})
    if ok:
        assert parse_config(text).amazon_side_asn == asn
    else:
        messages = [i.format("f") for i in issues_of(text)]
        assert any("amazon_side_asn" in m and "64512-65534" in m for m in messages), messages


def test_more_than_ten_connections_is_refused_naming_the_quota():
    connections = [_dynamic(f"c{i}", 65000 + i, 20 + i, f"198.51.100.{100 + i}") for i in range(11)]
    messages = [i.format("f") for i in issues_of(dump({"connections": connections}))]
    assert any("connections" in m and "quota of Site-to-Site VPN connections per virtual private gateway is 10" in m
               and "max_connections" in m for m in messages), messages
    assert len(parse_config(dump({"connections": connections[:10]})).connections) == 10
    assert len(parse_config(dump({"max_connections": 11, "connections": connections})).connections) == 11


def test_sites_with_one_asn_are_warned_about():
    config = parse_config(dump({"connections": [_dynamic("a"), _dynamic("b", 65000, 21, "198.51.100.11")]}))
    assert any("same bgp_asn 65000" in w.message and w.path == "connections[1].customer_gateway.bgp_asn"
               for w in config.warnings)
    two_connections_of_one_cgw = parse_config(dump({"connections": [_dynamic("a"), _dynamic("b", 65000, 21)]}))
    assert two_connections_of_one_cgw.warnings == []
