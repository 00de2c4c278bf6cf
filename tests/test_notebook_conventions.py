"""The course conventions of ../shared/STYLE.md, checked on every committed notebook.

Each rule is one test, parametrised over the notebooks, so a failure names the notebook and the rule.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Words that describe the machines the course was built on. They belong in the README's table and under docs/.
BUILD_MACHINE_WORDS = re.compile(
    r"EPYC|Xeon|load average|loadavg|taskset|autogroup|\bH100\b|\bH200\b|loaded machine|quiet machine|build machine",
    re.I)
# An absolute path of some machine: a student's copy would show someone else's folders.
MACHINE_PATH = re.compile(r"(?<![\w.])(/root/|/tmp/|/home/\w+|/work/|/usr/share/|/Users/\w+|[A-Z]:\\\\Users)")
TIME_LINE = re.compile(r"about \S+ min(utes)? on a CPU laptop", re.I)
SAVED_FIGURE = re.compile(r"saved (\S+)/(\S+\.png)")


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def _output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append(out["text"] if isinstance(out["text"], str) else "".join(out["text"]))
        for key, value in out.get("data", {}).items():
            if key.startswith("text/") or key == "application/json":
                parts.append(value if isinstance(value, str) else "".join(map(str, value)))
        if out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
    return "\n".join(parts)


def _markdown(nb: dict) -> str:
    return "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")


ids = [p.stem for p in NOTEBOOKS]


def test_the_course_has_its_seven_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_first_cell_has_title_goals_time_and_glossary(path):
    first = _nb(path)["cells"][0]
    text = _source(first)
    assert first["cell_type"] == "markdown", "the first cell must be markdown"
    assert re.match(r"#\s+\S", text), "the first cell starts with the notebook's title (# ...)"
    assert re.search(r"you (will be able to|can)|you will|learning goals|by the end", text, re.I), \
        "the first cell says what the student will be able to do afterwards"
    lines = [line for line in text.splitlines() if TIME_LINE.search(line)]
    assert len(lines) == 1, "exactly one line of time: 'about N min on a CPU laptop (`cpu` profile), M s on a GPU'"
    assert "glossary.md" in text, "the first cell links to the glossary (docs/glossary.md)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_build_machine_words_in_markdown(path):
    found = BUILD_MACHINE_WORDS.findall(_markdown(_nb(path)))
    assert not found, f"build-machine words in the markdown: {sorted(set(found))}; they belong under docs/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_absolute_machine_path_in_sources_or_outputs(path):
    for i, cell in enumerate(_nb(path)["cells"]):
        for where, text in (("source", _source(cell)), ("outputs", _output_text(cell))):
            m = MACHINE_PATH.search(text)
            assert not m, f"cell {i} {where} shows a machine path near {text[max(0, m.start() - 40):m.end() + 40]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_exercise_solutions_are_out_of_sight(path):
    for i, cell in enumerate(_nb(path)["cells"]):
        text = _source(cell)
        if cell["cell_type"] == "markdown" and re.search(r"solution", text, re.I) and "```" in text:
            # every code fence of a solution cell sits inside a closed <details> block
            outside = re.sub(r"<details>(?!\s*open).*?</details>", "", text, flags=re.S | re.I)
            assert "```" not in outside, f"cell {i} shows solution code outside a collapsed <details> block"
            assert "<details open" not in text.lower(), f"cell {i} has an open <details> block"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_figures_are_saved_under_figures_with_the_notebooks_number(path):
    number = path.stem[:2]
    for i, cell in enumerate(_nb(path)["cells"]):
        for folder, name in SAVED_FIGURE.findall(_output_text(cell)):
            assert folder == "figures", f"cell {i} saved {folder}/{name}: figures go under figures/"
            assert name.startswith(number + "_"), f"cell {i} saved {name}: name it {number}_... after the notebook"
            assert (ROOT / "figures" / name).is_file(), f"cell {i} saved figures/{name}, which is not committed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_nbval_markers_are_cell_tags_not_code_comments(path):
    """A student reads the code cells: ``# NBVAL_...`` lines are test machinery; nbval reads cell tags instead."""
    cells = _nb(path)["cells"]
    comments = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and "NBVAL_" in _source(c)]
    assert not comments, f"cells {comments} carry NBVAL_ comments: tag them nbval-ignore-output / nbval-skip instead"
    tags = {t for c in cells for t in c.get("metadata", {}).get("tags", [])}
    assert tags <= {"nbval-ignore-output", "nbval-skip", "raises-exception", "nbval-check-output", "remove-input",
                    "hide-input", "hide-output", "remove-output", "remove-cell"}, f"unknown cell tags: {tags}"


MARKDOWN_LIMIT = 15_000  # STYLE.md, "Third edition": at most this many characters of markdown per notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_markdown_is_at_most_the_third_editions_limit(path):
    size = len(_markdown(_nb(path)))
    assert size <= MARKDOWN_LIMIT, f"{size:,} characters of markdown; the limit is {MARKDOWN_LIMIT:,}: cut words, not evidence"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_remember_box_and_chinese_points_open_the_notebook(path):
    cells = _nb(path)["cells"]
    head = "\n".join(_source(c) for c in cells[:3] if c["cell_type"] == "markdown")
    assert re.search(r"\*\*Remember\*\*", head), "a 'Remember' box under the title (STYLE.md, Third edition)"
    assert "中文要点" in head, "a 中文要点 under the Remember box, the same points in Chinese"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_solution_is_imported_or_run(path):
    code = "\n".join(_source(c) for c in _nb(path)["cells"] if c["cell_type"] == "code")
    found = re.findall(r"\b(Solution\w*|solution_\w*)", code)
    assert not found, f"the notebook imports or runs a solution ({sorted(set(found))}): solutions live in docs/answers/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_setup_output_states_facts_not_the_machines_load(path):
    for i, cell in enumerate(_nb(path)["cells"]):
        text = _output_text(cell)
        assert not re.search(r"is busy|other program|load average", text), f"cell {i} describes the machine's load"
