"""The vgw-only data_path section of the config (dataplane offloads)."""

import pytest

from daemon.config import ConfigError, parse_config

BASE = """
vpc: {cidrs: [10.0.0.0/16]}
connections:
  - name: c
    customer_gateway: {ip: 198.51.100.10}
    tunnels:
      - outside_ip: 198.51.100.1
        pre_shared_key: example_psk_tunnel1_abcdef
"""


def test_default_is_gro():
    assert parse_config(BASE).data_path.tun_offload == "gro"


@pytest.mark.parametrize("mode", ["gro", "tso", "none"])
def test_modes_accepted(mode):
    assert parse_config(BASE + f"data_path: {{tun_offload: {mode}}}\n").data_path.tun_offload == mode


@pytest.mark.parametrize("bad", ["fast", "GRO", "true", "1"])
def test_bad_mode_names_the_key_and_the_choices(bad):
    with pytest.raises(ConfigError) as exc:
        parse_config(BASE + f"data_path: {{tun_offload: {bad}}}\n")
    text = str(exc.value)
    assert "data_path" in text and "tun_offload" in text
    assert "gro" in text and "tso" in text and "none" in text


def test_unknown_key_refused():
    with pytest.raises(ConfigError, match="data_path"):
        parse_config(BASE + "data_path: {gro: true}\n")
