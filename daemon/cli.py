"""The `vgw` command: argument parsing, `validate`, and dispatch to daemon.commands."""

import argparse
import importlib
import sys
from ipaddress import IPv4Address

from daemon.config import DEFAULT_CONTROL_SOCKET, ConfigError, GatewayConfig, load_config
from daemon.config.values import TUNNEL_BANDWIDTH_LIMITS

EXIT_OK, EXIT_CONFIG = 0, 2


def _tunnel_name(text: str) -> str:
    # A tunnel is named by its outside IP, AWS's own identifier for it (docs/design.md §6.1).
    try:
        return str(IPv4Address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a tunnel: name it by its outside IPv4 address") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vgw", description="A self-hosted AWS Site-to-Site VPN gateway (the AWS side).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the gateway in the foreground")
    run.add_argument("--config", required=True, metavar="FILE", help="YAML config file")
    validate = sub.add_parser("validate", help="check a config file and summarise its tunnels")
    validate.add_argument("--config", required=True, metavar="FILE", help="YAML config file")

    cgw = sub.add_parser("cgw-config", help="print the customer gateway's configuration (AWS's download configuration)")
    cgw.add_argument("--config", required=True, metavar="FILE", help="YAML config file of this gateway")
    cgw.add_argument("--connection", metavar="NAME", help="the connection (optional if the config has one)")
    cgw.add_argument("--vendor", default="strongswan", choices=["strongswan", "generic", "xml"],
                     help="strongswan: swanctl.conf (and frr.conf for a dynamic connection); generic: AWS's"
                          " generic text; xml: AWS's CustomerGatewayConfiguration (default strongswan)")
    cgw.add_argument("--file", choices=["swanctl", "frr"],
                     help="print one file of --vendor strongswan: swanctl (swanctl.conf) or frr (frr.conf, a"
                          " dynamic connection's BGP); default both, each under a '# --- file: PATH ---' line")

    control = argparse.ArgumentParser(add_help=False)
    control.add_argument("--control", default=DEFAULT_CONTROL_SOCKET, metavar="PATH",
                         help=f"control socket of the running gateway (default {DEFAULT_CONTROL_SOCKET})")
    status = sub.add_parser("status", parents=[control], help="show each tunnel's state")
    status.add_argument("--json", action="store_true", help='print {"tunnels": [...]} as JSON')
    routes = sub.add_parser("routes", parents=[control],
                            help="show the VPC route table (destination, target, origin, state)")
    routes.add_argument("--json", action="store_true", help='print {"routes": [...]} as JSON')
    tunnel = sub.add_parser("tunnel", parents=[control], help="bring a tunnel up or down")
    tunnel.add_argument("action", choices=["up", "down"])
    tunnel.add_argument("tunnel", type=_tunnel_name, metavar="TUNNEL", help="the tunnel's outside IP")
    rekey = sub.add_parser("rekey", parents=[control], help="rekey a tunnel's CHILD SA (default) or IKE SA")
    rekey.add_argument("tunnel", type=_tunnel_name, metavar="TUNNEL", help="the tunnel's outside IP")
    which = rekey.add_mutually_exclusive_group()
    which.add_argument("--ike", dest="sa", action="store_const", const="ike", help="rekey the IKE SA")
    which.add_argument("--child", dest="sa", action="store_const", const="child", help="rekey the CHILD SA (default)")
    rekey.set_defaults(sa="child")
    maintenance = sub.add_parser("maintenance", help="rehearse AWS's tunnel maintenance (endpoint replacement)")
    steps = maintenance.add_subparsers(dest="action", required=True, metavar="ACTION")
    schedule = steps.add_parser("schedule", parents=[control],
                                help="plan a maintenance: pending until applied or due with lifecycle control,"
                                     " else applied at once")
    schedule.add_argument("connection", metavar="CONNECTION", help="a YAML connection's name or a vpn- id")
    schedule.add_argument("--tunnel", type=_tunnel_name, metavar="IP", help="one tunnel (default: each, in turn)")
    schedule.add_argument("--apply-after", metavar="TIME", dest="apply_after",
                          help="when it is applied if not accepted before: a duration (90s, 10m, 2h, 7d) or an"
                               " ISO 8601 time (2026-12-08T10:00:00Z); default in 1 hour")
    apply = steps.add_parser("apply", parents=[control],
                             help="apply a pending maintenance now (as ReplaceVpnTunnel ApplyPendingMaintenance)")
    apply.add_argument("connection", metavar="CONNECTION", help="a YAML connection's name or a vpn- id")
    apply.add_argument("--tunnel", type=_tunnel_name, metavar="IP", help="one tunnel (default: each)")
    shown = steps.add_parser("status", parents=[control], help="each tunnel's pending and last maintenance")
    shown.add_argument("--json", action="store_true", help='print {"maintenance": [...]} as JSON')
    from daemon import pki
    pki.add_parser(sub)   # vgw pki init|issue: a lab CA and certificates
    return parser


def _algorithms(values: list) -> str:
    """Comma-joined in preference order; runs of DH groups shortened (2,14-24)."""
    parts: list[str] = []
    run: list[int] = []
    for value in [*values, None]:
        if isinstance(value, int) and run and value == run[-1] + 1:
            run.append(value)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 2 else ",".join(map(str, run)))
        run = [value] if isinstance(value, int) else []
        if value is not None and not isinstance(value, int):
            parts.append(str(value))
    return ",".join(parts)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _limits_note(bandwidth: str) -> str:
    bps, pps = TUNNEL_BANDWIDTH_LIMITS[bandwidth]   # docs/aws.md §1.9, §4.1
    return f"; {bandwidth} tunnels' limits emulated ({bps / 1e9:g} Gbit/s and {pps:,} packets/s each way)"


def summarize(config: GatewayConfig) -> list[str]:
    """One line per connection and per tunnel: what a customer gateway must match."""
    lines = []
    for connection in config.connections:
        cgw = connection.customer_gateway.ip or "any address"
        if connection.customer_gateway.identity:
            cgw = f"{cgw} with identity {connection.customer_gateway.identity}"
        if connection.dynamic:
            routes = (f"BGP: the customer gateway's AS {connection.customer_gateway.bgp_asn} peers with AS"
                      f" {config.amazon_side_asn} in each tunnel")
        else:
            routes = "static routes " + (", ".join(map(str, connection.static_routes)) or "none")
        lines.append(
            f"connection {connection.name}: customer gateway {cgw}; {routes};"
            f" traffic selectors {connection.local_network_cidr} (customer) <-> {connection.remote_network_cidr} (AWS)"
            + (_limits_note(connection.tunnel_bandwidth) if config.limits_emulated(connection) else "")
        )
        for t in connection.tunnels:
            chosen = ", chosen from the outside IP" if t.inside_cidr_is_auto else ""
            lines.append(
                f"  tunnel {t.outside_ip}: inside {t.inside_cidr} (VGW {t.vgw_inside_ip}, CGW {t.cgw_inside_ip}{chosen});"
                f" phase 1 {_algorithms(t.phase1_encryption_algorithms)} / {_algorithms(t.phase1_integrity_algorithms)}"
                f" / DH {_algorithms(t.phase1_dh_group_numbers)}, {t.phase1_lifetime_seconds}s;"
                f" phase 2 {_algorithms(t.phase2_encryption_algorithms)} / {_algorithms(t.phase2_integrity_algorithms)}"
                f" / DH {_algorithms(t.phase2_dh_group_numbers)}, {t.phase2_lifetime_seconds}s;"
                f" startup {t.startup_action}"
                + (f"; certificate {t.certificate}" if t.auth_method == "certificate" else "")
                + (f"; BGP {t.vgw_inside_ip} <-> {t.cgw_inside_ip}, hold time 30 s" if connection.dynamic else "")
            )
    if config.api is not None:
        api = config.api
        lines.append(f"EC2 API on http://{api.listen} (docs/api.md): outside addresses from"
                     f" {api.outside_ip_pool or 'nowhere (no outside_ip_pool: it cannot create connections)'},"
                     f" objects in {api.database}, {'SigV4 checked' if api.access_keys else 'any signature accepted'}")
    return lines


def validate(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"{args.config}: {_plural(exc.total, 'problem')}; the gateway would not start", file=sys.stderr)
        return EXIT_CONFIG
    for warning in config.warnings:
        print(f"warning: {warning.format(args.config)}", file=sys.stderr)
    for line in summarize(config):
        print(line)
    connections, tunnels = len(config.connections), len(config.all_tunnels())
    print(f"{args.config}: OK, {_plural(connections, 'connection')}, {_plural(tunnels, 'tunnel')}")
    return EXIT_OK


def cgw_config(args: argparse.Namespace) -> int:
    """`vgw cgw-config`: AWS's "download configuration" for one connection (daemon/cgwconfig)."""
    from daemon.cgwconfig import find_connection, render
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    try:
        connection = find_connection(config, args.connection)
        text = render(config, connection, args.vendor, args.file)
    except ValueError as exc:
        print(f"vgw cgw-config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    sys.stdout.write(text)
    return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    # imported here so that `vgw validate` needs nothing of the running daemon
    commands = importlib.import_module("daemon.commands")
    result = getattr(commands, args.command)(args)
    return EXIT_OK if result is None else int(result)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (the console script passes it to sys.exit)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    if args.command == "validate":
        return validate(args)
    if args.command == "cgw-config":
        return cgw_config(args)
    if args.command == "pki":
        from daemon import pki
        return pki.run(args)
    return _dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
