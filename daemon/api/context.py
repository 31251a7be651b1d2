"""What every action handler works with: the open transaction, the request's
time, the gateway view, the settings, and the changes to announce on commit.

Also the pieces the resources share: tags, TagSpecifications, DryRun, and the
lookup of a resource by id that answers AWS's *.NotFound.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from daemon.cgwconfig import stable_id

from . import states
from .errors import ApiError, invalid_value, not_found
from ..config.api import ApiConfig
from .view import GatewayView

MAX_TAGS = 50           # EC2: 50 tags per resource
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256


@dataclass(frozen=True)
class Vpc:
    """The gateway's one VPC (the config's `vpc`), with ids derived from its CIDRs
    so they stay the same across restarts."""

    cidrs: tuple[IPv4Network, ...]

    @property
    def seed(self) -> str:
        return ",".join(str(c) for c in self.cidrs)

    @property
    def vpc_id(self) -> str:
        return stable_id("vpc", self.seed)

    @property
    def route_table_id(self) -> str:
        return stable_id("rtb", self.seed)

    @property
    def yaml_vpn_gateway_id(self) -> str:
        """The id `vgw cgw-config` gives the YAML connections' gateway."""
        return stable_id("vgw", self.seed)


@dataclass
class Context:
    db: sqlite3.Connection
    now: float
    view: GatewayView
    settings: ApiConfig
    vpc: Vpc | None
    rng: random.Random
    settle: float = states.SETTLE_SECONDS
    visible: float = states.DELETED_VISIBLE_SECONDS
    # run after the transaction commits (never on rollback or DryRun)
    on_commit: list[Callable[[], None]] = field(default_factory=list)

    def state(self, row: sqlite3.Row) -> str:
        return states.effective(row["state"], row["since"], self.now, self.settle)

    def live(self, row: sqlite3.Row) -> bool:
        return states.is_live(row["state"], row["since"], self.now, self.settle)

    def listed(self, row: sqlite3.Row) -> bool:
        return not states.gone(row["state"], row["since"], self.now, self.settle, self.visible)

    # -- lookups

    def row(self, table: str, kind: str, resource_id: str) -> sqlite3.Row:
        """The resource's row while it is listed; AWS's <kind>.NotFound otherwise."""
        row = self.db.execute(f"SELECT * FROM {table} WHERE id = ?", (resource_id,)).fetchone()
        if row is None or not self.listed(row):
            raise not_found(kind, resource_id)
        return row

    def listed_rows(self, table: str, kind: str, wanted: list[str] | None, order: str = "since") -> list:
        """A Describe*'s rows: every listed one, or those `wanted` (each must exist)."""
        rows = [row for row in self.db.execute(f"SELECT * FROM {table} ORDER BY {order}") if self.listed(row)]
        if not wanted:
            return rows
        for resource_id in sorted(set(wanted) - {row["id"] for row in rows}):
            raise not_found(kind, resource_id)
        return [row for row in rows if row["id"] in wanted]

    def check_vpc(self, vpc_id: str) -> None:
        if self.vpc is None or vpc_id != self.vpc.vpc_id:
            raise not_found("InvalidVpcID", vpc_id)

    def check_route_table(self, table_id: str) -> None:
        if self.vpc is None or table_id != self.vpc.route_table_id:
            raise not_found("InvalidRouteTableID", table_id)

    def usable(self, table: str, kind: str, resource_id: str, noun: str) -> sqlite3.Row:
        """A resource a new object may refer to: listed and not deleting or deleted."""
        row = self.row(table, kind, resource_id)
        state = self.state(row)
        if state in ("deleting", "deleted"):
            if state == "deleted":
                raise not_found(kind, resource_id)
            raise ApiError("IncorrectState", f"The {noun} '{resource_id}' is {state}")
        return row

    # -- tags

    def tags(self, resource_id: str) -> dict[str, str]:
        rows = self.db.execute("SELECT key, value FROM tags WHERE resource_id = ? ORDER BY key", (resource_id,))
        return {row["key"]: row["value"] for row in rows}

    def tag_list(self, resource_id: str) -> list[dict[str, str]] | None:
        tags = self.tags(resource_id)
        return [{"Key": k, "Value": v} for k, v in tags.items()] or None

    def set_tags(self, resource_id: str, tags: list[dict[str, Any]]) -> None:
        for tag in tags:
            key, value = tag.get("Key"), tag.get("Value", "")
            if not key:
                raise invalid_value("Tag keys must not be empty")
            if len(key) > MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
                raise invalid_value(f"Tag keys may have {MAX_TAG_KEY} characters and values {MAX_TAG_VALUE}")
            if any(ord(c) < 32 for c in key + (value or "")):
                raise invalid_value("Tag keys and values must not contain control characters")
            if key.lower().startswith("aws:"):
                raise invalid_value("Tag keys starting with 'aws:' are reserved for AWS's own use")
            self.db.execute("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", (resource_id, key, value or ""))
        count = self.db.execute("SELECT count(*) FROM tags WHERE resource_id = ?", (resource_id,)).fetchone()[0]
        if count > MAX_TAGS:
            raise ApiError("TagLimitExceeded", f"The resource {resource_id} would have {count} tags; the limit is {MAX_TAGS}")

    def tag_on_create(self, params: dict[str, Any], resource_type: str, resource_id: str) -> None:
        """TagSpecifications of a Create*: each must name this resource's type."""
        for spec in params.get("TagSpecifications") or []:
            given = spec.get("ResourceType")
            if given != resource_type:
                raise invalid_value(f"'{given}' is not a valid taggable resource type for this operation;"
                                    f" use {resource_type}")
            self.set_tags(resource_id, spec.get("Tags") or [])
