"""Saved results, so that a notebook loads a run instead of training it again, each labelled with what it was
measured on (``meta``: dataset, source, device, profile, date)."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Callable, Sequence

import torch

from .devices import describe_machine
from .errors import ConfigError, ResultError
from .locations import display_path, file_target, result_path, results_dir
from .models import OLD_NAMES

def make_meta(data_info=None, device=None, profile=None, **extra) -> dict:
    """The label of a result: what it was measured on, and when. Data and protocol are labelled apart:
    ``protocol`` is the profile's name unless ``extra`` names it, and ``profile`` is kept only where the data are the
    profile's own, so the ``full`` profile (full MNIST) never labels a run on other data."""
    name = getattr(profile, "name", profile)
    full_mnist = getattr(data_info, "dataset", None) == "mnist" and bool(getattr(data_info, "full", None))
    meta = {
        "dataset": getattr(data_info, "dataset", None),
        "source": getattr(data_info, "source", None),
        "full_data": getattr(data_info, "full", None),
        "n_train": getattr(data_info, "n_train", None),
        "n_test": getattr(data_info, "n_test", None),
        "device": str(device) if device is not None else None,
        "device_name": describe_machine(device).get("device_name"),
        "protocol": name,
        **({"profile": name} if name != "full" or full_mnist or data_info is None else {}),
        "date": _dt.date.today().isoformat(),
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads",
    }
    meta.update(extra)
    return meta


def describe(result: dict) -> str:
    """One line saying what a result was measured on (data, device, protocol, date), for printing above it."""
    m = result.get("meta", {})
    data = f"{m.get('dataset')} ({m.get('source')}, {m.get('n_train')} train / {m.get('n_test')} test)"
    warn = "" if m.get("full_data") or m.get("dataset") in ("sample", None) else " -- NOT the full dataset"
    protocol = m.get("protocol") or m.get("profile")
    protocol = ("the blog's hyperparameters" if protocol == "blog" else f"sizes of the {protocol} profile"
                if protocol in ("smoke", "cpu", "full") else protocol)
    return f"{data}{warn}; device {m.get('device_name') or m.get('device')}; {protocol}; {m.get('date')}"


def write_json(path: str | Path, obj, indent: int = 1) -> Path:
    """Write ``obj`` as JSON to ``path`` through ``PATH.partial``, so a killed process never leaves half a file.

    The course's one JSON writer; numpy numbers and 0-d tensors are written as floats. A path that cannot be
    written raises :class:`ConfigError` naming the fix.
    """
    path = file_target(path, "output file")
    text = json.dumps(obj, indent=indent, default=float)
    tmp = path.with_name(path.name + ".partial")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {display_path(path)} ({err.strerror or err}). "
                          f"Fix: choose a file in a folder you can write to.") from None
    return path


def save_result(result: dict, name: str | Path) -> Path:
    """Save ``result`` as ``results/NAME.json`` (or at the path ``name``), atomically; return the path."""
    return write_json(_path(name, write=True), result)


def load_result(name: str | Path, expect: Sequence[str] = ("meta",)) -> dict | None:
    """The saved result ``results/NAME.json``, or None when there is none. A file that is not a JSON object with
    the keys in ``expect`` raises :class:`ResultError` naming the file and the fix."""
    path = file_target(_path(name), "result file")
    result, problem = _read(path, expect)
    if problem:
        raise ResultError(f"the saved result {display_path(path)} {problem}. Fix: move it away (load_or_train then "
                          f"trains it again), or put back the copy from the course repository.")
    return result


def _read(path: Path, expect: Sequence[str]) -> tuple[dict | None, str | None]:
    """``(result, None)``, ``(None, None)`` when there is no file, or ``(None, what is wrong with it)``."""
    if not path.exists():
        return None, None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return None, "is not text (a binary or corrupt file)"
    except json.JSONDecodeError as err:
        return None, f"is not valid JSON ({err.msg} at line {err.lineno}; truncated or corrupt)"
    except RecursionError:
        return None, "is not a result (JSON nested too deeply)"
    except OSError as err:
        return None, f"cannot be read ({err.strerror or err})"
    if not isinstance(result, dict):
        return None, f"holds a JSON {type(result).__name__}, not a result (a JSON object)"
    missing = [key for key in expect if key not in result]
    if missing:
        return None, f"is not a result: it has no {', '.join(map(repr, missing))}"
    if not isinstance(result.get("meta", {}), dict):
        return None, "is not a result: its 'meta' is not a record"
    return _renamed(result), None


def _renamed(result: dict) -> dict:
    """``result`` with each model saved under one of :data:`OLD_NAMES` renamed, in place."""
    runs, status = result.get("runs"), result.get("meta", {}).get("run_status")
    for record in [result, *(runs if isinstance(runs, list) else []), *(status if isinstance(status, list) else [])]:
        model = record.get("model") if isinstance(record, dict) else None
        if isinstance(model, str) and model in OLD_NAMES:
            record["model"] = OLD_NAMES[model]
    return result


def _set_aside(path: Path) -> Path:
    """Rename an unreadable ``NAME.json`` to ``NAME.json.corrupt`` (or ``.corrupt-2``, ...), never deleting it."""
    kept, n = path.with_name(path.name + ".corrupt"), 1
    while kept.exists():
        n += 1
        kept = path.with_name(f"{path.name}.corrupt-{n}")
    path.replace(kept)
    return kept


def _path(name: str | Path, write: bool = False) -> Path:
    """Where result ``name`` is read from (committed results too), or with ``write`` where it is saved."""
    path = Path(name)
    if not path.suffix:
        path = path.with_suffix(".json")
    if path.is_absolute() or path.parent != Path("."):
        return path
    return results_dir() / path if write else result_path(path)


def load_or_train(name: str | Path, train: Callable[[], dict], retrain: bool = False, verbose: bool = True,
                  cost: str | None = None, expect: Sequence[str] = ("meta",)) -> dict:
    """Load ``results/NAME.json`` if it exists and not ``retrain``, else save and return what ``train()`` returns.

    ``train`` returns a JSON-able dict with the keys in ``expect``; ``cost`` ("about 1 hour on a 2-core CPU") is
    announced before training. An unreadable saved file is kept as ``NAME.json.corrupt`` and trained again.
    """
    path = file_target(_path(name), "result file")  # a folder in the way stops here, before any training
    target = file_target(_path(name, write=True), "result file")  # outside the cpu profile: not the committed one
    result, problem = _read(path, expect)
    if problem and path != target:
        print(f"[course_lib] warning: {display_path(path)} {problem}; left as it is, training it again")
    elif problem:
        try:
            kept = _set_aside(path)
        except OSError as err:
            raise ResultError(f"the saved result {display_path(path)} {problem}, and it cannot be moved aside "
                              f"({err.strerror or err}). Fix: move or delete it yourself, then run again.") from None
        print(f"[course_lib] warning: {display_path(path)} {problem}; kept as {kept.name}, training it again")
    elif result is not None and not retrain:
        if verbose:
            print(f"[course_lib] loaded saved result {display_path(path)}: {describe(result)}")
        return result
    if verbose and cost:
        why = "is not there" if result is None else "is to be retrained"
        print(f"[course_lib] {display_path(path)} {why}: training it now ({cost}; interrupt the kernel to skip)")
    result = train()
    if not isinstance(result, dict) or any(key not in result for key in expect):
        raise ConfigError(f"the function given to load_or_train returned {type(result).__name__} without "
                          f"{', '.join(map(repr, expect))}; it is not saved. Fix: return a dict with "
                          f"meta=make_meta(...), or pass expect=() to load_or_train.")
    save_result(result, target)
    if verbose:
        print(f"[course_lib] saved result to {display_path(target)}")
    return result
