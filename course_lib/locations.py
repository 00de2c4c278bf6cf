"""Where the course reads data and writes figures and results, from any working directory.

The one rule for outputs: a run in the profile the committed figures and results were made in
(:data:`COMMITTED_PROFILE`) writes into the repository's ``figures/`` and ``results/``; a run in any other
profile writes into a temporary folder, so it changes nothing tracked. Committed results are read in every profile.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ConfigError
from .profiles import Profile, get_profile

DATA_ENV = "COURSE_DATA_ROOT"
FIGURES_ENV = "COURSE_FIGURES_DIR"
RESULTS_ENV = "COURSE_RESULTS_DIR"
COMMITTED_PROFILE = "cpu"  # the profile of the committed figures/, results/ and notebook outputs
_scratch: list[Path] = []  # this process's temporary output folder, made on first use


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


def scratch_root() -> Path:
    """The temporary folder where this process writes the outputs of a profile other than the committed one."""
    if not _scratch:
        _scratch.append(Path(tempfile.mkdtemp(prefix="course_lib-")))
    return _scratch[0]


def in_scratch(path: os.PathLike | str) -> bool:
    """Whether ``path`` lies in this process's :func:`scratch_root` (made by now or not)."""
    return bool(_scratch) and _scratch[0].resolve() in Path(path).resolve().parents


def _outputs(kind: str, env: str, profile: Profile | str | None) -> Path:
    """``$env`` if set, else ``kind/`` at the repo root in the committed profile, else ``kind/`` in :func:`scratch_root`."""
    value = os.environ.get(env, "").strip()
    if value:
        return ensure_folder(Path(value).expanduser(), f"{kind} folder (${env})")
    committed = get_profile(profile).name == COMMITTED_PROFILE
    return ensure_folder((_base() if committed else scratch_root()) / kind, f"{kind} folder")


def figures_dir(profile: Profile | str | None = None) -> Path:
    """Where figures are saved in ``profile`` (default ``$COURSE_PROFILE``'s): see the rule above."""
    return _outputs("figures", FIGURES_ENV, profile)


def results_dir(profile: Profile | str | None = None) -> Path:
    """Where results and checkpoints are saved in ``profile``: see the rule above."""
    return _outputs("results", RESULTS_ENV, profile)


def _result_folders() -> list[Path]:
    """Where results are read: :func:`results_dir`, then the committed ``results/`` unless ``$COURSE_RESULTS_DIR``."""
    committed = [] if os.environ.get(RESULTS_ENV, "").strip() else [_base() / "results"]
    return list(dict.fromkeys([results_dir(), *committed]))


def result_path(name: str | Path) -> Path:
    """Where the result ``name`` is: in the first of :func:`_result_folders` that has it, else in :func:`results_dir`."""
    return next((f / name for f in _result_folders() if (f / name).exists()), results_dir() / name)


def result_files(pattern: str) -> list[Path]:
    """The saved results whose names match ``pattern``, in every folder results are read from."""
    return sorted({p.name: p for f in reversed(_result_folders()) for p in f.glob(pattern)}.values())


def ensure_folder(path: os.PathLike | str, what: str = "output folder") -> Path:
    """Create the folder ``path`` with its parents and return it; :class:`ConfigError` naming the path and the fix
    when it, or a folder above it, is not a folder or cannot be created."""
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
    """``path`` as the place a file will be written: a folder there is a :class:`ConfigError`; the folder above is made."""
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
