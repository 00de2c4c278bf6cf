"""Where the course reads data and writes figures and results, from any working directory.

The repository root is found from this file (``course_lib`` is installed in
editable mode), so a notebook run from ``notebooks/``, the repo root or any other
folder reads the same data root and writes into the same ``figures/``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

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
    if env:
        return ensure_folder(Path(env).expanduser(), f"figures folder (${FIGURES_ENV})")
    return ensure_folder(_base() / "figures", "figures folder")


def results_dir() -> Path:
    """``$COURSE_RESULTS_DIR`` if set, else ``results/`` at the repo root: saved runs for load_or_train."""
    env = os.environ.get(RESULTS_ENV, "").strip()
    if env:
        return ensure_folder(Path(env).expanduser(), f"results folder (${RESULTS_ENV})")
    return ensure_folder(_base() / "results", "results folder")


def ensure_folder(path: os.PathLike | str, what: str = "output folder") -> Path:
    """Create the folder ``path`` with its parents, and return it.

    Raises :class:`ConfigError` naming the path and the fix when ``path``, or a folder above it,
    exists but is not a folder, or when it cannot be created.
    """
    path = Path(path).expanduser()
    for p in (path, *path.parents):
        if p.is_dir():
            break
        if p.exists() or p.is_symlink():
            above = "" if p == path else f", so {display_path(path)} cannot be created under it"
            raise ConfigError(f"the {what} {display_path(p)} exists but is not a folder{above}. "
                              f"Fix: choose another path, or move that file away.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the {what} {display_path(path)} ({err.strerror or err}). "
                          f"Fix: choose a folder you can write to.") from None
    return path


def file_target(path: os.PathLike | str, what: str = "output file") -> Path:
    """``path`` as the place a file will be written: refuses a folder there and creates the folder above it.

    Raises :class:`ConfigError` naming the path and the fix.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"the {what} {display_path(path)} is a folder, not a file. "
                          f"Fix: give a file name, e.g. {display_path(path / 'result.json')}, or move the folder.")
    ensure_folder(path.parent, f"folder of the {what}")
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
