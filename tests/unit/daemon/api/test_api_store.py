"""The database: objects survive a restart; a request that fails half way leaves
nothing half made; a killed process loses no committed request."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from daemon.api import connections
from daemon.api.store import SCHEMA_VERSION, DatabaseError, Store

from .helpers import error_code, make_gateways


def test_restart_keeps_every_object(ec2, endpoint):
    cgw_id, vgw_id, vpc_id = make_gateways(ec2, endpoint)
    vpn_id = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
                                       Options={"StaticRoutesOnly": True})["VpnConnection"]["VpnConnectionId"]
    ec2.create_vpn_connection_route(VpnConnectionId=vpn_id, DestinationCidrBlock="172.16.0.0/16")
    ec2.create_tags(Resources=[vgw_id], Tags=[{"Key": "k", "Value": "v"}])
    endpoint.clock.advance(5)
    before = (ec2.describe_customer_gateways(), ec2.describe_vpn_gateways(), ec2.describe_vpn_connections())
    endpoint.restart()
    ec2 = endpoint.client()
    after = (ec2.describe_customer_gateways(), ec2.describe_vpn_gateways(), ec2.describe_vpn_connections())
    for old, new in zip(before, after):
        old.pop("ResponseMetadata"), new.pop("ResponseMetadata")
        assert old == new
    # at startup the gateway rebuilds the API's connections from the database
    definitions = endpoint.service.definitions(endpoint.clock.now)
    assert [d.connection_id for d in definitions] == [vpn_id]
    assert [str(r) for r in definitions[0].config.static_routes] == ["172.16.0.0/16"]


def test_failure_mid_request_leaves_nothing(ec2, endpoint, monkeypatch):
    cgw_id, vgw_id, _ = make_gateways(ec2, endpoint)

    def boom(*args, **kwargs):  # raised after the connection's rows were written
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(connections, "announce", boom)
    assert error_code(ec2.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=cgw_id,
                      VpnGatewayId=vgw_id) == "InternalError"
    db = endpoint.service.store.db
    assert db.execute("SELECT count(*) FROM vpn_connections").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM tunnels").fetchone()[0] == 0
    assert endpoint.view.changes == []


def test_killed_process_keeps_committed_and_drops_uncommitted(tmp_path):
    path = tmp_path / "api.sqlite3"
    script = textwrap.dedent(f"""
        import os
        from daemon.api.store import Store
        store = Store({str(path)!r})
        with store.transaction() as db:
            db.execute("INSERT INTO vpn_gateways VALUES ('vgw-committed', 64512, NULL, 'ipsec.1', 'pending', 0)")
        db = store.db
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO vpn_gateways VALUES ('vgw-half', 64512, NULL, 'ipsec.1', 'pending', 0)")
        os._exit(9)  # killed mid-transaction
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=str(__import__("pathlib").Path.cwd()), timeout=60)
    assert result.returncode == 9
    store = Store(path)
    assert [r[0] for r in store.db.execute("SELECT id FROM vpn_gateways")] == ["vgw-committed"]


def test_schema_version(tmp_path):
    store = Store(tmp_path / "a.sqlite3")
    assert store.db.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
    store.db.execute("UPDATE meta SET value = '99'")
    store.close()
    with pytest.raises(DatabaseError, match="newer"):
        Store(tmp_path / "a.sqlite3")
    other = tmp_path / "b.sqlite3"
    import sqlite3
    sqlite3.connect(other).execute("CREATE TABLE t (x)")
    with pytest.raises(DatabaseError, match="not a vgw API database"):
        Store(other)
