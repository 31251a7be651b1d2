"""vgw configuration: the YAML file, its pydantic models and a loader whose errors
name the bad key by its path in the file and say what to change.

Keys are the EC2 API's option names (VpnTunnelOptionsSpecification,
VpnConnectionOptionsSpecification) in snake_case; values are spelled as AWS spells
them; an omitted key takes the AWS default (docs/aws.md §0). Lists keep the order
the user wrote: it is the preference order vgw walks, as AWS walks its own (§1.1).

Use `load_config(path)` or `parse_config(text)`; both raise `ConfigError`, which
carries every problem found (`.issues`), not just the first.

The modules import one way (tests/unit/test_imports.py checks it):
- values.py: AWS's values (CIDRs, addresses, ASNs, PSKs, algorithm lists) as types;
- tunnel.py: a tunnel's options and log options; connection.py: a VPN connection
  and its customer gateway; sections.py: vpc, metrics, data_path, dos_protection;
- gateway.py: the whole file and the checks across connections;
- load.py: YAML (yaml_safe.py) to models, pydantic's errors to file:line; errors.py;
- ike_settings.py: a tunnel's config as ikecore's IkeSettings.
This module only re-exports the names other packages use.
"""

from .connection import MAX_STATIC_ROUTES, ConnectionConfig, CustomerGatewayConfig
from .errors import ConfigError, ConfigIssue
from .gateway import DEFAULT_CONTROL_SOCKET, MAX_CONNECTIONS, GatewayConfig
from .load import load_config, parse_config
from .sections import DataPathConfig, DosProtectionConfig, MetricsConfig, VpcConfig
from .tunnel import CloudwatchLogOptions, LogOptions, TunnelConfig, choose_inside_cidr
from .values import INSIDE_CIDR_POOL, RESERVED_INSIDE_CIDRS

__all__ = [
    "DEFAULT_CONTROL_SOCKET",
    "INSIDE_CIDR_POOL",
    "MAX_CONNECTIONS",
    "MAX_STATIC_ROUTES",
    "RESERVED_INSIDE_CIDRS",
    "CloudwatchLogOptions",
    "ConfigError",
    "ConfigIssue",
    "ConnectionConfig",
    "CustomerGatewayConfig",
    "DataPathConfig",
    "DosProtectionConfig",
    "GatewayConfig",
    "LogOptions",
    "MetricsConfig",
    "TunnelConfig",
    "VpcConfig",
    "choose_inside_cidr",
    "load_config",
    "parse_config",
]
