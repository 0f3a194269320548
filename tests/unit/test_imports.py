"""The package's import graph, read from the source (nothing is imported): no module of functions/spool imports
itself through others, and each layer imports only what docs/architecture.md allows it.

Every import counts: at module level, inside functions (lazy imports) and under `TYPE_CHECKING`, since a circle
that only the type checker walks is still two modules that cannot be read apart.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
PACKAGE = "spool"


def _module_name(path: Path) -> str:
    parts = path.relative_to(FUNCTIONS).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {_module_name(path): path for path in sorted((FUNCTIONS / PACKAGE).rglob("*.py"))}


def _imported(path: Path, name: str) -> Iterator[str]:
    """The dotted names `path` (module `name`) imports, each as written, wherever the import stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from a import b` imports the module a.b when there is one, else the name b of a.
            yield from (f"{base}.{alias.name}" for alias in node.names)
            yield base


def _resolve(dotted: str) -> str | None:
    """The package's module a dotted name lands in (the longest one that is a prefix of it), or None."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules():
            return candidate
    return None


@cache
def graph() -> dict[str, frozenset[str]]:
    """Module -> the package's modules it imports (a package's `__init__` counts as a module of its own)."""
    found: dict[str, frozenset[str]] = {}
    for name, path in modules().items():
        targets = {_resolve(dotted) for dotted in _imported(path, name) if dotted.split(".")[0] == PACKAGE}
        found[name] = frozenset(t for t in targets if t is not None and t != name)
    return found


@cache
def external() -> dict[str, frozenset[str]]:
    """Module -> the top-level names of what it imports from outside the package (boto3, aws_lambda_powertools...)."""
    return {
        name: frozenset(d.split(".")[0] for d in _imported(path, name) if d and d.split(".")[0] != PACKAGE)
        for name, path in modules().items()
    }


def circles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted: the import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def importers(prefix: str) -> set[str]:
    """The modules outside `prefix` that import a module in it (or it)."""
    return {
        name
        for name, targets in graph().items()
        if not _within(name, prefix) and any(_within(target, prefix) for target in targets)
    }


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(f"{prefix}.")


def test_the_graph_is_read_from_every_module() -> None:
    assert {"spool.domain.keys", "spool.handlers.sink", "spool.local.runtime", "spool.cli"} <= set(modules())
    assert "spool.domain.encoding" in graph()["spool.domain.keys"]
    assert "boto3" in external()["spool.adapters.stores"]


def test_imports_under_type_checking_and_inside_functions_count(tmp_path: Path) -> None:
    module = tmp_path / "b.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from spool.domain.a import x\n"
        "def f():\n    from spool.domain import c\n"
    )
    assert {"spool.domain.a.x", "spool.domain.c"} <= set(_imported(module, "spool.domain.b"))


def test_circles_are_the_modules_that_reach_each_other() -> None:
    edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert circles(edges) == [["a", "b", "c"]]
    assert circles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_no_module_of_the_package_imports_itself_through_others() -> None:
    assert circles(dict(graph())) == []


def test_the_domain_imports_no_adapter_handler_aws_sdk_or_powertools() -> None:
    for name, targets in graph().items():
        if _within(name, "spool.domain"):
            assert all(_within(t, "spool.domain") for t in targets), (name, sorted(targets))
            assert not external()[name] & {"boto3", "botocore", "aws_lambda_powertools"}, name


def test_adapters_import_no_handler_and_handlers_no_local_runtime() -> None:
    for name, targets in graph().items():
        if _within(name, "spool.adapters"):
            assert not any(_within(t, "spool.handlers") or _within(t, "spool.local") for t in targets), name
        if _within(name, "spool.handlers"):
            assert not any(_within(t, "spool.local") or _within(t, "spool.cli") for t in targets), name


def test_what_is_left_out_of_the_lambda_asset_is_imported_by_nothing_in_it() -> None:
    """infra/spool_infra/bundling.py leaves spool/local/ and spool/cli.py out of the asset (LOCAL_ONLY)."""
    assert importers("spool.local") <= {"spool.cli"}
    assert importers("spool.cli") <= {"spool.local.__main__"} | {n for n in modules() if _within(n, "spool.local")}
