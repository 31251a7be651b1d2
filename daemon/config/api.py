"""The `api:` section of the config: where the EC2 endpoint listens and what it hands out.

```yaml
api:
  listen: 127.0.0.1:8787          # host:port; off when the section is absent
  outside_ip_pool: 198.51.100.0/28  # the tunnels' outside addresses come from here
  database: /var/lib/vgw/api.sqlite3
  access_keys:                      # SigV4 is checked when at least one is listed
    - {access_key_id: AKIDEXAMPLE, secret_access_key: example-secret-not-real}
```

Without access keys any signature is accepted, so the endpoint must then listen
on a loopback address only: anyone who can reach it could build tunnels.
Errors use the config loader's convention (a PydanticCustomError of type "vgw"
with the problems and their key paths), so `vgw validate` names the bad key.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network, ip_address
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .values import Listening, fail_many, listen_address

DEFAULT_DATABASE = "/var/lib/vgw/api.sqlite3"
# AWS access key ids are 16-128 word characters (IAM AccessKey API reference).
_KEY_ID = re.compile(r"\w{16,128}")



def _check_pool(value: Any) -> IPv4Network:
    if not isinstance(value, str):
        raise fail_many([((), "must be an IPv4 CIDR, e.g. outside_ip_pool: 198.51.100.0/28")])
    try:
        pool = IPv4Network(value.strip())
    except ValueError as exc:
        raise fail_many([((), f"{value} is not an IPv4 CIDR ({exc}); e.g. 198.51.100.0/28")]) from None
    if pool.num_addresses < 2:
        raise fail_many([((), f"{pool} has one address; each VPN connection needs two (one per tunnel)")])
    return pool


def _check_path(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise fail_many([((), f"must be an absolute file path, e.g. {DEFAULT_DATABASE}")])
    return value


class AccessKey(BaseModel):
    """One key pair a client may sign with (botocore's aws_access_key_id / aws_secret_access_key)."""

    model_config = ConfigDict(extra="forbid")
    access_key_id: str
    secret_access_key: str = Field(repr=False)

    @model_validator(mode="after")
    def _check(self) -> "AccessKey":
        problems = []
        if not _KEY_ID.fullmatch(self.access_key_id):
            problems.append((("access_key_id",), "must be 16 to 128 letters, digits or '_', e.g. AKIDEXAMPLE12345"))
        if len(self.secret_access_key) < 16:
            problems.append((("secret_access_key",), "must be at least 16 characters long"))
        if problems:
            raise fail_many(problems)
        return self


class ApiConfig(Listening, BaseModel):
    """vgw only: the EC2 Query API endpoint (docs/api.md); off unless configured."""

    model_config = ConfigDict(extra="forbid")
    # port 0: any free port (what the tests use; the server reports the port it got)
    listen: Annotated[str, listen_address("127.0.0.1:8787", any_port=True)] = Field(
        description="the address and port to serve the EC2 API on, e.g. listen: 127.0.0.1:8787"
    )
    outside_ip_pool: Annotated[IPv4Network, BeforeValidator(_check_pool)] | None = None
    database: Annotated[str, BeforeValidator(_check_path)] = DEFAULT_DATABASE
    access_keys: list[AccessKey] = Field(default_factory=list)
    # vgw's own certificate and key (PEM) for tunnels to customer gateways created
    # with a CertificateArn (certificate authentication, docs/aws.md §2)
    certificate: Annotated[str, BeforeValidator(_check_path)] | None = None
    private_key: Annotated[str, BeforeValidator(_check_path)] | None = Field(None, repr=False)

    @model_validator(mode="after")
    def _check_exposure(self) -> "ApiConfig":
        if not self.access_keys and not ip_address(self.host).is_loopback:
            raise fail_many([(("listen",), f"{self.listen} is not a loopback address and access_keys is empty:"
                          " anyone who reaches it could create tunnels; add access_keys (clients then sign"
                          " with SigV4) or listen on 127.0.0.1")])
        ids = [key.access_key_id for key in self.access_keys]
        repeated = sorted({key for key in ids if ids.count(key) > 1})
        if repeated:
            raise fail_many([(("access_keys",), f"{', '.join(repeated)} is listed twice; list each access_key_id once")])
        if (self.certificate is None) != (self.private_key is None):
            missing = "private_key" if self.private_key is None else "certificate"
            raise fail_many([((missing,), "certificate and private_key go together: vgw's own certificate and its"
                          " key (PEM) for tunnels to customer gateways that have a certificate")])
        return self

    def secret_for(self, access_key_id: str) -> str | None:
        for key in self.access_keys:
            if key.access_key_id == access_key_id:
                return key.secret_access_key
        return None

