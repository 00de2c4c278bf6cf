"""The repository itself: CI runs the README's test command, notebooks are committed executed and clean."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _readme_test_command() -> str:
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- test-command -->")[1].split("<!-- /test-command -->")[0]
    return re.search(r"```bash\n(.+?)\n```", block, re.S).group(1).strip()


def test_ci_runs_the_readme_test_command():
    command = _readme_test_command()
    install, _, test = command.partition("requirements.txt && ")
    assert "pip install -r" in install and "pytest" in test and "--nbval" in test
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in ci, "the test command in .ci/run differs from the README's"
    assert any("pip install -r requirements.txt" in line for line in ci)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_executed_in_order_without_errors(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), "run it top to bottom in a fresh kernel"
    errors = [o.get("ename") for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors
    assert "image/svg+xml" not in json.dumps(nb), "use PNG figures"
    assert nb["cells"][0]["cell_type"] == "markdown"
    first_code = "".join(code[0]["source"]) if code else ""
    assert "setup(" in first_code, "the first code cell is the course's setup call"


def test_every_figure_file_is_a_png_named_after_a_notebook():
    figures = list((REPO / "figures").glob("*"))
    assert figures
    prefixes = {p.name[:2] for p in NOTEBOOKS}
    for f in figures:
        assert f.suffix == ".png" and f.name[:2] in prefixes, f.name
