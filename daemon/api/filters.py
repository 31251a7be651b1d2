"""Describe* filters as EC2 applies them.

A resource matches when every filter matches (AND); a filter matches when any
of its values does (OR); values may use the wildcards `*` and `?` (EC2 API
"Filter" data type). `tag:<key>`, `tag-key` and `tag-value` work on every
resource with tags. A filter name the action does not know is refused with
InvalidParameterValue, as EC2 does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .errors import invalid_value


def _pattern(value: str) -> re.Pattern:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value), re.S)


def check_names(filters: list[dict] | None, known: Iterable[str]) -> None:
    known = set(known)
    for spec in filters or []:
        name = spec.get("Name")
        if name is None:
            raise invalid_value("A filter must have a Name")
        if name not in known and not name.startswith("tag:") and name not in ("tag-key", "tag-value"):
            raise invalid_value(f"The filter '{name}' is invalid")


def matches(filters: list[dict] | None, attributes: Mapping[str, Iterable[str]], tags: Mapping[str, str]) -> bool:
    """True when the resource with these filterable `attributes` and `tags` passes."""
    for spec in filters or []:
        name, values = spec["Name"], spec.get("Values") or []
        if name.startswith("tag:"):
            key = name[4:]
            have = [tags[key]] if key in tags else []
        elif name == "tag-key":
            have = list(tags)
        elif name == "tag-value":
            have = list(tags.values())
        else:
            have = [str(item) for item in attributes.get(name, ())]
        patterns = [_pattern(value) for value in values]
        if not any(pattern.fullmatch(item) for pattern in patterns for item in have):
            return False
    return True
