"""bgpcore is sans-I/O and stands alone: no sockets, clocks, threads or
asyncio, and nothing from ikecore, dataplane or daemon (docs/bgp.md)."""

import ast
from pathlib import Path

import bgpcore

FORBIDDEN = {"socket", "asyncio", "threading", "time", "select", "selectors", "subprocess",
             "random", "os", "ikecore", "dataplane", "daemon"}


def test_bgpcore_imports_nothing_it_must_not():
    root = Path(bgpcore.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            found += [(path.name, n) for n in names if n.split(".")[0] in FORBIDDEN]
    assert found == []
    assert len(list(root.glob("*.py"))) >= 10
