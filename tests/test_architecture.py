"""The package's structure, as docs/architecture.md describes it.

Read from the source with ``ast``: every import between the package's files,
at import time or inside a function, forms no cycle; no file imports a name
another file keeps private; files stay small enough to read.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nnabla_modules"
#: Files allowed past the size limit: tables, and the CLI's argument definitions.
LONG_FILES = {"cli.py"}
MAX_LINES = 450


def _files():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(path, node):
    """The package modules an import node refers to (``from . import x`` gives ``pkg.x``)."""
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("nnabla_modules")]
    if node.level:
        base = package.split(".")
        base = base[: len(base) - node.level + 1]
        base = ".".join(base + ([node.module] if node.module else []))
    elif node.module and node.module.startswith("nnabla_modules"):
        base = node.module
    else:
        return []
    names = [f"{base}.{a.name}" for a in node.names]
    known = {_name(p) for p in _files()}
    return [n for n in names if n in known] or [base]


def _imports(tree):
    """Every import statement that runs: at import time or in a function, not for typing."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # annotations only: never executed
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def _graph():
    graph = {}
    for path in _files():
        edges = graph.setdefault(_name(path), set())
        for node in _imports(ast.parse(path.read_text())):
            edges.update(n for n in _resolve(path, node) if n != _name(path))
    return graph


def _cycle(graph):
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt == "nnabla_modules" or nxt not in graph:
                continue  # the package's __init__ re-exports; it imports, is not imported
            if state.get(nxt) == "open":
                return stack + [node, nxt]
            if nxt not in state:
                found = visit(nxt, stack + [node])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    graph = _graph()
    assert "nnabla_modules.module" in graph and graph["nnabla_modules.module"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


#: What each folder of the package may import from the rest of it (docs/architecture.md).
LAYERS = {
    "nnabla_modules.core": set(),
    "nnabla_modules.files": set(),
    "nnabla_modules.checkpoint": {"nnabla_modules.core", "nnabla_modules.files"},
}


def test_each_folder_imports_only_the_layers_below_it():
    crossings = []
    for module, imported in _graph().items():
        for layer, allowed in LAYERS.items():
            if module == layer or module.startswith(layer + "."):
                crossings += [f"{module} -> {target}" for target in sorted(imported)
                              if not any(target == ok or target.startswith(ok + ".")
                                         for ok in allowed | {layer})]
    assert crossings == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_file_imports_another_files_private_name():
    offenders = []
    for path in _files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or "nnabla_modules" in
                                                     (node.module or "")):
                private = [a.name for a in node.names if a.name.startswith("_")
                           and not a.name.startswith("__")]
                # a private *file* of the package is fine: its public names are its API
                modules = {_name(p).rpartition(".")[2] for p in _files()}
                offenders += [f"{path.name}: {n}" for n in private if n not in modules]
    assert offenders == []


def test_no_file_writes_the_module_state_it_does_not_own():
    """Only the module system's own files change a ``ModuleState`` directly.

    The others read it, or change it through its methods and the module
    system's functions (``state_of``, ``credit_loaded``, ``name_root``...).
    """
    owners = {"module.py", "_state.py", "_naming.py", "_tree.py", "_kept.py", "_calls.py",
              "_enumeration.py", "_display.py", "_variables.py", "_hooks.py"}
    writers = []
    for path in _files():
        if path.name in owners:
            continue
        tree = ast.parse(path.read_text())
        states = _state_names(tree)
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for target in targets:
                if isinstance(target, ast.Name):
                    continue  # binding a name, not changing a state
                text = ast.unparse(target)
                if "_module_state" in text or text.split(".")[0].split("[")[0] in states:
                    writers.append(f"{path.name}:{node.lineno}: {text}")
            if isinstance(node, ast.Call) and "setattr" in ast.unparse(node.func) and any(
                isinstance(a, ast.Constant) and a.value == "_module_state" for a in node.args
            ):
                writers.append(f"{path.name}:{node.lineno}: setattr of _module_state")
    assert writers == []


def _state_names(tree):
    """Names bound to a module's state in a file (``state = state_of(module)``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            value = ast.unparse(node.value)
            if "_module_state" in value or value.startswith("state_of("):
                names.update(n.id for n in ast.walk(node.targets[0]) if isinstance(n, ast.Name))
    return names


def test_files_stay_small():
    long = {p.name: n for p in _files()
            if (n := len(p.read_text().splitlines())) > MAX_LINES and p.name not in LONG_FILES}
    assert long == {}
