"""The shape of kuryr/, read from its source: the import graph has no cycle and nothing imports
upward from a lower layer.

Every import counts, including those deferred into a function or kept for type checking: each
is a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kuryr"

# Low to high; a module may import its own layer and those below it. The first matching
# prefix decides (a module name, or a package name followed by a dot).
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "kuryr.config",
        "kuryr.errors",
        "kuryr.deadline",
        "kuryr.request_ids",
        "kuryr.metrics",
        "kuryr.naming",
        "kuryr.sdnotify",
    ),
    ("kuryr.backends.",),
    ("kuryr.plugin.protocol", "kuryr.plugin.api"),
    # quiet imports only the lowest layer: the ports wing's background work waits on it.
    ("kuryr.domain.ports.", "kuryr.domain.quiet"),
    ("kuryr.domain.",),
    ("kuryr.plugin.server", "kuryr.ops."),
    ("kuryr.app", "kuryr.cli", "kuryr.driver", "kuryr.stack."),
)
# Package markers with no code of their own.
_PACKAGES = {"kuryr", "kuryr.backends", "kuryr.backends.binding", "kuryr.domain"}
_PACKAGES |= {"kuryr.domain.ports", "kuryr.ops", "kuryr.plugin", "kuryr.stack"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    for level, prefixes in enumerate(LAYERS, start=1):
        if any(module == p or (p.endswith(".") and module.startswith(p)) for p in prefixes):
            return level
    raise AssertionError(f"{module} has no layer in test_architecture.LAYERS")


def _resolve(module: str, name: str) -> str | None:
    """The kuryr module that ``module`` means by ``name`` (a module, or a name in one)."""
    known = modules()
    if name in known:
        return name
    parent = name.rpartition(".")[0]
    return parent if parent in known else None


def _imported(module: str, tree: ast.AST) -> Iterator[str]:
    package = module if modules()[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(module, name)
            if target is not None and target != module:
                yield target


@cache
def graph() -> dict[str, frozenset[str]]:
    return {
        name: frozenset(_imported(name, ast.parse(path.read_text(), str(path))))
        for name, path in modules().items()
    }


def _cycle_from(start: str, edges: dict[str, frozenset[str]]) -> list[str] | None:
    """One import cycle through ``start``, as the chain of modules, if there is one."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        module, chain = stack.pop()
        for target in sorted(edges[module] - _PACKAGES):
            if target == start:
                return [*chain, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*chain, target]))
    return None


def test_every_module_has_a_layer() -> None:
    for module in modules():
        if module not in _PACKAGES:
            layer(module)


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in graph().items()
        if module not in _PACKAGES
        for target in sorted(targets - _PACKAGES)
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_there_is_no_import_cycle() -> None:
    edges = graph()
    cycles = [cycle for m in sorted(edges) if (cycle := _cycle_from(m, edges)) is not None]
    assert cycles == []


def test_the_graph_is_read_from_the_source() -> None:
    """The checks above see real edges: a known import is in the graph."""
    assert "kuryr.plugin.protocol" in graph()["kuryr.plugin.server"]
    assert "kuryr.backends.binding.registry" in graph()["kuryr.driver"]


# --- size and the ports wing -----------------------------------------------------------------

MAX_LINES = 450
# Where a port's raw Neutron JSON may be read: the ports wing only (its typed view, kuryr.domain.
# ports.port, is the reader).
_RAW_PORT_READERS = ("kuryr.domain.ports.",)
_PORTISH = re.compile(r"^(port|[a-z_]*_port)$")


def _portish(node: ast.expr) -> bool:
    """A name for one Neutron port: ``port``, ``*_port``, ``x.port``, or ``ports[i]``."""
    if isinstance(node, ast.Name):
        return bool(_PORTISH.match(node.id))
    if isinstance(node, ast.Attribute):
        return bool(_PORTISH.match(node.attr))
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        return node.value.id.endswith("ports")
    return False


def port_dict_reads(source: str) -> list[int]:
    """Lines that read a port's field from a dict: ``port["..."]`` or ``port.get(...)``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Subscript)
            and _portish(node.value)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            lines.append(node.lineno)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _portish(node.func.value)
        ):
            lines.append(node.lineno)
    return sorted(set(lines))


def test_no_module_is_over_450_lines() -> None:
    long = {
        name: count
        for name, path in modules().items()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_port_dict_is_read_outside_the_ports_wing() -> None:
    reads = {
        name: found
        for name, path in modules().items()
        if not any(name == p or name.startswith(p) for p in _RAW_PORT_READERS)
        if (found := port_dict_reads(path.read_text()))
    }
    assert reads == {}, "read the port through kuryr.domain.ports.port.Port"


def test_the_port_dict_check_sees_reads() -> None:
    source = 'a = port["id"]\nb = endpoint.port.get("mac_address")\nc = ports[0]["id"]\n'
    source += 'd = new_port.get("tags")\ne = port.id\nf = subnet["id"]\n'
    assert port_dict_reads(source) == [1, 2, 3, 4]


def test_no_test_module_imports_another() -> None:
    """Helpers shared by test modules live in helper modules, never in a ``test_*`` module."""
    shared = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            shared += [
                f"{path.relative_to(ROOT)} imports {name}"
                for name in names
                if name.startswith("tests.") and name.rpartition(".")[2].startswith("test_")
            ]
    assert shared == []


def test_test_module_basenames_are_unique() -> None:
    """pytest imports test modules by basename (no packages under tests/), so two files
    with one name stop the whole run at collection."""
    seen: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
