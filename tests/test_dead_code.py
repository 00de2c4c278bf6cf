"""No dead code: every public function, class and method of course_lib is used outside the tests.

"Used" means reachable by name from a notebook, the docs, the READMEs, the CLI or what course_lib runs on
import, through the code (not the docstrings) of other used definitions. A name only the tests mention is code
kept alive for its tests.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "course_lib"
# Called by Python or torch, not by name.
PROTOCOL_NAMES = {"forward", "extra_repr"}


def without_docstrings(tree: ast.AST) -> ast.AST:
    """``tree`` less every docstring: a name mentioned in prose is not a use."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return tree


def definitions(path: Path) -> list[tuple[str, int, str]]:
    """(name, line, code) of every top-level function and class of ``path`` and of their methods; the code is
    the definition's own body without docstrings (a class's code holds its methods too)."""
    found = []
    for node in without_docstrings(ast.parse(path.read_text())).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.append((node.name, node.lineno, ast.unparse(node.body)))
        if isinstance(node, ast.ClassDef):
            found += [(item.name, item.lineno, ast.unparse(item.body)) for item in node.body
                      if isinstance(item, ast.FunctionDef)]
    return found


def module_level(path: Path) -> str:
    """What a module runs on import, less its definitions and (in a package's ``__init__``) its re-exports."""
    tree = without_docstrings(ast.parse(path.read_text()))
    drop = (ast.FunctionDef, ast.ClassDef) + ((ast.Import, ast.ImportFrom) if path.name == "__init__.py" else ())
    tree.body = [n for n in tree.body if not isinstance(n, drop)]
    return ast.unparse(tree)


def notebook_code(path: Path) -> str:
    return "\n".join("".join(c.get("source", "")) for c in json.loads(path.read_text())["cells"])


def roots() -> str:
    """Where use starts: the notebooks, the docs, the READMEs, the CLI and what course_lib runs on import."""
    texts = [notebook_code(p) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    texts += [p.read_text() for p in sorted((ROOT / "docs").rglob("*")) if p.suffix in (".md", ".py", ".sh")]
    texts += [(ROOT / name).read_text() for name in ("README.md", "README.zh-CN.md")]
    texts += [module_level(p) for p in sorted(PACKAGE.rglob("*.py"))]
    return "\n".join(texts)


def dead_definitions() -> list[str]:
    """``path:line name`` of each public definition not reachable, by name, from :func:`roots`.

    A definition is used when its name appears in the roots or in the body of a used definition (other than
    its own), so code that only dead code calls is dead too. Private names (``_x``) and the methods Python
    or torch call for us are taken as used.
    """
    defs = [(p, *d) for p in sorted(PACKAGE.rglob("*.py")) for d in definitions(p)]
    words = lambda text: set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    used_words = words(roots()) | PROTOCOL_NAMES
    live = [False] * len(defs)
    changed = True
    while changed:
        changed = False
        for i, (_, name, _, body) in enumerate(defs):
            if not live[i] and (name.startswith("_") or name in used_words):
                live[i] = changed = True
                used_words |= words(body)
    return [f"{p.relative_to(ROOT)}:{line} {name}" for (p, name, line, _), ok in zip(defs, live) if not ok]


def test_every_public_definition_is_used_outside_the_tests():
    dead = dead_definitions()
    assert not dead, ("public code that only tests (or nothing) use: delete it, or make it private if a module "
                      "needs it:\n" + "\n".join(dead))


def test_the_dead_code_finder_can_fail(tmp_path, monkeypatch):
    """A definition nobody names is found; one that another module names is not."""
    fake = tmp_path / "course_lib"
    fake.mkdir()
    (fake / "a.py").write_text("def used():\n    helper()\n\n\ndef helper():\n    pass\n\n\n"
                               "def orphan():\n    only_orphan_calls_me()\n\n\ndef only_orphan_calls_me():\n    pass\n")
    (fake / "b.py").write_text("from .a import used\nused()\n")
    for folder in ("notebooks", "docs"):
        (tmp_path / folder).mkdir()
    for name in ("README.md", "README.zh-CN.md"):
        (tmp_path / name).write_text("")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert dead_definitions() == ["course_lib/a.py:9 orphan", "course_lib/a.py:13 only_orphan_calls_me"]
