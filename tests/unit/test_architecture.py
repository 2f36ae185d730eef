"""The package's architecture: folders are layers, imports go only down, and nothing cycles.

The import graph is built from the sources with ``ast`` (nothing is imported) and counts every
import: at module level, inside functions (lazy) and under ``TYPE_CHECKING``.
"""

import ast
import re
from pathlib import Path

import act_lens

ROOT = Path(act_lens.__file__).parent
PKG = "act_lens"

# The design, in one table: each layer and the layers its modules may import besides their own.
# "base" is act_lens.errors and act_lens.io (the exception family, atomic writes).
LAYERS: dict[str, frozenset[str]] = {
    "base": frozenset(),
    "core": frozenset({"base"}),
    "models": frozenset({"base"}),
    "hooks": frozenset({"core", "base"}),
    "runtime": frozenset({"models", "base"}),
    "evaluation": frozenset({"runtime", "hooks", "core", "base"}),  # runtime: scoring on workers
    "analysis": frozenset({"evaluation", "runtime", "hooks", "core", "base"}),
    "integrations": frozenset({"evaluation", "hooks", "models", "core", "base"}),
    "app": frozenset({"analysis", "evaluation", "runtime", "hooks", "models", "core", "base"}),
}
BASE = {"act_lens.errors", "act_lens.io"}
# Deprecated aliases of old paths (see docs/api.md): each imports only what it aliases, and no
# module of the package may import one.
SHIMS = {"act_lens.cli": "act_lens.app.cli"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _exports() -> dict[str, str]:
    """The facade's ``_EXPORTS`` table (public name -> defining module), read from source."""
    for node in ast.walk(ast.parse(MODULES[PKG].read_text())):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "_EXPORTS":
            return ast.literal_eval(node.value)  # type: ignore[arg-type]
    raise AssertionError("act_lens/__init__.py has no _EXPORTS table")


def _owner(name: str) -> str | None:
    """The module of the package that ``name`` (a dotted import target) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, node: ast.AST, exports: dict[str, str]) -> list[str]:
    is_pkg = MODULES[module].name == "__init__.py"
    if isinstance(node, ast.Import):
        return [t for a in node.names if (t := _owner(a.name)) and a.name.startswith(PKG)]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        parts = parts[: len(parts) - node.level + (1 if is_pkg else 0)]
        base = ".".join([*parts, base] if base else parts)
    if base != PKG and not base.startswith(PKG + "."):
        return []
    out = []
    for alias in node.names:
        full = f"{base}.{alias.name}"
        if full in MODULES:  # ``from act_lens.app import pipeline``: a submodule
            out.append(full)
        elif base == PKG and alias.name in exports:  # a public name: where it is defined
            out.append(exports[alias.name])
        elif base == PKG and alias.name == "__version__":
            continue  # a constant of the facade, defined before anything is imported
        else:
            owner = _owner(base)
            if owner:
                out.append(owner)
    return out


def import_graph() -> dict[str, set[str]]:
    """``module -> package modules it imports`` (the facade's own re-exports left out)."""
    exports = _exports()
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges: set[str] = set()
        if module != PKG:
            for node in ast.walk(ast.parse(path.read_text())):
                edges.update(t for t in _targets(module, node, exports) if t != module)
        graph[module] = edges
    return graph


def layer_of(module: str) -> str:
    if module in BASE:
        return "base"
    if module in SHIMS:
        return "shim"
    if module == PKG:
        return "facade"
    return module.split(".")[1]


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that goes against the layering table, as ``"a -> b (layer -> layer)"``."""
    bad = []
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            have, want = layer_of(src), layer_of(dst)
            if have == "shim":
                ok = dst == SHIMS[src]
            elif want in ("shim", "facade"):
                ok = False
            else:
                ok = have == want or want in LAYERS[have]
            if not ok:
                bad.append(f"{src} -> {dst} ({have} -> {want})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_belongs_to_a_layer():
    layers = {layer_of(m) for m in MODULES}
    assert layers <= {*LAYERS, "shim", "facade"}, sorted(layers - set(LAYERS))
    flat = sorted(m for m, p in MODULES.items() if p.parent == ROOT and p.name != "__init__.py")
    assert set(flat) == BASE | set(SHIMS), f"top-level modules outside the folders: {flat}"


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_imports_only_go_down_the_layers():
    assert violations(import_graph()) == []


def test_the_graph_sees_lazy_and_type_checking_imports():
    graph = import_graph()
    assert "act_lens.app.pipeline" in graph["act_lens.app.cli"]  # inside main()
    tasks_base = graph["act_lens.evaluation.tasks.base"]
    assert "act_lens.evaluation.tasks.hub" in tasks_base  # inside Task.load
    assert "act_lens.evaluation.tasks.splits" in tasks_base  # under TYPE_CHECKING


def test_the_checks_fail_on_a_cycle_and_on_an_upward_import():
    planted = {
        "act_lens.hooks.act": {"act_lens.analysis.search"},  # hooks importing analysis
        "act_lens.analysis.search": {"act_lens.hooks.act"},
        "act_lens.core.sinks": {"act_lens.models.loading"},  # core importing a model loader
        "act_lens.app.cli": {"act_lens.cli"},  # the shim, from inside the package
    }
    assert cycles(planted) == [["act_lens.analysis.search", "act_lens.hooks.act"]]
    assert violations(planted) == [
        "act_lens.app.cli -> act_lens.cli (app -> shim)",
        "act_lens.core.sinks -> act_lens.models.loading (core -> models)",
        "act_lens.hooks.act -> act_lens.analysis.search (hooks -> analysis)",
    ]


def test_each_folder_says_what_lives_there_and_what_it_may_import():
    for layer, allowed in LAYERS.items():
        if layer == "base":
            continue
        init = MODULES[f"{PKG}.{layer}"]
        tree = ast.parse(init.read_text())
        doc = ast.get_docstring(tree)
        assert doc and "May import:" in doc, f"{init}: docstring without 'May import:'"
        named = re.findall(r"``act_lens\.(\w+)``", doc.split("May import:")[1])
        said = {"base" if f"{PKG}.{n}" in BASE else n for n in named}
        assert said == set(allowed), f"{init} says {sorted(said)}, the table {sorted(allowed)}"
        # Only a docstring: importing a folder costs nothing (the CLI checks input without torch).
        assert all(isinstance(n, ast.Expr) for n in tree.body), f"{init} does more than document"
