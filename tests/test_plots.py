"""course_lib.plots: one colour table with one meaning across the course, and one way figures are saved."""
from __future__ import annotations

import ast
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_lib import plots  # noqa: E402
from course_lib.plots import COLORS, color_for, finish_figure, save_figure  # noqa: E402

PACKAGE = Path(plots.__file__).resolve().parent
OKABE_ITO = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999"}
MODEL_KINDS = {"plain", "residual", "cnn", "blog"}


def test_the_four_meanings_have_their_colour_blind_safe_colours():
    assert (COLORS["plain"], COLORS["residual"], COLORS["cnn"], COLORS["blog"]) == (
        "#0072B2", "#D55E00", "#009E73", "#000000")  # blue, vermillion, bluish green, black
    assert set(COLORS.values()) <= OKABE_ITO  # Okabe and Ito's palette (and its grey)
    assert len(set(COLORS.values())) == len(COLORS)  # no two meanings share a colour


@pytest.mark.parametrize("label, kind", [
    ("plain-20", "plain"), ("BlogPlain", "plain"), ("blog-plain", "plain"), ("BlogPlain (He init)", "plain"),
    ("residual-56", "residual"), ("BlogResNet", "residual"), ("blog-resnet", "residual"), ("resnet18", "residual"),
    ("BlogCNN", "cnn"), ("blog-cnn", "cnn"), ("BlogCNN (PyTorch init)", "cnn"), ("blog", "blog"),
    ("preact-20", "preact"), ("something else", "other"),
])
def test_color_for_gives_every_name_of_a_model_its_family_colour(label, kind):
    assert color_for(label) == COLORS[kind]


def test_save_figure_writes_a_png_without_machine_metadata(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], color=COLORS["plain"])
    path = save_figure(fig, "99_test.png", folder=tmp_path, verbose=False)
    assert path == tmp_path / "99_test.png"
    data = path.read_bytes()
    assert data[:4] == b"\x89PNG" and b"Matplotlib" not in data  # no software/version stamp
    plt.close(fig)


def test_finish_figure_titles_and_saves_under_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    fig, _ = plt.subplots()
    assert finish_figure(fig, "a title", "99_finished") is fig
    assert fig._suptitle.get_text() == "a title" and (tmp_path / "99_finished.png").is_file()
    assert capsys.readouterr().out.strip() == f"saved {tmp_path.name}/99_finished.png"  # no absolute path
    finish_figure(fig)  # no name: nothing saved
    assert len(list(tmp_path.iterdir())) == 1
    plt.close(fig)


def test_training_curves_use_the_course_colours(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    records = [{"epoch": e, "train_loss": 1.0 / e, "test_acc": 0.5 + 0.1 * e} for e in (1, 2, 3)]
    fig = plots.training_curves({"plain-20": records, "residual-20": records, "plain-56": records}, name=None)
    for ax in fig.axes:
        lines = ax.get_lines()
        assert [matplotlib.colors.to_hex(line.get_color()).upper() for line in lines] == [
            COLORS["plain"], COLORS["residual"], COLORS["plain"]]
        assert [line.get_linestyle() for line in lines] == ["-", "-", "--"]  # the second plain net: dashed
    plt.close(fig)


CHROMATIC = {"red", "blue", "green", "orange", "purple", "brown", "pink", "olive", "cyan", "magenta", "yellow",
             "darkred", "darkblue", "darkgreen", "navy", "crimson", "r", "b", "g", "m", "c", "y"}
COLOUR_KEYWORDS = {"color", "colors", "c", "fc", "ec", "facecolor", "edgecolor", "bar_color"}


def _colour_strings(node: ast.AST):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, (ast.List, ast.Tuple)):
        for element in node.elts:
            yield from _colour_strings(element)


def test_no_figure_picks_its_own_colours_for_the_models():
    """Outside plots.py: no colour table keyed by plain/residual/cnn/blog, and no matplotlib palette colour
    ("tab:red", "blue", ...) passed to a plot, so no figure can give a model another colour."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "plots.py":
            continue
        where = path.relative_to(PACKAGE)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
                values = [v for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
                if len(keys & MODEL_KINDS) >= 2 and values and all(v.value.startswith(("#", "tab:")) for v in values):
                    found.append(f"{where}:{node.lineno} a colour table")
            elif isinstance(node, ast.keyword) and node.arg in COLOUR_KEYWORDS:
                for text in _colour_strings(node.value):
                    if text.startswith("tab:") or text.lower() in CHROMATIC:
                        found.append(f"{where}:{node.value.lineno} {node.arg}={text!r}")
    assert not found, f"use course_lib.plots.COLORS / color_for: {found}"


def test_every_figure_is_saved_through_plots():
    """``savefig`` appears only in plots.save_figure, so every PNG gets the same size, dpi and metadata."""
    calls = [f"{p.relative_to(PACKAGE)}:{n.lineno}" for p in sorted(PACKAGE.rglob("*.py")) if p.name != "plots.py"
             for n in ast.walk(ast.parse(p.read_text()))
             if isinstance(n, ast.Attribute) and n.attr == "savefig"]
    assert not calls, f"save through course_lib.plots.save_figure / finish_figure: {calls}"


def test_a_figure_of_another_profile_goes_to_a_temporary_folder_and_says_where(monkeypatch, capsys):
    from course_lib import locations

    monkeypatch.delenv("COURSE_FIGURES_DIR", raising=False)
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    fig = plt.figure()
    path = save_figure(fig, "00_probe")
    plt.close(fig)
    assert locations.in_scratch(path) and not (locations.repo_root() / "figures" / "00_probe.png").exists()
    assert capsys.readouterr().out.strip() == f"saved 00_probe.png in {path.parent} (figures/ keeps the cpu profile's)"
