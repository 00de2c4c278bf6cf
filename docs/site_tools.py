"""Stage the course's sources for Sphinx, and check the built site.

    python docs/site_tools.py stage REPO STAGE   # copy what the site shows into STAGE (a new folder)
    python docs/site_tools.py check REPO OUT     # check a built site; exit 1 with one line per problem

Staging keeps the repository's layout, so every relative link in the README, the notebooks and
docs/ means the same on the site as on GitHub. Two things change in the staged copies only:
the README becomes the landing page (index.md, with the table of contents appended, and links to
README.md point at it), and an interactive widget's output, which needs a live kernel, becomes a
one-line note. The committed files are never modified.

The check is what makes the build fail on a broken site: every notebook has a page with at least
as many images as it has stored figures, every local href/src resolves (anchors included), and no
page or stylesheet loads anything from outside the site.
"""
from __future__ import annotations

import json
import posixpath
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("<p><em>Interactive widget: it needs a running Python kernel, so it does not work on this "
               "static page. Open the notebook in JupyterLab (the README's command 1) to use it.</em></p>")
# Files next to the pages that a page may link to (downloads on the site).
LINKABLE_FILES = ["requirements.txt", "environment.yml", "pyproject.toml", "LICENSE"]
LINKABLE_DIRS = {"figures": "*", "results": "*", "course_lib": "*.py"}
DOC_IMAGES = ("*.png", "*.jpg", "*.jpeg", "*.gif", "*.svg")
# MathJax 3 parts that tex-chtml.js loads on demand (the menu, accessibility, TeX extensions, fonts).
MATHJAX_PARTS = ["tex-chtml.js", "a11y", "adaptors", "input", "output/chtml", "output/chtml.js", "sre", "ui"]

# Attributes through which a page loads something (as opposed to <a href>, which is only a link).
LOADING_ATTRS = {"src", "srcset", "poster", "data"}
LINK_REL_THAT_LOADS = {"stylesheet", "icon", "preload", "prefetch", "modulepreload", "manifest",
                       "apple-touch-icon", "shortcut"}
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")
CSS_IMPORT = re.compile(r"@import\s+['\"]([^'\"]+)['\"]")
REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)


# ----------------------------------------------------------------------------------------- staging
def notebooks(repo: Path) -> list[Path]:
    """The course notebooks, in course order (notebooks/NN_*.ipynb)."""
    return sorted((repo / "notebooks").glob(NOTEBOOK_GLOB))


def docs_pages(repo: Path) -> list[Path]:
    """Markdown pages under docs/ (the glossary, the guide, answers, ...), sorted."""
    return sorted(p for p in (repo / "docs").rglob("*.md") if "_build" not in p.parts)


def _toctree(caption: str, entries: list[str]) -> str:
    if not entries:
        return ""
    body = "\n".join(entries)
    return f"\n\n```{{toctree}}\n:hidden:\n:caption: {caption}\n\n{body}\n```\n"


def _landing_page(repo: Path) -> str:
    """README.md plus the site's (hidden) table of contents: notebooks, reference pages, answers."""
    course = [f"notebooks/{p.stem}" for p in notebooks(repo)]
    pages = [p.relative_to(repo).with_suffix("").as_posix() for p in docs_pages(repo)]
    answers = [p for p in pages if p.startswith("docs/answers/")]
    first = [p for p in ("docs/glossary", "docs/instructor_guide") if p in pages]
    first += [p for p in pages if p.startswith("docs/guide/")]  # the guide's notebook pages follow the guide
    reference = first + [p for p in pages if p not in answers and p not in first]
    if (repo / "README.zh-CN.md").exists():
        reference.append("README.zh-CN")
    text = (repo / "README.md").read_text(encoding="utf-8")
    return (text + _toctree("The course", course) + _toctree("Reference", reference)
            + _toctree("Answers to the end-of-notebook questions", answers))


_LINK = re.compile(r"(\]\(\s*<?|(?:href|src)\s*=\s*[\"'])([^)\s\"'>#]*)")


def _point_readme_at_index(text: str, page: str) -> str:
    """Rewrite links to the repository's README.md (from staged page `page`) to the landing page."""
    def fix(match: re.Match) -> str:
        target = match.group(2)
        if not target.endswith("README.md") or REMOTE.match(target):
            return match.group(0)
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(page), target))
        if resolved != "README.md":
            return match.group(0)
        return match.group(1) + target[: -len("README.md")] + "index.md"
    return _LINK.sub(fix, text)


_HTML_ANCHOR = re.compile(r'^<a\s+(?:id|name)\s*=\s*"([^"]+)"\s*>\s*</a>[ \t]*$', re.M)


def _anchors_as_targets(text: str) -> str:
    """Turn a line `<a id="x"></a>` (GitHub's anchor) into MyST's target `(x)=`, so Sphinx knows the
    anchor and checks links such as glossary.md#x; the section below it gets the id x."""
    return _HTML_ANCHOR.sub(r"(\1)=", text)


def _stage_notebook(source: Path, target: Path, page: str) -> None:
    nb = json.loads(source.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = _point_readme_at_index(text, page)
        for output in cell.get("outputs", []):
            if WIDGET_MIME in output.get("data", {}):
                output["data"] = {"text/html": WIDGET_NOTE}
    nb.get("metadata", {}).pop("widgets", None)
    target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _mathjax_dir() -> Path:
    fix = "run `python -m pip install -r docs/requirements.txt`"
    try:
        import mathjax  # from the django-static-mathjax package: MathJax's own es5 build, no Django needed
    except ImportError:
        sys.exit(f"The local copy of MathJax is missing: {fix}.")
    folder = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (folder / "tex-chtml.js").is_file():
        sys.exit(f"The installed `mathjax` module has no MathJax 3 files ({folder}/tex-chtml.js): {fix}.")
    return folder


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(source, target)


def stage(repo: Path, stage_dir: Path) -> None:
    """Copy what the site shows from `repo` into the new folder `stage_dir`, ready for sphinx-build."""
    if stage_dir.exists() and any(stage_dir.iterdir()):
        sys.exit(f"{stage_dir} is not empty; staging needs a new folder.")
    stage_dir.mkdir(parents=True, exist_ok=True)
    if not notebooks(repo):
        sys.exit(f"No notebooks/NN_*.ipynb under {repo}: is that the course folder?")
    _copy(repo / "docs" / "conf.py", stage_dir / "conf.py")
    landing = _point_readme_at_index(_landing_page(repo), "index.md")
    (stage_dir / "index.md").write_text(_anchors_as_targets(landing), encoding="utf-8")
    pages = docs_pages(repo) + ([repo / "README.zh-CN.md"] if (repo / "README.zh-CN.md").exists() else [])
    for page in pages:
        rel = page.relative_to(repo).as_posix()
        target = stage_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        text = _point_readme_at_index(page.read_text(encoding="utf-8"), rel)
        target.write_text(_anchors_as_targets(text), encoding="utf-8")
    for pattern in DOC_IMAGES:
        for asset in (repo / "docs").rglob(pattern):
            _copy(asset, stage_dir / asset.relative_to(repo))
    for path in notebooks(repo):
        rel = path.relative_to(repo).as_posix()
        (stage_dir / "notebooks").mkdir(exist_ok=True)
        _stage_notebook(path, stage_dir / rel, rel)
    for name in LINKABLE_FILES:
        if (repo / name).is_file():
            _copy(repo / name, stage_dir / name)
    for folder, pattern in LINKABLE_DIRS.items():
        for path in (repo / folder).rglob(pattern) if (repo / folder).is_dir() else []:
            if path.is_file() and "__pycache__" not in path.parts:
                _copy(path, stage_dir / path.relative_to(repo))
    mathjax = _mathjax_dir()
    for part in MATHJAX_PARTS:
        _copy(mathjax / part, stage_dir / "_static" / "mathjax" / part)


# -------------------------------------------------------------------------------------- checking
class _Page(HTMLParser):
    """Collects every URL a page refers to, split into loads and links, and the ids it defines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str]] = []   # (tag, url) fetched when the page opens
        self.links: list[tuple[str, str]] = []   # (tag, url) followed only when clicked
        self.ids: set[str] = set()
        self.images = 0
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v for k, v in attrs if v is not None}
        for key in ("id", "name"):
            if key in values and (key == "id" or tag == "a"):
                self.ids.add(values[key])
        if tag == "img":
            self.images += 1
        if tag == "style":
            self._in_style = True
        for key, value in values.items():
            if key in LOADING_ATTRS:
                urls = [part.split()[0] for part in value.split(",") if part.strip()] if key == "srcset" else [value]
                self.loads += [(tag, url) for url in urls]
            elif key == "href":
                rel = set(values.get("rel", "").lower().split())
                (self.loads if tag == "link" and rel & LINK_REL_THAT_LOADS else self.links).append((tag, value))
            elif key == "style":
                self.loads += [(tag, url) for url in CSS_URL.findall(value)]

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    for css in page.styles:
        page.loads += [("style", url) for url in CSS_URL.findall(css) + CSS_IMPORT.findall(css)]
    return page


def _local_target(base: Path, url: str, out: Path) -> tuple[Path | None, str]:
    """The file a local URL points at (None for the page itself) and its fragment."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if not path:
        return None, unquote(parts.fragment)
    target = (out / path.lstrip("/")) if path.startswith("/") else (base.parent / path)
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def site_pages(out: Path) -> list[Path]:
    """The built pages (theme templates that Sphinx copies into _static are not pages)."""
    return sorted(p for p in out.rglob("*.html") if p.relative_to(out).parts[0] != "_static")


def check_site(repo: Path, out: Path) -> list[str]:
    """Every problem found in the built site `out` for the course in `repo`; an empty list means it is fine."""
    problems: list[str] = []
    if not (out / "index.html").is_file():
        return [f"{out}/index.html is missing: the build did not write the landing page"]
    expected = [out / "notebooks" / f"{p.stem}.html" for p in notebooks(repo)]
    expected += [out / p.relative_to(repo).with_suffix(".html") for p in docs_pages(repo)]
    problems += [f"missing page {p.relative_to(out)}" for p in expected if not p.is_file()]
    parsed: dict[Path, _Page] = {}

    def page_of(path: Path) -> _Page:
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path]

    for nb_path in notebooks(repo):
        html = out / "notebooks" / f"{nb_path.stem}.html"
        figures = sum("image/png" in o.get("data", {}) or "image/jpeg" in o.get("data", {})
                      for c in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
                      for o in c.get("outputs", []))
        if html.is_file() and page_of(html).images < figures:
            problems.append(f"{html.relative_to(out)}: {page_of(html).images} images for {figures} stored figures")
    for html in site_pages(out):
        page = page_of(html)
        name = html.relative_to(out).as_posix()
        for kind, refs in (("loads", page.loads), ("links to", page.links)):
            for tag, url in refs:
                problems += _check_url(html, name, kind, tag, url, out, page, page_of)
    for css in sorted(out.rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        for url in CSS_URL.findall(text) + CSS_IMPORT.findall(text):
            if url.startswith("data:"):
                continue
            name = css.relative_to(out).as_posix()
            if REMOTE.match(url):
                problems.append(f"{name} loads {url} from outside the site")
            elif not (css.parent / unquote(urlsplit(url).path)).exists():
                problems.append(f"{name} loads {url}, which is not in the site")
    return problems


def _check_url(html, name, kind, tag, url, out, page, page_of) -> list[str]:
    url = url.strip()
    if not url or url.startswith(("data:", "mailto:", "javascript:", "tel:")):
        return []
    if REMOTE.match(url) or re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):
        # A link to a paper is fine (a click, not a load); nothing may be loaded from outside.
        return [f"{name} loads {url} (<{tag}>) from outside the site"] if kind == "loads" else []
    target, fragment = _local_target(html, url, out)
    if target is not None and not target.exists():
        return [f"{name} {kind} {url} (<{tag}>), which is not in the site"]
    if fragment and kind == "links to" and (target is None or target.suffix == ".html"):
        ids = page.ids if target is None else page_of(target).ids
        if fragment not in ids:
            return [f"{name} links to {url}: no element with id '{fragment}' there"]
    return []


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("stage", "check"):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: python docs/site_tools.py stage REPO STAGE | check REPO OUT", file=sys.stderr)
        return 2
    repo, folder = Path(argv[1]).resolve(), Path(argv[2]).resolve()
    if argv[0] == "stage":
        stage(repo, folder)
        return 0
    problems = check_site(repo, folder)
    for line in problems:
        print(f"site check: {line}", file=sys.stderr)
    pages = len(site_pages(folder))
    print(f"site check: {pages} pages, {len(notebooks(repo))} notebooks, "
          f"{'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
