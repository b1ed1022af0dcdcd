"""Imports run one way: every feature may use the shared kernel (referral/kernel/), the kernel uses no feature.

Read from the source with `ast`, not by importing: a lazy import inside a function is a dependency as well.
Imports under `if TYPE_CHECKING:` are not (they only name types for the type checker).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "referral"
# What the kernel may build on besides itself: infrastructure that knows no feature's rules.
KERNEL_MAY_IMPORT = {"kernel", "extensions", "timeutil", "printable"}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _runtime_imports_of(child))
            continue
        yield from _runtime_imports_of(node)


def _runtime_imports_of(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    elif not (isinstance(node, ast.If) and _is_type_checking(node)):
        yield from _runtime_imports(node)


def _part(module: list[str]) -> str:
    """The top-level package or module of `referral` that a module path lies in."""
    return module[0] if module else "__init__"


def _targets(path: Path, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The parts of `referral` (first name below referral/) that one import statement uses."""
    module = list(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module[:-1]  # an __init__.py's package is its folder, like any module's
    if isinstance(node, ast.Import):
        return {a.name.split(".")[1] for a in node.names if a.name.startswith("referral.")}
    if node.level == 0:
        if not (node.module or "").startswith("referral"):
            return set()
        absolute = node.module.split(".")[1:]
    else:
        absolute = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
    if absolute:
        return {absolute[0]}
    return {alias.name for alias in node.names}  # `from . import policy` at the top


def import_graph() -> dict[str, dict[str, set[str]]]:
    """part -> {imported part: {"file:line", …}} for every part of referral/."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _part(list(path.relative_to(PACKAGE).with_suffix("").parts))
        edges = graph.setdefault(source, {})
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _targets(path, node) - {source}:
                edges.setdefault(target, set()).add(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return graph


def strongly_connected(graph: dict[str, dict[str, set[str]]]) -> list[set[str]]:
    """The import cycles: groups of parts that reach each other (Tarjan), only groups of two or more."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_graph_sees_imports_of_every_kind():
    graph = import_graph()
    assert "kernel" in graph["cases"]  # from ..kernel.settings import … (relative, two dots)
    assert "retention" in graph["cli"]  # from . import retention (inside a function)
    assert "consultations" not in graph["cases"]  # only under TYPE_CHECKING in cases/models.py


def test_the_kernel_imports_no_feature():
    used = import_graph()["kernel"]
    features = {part: places for part, places in used.items() if part not in KERNEL_MAY_IMPORT}
    assert not features, f"referral/kernel/ must not import features: {features}"


def test_the_kernel_lies_in_no_import_cycle():
    assert not [group for group in strongly_connected(import_graph()) if "kernel" in group]


def test_features_take_shared_pieces_from_the_kernel_not_from_cases():
    """The two cycles of issue 12: accounts, organisation, administration and directory took forms and
    settings from cases/, which imports accounts and organisation; cases/ imported consultations (for
    retention), which takes referrals from cases/. Referrals build on accounts and organisations, and
    consultations on referrals, never the other way round."""
    graph = import_graph()
    for part in ("accounts", "organisation", "administration", "directory", "kernel"):
        assert "cases" not in graph[part], graph[part].get("cases")
    assert "consultations" not in graph["cases"], graph["cases"]["consultations"]
    assert "accounts" not in graph["extensions"], graph["extensions"]["accounts"]
