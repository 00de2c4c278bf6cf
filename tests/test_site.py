"""The course website's tooling, the glossary and the two READMEs.

The site itself is built and checked by `bash docs/build.sh` in .ci/run (Sphinx needs docs/requirements.txt);
here the checker that makes that build fail is shown to catch each kind of broken site, on small sites written
by the tests, and the staging step is checked on the real README and notebooks.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
REQUIRED_ANCHORS = """degradation vanishing-exploding-gradients batchnorm he-init residual-block identity-mapping
skip-connection projection-shortcut basic-block bottleneck-block pre-activation overfitting random-seed shuffle
loss-landscape lesion real-difference wilson-interval channels-last bf16 amp epoch sgd learning-rate cross-entropy
plain-net receptive-field downsampling zero-init throughput""".split()
REQUIRED_CHINESE = ["残差块", "跳跃连接", "捷径连接", "恒等映射", "投影捷径", "退化", "梯度消失", "梯度爆炸",
                    "批量归一化", "基本块", "瓶颈块", "He（Kaiming）初始化", "过拟合", "随机种子", "打乱",
                    "损失曲面", "删层实验", "预激活"]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


site_tools = _load("site_tools")


# ------------------------------------------------------------------------------------- the checker
def _notebook(path: Path, figures: int) -> None:
    figure = {"image/png": "iVBORw0KGgo=", "text/plain": "fig"}
    outputs = [{"output_type": "display_data", "metadata": {}, "data": figure} for _ in range(figures)]
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Title"},
                    {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "plot()", "outputs": outputs}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))


def _page(body: str, head: str = "") -> str:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


@pytest.fixture
def course(tmp_path):
    """A tiny course (two notebooks, a glossary) and a correct site built from it, written by hand."""
    repo, out = tmp_path / "repo", tmp_path / "site"
    _notebook(repo / "notebooks" / "00_setup.ipynb", figures=1)
    _notebook(repo / "notebooks" / "01_depth.ipynb", figures=0)
    (repo / "docs").mkdir()
    (repo / "docs" / "glossary.md").write_text("# Glossary\n")
    (out / "notebooks").mkdir(parents=True)
    (out / "docs").mkdir()
    (out / "_static").mkdir()
    (out / "_images").mkdir()
    (out / "_images" / "fig.png").write_bytes(b"\x89PNG")
    (out / "_static" / "font.woff2").write_bytes(b"font")
    (out / "_static" / "site.css").write_text("@font-face { src: url(font.woff2); } .x { background: url('data:image/png;base64,AA'); }")
    head = '<link rel="stylesheet" href="../_static/site.css">'
    (out / "index.html").write_text(_page('<a href="notebooks/00_setup.html">00</a> <a href="docs/glossary.html#epoch">epoch</a>'
                                          ' <a href="https://arxiv.org/abs/1512.03385">He et al.</a>',
                                          '<link rel="stylesheet" href="_static/site.css">'))
    (out / "notebooks" / "00_setup.html").write_text(_page('<img src="../_images/fig.png"> <a href="#top" id="top">top</a>', head))
    (out / "notebooks" / "01_depth.html").write_text(_page('<a href="../index.html">home</a>', head))
    (out / "docs" / "glossary.html").write_text(_page('<section id="epoch"><h2>epoch</h2></section>', head))
    return repo, out


def test_checker_passes_a_complete_offline_site(course):
    repo, out = course
    assert site_tools.check_site(repo, out) == []


def test_checker_catches_a_notebook_without_a_page(course):
    repo, out = course
    (out / "notebooks" / "01_depth.html").unlink()
    assert any("missing page notebooks/01_depth.html" in p for p in site_tools.check_site(repo, out))


def test_checker_catches_a_broken_internal_link_and_anchor(course):
    repo, out = course
    index = out / "index.html"
    index.write_text(index.read_text().replace("notebooks/00_setup.html", "notebooks/00_setpu.html"))
    (out / "docs" / "glossary.html").write_text(_page('<section id="epochs"></section>'))
    problems = site_tools.check_site(repo, out)
    assert any("index.html links to notebooks/00_setpu.html" in p for p in problems), problems
    assert any("no element with id 'epoch'" in p for p in problems), problems


def test_checker_catches_a_missing_image_and_a_page_without_its_figures(course):
    repo, out = course
    (out / "_images" / "fig.png").unlink()
    problems = site_tools.check_site(repo, out)
    assert any("loads ../_images/fig.png (<img>), which is not in the site" in p for p in problems), problems
    (out / "notebooks" / "00_setup.html").write_text(_page("no figure here"))
    assert any("0 images for 1 stored figures" in p for p in site_tools.check_site(repo, out))


@pytest.mark.parametrize("tag", [
    '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>',
    '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Roboto">',
    '<img src="http://example.org/figure.png">',
    '<style>@import "https://unpkg.com/x.css";</style>',
    '<div style="background: url(https://cdn.example/bg.png)"></div>',
])
def test_checker_refuses_anything_loaded_from_outside_the_site(course, tag):
    repo, out = course
    page = out / "notebooks" / "01_depth.html"
    page.write_text(page.read_text().replace("</body>", tag + "</body>"))
    assert any("from outside the site" in p for p in site_tools.check_site(repo, out))


def test_checker_follows_stylesheets_to_their_fonts(course):
    repo, out = course
    (out / "_static" / "font.woff2").unlink()
    assert any("site.css loads font.woff2" in p for p in site_tools.check_site(repo, out))
    (out / "_static" / "site.css").write_text("@import url(https://fonts.example/inter.css);")
    assert any("from outside the site" in p for p in site_tools.check_site(repo, out))


def test_check_command_exits_non_zero_on_a_broken_site(course):
    repo, out = course
    (out / "notebooks" / "00_setup.html").unlink()
    done = subprocess.run([sys.executable, str(DOCS / "site_tools.py"), "check", str(repo), str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "missing page notebooks/00_setup.html" in done.stderr


# ------------------------------------------------------------------------------------- staging
def test_landing_page_is_the_readme_with_every_notebook_in_course_order():
    page = site_tools._landing_page(REPO)
    assert page.startswith((REPO / "README.md").read_text(encoding="utf-8"))
    listed = re.findall(r"^notebooks/(\d\d_\w+)$", page, re.M)
    assert listed == [p.stem for p in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    for page_name in ("docs/glossary", "docs/instructor_guide", "README.zh-CN"):
        assert re.search(rf"^{re.escape(page_name)}$", page, re.M), page_name


def test_links_to_the_readme_point_at_the_landing_page():
    fix = site_tools._point_readme_at_index
    assert fix("[English](README.md) and [top](README.md#two-commands)", "README.zh-CN.md") == \
        "[English](index.md) and [top](index.md#two-commands)"
    assert fix('see [the README](../README.md), <a href="../README.md">x</a>', "docs/glossary.md") == \
        'see [the README](../index.md), <a href="../index.md">x</a>'
    # other files called README.md, and web pages, stay as they are
    assert fix("[x](README.md)", "docs/glossary.md") == "[x](README.md)"
    assert fix("[x](https://example.org/README.md)", "index.md") == "[x](https://example.org/README.md)"


def test_glossary_anchors_become_targets_sphinx_can_check():
    text = '<a id="he-init"></a>\n\n### He init\n\ntext <a id="inline"></a> stays'
    assert site_tools._anchors_as_targets(text) == '(he-init)=\n\n### He init\n\ntext <a id="inline"></a> stays'


def test_staged_notebook_replaces_widgets_and_leaves_the_committed_file_alone(tmp_path):
    source = tmp_path / "nb.ipynb"
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"widgets": {"state": {}}},
          "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["[home](../README.md)"]},
                    {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "explorer()",
                     "outputs": [{"output_type": "display_data", "metadata": {},
                                  "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                           "text/plain": "interactive(...)"}}]}]}
    source.write_text(json.dumps(nb))
    before = source.read_text()
    target = tmp_path / "staged.ipynb"
    site_tools._stage_notebook(source, target, "notebooks/nb.ipynb")
    staged = json.loads(target.read_text())
    assert source.read_text() == before
    assert staged["cells"][0]["source"] == "[home](../index.md)"
    assert staged["cells"][1]["outputs"][0]["data"] == {"text/html": site_tools.WIDGET_NOTE}
    assert "widgets" not in staged["metadata"]


def test_sphinx_configuration_loads_nothing_from_outside():
    conf: dict = {}
    exec((DOCS / "conf.py").read_text(), conf)
    assert not re.match(r"https?:|//", conf["mathjax_path"]) and conf["mathjax_path"].endswith(".js")
    assert conf["nb_ipywidgets_js"] == {}, "MyST-NB's default widget loader comes from a CDN"
    assert conf["nb_execution_mode"] == "off", "the site shows the committed outputs"


@pytest.mark.parametrize("args, message", [
    ([], "usage: bash docs/build.sh OUTDIR"),
    (["FILE"], "exists and is not a folder"),
    (["FULL"], "is not empty and is not a previous site build"),
])
def test_build_script_refuses_a_bad_output_folder_before_any_work(tmp_path, args, message):
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "FULL").mkdir()
    (tmp_path / "FULL" / "notes.txt").write_text("mine")
    done = subprocess.run(["bash", str(DOCS / "build.sh"), *args], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and message in done.stderr
    assert (tmp_path / "FULL" / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------- the glossary
def _glossary_terms() -> dict[str, str]:
    """anchor -> the text of its entry (up to the next anchor or section)."""
    text = (DOCS / "glossary.md").read_text(encoding="utf-8")
    parts = re.split(r'^<a id="([a-z0-9-]+)"></a>\s*$', text, flags=re.M)
    return {parts[i]: re.split(r"^## ", parts[i + 1], flags=re.M)[0] for i in range(1, len(parts), 2)}


def test_glossary_has_thirty_terms_each_in_both_languages():
    terms = _glossary_terms()
    assert len(terms) >= 30
    for anchor, entry in terms.items():
        heading = re.search(r"^### (.+)$", entry, re.M)
        assert heading and re.search(r"[\u4e00-\u9fff]", heading.group(1)) and re.search(r"[A-Za-z]", heading.group(1)), anchor
        chinese = re.search(r"^\*\*中文：\*\* (.+)$", entry, re.M)
        english = re.search(r"^\*\*English:\*\* (.+)$", entry, re.M)
        assert chinese and re.search(r"[\u4e00-\u9fff]", chinese.group(1)), f"{anchor}: no Chinese definition"
        assert english and len(english.group(1).split()) >= 5, f"{anchor}: no English definition"


def test_glossary_has_the_course_anchors_and_terms():
    terms = _glossary_terms()
    assert not set(REQUIRED_ANCHORS) - set(terms)
    text = (DOCS / "glossary.md").read_text(encoding="utf-8")
    assert [t for t in REQUIRED_CHINESE if t not in text] == []
    assert len(re.findall(r'<a id="', text)) == len(terms), "anchors are unique"


def test_glossary_degradation_is_the_course_definition():
    entry = _glossary_terms()["degradation"]
    assert "same training schedule" in entry and "training error" in entry and "not overfitting" in entry
    assert "相同的训练安排" in entry and "训练误差" in entry and "不是过拟合" in entry


def test_every_link_to_a_glossary_anchor_resolves():
    terms = _glossary_terms()
    sources = list((REPO / "notebooks").glob("*.ipynb")) + list(REPO.glob("README*.md")) + list(DOCS.rglob("*.md"))
    links = [(path.name, anchor) for path in sources
             for anchor in re.findall(r"glossary\.md#([A-Za-z0-9_-]+)", path.read_text(encoding="utf-8"))]
    assert [link for link in links if link[1] not in terms and link[1] != "anchor"] == []


# ------------------------------------------------------------------------------------- the READMEs
def _commands(path: Path) -> list[str]:
    return [c.strip() for c in re.findall(r"```bash\n(.+?)\n```", path.read_text(encoding="utf-8"), re.S)]


def test_readme_links_the_chinese_readme_on_its_first_line():
    assert "(README.zh-CN.md)" in (REPO / "README.md").read_text(encoding="utf-8").splitlines()[0]
    assert "(README.md)" in (REPO / "README.zh-CN.md").read_text(encoding="utf-8").splitlines()[0]


def test_readme_gives_a_cpu_only_form_of_command_1_with_its_size():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    cpu = [c for c in _commands(REPO / "README.md") if PYTORCH_CPU_INDEX in c]
    assert len(cpu) == 1
    torch_first = cpu[0].index(f"pip install torch torchvision --index-url {PYTORCH_CPU_INDEX}")
    assert torch_first < cpu[0].index("pip install -r requirements.txt") < cpu[0].index("jupyter lab")
    assert re.search(r"\d+(\.\d+)? GB", readme) and "196.2 MB" in readme and "not measure" in readme


def test_chinese_readme_has_the_same_commands_as_the_readme():
    english = _commands(REPO / "README.md")
    chinese = _commands(REPO / "README.zh-CN.md")
    install = [c for c in english if c.endswith("jupyter lab notebooks/00_setup.ipynb")]
    tests = [c for c in english if "pytest" in c]
    assert len(install) == 2 and tests
    assert all(c in chinese for c in install + tests[:1]), "README.zh-CN.md's commands differ from README.md's"


def test_chinese_readme_covers_what_a_student_needs():
    text = (REPO / "README.zh-CN.md").read_text(encoding="utf-8")
    for needed in ("0.2", "0.04", "97%", "99.5%", "4,000", "Fashion-MNIST", "种子间波动", "smoke", "cpu", "full",
                   "COURSE_OFFLINE=1", "docs/glossary.md", "pip config set global.index-url", "PIP_INDEX_URL"):
        assert needed in text, needed
    for number in range(7):
        assert re.search(rf"^\| `0{number}` ", text, re.M), f"notebook 0{number} is not in the list"


@pytest.mark.parametrize("name", ["README.md", "README.zh-CN.md"])
def test_readmes_name_no_package_host_but_pytorchs_index(name):
    text = (REPO / name).read_text(encoding="utf-8")
    package_urls = {url for line in text.splitlines() if re.search(r"pip|index", line, re.I)
                    for url in re.findall(r"https?://[^\s)`>'\"]+", line)}
    assert package_urls <= {PYTORCH_CPU_INDEX}, package_urls
    if name == "README.zh-CN.md":
        d2l_zh = {f"https://zh.d2l.ai/chapter_convolutional-modern/{page}.html" for page in ("batch-norm", "resnet")}
        assert set(re.findall(r"https?://[^\s)`>]+", text)) == {PYTORCH_CPU_INDEX} | d2l_zh
        assert not re.search(r"\b(mirrors?|pypi)\.[a-z0-9.-]+\.(cn|com|org|net|edu)\b", text, re.I)
