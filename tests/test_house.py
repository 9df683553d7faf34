"""The package's house rules: imports go one way (no circle, lazy imports inside functions included) and the
engine's path is chosen in one place."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lintf_core"


def _module_name(path):
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__") or "lintf_core"


def _imports():
    """{module: set of lintf_core modules it imports}, every import statement of the file counted."""
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".") if package and package != "lintf_core" else []
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module:
                    found.add(target)
                else:  # from . import a, b
                    found.update(".".join(base + [alias.name]) for alias in node.names)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                module = node.module if isinstance(node, ast.ImportFrom) else None
                for alias in ([] if module else node.names):
                    if alias.name.startswith("lintf_core."):
                        found.add(alias.name[len("lintf_core."):])
                if module and module.startswith("lintf_core."):
                    found.add(module[len("lintf_core."):])
        graph[name] = {m for m in found if m != name}
    return graph


def test_the_imports_have_no_circle():
    graph = _imports()
    known = set(graph)
    graph = {m: {t for t in targets if t in known} for m, targets in graph.items()}
    done, stack = set(), []

    def visit(module):
        if module in stack:
            raise AssertionError("import circle: " + " -> ".join(stack[stack.index(module):] + [module]))
        if module in done:
            return
        stack.append(module)
        for target in sorted(graph[module]):
            visit(target)
        stack.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_the_lower_floors_import_no_engine():
    graph = _imports()
    for module in ("settings", "data", "sampler", "model", "optim", "errors"):
        assert not any(t == "engine" or t.startswith("engine.") for t in graph[module]), module
    assert "sampler" not in graph["data"] and "model" not in graph["data"]


def test_one_dispatcher_chooses_the_engines_path():
    """Outside the engine, no module asks which kernel supports an architecture: engine.kernel_for does."""
    for path in PACKAGE.rglob("*.py"):
        if "engine" in path.relative_to(PACKAGE).parts:
            continue
        text = path.read_text()
        for asked in ("supports(", "supports_full(", "kernel_for("):
            assert asked not in text, f"{path.name} chooses a path ({asked})"
