"""Which package may import which (docs/design.md: dependencies point one way).

daemon -> ikecore, daemon -> dataplane, daemon -> bgpcore; the sans-I/O cores
(ikecore, bgpcore) and dataplane import none of the others, nor daemon. Inside
ikecore the modules import one way (no cycle), in layers (endpoint -> exchanges
-> sa_operations -> sa -> the rest), and every import sits at the top of its
module: an import inside a function is how a cycle hides, so none is allowed
there (no allow-list). The same holds inside daemon/config, whose modules import
in one order (CONFIG_ORDER below).

Every module is parsed with `ast`, never imported, so all imports count: those
at the top, inside functions, under `if TYPE_CHECKING` or `try`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# package -> packages it must never import
FORBIDDEN = {
    "ikecore": ("daemon", "dataplane", "bgpcore"),
    "dataplane": ("daemon", "ikecore", "bgpcore"),
    "bgpcore": ("daemon", "ikecore", "dataplane"),
}
# packages whose module graph must have no cycle and no import inside a function
ONE_WAY = ("ikecore",)
CONFIG = "daemon.config"
# daemon/config's modules, top first: each imports only modules listed after it (its
# __init__ only re-exports them); a new module must be placed here
CONFIG_ORDER = tuple(f"{CONFIG}.{name}" for name in (
    "load", "ike_settings", "gateway", "api", "sections", "connection", "tunnel", "values", "errors", "yaml_safe"))
# ikecore's layers, top first (ikecore/__init__.py): a module imports from its own
# layer or those below, never above; everything not named here is the bottom layer
IKECORE_LAYERS = ("ikecore.endpoint", "ikecore.exchanges", "ikecore.sa_operations", "ikecore.sa")


@dataclass(frozen=True)
class Import:
    module: str        # the importing module, dotted
    target: str        # the module (or package) imported, dotted, resolved
    line: int
    in_function: bool


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_files(root: Path, package: str) -> list[Path]:
    """The .py files of `package` ("ikecore", or dotted: "daemon.config")."""
    base = root.joinpath(*package.split("."))
    return sorted(base.rglob("*.py")) if base.is_dir() else []


def _resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The dotted name `from <...> import` refers to, relative levels resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]                      # a module's package
    base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(root: Path, path: Path, known: set[str]) -> list[Import]:
    """Every import in `path`, each resolved to the most specific module in
    `known` (`from . import x` names module x when x is one)."""
    module = module_name(root, path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(module, alias.name, child.lineno, in_function))
            elif isinstance(child, ast.ImportFrom):
                source = _resolve_from(module, is_package, child)
                for alias in child.names:
                    sub = f"{source}.{alias.name}"
                    found.append(Import(module, sub if sub in known else source, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def scan(root: Path, packages) -> list[Import]:
    files = [f for p in packages for f in package_files(root, p)]
    known = {module_name(root, f) for f in files}
    return [imp for f in files for imp in imports_of(root, f, known)]


def top(name: str) -> str:
    return name.split(".")[0]


def inside(name: str, package: str) -> bool:
    """`name` is `package` or one of its modules ("daemon.config.load" is in "daemon.config")."""
    return name == package or name.startswith(package + ".")


def forbidden_imports(imports: list[Import]) -> list[str]:
    return [f"{i.module}:{i.line} imports {i.target}" for i in imports
            if top(i.target) in FORBIDDEN.get(top(i.module), ())]


def function_imports(imports: list[Import], package: str) -> list[str]:
    return [f"{i.module}:{i.line} imports {i.target} inside a function" for i in imports
            if i.in_function and inside(i.module, package)]


def layer(module: str) -> int:
    """0 for the top of IKECORE_LAYERS, len(IKECORE_LAYERS) for the bottom."""
    for i, name in enumerate(IKECORE_LAYERS):
        if module == name or module.startswith(name + "."):
            return i
    return len(IKECORE_LAYERS)


def upward_imports(imports: list[Import]) -> list[str]:
    return [f"{i.module}:{i.line} imports {i.target}, a layer above it" for i in imports
            if top(i.module) == "ikecore" and top(i.target) == "ikecore"
            and i.target != "ikecore" and layer(i.target) < layer(i.module)]


def cycles(imports: list[Import], package: str) -> list[list[str]]:
    """The strongly connected components (more than one module, or a module
    importing itself) of `package`'s module graph (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for i in imports:
        if inside(i.module, package):
            graph.setdefault(i.module, set())
            if inside(i.target, package) and i.target != package:
                graph[i.module].add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def out_of_order_imports(imports: list[Import], package: str, order: tuple[str, ...]) -> list[str]:
    """Imports between `package`'s modules that go up `order` (top first), that
    import the package's __init__ (which imports them back), or that involve a
    module `order` does not name; the __init__'s own imports are its re-exports."""
    rank = {name: n for n, name in enumerate(order)}
    found = []
    for i in imports:
        if not inside(i.module, package) or i.module == package or not inside(i.target, package):
            continue
        if i.target == package:
            found.append(f"{i.module}:{i.line} imports {package} itself, whose __init__ imports it")
        elif i.module not in rank or i.target not in rank:
            unknown = i.module if i.module not in rank else i.target
            found.append(f"{i.module}:{i.line} imports {i.target}: {unknown} has no place in the order")
        elif rank[i.target] <= rank[i.module] and i.target != i.module:
            found.append(f"{i.module}:{i.line} imports {i.target}, which comes before it")
    return found


# --- the rules, on this tree -----------------------------------------------------------


def test_the_scan_sees_the_packages():
    """A scan that found nothing would pass every rule below."""
    imports = scan(ROOT, ("ikecore", "dataplane", "daemon"))
    assert len({i.module for i in imports if top(i.module) == "ikecore"}) > 30
    assert any(i.module == "daemon.tunnel" and top(i.target) == "ikecore" for i in imports)
    assert any(top(i.module) == "ikecore" and top(i.target) == "ikecore" for i in imports)


def test_cores_and_dataplane_import_no_other_package():
    imports = scan(ROOT, FORBIDDEN)
    assert forbidden_imports(imports) == []


def test_ikecore_imports_one_way():
    imports = scan(ROOT, ONE_WAY)
    for package in ONE_WAY:
        assert cycles(imports, package) == [], f"import cycles in {package}"


def test_ikecore_layers_import_downwards():
    """endpoint -> exchanges -> sa_operations -> sa -> the rest: the SA imports no
    exchange (it gets SaHandlers from the endpoint), no exchange the endpoint."""
    assert upward_imports(scan(ROOT, ONE_WAY)) == []


def test_no_import_inside_a_function_in_ikecore():
    imports = scan(ROOT, ONE_WAY)
    for package in ONE_WAY:
        assert function_imports(imports, package) == []


def test_daemon_config_imports_one_way():
    """No cycle among daemon/config's modules, none hidden inside a function, and
    every import down CONFIG_ORDER (values <- tunnel <- connection <- gateway <- load)."""
    imports = scan(ROOT, (CONFIG,))
    assert {i.module for i in imports} >= set(CONFIG_ORDER), "the scan missed daemon/config's modules"
    assert {i.module for i in imports} - {CONFIG} <= set(CONFIG_ORDER), "place the new module in CONFIG_ORDER"
    assert cycles(imports, CONFIG) == [], f"import cycles in {CONFIG}"
    assert function_imports(imports, CONFIG) == []
    assert out_of_order_imports(imports, CONFIG, CONFIG_ORDER) == []


# --- the checker itself, on a made-up tree ------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_checker_finds_cycles_function_imports_and_wrong_directions(tmp_path):
    root = _tree(tmp_path, {
        "ikecore/__init__.py": "",
        "ikecore/a.py": "from .b import x\n",
        "ikecore/b.py": "def f():\n    from . import a\n",
        "ikecore/c.py": "from . import d\n",
        "ikecore/d.py": "import os\n",
        "ikecore/sub/__init__.py": "",
        "ikecore/sub/e.py": "from ..a import y\nfrom .. import d\n",
        "dataplane/__init__.py": "",
        "dataplane/loop.py": "from ikecore.events import Datagram\n",
        "bgpcore/__init__.py": "",
        "bgpcore/fsm.py": "import daemon.gateway\n",
        "daemon/__init__.py": "",
        "daemon/gateway.py": "from ikecore import a\nfrom dataplane import loop\n",
    })
    imports = scan(root, ("ikecore", "dataplane", "bgpcore", "daemon"))
    assert cycles(imports, "ikecore") == [["ikecore.a", "ikecore.b"]]
    assert function_imports(imports, "ikecore") == ["ikecore.b:2 imports ikecore.a inside a function"]
    assert sorted(forbidden_imports(imports)) == [
        "bgpcore.fsm:1 imports daemon.gateway",
        "dataplane.loop:1 imports ikecore.events",
    ]
    assert upward_imports(imports) == []        # all in the bottom layer
    edges = {(i.module, i.target) for i in imports}
    assert ("ikecore.sub.e", "ikecore.a") in edges and ("ikecore.sub.e", "ikecore.d") in edges
    assert ("ikecore.c", "ikecore.d") in edges


def test_the_checker_finds_an_upward_import(tmp_path):
    root = _tree(tmp_path, {
        "ikecore/__init__.py": "",
        "ikecore/sa.py": "from .exchanges import ike_auth\n",
        "ikecore/sa_operations.py": "from .sa import IkeSa\n",
        "ikecore/exchanges/__init__.py": "",
        "ikecore/exchanges/ike_auth.py": "from ..sa_operations import ike_up\nfrom .. import state\n",
        "ikecore/state.py": "",
    })
    assert upward_imports(scan(root, ("ikecore",))) == [
        "ikecore.sa:1 imports ikecore.exchanges.ike_auth, a layer above it"]


def test_a_module_importing_itself_is_a_cycle(tmp_path):
    root = _tree(tmp_path, {"ikecore/__init__.py": "", "ikecore/a.py": "from . import a\n"})
    assert cycles(scan(root, ("ikecore",)), "ikecore") == [["ikecore.a"]]


def test_the_checker_finds_a_cycle_and_a_wrong_order_inside_a_subpackage(tmp_path):
    root = _tree(tmp_path, {
        "daemon/__init__.py": "",
        "daemon/gateway.py": "from .config import load\n",
        "daemon/config/__init__.py": "from .load import load_config\n",
        "daemon/config/load.py": "from .gateway import GatewayConfig\nfrom ..gateway import x\n",
        "daemon/config/gateway.py": "from .values import Cidr\nfrom . import ConfigError\n",
        "daemon/config/values.py": "def f():\n    from .gateway import GatewayConfig\n",
        "daemon/config/extra.py": "from .values import Cidr\n",
    })
    imports = scan(root, ("daemon.config",))
    assert {i.module for i in imports} == {"daemon.config", "daemon.config.load", "daemon.config.gateway",
                                           "daemon.config.values", "daemon.config.extra"}
    assert cycles(imports, "daemon.config") == [["daemon.config.gateway", "daemon.config.values"]]
    assert function_imports(imports, "daemon.config") == [
        "daemon.config.values:2 imports daemon.config.gateway inside a function"]
    order = ("daemon.config.load", "daemon.config.gateway", "daemon.config.values")
    assert sorted(out_of_order_imports(imports, "daemon.config", order)) == [
        "daemon.config.extra:1 imports daemon.config.values: daemon.config.extra has no place in the order",
        "daemon.config.gateway:2 imports daemon.config itself, whose __init__ imports it",
        "daemon.config.values:2 imports daemon.config.gateway, which comes before it",
    ]
    # load's import of daemon.gateway (outside the subpackage) counts in none of these
    assert any(i.module == "daemon.config.load" and i.target == "daemon.gateway" for i in imports)
