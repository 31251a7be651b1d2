"""One tunnel of a connection: ReplaceVpnTunnel, GetVpnTunnelReplacementStatus,
GetActiveVpnTunnelStatus, and the maintenance `vgw maintenance schedule` plans.

Tunnel endpoint lifecycle control (docs/aws.md §1.10): AWS announces a
maintenance per tunnel; with lifecycle control on, it stays pending until the
customer applies it (ReplaceVpnTunnel with ApplyPendingMaintenance) or its
deadline passes; with it off, AWS applies it at once. Applying means replacing
the tunnel: its IKE and ESP state go, its outside IP stays.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from .connections import announce, find_tunnel, load
from .context import Context
from .errors import invalid_value
from .store import loads

MAINTENANCE = "Tunnel endpoint replacement"  # what GetVpnTunnelReplacementStatus shows as pending


def _lifecycle_control(tunnel) -> bool:
    return bool(loads(tunnel["options"]).get("enable_tunnel_lifecycle_control", False))


def apply_maintenance(ctx: Context, connection_id: str, outside_ip: str) -> None:
    ctx.db.execute("UPDATE tunnels SET pending_maintenance = NULL, maintenance_after = NULL, last_maintenance = ?"
                   " WHERE connection_id = ? AND outside_ip = ?", (ctx.now, connection_id, outside_ip))
    announce(ctx, "replaced", connection_id, (outside_ip,))


def schedule(ctx: Context, connection_id: str, outside_ip: str | None, apply_after: float) -> list[str]:
    """Plan a maintenance of one tunnel (or of both, one after the other); returns the
    tunnels it was applied to at once (those without lifecycle control)."""
    record = load(ctx, connection_id)
    tunnels = [find_tunnel(record, outside_ip)] if outside_ip else record.tunnels
    applied = []
    for tunnel in tunnels:
        if _lifecycle_control(tunnel):
            ctx.db.execute("UPDATE tunnels SET pending_maintenance = ?, maintenance_after = ?"
                           " WHERE connection_id = ? AND position = ?",
                           (MAINTENANCE, apply_after, connection_id, tunnel["position"]))
        else:
            apply_maintenance(ctx, connection_id, tunnel["outside_ip"])
            applied.append(tunnel["outside_ip"])
    return applied


def apply_due(ctx: Context) -> list[tuple[str, str]]:
    """Apply every pending maintenance whose deadline has passed (the gateway's timer)."""
    due = ctx.db.execute("SELECT connection_id, outside_ip FROM tunnels WHERE pending_maintenance IS NOT NULL"
                         " AND maintenance_after <= ?", (ctx.now,)).fetchall()
    done = []
    for row in due:
        connection = ctx.db.execute("SELECT * FROM vpn_connections WHERE id = ?", (row["connection_id"],)).fetchone()
        if ctx.live(connection):
            apply_maintenance(ctx, row["connection_id"], row["outside_ip"])
            done.append((row["connection_id"], row["outside_ip"]))
    return done


def maintenance_of(ctx: Context) -> list[dict]:
    """Each tunnel of the live connections with its maintenance (None when none)."""
    rows = []
    for connection in ctx.db.execute("SELECT * FROM vpn_connections ORDER BY created").fetchall():
        if not ctx.live(connection):
            continue
        for tunnel in ctx.db.execute("SELECT * FROM tunnels WHERE connection_id = ? ORDER BY position",
                                     (connection["id"],)):
            rows.append({"connection": connection["id"], "outside_ip": tunnel["outside_ip"],
                         "lifecycle_control": _lifecycle_control(tunnel),
                         "pending": tunnel["pending_maintenance"], "apply_after": tunnel["maintenance_after"],
                         "last_applied": tunnel["last_maintenance"]})
    return rows


def replace_vpn_tunnel(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    record = load(ctx, params["VpnConnectionId"])
    tunnel = find_tunnel(record, params["VpnTunnelOutsideIpAddress"])
    if ctx.state(record.row) in ("deleting", "deleted"):
        raise invalid_value(f"The VPN connection {record.id} is {ctx.state(record.row)}")
    if params.get("ApplyPendingMaintenance") and tunnel["pending_maintenance"] is None:
        return {"Return": False}  # nothing pending: nothing to apply
    apply_maintenance(ctx, record.id, tunnel["outside_ip"])
    return {"Return": True}


def get_vpn_tunnel_replacement_status(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    record = load(ctx, params["VpnConnectionId"])
    tunnel = find_tunnel(record, params["VpnTunnelOutsideIpAddress"])
    details = {
        "PendingMaintenance": tunnel["pending_maintenance"],
        "MaintenanceAutoAppliedAfter": tunnel["maintenance_after"],
        "LastMaintenanceApplied": tunnel["last_maintenance"],
    }
    return {
        "VpnConnectionId": record.id,
        "CustomerGatewayId": record.row["customer_gateway_id"],
        "VpnGatewayId": record.row["vpn_gateway_id"],
        "VpnTunnelOutsideIpAddress": tunnel["outside_ip"],
        "MaintenanceDetails": {k: v for k, v in details.items() if v is not None},
    }


def get_active_vpn_tunnel_status(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    record = load(ctx, params["VpnConnectionId"])
    tunnel = find_tunnel(record, params["VpnTunnelOutsideIpAddress"])
    state = ctx.state(record.row)
    status: dict[str, Any] = {"ProvisioningStatus": "pending" if state == "pending" else "available"}
    active = ctx.view.active_tunnel_status(IPv4Address(tunnel["outside_ip"]))
    if active is not None:
        status.update({
            "Phase1EncryptionAlgorithm": active.phase1_encryption_algorithm,
            "Phase2EncryptionAlgorithm": active.phase2_encryption_algorithm,
            "Phase1IntegrityAlgorithm": active.phase1_integrity_algorithm,
            "Phase2IntegrityAlgorithm": active.phase2_integrity_algorithm,
            "Phase1DHGroup": active.phase1_dh_group,
            "Phase2DHGroup": active.phase2_dh_group,
            "IkeVersion": active.ike_version,
        })
    return {"ActiveVpnTunnelStatus": {k: v for k, v in status.items() if v is not None}}
