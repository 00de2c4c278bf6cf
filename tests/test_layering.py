"""The library's shape, read from its source with ``ast`` (nothing is imported or run).

Layers, bottom to top: the core (``course_lib/*.py``), the lessons (``course_lib/lessons/``, one per notebook), the
exercise checks (``course_lib/exercises/``) and the command line (``course_lib/__main__.py``). A layer imports
only the layers below it, so the core never imports a lesson. And every module stays small enough to read:
at most 500 lines, no function over 80 lines or with more than 10 parameters.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "course_lib"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_PARAMETERS = 500, 80, 10


def dotted(path: Path) -> str:
    """``course_lib/lessons/speed/bench.py`` -> ``course_lib.lessons.speed.bench`` (a package: its __init__'s name)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("lessons", "exercises", "__main__"):
        return parts[1]
    return "core"


ALLOWED = {  # what each layer may import from course_lib
    "core": {"core"},
    "lessons": {"core", "lessons"},
    "exercises": {"core", "lessons", "exercises"},
    "__main__": {"core", "lessons", "exercises"},
}


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """Every course_lib module that ``path`` (or ``source``, as if it were that file) imports, anywhere in the
    file (lazy imports in functions too)."""
    package = dotted(path).split(".") if path.name == "__init__.py" else dotted(path).split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[:len(package) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from .data import Data" imports a name from a module; "from . import profiles" and
            # "from .lessons import speed" import a module from a package
            found += [(node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULE_NAMES else base)
                      for alias in node.names]
    return [(line, name) for line, name in found if name == "course_lib" or name.startswith("course_lib.")]


MODULE_NAMES = {dotted(p) for p in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph`` (module -> the modules it imports) as ``[a, b, ..., a]``, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported, path + [module])
            if cycle:
                return cycle
        done.add(module)
        return None

    return next(filter(None, (visit(module, []) for module in sorted(graph))), None)


def test_the_layer_rule_is_read_correctly():
    """The parser resolves relative imports: a check that the layering test can fail."""
    lesson = PACKAGE / "lessons" / "cnn_vs_resnet" / "protocol.py"
    names = {name for _, name in imported_modules(lesson)}
    assert "course_lib.data" in names and "course_lib.profiles" in names
    assert layer("course_lib.lessons.speed.bench") == "lessons" and layer("course_lib.data") == "core"
    assert layer(dotted(PACKAGE / "__main__.py")) == "__main__"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_layer_imports_only_the_layers_below_it(path):
    mine = layer(dotted(path))
    wrong = [f"line {line}: imports {name} ({layer(name)})" for line, name in imported_modules(path)
             if layer(name) not in ALLOWED[mine]]
    assert not wrong, f"{path.relative_to(PACKAGE)} is {mine} and must not import: {wrong}"


def test_the_core_never_imports_a_lesson():
    core = [p for p in MODULES if layer(dotted(p)) == "core"]
    assert {"data.py", "models.py", "training.py", "results.py", "plots.py"} <= {p.name for p in core}
    offenders = [f"{p.name}:{line} {name}" for p in core for line, name in imported_modules(p)
                 if name.startswith("course_lib.lessons")]
    assert not offenders


def test_no_import_cycle():
    """Every import counts, a lazy one inside a function too: a cycle means two modules that need each other."""
    graph = {dotted(p): {name for _, name in imported_modules(p)} for p in MODULES}
    assert "course_lib.devices" in graph["course_lib.training"]  # the graph is read
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_can_fail():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({**graph, "c": {"d"}}) is None
    lazy = "def f():\n    from .training import fit\n"
    assert imported_modules(PACKAGE / "checkpoints.py", lazy) == [(2, "course_lib.training")]


def parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool) -> int:
    a = fn.args
    names = [*a.posonlyargs, *a.args, *a.kwonlyargs] + [x for x in (a.vararg, a.kwarg) if x]
    if in_class and names and names[0].arg in ("self", "cls"):
        names = names[1:]
    return len(names)


def functions(tree: ast.AST):
    """(function node, defined in a class?) for every function and method, nested ones included."""
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield child, isinstance(node, ast.ClassDef)


def test_modules_functions_and_signatures_are_small():
    """No module over 500 lines, no function over 80 lines, none with more than 10 parameters (self excluded)."""
    problems = []
    for path in MODULES:
        text = path.read_text()
        name = path.relative_to(PACKAGE)
        if len(text.splitlines()) > MAX_MODULE_LINES:
            problems.append(f"{name}: {len(text.splitlines())} lines")
        for fn, in_class in functions(ast.parse(text)):
            length = fn.end_lineno - fn.lineno + 1
            if length > MAX_FUNCTION_LINES:
                problems.append(f"{name}:{fn.lineno} {fn.name}: {length} lines")
            if parameters(fn, in_class) > MAX_PARAMETERS:
                problems.append(f"{name}:{fn.lineno} {fn.name}: {parameters(fn, in_class)} parameters")
    assert not problems, "too big to read at once:\n" + "\n".join(problems)


def test_the_size_rule_can_fail():
    src = "class A:\n    def f(self, " + ", ".join(f"p{i}" for i in range(11)) + "):\n" + "        x = 1\n" * 85
    (fn, in_class), = list(functions(ast.parse(src)))
    assert in_class and parameters(fn, in_class) == 11 and fn.end_lineno - fn.lineno + 1 == 86
