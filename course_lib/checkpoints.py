"""Checkpoints: a trained model saved as data (name, constructor arguments, weights, history), never as code.

Instructors hand checkpoints to students, so a file is read with torch's weights-only loader and can never
run code; a truncated, corrupt, foreign or incomplete file raises a :class:`CheckpointError` naming the fix.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import torch
from torch import nn

from .devices import pick_device
from .errors import CheckpointError, ConfigError
from .history import History
from .locations import display_path, file_target
from .models import build_model

CHECKPOINT_FORMAT = "course_lib-checkpoint-1"

# Checkpoints written before the version was stored as a plain string hold torch's TorchVersion,
# a str subclass with no behaviour on load; it is the only class the loader allows beyond plain data.
_SAFE_TYPES = [torch.torch_version.TorchVersion]


def model_spec(model: nn.Module) -> dict:
    """``model.spec`` (``{"name": ..., "kwargs": {...}}``, set by ``build_model``), or the class name."""
    return getattr(model, "spec", None) or {"name": type(model).__name__, "kwargs": {}}


def save_checkpoint(path: str | Path, model: nn.Module, history: History | None = None,
                    optimizer: torch.optim.Optimizer | None = None, extra: dict | None = None) -> Path:
    """Save model spec, weights, history, optimizer and ``extra`` (plain values) in one file; through
    ``PATH.partial``, so a process killed while saving leaves the previous checkpoint intact."""
    path = file_target(path, "checkpoint file")
    state = {
        "format": CHECKPOINT_FORMAT,
        "spec": model_spec(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        # through JSON: numpy numbers and the like become plain floats the weights-only loader accepts
        "history": json.loads(json.dumps(history.as_dict(), default=str)) if history is not None else None,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "extra": extra or {},
        "torch": str(torch.__version__),
    }
    tmp = path.with_name(path.name + ".partial")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The dict a course_lib checkpoint holds (format, spec, state_dict, history, optimizer, extra, torch),
    loaded as data only and checked field by field."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {display_path(path)}. Fix: check the path, or train first "
                              f"(python -m course_lib train ... --out DIR writes DIR/checkpoint.pt).")
    safe = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    try:
        with safe(_SAFE_TYPES) if safe else contextlib.nullcontext():
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types here; each becomes one clear message
        raise CheckpointError(_unreadable(path, err)) from None
    problem = _check_fields(state)
    if problem:
        raise CheckpointError(f"{display_path(path)} is not a usable course_lib checkpoint: {problem}. Fix: save "
                              f"it again with course_lib.save_checkpoint (or python -m course_lib train), or "
                              f"load a plain state dict with model.load_state_dict.")
    return state


def _unreadable(path: Path, err: Exception) -> str:
    """The message for a file torch's weights-only loader refused or could not read."""
    where = display_path(path)
    text = str(err)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if refused:
        return (f"{where} was refused: it holds a Python object ({refused.group(1)}), not just tensors, numbers, "
                f"strings, lists and dicts, and loading such a file could run code. course_lib reads "
                f"checkpoints as data only. Fix: use a checkpoint written by course_lib.save_checkpoint; if "
                f"you made this file yourself and trust it, save its model.state_dict() instead.")
    with contextlib.suppress(OSError), open(path, "rb") as f:
        head = f.read(64).lstrip()
        if head[:1] in (b"{", b"["):
            return (f"{where} holds JSON text, not a checkpoint (a saved result renamed .pt?). Fix: give the "
                    f".pt file that train, compare --checkpoints or save_checkpoint wrote.")
    kind = "empty" if path.stat().st_size == 0 else "truncated or corrupt, or not a PyTorch file"
    return (f"{where} is not a readable checkpoint ({kind}; {type(err).__name__}). Fix: copy or download "
            f"it again, or delete it and train again.")


def _check_fields(state) -> str | None:
    """What is wrong with a loaded checkpoint dict, or None when it has every field with the right type."""
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        return f"it has no 'format': {CHECKPOINT_FORMAT!r} (a plain state dict or another program's file?)"
    for field in ("spec", "state_dict"):
        if field not in state:
            return f"the field {field!r} is missing"
    spec = state["spec"]
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
            or not isinstance(spec.get("kwargs", {}), dict):
        return "'spec' must be {'name': str, 'kwargs': dict}"
    weights = state["state_dict"]
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return "'state_dict' must map parameter names to tensors"
    history = state.get("history")
    if history is not None and not (isinstance(history, dict) and isinstance(history.get("records", []), list)):
        return "'history' must be None or a dict with a list of 'records'"
    for field in ("optimizer", "extra"):
        if state.get(field) is not None and not isinstance(state[field], dict):
            return f"{field!r} must be a dict"
    return None


def load_into(model: nn.Module, path: str | Path) -> dict:
    """Load a checkpoint's weights into ``model``, refusing one made for another model or shape; returns the
    checkpoint's dict."""
    return _load_weights(model, read_checkpoint(path), path)


def _load_weights(model: nn.Module, state: dict, path: str | Path) -> dict:
    theirs, ours = state["spec"], model_spec(model)
    if theirs["name"] != ours["name"] or theirs.get("kwargs", {}) != ours.get("kwargs", {}):
        raise CheckpointError(f"checkpoint {display_path(path)} holds a {theirs['name']} {theirs.get('kwargs', {})}, "
                              f"but the model is a {ours['name']} {ours.get('kwargs', {})}. Fix: build the matching "
                              f"model, or use course_lib.load_checkpoint(path), which builds it for you.")
    own = model.state_dict()
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
           for k, v in state["state_dict"].items() if k in own and own[k].shape != v.shape]
    missing = sorted(set(own) ^ set(state["state_dict"]))
    if bad or missing:
        raise CheckpointError(f"checkpoint {display_path(path)} does not fit {ours['name']}: "
                              f"{'; '.join(bad[:3] + [f'unmatched keys {missing[:4]}'] * bool(missing))}. "
                              f"Fix: load it into the model it was saved from.")
    model.load_state_dict(state["state_dict"])
    return state


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model a checkpoint was saved from, with its weights, in eval mode; ``model.history`` holds
    its :class:`History` (or None)."""
    state = read_checkpoint(path)
    spec = state["spec"]
    try:
        model = build_model(spec["name"], **spec.get("kwargs", {}))
    except (ConfigError, TypeError) as err:
        raise CheckpointError(f"{display_path(path)} was saved from {spec['name']!r}, which course_lib cannot "
                              f"rebuild ({err}). Fix: build the model yourself and call "
                              f"load_into(model, path).") from None
    _load_weights(model, state, path)
    model.history = History.from_dict(state["history"]) if state.get("history") else None
    return model.to(pick_device(device, verbose=False)).eval()
