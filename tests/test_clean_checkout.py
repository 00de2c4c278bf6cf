"""Running a notebook changes nothing tracked: outside the committed profile, figures and results go to a
temporary folder (course_lib.locations), which a student running notebook 00 in JupyterLab relies on."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import locations
from course_lib.profiles import ENV_VAR

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["00_setup.ipynb"]


def test_only_the_committed_profile_writes_into_the_repository(monkeypatch):
    for env in (locations.FIGURES_ENV, locations.RESULTS_ENV):
        monkeypatch.delenv(env, raising=False)
    assert locations.figures_dir("cpu") == REPO / "figures" and locations.results_dir("cpu") == REPO / "results"
    for profile in ("smoke", "full"):
        for folder in (locations.figures_dir(profile), locations.results_dir(profile)):
            assert locations.in_scratch(folder) and REPO not in folder.parents
    monkeypatch.setenv(ENV_VAR, "smoke")
    committed = sorted((REPO / "results").glob("*.json"))[0].name
    assert locations.result_path(committed) == REPO / "results" / committed  # committed results read in every profile
    assert locations.in_scratch(locations.result_path("05_lesion_smoke.json"))
    assert REPO / "results" / committed in locations.result_files("*.json")


def test_the_environment_variables_still_win(monkeypatch, tmp_path):
    monkeypatch.setenv(locations.FIGURES_ENV, str(tmp_path / "figs"))
    assert locations.figures_dir("cpu") == locations.figures_dir("smoke") == tmp_path / "figs"


def _checkout_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files, as they are in the working tree."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return sorted({f for f in listed if f and not f.startswith(".venv/") and (REPO / f).is_file()})


def _git(copy: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd=copy,
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_running_a_notebook_in_the_smoke_profile_leaves_git_status_clean(tmp_path):
    copy = tmp_path / "checkout"
    for name in _checkout_files():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, copy / name)
    _git(copy, "init", "-q")
    _git(copy, "add", "-A")
    _git(copy, "commit", "-q", "-m", "copy")
    env = {k: v for k, v in os.environ.items() if k not in (locations.FIGURES_ENV, locations.RESULTS_ENV)}
    env.update(COURSE_PROFILE="smoke", COURSE_OFFLINE="1", PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    find = "import importlib.util; print(importlib.util.find_spec('course_lib').origin)"  # without importing torch
    where = subprocess.run([sys.executable, "-c", find], env=env,
                           cwd=copy, capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).is_relative_to(copy), "the copy's course_lib must be the one imported"
    stamps = {name: (copy / name).stat().st_mtime_ns for name in _git(copy, "ls-files").splitlines()}
    for notebook in NOTEBOOKS:
        run = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                              "--output", str(tmp_path / f"executed_{notebook}"), f"notebooks/{notebook}"],
                             env=env, cwd=copy, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        assert _git(copy, "status", "--porcelain", "--ignored") == "", f"running {notebook} changed the checkout"
        rewritten = [name for name, stamp in stamps.items() if (copy / name).stat().st_mtime_ns != stamp]
        assert not rewritten, f"running {notebook} rewrote {rewritten}"
