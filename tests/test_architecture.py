"""The layout's import rules, read from the source (every import, at the top of a module or inside a
function): no cycle among orchestrator's modules; trainers/ is plain Lightning; runtime/ never reaches
up into sweeps/, jobs/ or commands/; only the CLI imports a verb, and no verb imports another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, top level or not (`from a.b import c` counts a.b and, if it is a module, a.b.c)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def graph(package: str) -> dict[str, set[str]]:
    """module -> the modules of `package` it imports."""
    modules = {module_name(p): p for p in (REPO / package).rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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


def test_no_import_cycles_in_orchestrator():
    assert cycles(graph("orchestrator")) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("trainers", ("orchestrator", "mlflow", "ray", "hydra")),
        ("orchestrator/runtime", ("orchestrator.sweeps", "orchestrator.jobs", "orchestrator.commands")),
        # data is a library the run uses: it knows neither the run, its config nor its tracking
        (
            "orchestrator/data",
            (
                "orchestrator.sweeps",
                "orchestrator.jobs",
                "orchestrator.commands",
                "orchestrator.training",
                "orchestrator.config",
                "orchestrator.tracking",
                "mlflow",
            ),
        ),
    ],
)
def test_a_package_never_imports(package, forbidden):
    broken = [
        f"{module_name(path)} imports {name}"
        for path in sorted((REPO / package).rglob("*.py"))
        for name in sorted(imports_of(path))
        if name.split(".")[0] in forbidden or name.startswith(forbidden)
    ]
    assert broken == []


def test_only_the_cli_imports_a_verb():
    broken = [
        f"{module_name(path)} imports {name}"
        for path in sorted([*(REPO / "orchestrator").rglob("*.py"), *(REPO / "hydra_plugins").rglob("*.py")])
        for name in sorted(imports_of(path))
        if name.startswith("orchestrator.commands") and module_name(path) != "orchestrator.cli"
    ]
    assert broken == []
