"""AWS's path selection for one prefix of the VPC route table (docs/aws.md §7).

The longest prefix is the kernel's business (each prefix is its own route).
Among the paths to one exact prefix, as the virtual private gateway does it:

1. a path whose tunnel can carry traffic beats one that cannot;
2. a connection's static route beats a BGP-learned path ("statically assigned
   routes are preferred over BGP advertised routes");
3. among BGP paths, the shortest AS_PATH (RFC 4271 §9.1.2.2 a; an AS_SET counts 1);
4. then the lowest MED, compared only between paths from the same neighbour AS
   (AWS: "with equal AS_PATH length and the same first AS"; RFC 4271 §9.1.2.2 c,
   a missing MED counting as 0);
5. then the path on its connection's primary tunnel (the one AWS egresses on);
6. a stable tie-break, so that a prefix never moves without a reason: the path
   selected now stays, then the path learned first (RFC 5004's reasoning),
   then the connection's and tunnel's order in the configuration.

Each step that decides is named in the reason `vgw routes` shows.
"""

from __future__ import annotations

from typing import Callable, Iterable

from .paths import Path, Source

Key = tuple[str, str | None, Source]


def path_key(path: Path) -> Key:
    """A path's identity across decisions (what `incumbent` is compared with)."""
    return (path.connection, path.tunnel, path.source)


def select(paths: Iterable[Path], tunnel_of: Callable[[Path], str | None],
           primaries: dict[str, str | None], incumbent: Key | None,
           order: Callable[[Path], tuple]) -> tuple[Path, str | None, str, tuple[Path, ...]]:
    """The winning path, the tunnel it leaves by (None: blackhole), the reason (the
    steps that decided, most significant first), the losers.

    `tunnel_of(path)` is the tunnel a path would use now, or None when it cannot
    carry traffic (a static route of a connection with no tunnel up);
    `primaries` maps connection -> its primary tunnel; `order` gives the
    configuration order of a path's connection and tunnel."""
    candidates = list(paths)
    if not candidates:
        raise ValueError("select() needs at least one path")
    if len(candidates) == 1:
        only = candidates[0]
        return only, tunnel_of(only), "only path", ()
    reasons: list[str] = []
    steps: list[tuple[str, Callable[[list[Path]], list[Path]]]] = [
        ("tunnel up", lambda ps: _keep(ps, lambda p: tunnel_of(p) is not None)),
        ("static route", lambda ps: _keep(ps, lambda p: p.source is Source.STATIC)),
        ("shorter AS_PATH", _shortest_as_path),
        ("lower MED", _lowest_med),
        ("primary tunnel", lambda ps: _keep(ps, lambda p: p.tunnel is not None
                                            and primaries.get(p.connection) == p.tunnel)),
        ("selected first", lambda ps: _keep(ps, lambda p: path_key(p) == incumbent)),
        ("learned first", lambda ps: _minimal(ps, lambda p: p.learned)),
        ("configuration order", lambda ps: _minimal(ps, order)),
    ]
    remaining = candidates
    for name, step in steps:
        narrowed = step(remaining)
        if len(narrowed) < len(remaining):
            reasons.append(name)
            remaining = narrowed
        if len(remaining) == 1:
            break
    best = remaining[0]
    return best, tunnel_of(best), ", ".join(reasons), tuple(p for p in candidates if p is not best)


def _keep(paths: list[Path], wanted: Callable[[Path], bool]) -> list[Path]:
    """The paths that have the property, or all of them if none has it."""
    kept = [p for p in paths if wanted(p)]
    return kept or paths


def _minimal(paths: list[Path], key: Callable[[Path], object]) -> list[Path]:
    low = min(key(p) for p in paths)
    return [p for p in paths if key(p) == low]


def _shortest_as_path(paths: list[Path]) -> list[Path]:
    """Among BGP paths only: a static path (AS_PATH empty) was decided before."""
    if any(p.source is Source.STATIC for p in paths):
        return paths
    return _minimal(paths, lambda p: p.as_path_length)


def _lowest_med(paths: list[Path]) -> list[Path]:
    """RFC 4271 §9.1.2.2 (c): drop a path when another from the same neighbour AS
    has a lower MED; paths from different neighbour ASes are not compared."""
    def med(p: Path) -> int:
        return p.med if p.med is not None else 0
    return [p for p in paths
            if not any(q.neighbor_as == p.neighbor_as and med(q) < med(p) for q in paths)]
