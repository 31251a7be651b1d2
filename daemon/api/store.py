"""The API's objects in SQLite: one database file, a versioned schema, one
transaction per request.

Every request that writes runs in one `BEGIN IMMEDIATE` transaction that either
commits whole or rolls back whole (an exception, a crash, a kill), so a
connection is never half made. The journal is WAL with synchronous=FULL: a
request answered is on disk (docs/api.md has the cost measured).

States are stored as the state an action set and the time it did (`state`,
`since`, wall-clock seconds so they survive a restart); the state AWS would show
now is derived at read time (daemon/api/states.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE customer_gateways (
    id TEXT PRIMARY KEY, bgp_asn INTEGER NOT NULL, ip_address TEXT, certificate TEXT,
    device_name TEXT, type TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL);
CREATE TABLE vpn_gateways (
    id TEXT PRIMARY KEY, amazon_side_asn INTEGER NOT NULL, availability_zone TEXT,
    type TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL);
CREATE TABLE vpc_attachments (
    vpn_gateway_id TEXT NOT NULL REFERENCES vpn_gateways(id) ON DELETE CASCADE,
    vpc_id TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL,
    PRIMARY KEY (vpn_gateway_id, vpc_id));
CREATE TABLE vpn_connections (
    id TEXT PRIMARY KEY, customer_gateway_id TEXT NOT NULL, vpn_gateway_id TEXT NOT NULL,
    type TEXT NOT NULL, static_routes_only INTEGER NOT NULL, local_cidr TEXT NOT NULL,
    remote_cidr TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL, created REAL NOT NULL);
CREATE TABLE tunnels (
    connection_id TEXT NOT NULL REFERENCES vpn_connections(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, outside_ip TEXT NOT NULL, inside_cidr TEXT NOT NULL,
    pre_shared_key TEXT, options TEXT NOT NULL, aws_only TEXT NOT NULL,
    pending_maintenance TEXT, maintenance_after REAL, last_maintenance REAL,
    PRIMARY KEY (connection_id, position));
CREATE TABLE vpn_routes (
    connection_id TEXT NOT NULL REFERENCES vpn_connections(id) ON DELETE CASCADE,
    cidr TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL,
    PRIMARY KEY (connection_id, cidr));
CREATE TABLE tags (
    resource_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (resource_id, key));
CREATE TABLE route_propagation (
    route_table_id TEXT NOT NULL, vpn_gateway_id TEXT NOT NULL,
    PRIMARY KEY (route_table_id, vpn_gateway_id));
"""

# Migrations from version N to N+1, applied in order inside one transaction.
_MIGRATIONS: dict[int, str] = {}


class DatabaseError(Exception):
    """The database cannot be used (newer schema, not a vgw database, unreadable)."""


class Store:
    """The SQLite connection, used from one thread (the event loop's)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = FULL")
            self.db.execute("PRAGMA busy_timeout = 1000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path}: {exc}") from None

    def _migrate(self) -> None:
        with self.transaction():
            has_meta = self.db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
            if not has_meta:
                if self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise DatabaseError(f"{self.path} is not a vgw API database; give api.database another file")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self.db.execute(statement)
                self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                return
            version = int(self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise DatabaseError(f"{self.path} has schema version {version}, newer than this vgw's"
                                    f" {SCHEMA_VERSION}; upgrade vgw or give api.database another file")
            while version < SCHEMA_VERSION:
                for statement in filter(str.strip, _MIGRATIONS[version].split(";")):
                    self.db.execute(statement)
                version += 1
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: commit on return, roll back on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


def dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def loads(text: str | None) -> dict:
    return json.loads(text) if text else {}
