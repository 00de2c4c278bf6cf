"""Saved results: ``load_or_train`` and the labels every result carries.

A notebook asks for a result by file name. If ``results/NAME.json`` exists it is
loaded at once (an instructor's precomputed run, or the committed larger run);
otherwise the experiment runs and its result is saved there. Every result
carries a ``meta`` record -- dataset, source, device, profile, date, command -- so
what it was measured on is always printed next to it.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Callable

import torch

from .locations import display_path, results_dir


def make_meta(data_info=None, device=None, profile=None, **extra) -> dict:
    """The label of a result: what it was measured on, and when."""
    meta = {
        "dataset": getattr(data_info, "dataset", None),
        "source": getattr(data_info, "source", None),
        "full_data": getattr(data_info, "full", None),
        "n_train": getattr(data_info, "n_train", None),
        "n_test": getattr(data_info, "n_test", None),
        "device": str(device) if device is not None else None,
        "device_name": _device_name(device),
        "profile": getattr(profile, "name", profile),
        "date": _dt.date.today().isoformat(),
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads",
    }
    meta.update(extra)
    return meta


def _device_name(device) -> str | None:
    if device is None:
        return None
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return device.type


def describe(result: dict) -> str:
    """One line saying what a result was measured on, for printing above it."""
    m = result.get("meta", {})
    data = f"{m.get('dataset')} ({m.get('source')}, {m.get('n_train')} train / {m.get('n_test')} test)"
    warn = "" if m.get("full_data") or m.get("dataset") in ("sample", None) else " -- NOT the full dataset"
    return (f"{data}{warn}; device {m.get('device_name') or m.get('device')}; profile {m.get('profile')}; "
            f"{m.get('date')}")


def save_result(result: dict, name: str | Path) -> Path:
    path = _path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(result, indent=1, default=float))
    tmp.replace(path)
    return path


def load_result(name: str | Path) -> dict | None:
    path = _path(name)
    return json.loads(path.read_text()) if path.is_file() else None


def _path(name: str | Path) -> Path:
    path = Path(name)
    if not path.suffix:
        path = path.with_suffix(".json")
    return path if path.is_absolute() or path.parent != Path(".") else results_dir() / path


def load_or_train(name: str | Path, train: Callable[[], dict], retrain: bool = False, verbose: bool = True,
                  cost: str | None = None) -> dict:
    """Load ``results/NAME.json`` if it exists, else call ``train()`` and save what it returns.

    ``train`` must return a JSON-serialisable dict, ideally with a ``meta`` from
    :func:`make_meta`. ``retrain=True`` runs and overwrites even when a file exists.
    ``cost`` (e.g. "about 1 hour on a 2-core CPU") is announced before training, so nobody
    waits without knowing why.
    """
    path = _path(name)
    if not retrain:
        result = load_result(path)
        if result is not None:
            if verbose:
                print(f"[course_lib] loaded saved result {display_path(path)}: {describe(result)}")
            return result
    if verbose and cost:
        print(f"[course_lib] {display_path(path)} is not there: training it now ({cost}; "
              f"interrupt the kernel to skip)")
    result = train()
    save_result(result, path)
    if verbose:
        print(f"[course_lib] saved result to {display_path(path)}")
    return result
