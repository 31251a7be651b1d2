"""The `api:` section in the gateway's config: with it the file may have no
connection (vgw waits for the API's); its mistakes name the key."""

from __future__ import annotations

import pytest

from daemon.config import ConfigError, parse_config


def test_api_without_connections_is_a_gateway_waiting_for_the_api():
    config = parse_config("vpc: {cidrs: [10.0.0.0/16]}\napi: {listen: 127.0.0.1:8787, outside_ip_pool: 198.51.100.0/28}\n")
    assert config.connections == [] and config.api.port == 8787 and config.vpc_cidrs


def test_no_connections_and_no_api_says_what_to_add():
    with pytest.raises(ConfigError) as caught:
        parse_config("vpc: {cidrs: [10.0.0.0/16]}\n", "f.yaml")
    (issue,) = caught.value.issues
    assert issue.path == "connections" and "api section" in issue.message


@pytest.mark.parametrize("section, key", [
    ("{listen: 0.0.0.0:8787}", "api.listen"),
    ("{listen: 127.0.0.1:8787, outside_ip_pol: 198.51.100.0/28}", "api.outside_ip_pol"),
    ("{listen: 127.0.0.1:8787, database: relative.db}", "api.database"),
])
def test_api_mistakes_name_the_key(section, key):
    with pytest.raises(ConfigError) as caught:
        parse_config(f"api: {section}\n", "f.yaml")
    assert [issue.path for issue in caught.value.issues] == [key]
    assert str(caught.value).startswith("f.yaml:1: " + key)
