"""Where the course reads data and writes figures and results, from any working directory.

The repository root is found from this file (``course_lib`` is installed in
editable mode), so a notebook run from ``notebooks/``, the repo root or any other
folder reads the same data root and writes into the same ``figures/``.
"""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "COURSE_DATA_ROOT"
FIGURES_ENV = "COURSE_FIGURES_DIR"
RESULTS_ENV = "COURSE_RESULTS_DIR"


def repo_root() -> Path | None:
    """The course repository this package lives in, or None for a non-editable install."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "course_lib").is_dir():
        return here
    return None


def _base() -> Path:
    return repo_root() or Path.cwd()


def data_root() -> Path:
    """``$COURSE_DATA_ROOT`` if set, else ``data/`` at the repo root."""
    env = os.environ.get(DATA_ENV, "").strip()
    return Path(env).expanduser() if env else _base() / "data"


def figures_dir() -> Path:
    """``$COURSE_FIGURES_DIR`` if set, else ``figures/`` at the repo root (created on demand)."""
    env = os.environ.get(FIGURES_ENV, "").strip()
    path = Path(env).expanduser() if env else _base() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """``$COURSE_RESULTS_DIR`` if set, else ``results/`` at the repo root: saved runs for load_or_train."""
    env = os.environ.get(RESULTS_ENV, "").strip()
    path = Path(env).expanduser() if env else _base() / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def display_path(path: os.PathLike | str) -> str:
    """A path relative to the repo (or cwd) when possible, so outputs carry no machine paths."""
    p = Path(path).resolve()
    for base in (repo_root(), Path.cwd()):
        if base is not None:
            try:
                return str(p.relative_to(base.resolve()))
            except ValueError:
                pass
    return str(p)
