"""The layout rules of ``docs/architecture.md``, checked on the source with :mod:`ast`.

- no module over :data:`MAX_MODULE_LINES` lines and no function (or method) over
  :data:`MAX_FUNCTION_LINES` lines, counted from ``def`` to its last line, docstring included;
- no import cycles between the modules of ``tomochunk`` (module-level imports);
- the layering: the numeric kernels, the shared pieces below the stages and the runtime layer
  never import a stage, the pipeline or the CLI (not even lazily inside a function), and the
  kernels never import the cluster code.

Fast: it parses the source files and imports nothing of the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tomochunk"
ROOT = PACKAGE.parent

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

#: Stage, pipeline and CLI modules (dotted names; a package stands for all its modules).
STAGES = (
    "tomochunk.cli",
    "tomochunk.cli_support",
    "tomochunk.pipeline",
    "tomochunk.inference",
    "tomochunk.infer",
    "tomochunk.training",
    "tomochunk.report",
    "tomochunk.export",
    "tomochunk.io.ingest",
    "tomochunk.recon.volume",
    "tomochunk.filters.apply",
)
#: Packages below the stages: the numeric kernels, the shared pieces and the runtime layer.
BELOW_STAGES = (
    "tomochunk.preprocess",
    "tomochunk.nn",
    "tomochunk.metrics",
    "tomochunk.phantom",
    "tomochunk.chunks",
    "tomochunk.n2i",
    "tomochunk.runtime",
)
#: The numeric kernels, which also never import the cluster code.
KERNELS = ("tomochunk.preprocess", "tomochunk.nn", "tomochunk.metrics")
CLUSTER = ("tomochunk.runtime.cluster",)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path, tree: ast.Module, modules: dict[str, Path], *,
             top_level: bool) -> set[str]:
    """The ``tomochunk`` modules ``name`` imports (at module level only, or anywhere)."""
    if top_level:  # the module's statements, with its ``if`` and ``try`` blocks
        nodes = [n for top in tree.body
                 if not isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                 for n in ast.walk(top)]
    else:
        nodes = list(ast.walk(tree))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tomochunk"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.startswith("tomochunk"):  # ``from pkg import module`` names the module
                found.update(f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target
                             for a in node.names)
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_module_and_function_sizes():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = _rel(path)
        source = path.read_text(encoding="utf-8")
        n_lines = len(source.splitlines())
        if n_lines > MAX_MODULE_LINES:
            too_long.append(f"{rel}: module of {n_lines} lines (limit {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{rel}:{node.lineno}: function {node.name} of {length} "
                                    f"lines (limit {MAX_FUNCTION_LINES})")
    assert not too_long, "split these:\n" + "\n".join(too_long)


def test_no_import_cycles_between_modules():
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {m for m in _imports(name, path, tree, mods, top_level=True) if m in mods}
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    assert not cycles, f"import cycles: {cycles}"


def test_layers_below_the_stages_import_no_stage():
    wrong = []
    mods = _modules()
    for name, path in mods.items():
        if not _within(name, BELOW_STAGES):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        forbidden = STAGES + (CLUSTER if _within(name, KERNELS) else ())
        for target in sorted(_imports(name, path, tree, mods, top_level=False)):
            if _within(target, forbidden):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "layering broken:\n" + "\n".join(wrong)
