"""SIGHUP: a new configuration applied to a running gateway (docs/design.md §5.6).

Tunnels whose settings did not change keep their SAs, their BGP sessions and
their traffic; changed ones are replaced (DELETE, then set up anew); new ones
are added and gone ones removed. A new tunnel whose address cannot be bound
refuses the whole reload before anything changes, as an invalid file does
(daemon/commands.py parses the file off the event loop first).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .startup import StartupError, check_bindable
from .config import GatewayConfig
from .config.ike_settings import ike_settings

if TYPE_CHECKING:                      # the gateway imports this module, not the reverse
    from .gateway import Gateway

log = logging.getLogger("vgw")


def apply_reload(gw: "Gateway", new: GatewayConfig, hold: frozenset[str] = frozenset(),
                 force: frozenset[str] = frozenset(), what: str = "configuration reloaded") -> dict:
    """Make the running gateway `new`'s; returns what happened to each tunnel.

    The EC2 API's changes come here too (its connections are in `new` beside the
    file's): `hold` names tunnels that keep running as they are for now (an
    endpoint replacement that has not reached them yet, daemon/maintenance.py),
    `force` tunnels replaced even with unchanged settings (their turn came)."""
    wanted = {str(t.outside_ip): (c, t) for c, t in new.all_tunnels()}
    for ip in wanted:
        if ip not in gw.tunnels:
            check_bindable(ip)
    kept, replaced, removed, added = [], [], [], []
    for ip, tunnel in list(gw.tunnels.items()):
        pair = wanted.get(ip)
        if pair is None:
            gw.remove_tunnel(ip, send_delete=True)
            removed.append(ip)
        elif ip in hold:
            kept.append(ip)
        elif (ip in force or ike_settings(*pair) != tunnel.ike_settings
              or pair[1].inside_cidr != tunnel.cfg.inside_cidr or pair[0].dynamic != tunnel.conn.dynamic):
            gw.remove_tunnel(ip, send_delete=True)
            replaced.append(ip)
        else:
            tunnel.conn, tunnel.cfg = pair
            kept.append(ip)
            asn = gw.amazon_side_asn_of(pair[0], new)
            if pair[0].dynamic and gw.bgp.settings_changed(tunnel, asn):
                # a new ASN: the session starts over, the IPsec SAs stay
                gw.loop.create_task(gw.restart_session(tunnel, asn))
    gw.guard.settings = gw.dos_settings(new)
    if new.control_socket != gw.config.control_socket:
        log.warning("control_socket changed to %s: takes effect after a restart", new.control_socket)
    if new.data_path != gw.config.data_path:
        # the TUN devices were opened with the old offload mode; new tunnels get the new one
        log.warning("data_path changed: existing tunnels keep the old setting until a restart")
    gw.config = new
    for ip in kept:
        # emulate_limits (or the top level's) may have flipped: the data path takes it
        # over for the running tunnel, SAs and traffic untouched
        tunnel = gw.tunnels[ip]
        tunnel.apply_limits(gw.tunnel_limits(tunnel.conn))
    gw.configure_routes()
    for ip, (connection, tunnel_cfg) in wanted.items():
        if ip not in gw.tunnels:
            try:
                tunnel = gw.add_tunnel(connection, tunnel_cfg)
            except StartupError as exc:
                log.error("reload: %s", exc)
                continue
            added.append(ip)
            if tunnel.cfg.startup_action == "start":
                gw.initiate(tunnel)
    gw.update_routes()
    gw.flush()
    summary = {"kept": kept, "replaced": replaced, "removed": removed,
               "added": [i for i in added if i not in replaced]}
    log.info("%s: %s", what, summary)
    return summary
