"""Errors of a config vgw cannot run: each problem with where it is (the key's
path in the file, its line) and what to change.

Its own module because everything that reports a problem uses it: the models'
warnings (gateway.py), the loader (load.py), `vgw validate` and SIGHUP's reload.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ISSUES = 100    # problems listed (a hostile file may have 100,000); ConfigError.total counts all
MAX_MESSAGE = 500   # characters of one problem's message

KeyPath = tuple  # a key path: str keys and int list indexes, as in pydantic's loc


def path_text(path: KeyPath) -> str:
    """("connections", 0, "tunnels", 1) -> "connections[0].tunnels[1]"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: where (dotted key path, line) and what to change."""

    path: str  # e.g. "connections[0].tunnels[1].pre_shared_key"; "" for the whole file
    message: str
    line: int | None = None

    def format(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        message = self.message
        if len(message) > MAX_MESSAGE:   # a hostile file's 1 MB value is not echoed whole
            message = f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE:,} characters more)"
        return f"{where}: {self.path}: {message}" if self.path else f"{where}: {message}"


class ConfigError(Exception):
    """A config that vgw cannot run; `issues` lists the problems found, the first
    MAX_ISSUES of them; `total` counts them all."""

    def __init__(self, source: str, issues: list[ConfigIssue], total: int | None = None):
        self.source = source
        self.issues = issues
        self.total = len(issues) if total is None else max(total, len(issues))
        lines = [issue.format(source) for issue in issues]
        if self.total > len(issues):
            lines.append(f"{source}: ... and {self.total - len(issues):,} more problems (only the first"
                         f" {len(issues)} are listed)")
        super().__init__("\n".join(lines))
