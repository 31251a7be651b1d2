"""The `api:` config section: refuses to expose an unsigned endpoint."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from daemon.config.api import ApiConfig


def _problem(**data) -> str:
    with pytest.raises(ValidationError) as caught:
        ApiConfig.model_validate(data)
    error = caught.value.errors()[0]
    # the config loader's convention: a "vgw" error lists its problems with their key paths
    at, message = (error.get("ctx") or {}).get("problems", [((), error["msg"])])[0]
    return ".".join(map(str, tuple(error["loc"]) + tuple(at))) + ": " + message


def test_non_loopback_without_keys_is_refused():
    problem = _problem(listen="0.0.0.0:8787")
    assert "access_keys" in problem and "loopback" in problem


def test_non_loopback_with_keys_is_accepted():
    config = ApiConfig(listen="0.0.0.0:8787", outside_ip_pool="198.51.100.0/28",
                       access_keys=[{"access_key_id": "AKIDEXAMPLE00000001", "secret_access_key": "x" * 20}])
    assert config.secret_for("AKIDEXAMPLE00000001") == "x" * 20 and config.database == "/var/lib/vgw/api.sqlite3"
    assert ApiConfig(listen="[::1]:8787").host == "::1"


@pytest.mark.parametrize("data, key", [
    ({"listen": "localhost:8787"}, "listen"),
    ({"listen": "127.0.0.1"}, "listen"),
    ({"listen": "127.0.0.1:8787", "outside_ip_pool": "198.51.100.1/32"}, "outside_ip_pool"),
    ({"listen": "127.0.0.1:8787", "outside_ip_pool": "not a cidr"}, "outside_ip_pool"),
    ({"listen": "127.0.0.1:8787", "database": "relative.db"}, "database"),
    ({"listen": "127.0.0.1:8787", "access_keys": [{"access_key_id": "short", "secret_access_key": "x" * 20}]},
     "access_key_id"),
    ({"listen": "127.0.0.1:8787", "certificate": "/etc/vgw/vgw.pem"}, "private_key"),
    ({"listen": "127.0.0.1:8787", "bogus": 1}, "bogus"),
])
def test_bad_values_name_the_key(data, key):
    assert key in _problem(**data)
