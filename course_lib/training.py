"""Training: device choice, seeding, ``fit``, evaluation and checkpoints.

``fit`` runs the blog's protocol by default (batch 64, SGD lr 0.1, cross-entropy)
on batches sliced from tensors that already sit on the device. It never
hard-codes a device, reproduces exactly on CPU for a given seed, stops cleanly on
a NaN/inf loss or a KeyboardInterrupt (returning the history so far), and can
checkpoint every epoch and resume from such a checkpoint with exactly the result
of an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import BatchIterator, Data, blog_loader, epoch_generator
from .errors import CheckpointError, ConfigError, DeviceError
from .locations import display_path

DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")
_announced_device: set[str] = set()


# --------------------------------------------------------------------------- devices and seeds


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def sync_device(device: torch.device) -> None:
    """Wait until ``device`` has finished its queued work (CUDA and MPS run asynchronously), so a
    timer read after this call measures the work, not just its launch. A no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def pick_device(device: str | torch.device | None = "auto", verbose: bool = True) -> torch.device:
    """Resolve a device name: ``auto`` (CUDA, then Apple MPS, then CPU), ``cpu``, ``cuda[:N]``, ``mps``.

    ``auto`` announces its pick once per process. Asking for a device this machine
    does not have raises :class:`DeviceError` saying what is available instead.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = (device or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            picked, why = torch.device("cuda"), f"CUDA GPU: {torch.cuda.get_device_name(0)}"
        elif mps_available():
            picked, why = torch.device("mps"), "Apple GPU (MPS)"
        else:
            picked, why = torch.device("cpu"), "no CUDA or MPS GPU found"
        if verbose and "auto" not in _announced_device:
            print(f"[course_lib] device: {picked.type} ({why})")
            _announced_device.add("auto")
        return picked
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {device!r} was asked for, but this machine has no usable CUDA GPU "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). "
                f"Fix: use device='auto' (picks {'mps' if mps_available() else 'cpu'} here) or device='cpu'."
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present. "
                              f"Fix: use cuda:0 .. cuda:{torch.cuda.device_count() - 1}.")
        return torch.device(name)
    if name == "mps":
        if not mps_available():
            raise DeviceError("device 'mps' was asked for, but Apple's MPS backend is not available here. "
                              "Fix: use device='auto' or device='cpu'.")
        return torch.device("mps")
    raise ConfigError(f"unknown device {device!r}; valid devices are: {', '.join(DEVICE_NAMES)}")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and all GPUs). Call before building a model."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- history


@dataclass
class History:
    """What ``fit`` returns: one record per completed epoch, and how the run ended.

    ``records[i]`` = ``{epoch, train_loss, test_acc, seconds, images_per_s}``
    (``test_acc`` in [0, 1]). ``status`` is ``completed``, ``diverged`` or
    ``interrupted``; ``message`` says what happened and what to do.
    """

    records: list[dict] = field(default_factory=list)
    status: str = "completed"
    message: str = ""
    model: str = ""
    device: str = ""
    config: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def column(self, key: str) -> list:
        return [r[key] for r in self.records]

    @property
    def train_loss(self) -> list[float]:
        return self.column("train_loss")

    @property
    def test_acc(self) -> list[float]:
        return self.column("test_acc")

    @property
    def final(self) -> dict:
        return self.records[-1] if self.records else {}

    def as_dict(self) -> dict:
        return {"records": self.records, "status": self.status, "message": self.message,
                "model": self.model, "device": self.device, "config": self.config}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**{k: d[k] for k in ("records", "status", "message", "model", "device", "config") if k in d})

    def __repr__(self) -> str:
        last = self.final
        tail = (f", last epoch {last['epoch']}: loss {last['train_loss']:.4f}, acc {last['test_acc']:.2%}"
                if last else "")
        return f"History({self.model or 'model'}, {len(self)} epochs, {self.status}{tail})"


# --------------------------------------------------------------------------- evaluation


def autocast_for(device: torch.device, amp: bool | str):
    """The autocast context for ``amp`` (False, True, 'bf16' or 'fp16') on ``device``."""
    if not amp:
        return contextlib.nullcontext()
    if amp is True:
        dtype = torch.float16 if device.type == "cuda" and not torch.cuda.is_bf16_supported() else torch.bfloat16
    else:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(str(amp))
        if dtype is None:
            raise ConfigError(f"unknown amp setting {amp!r}; valid: False, True, 'bf16', 'fp16'")
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
             amp: bool | str = False, channels_last: bool = False) -> float:
    """Accuracy in [0, 1] of ``model`` on ``x`` (N x C x H x W) and ``y`` (N), in eval mode, no gradients."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = torch.zeros((), dtype=torch.long, device=device)
    try:
        with autocast_for(device, amp):
            for start in range(0, len(y), batch_size):
                xb = x[start:start + batch_size].to(device, non_blocking=True)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                yb = y[start:start + batch_size].to(device, non_blocking=True)
                correct += (model(xb).argmax(1) == yb).sum()
    finally:
        model.train(was_training)
    return correct.item() / max(len(y), 1)


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> None:
    """Replace BatchNorm running statistics by exact averages over ``x`` (the training images).

    At a constant lr of 0.1 the running averages lag the weights, and eval-mode
    accuracy jumps around; recomputing them first makes evaluation stable.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    was_training = model.training
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all batches
    model.train()
    device = next(model.parameters()).device
    for start in range(0, len(x), batch_size):
        model(x[start:start + batch_size].to(device, non_blocking=True))
    for bn, m in zip(bns, momenta):
        bn.momentum = m
    model.train(was_training)


# --------------------------------------------------------------------------- checkpoints


def model_spec(model: nn.Module) -> dict:
    spec = getattr(model, "spec", None)
    if spec is None:
        spec = {"name": type(model).__name__, "kwargs": {}}
    return spec


def save_checkpoint(path: str | Path, model: nn.Module, history: History | None = None,
                    optimizer: torch.optim.Optimizer | None = None, extra: dict | None = None) -> Path:
    """Save model name, constructor arguments, state dict and history in one file (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": "course_lib-checkpoint-1",
        "spec": model_spec(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history.as_dict() if history is not None else None,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "extra": extra or {},
        "torch": torch.__version__,
    }
    tmp = path.with_name(path.name + ".partial")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a killed process never leaves a half-written checkpoint
    return path


def _read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {display_path(path)}. Fix: check the path, or train first "
                              f"(python -m course_lib train ... --out DIR writes DIR/checkpoint.pt).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise CheckpointError(f"{display_path(path)} is not a readable checkpoint ({type(err).__name__}: {err}). "
                              f"Fix: delete it and train again.") from None
    if not isinstance(state, dict) or state.get("format") != "course_lib-checkpoint-1":
        raise CheckpointError(f"{display_path(path)} is not a course_lib checkpoint. Fix: save with "
                              f"course_lib.save_checkpoint, or load a plain state dict with model.load_state_dict.")
    return state


def load_into(model: nn.Module, path: str | Path) -> dict:
    """Load a checkpoint's weights into ``model``, refusing one made for another model or shape."""
    state = _read_checkpoint(path)
    theirs, ours = state["spec"], model_spec(model)
    if theirs["name"] != ours["name"] or theirs.get("kwargs", {}) != ours.get("kwargs", {}):
        raise CheckpointError(
            f"checkpoint {display_path(path)} holds a {theirs['name']} {theirs.get('kwargs', {})}, "
            f"but the model is a {ours['name']} {ours.get('kwargs', {})}. Fix: build the matching model, "
            f"or use course_lib.load_checkpoint(path), which builds it for you."
        )
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
    """Rebuild the model a checkpoint was saved from, load its weights, return it in eval mode.

    The history is attached as ``model.history`` (a :class:`History`).
    """
    from .models import build_model

    state = _read_checkpoint(path)
    spec = state["spec"]
    try:
        model = build_model(spec["name"], **spec.get("kwargs", {}))
    except ConfigError as err:
        raise CheckpointError(f"{display_path(path)} was saved from {spec['name']!r}, which course_lib cannot "
                              f"rebuild ({err}). Fix: build the model yourself and call load_into(model, path).") from None
    load_into(model, path)
    model.history = History.from_dict(state["history"]) if state.get("history") else None
    return model.to(pick_device(device, verbose=False)).eval()


# --------------------------------------------------------------------------- fit


def _check_number(name: str, value: Any, low: float, high: float, hint: str) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or not (low <= value <= high):
        raise ConfigError(f"{name}={value!r} is outside the sensible range [{low}, {high}]. {hint}")


def train_step(step_model: nn.Module, optimizer: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
               device: torch.device, amp: bool | str = False, scaler=None, cuda_graphs: bool = False) -> torch.Tensor:
    """One SGD step with cross-entropy on a batch (``xb``: B x C x H x W, ``yb``: B); returns the
    detached loss, still on the device (no synchronisation)."""
    if cuda_graphs:  # a new training step: earlier graph outputs may be overwritten
        torch.compiler.cudagraph_mark_step_begin()
    with autocast_for(device, amp):
        loss = F.cross_entropy(step_model(xb), yb)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss.detach()


def fit(
    model: nn.Module,
    data: Data,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 0.1,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: str | torch.device = "auto",
    amp: bool | str = False,
    channels_last: bool = False,
    compile: bool | str = False,
    pipeline: str = "memory",
    shuffle: bool = True,
    recompute_bn: bool = False,
    eval_batch_size: int = 1000,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    resume: str | Path | None = None,
    check_every: int | None = None,
    step_losses: list | None = None,
) -> History:
    """Train ``model`` on ``data`` with SGD and cross-entropy; the blog's protocol by default.

    Args:
        model: any digit model (input ``N x 1 x 28 x 28`` in [0, 1], output ``N x 10``).
        data: from :func:`course_lib.data.load_data`.
        epochs, batch_size, lr, momentum, weight_decay: the protocol (blog: 30, 64, 0.1, 0, 0).
        seed: seeds the per-epoch shuffle; seed the model's init yourself with
            :func:`seed_everything` before building it.
        device: ``auto`` | ``cpu`` | ``cuda[:N]`` | ``mps``.
        amp: mixed precision: False, True (bf16 where supported, else fp16), 'bf16', 'fp16'.
        channels_last, compile: speed options (see the speed notebook and ``bench``); ``compile``
            may name a ``torch.compile`` mode, e.g. ``"reduce-overhead"`` (CUDA graphs on a GPU);
            shapes are static (the last, partial batch compiles once more).
        pipeline: ``memory`` (batches sliced from device tensors) or ``blog``
            (torchvision-style dataset + ToTensor + DataLoader, as in the blog).
        shuffle: reshuffle every epoch (the blog did not).
        recompute_bn: recompute BatchNorm statistics over the training set before each evaluation.
        progress: a tqdm progress bar (JupyterLab or terminal).
        checkpoint: write a checkpoint here after every completed epoch.
        resume: continue from a checkpoint written by ``checkpoint=``; the result equals an
            uninterrupted run with the same arguments (exactly, on CPU).
        check_every: check the loss for NaN/inf every this many steps (default: every
            step on CPU, every 50 on GPU, where each check waits for the device).
        step_losses: if a list is given, the loss of every SGD step is appended to it
            (once per epoch, so the device is not waited on every step).

    Returns:
        :class:`History`; on NaN/inf loss or Ctrl-C, training stops and the history of the
        completed epochs is returned with ``status`` and ``message`` saying what happened.
    """
    _check_number("lr", lr, 1e-7, 10.0, "Fix: the blog's protocol uses lr=0.1; try 0.01 to 0.5.")
    _check_number("momentum", momentum, 0.0, 0.999, "Fix: use 0 (the blog) or 0.9.")
    _check_number("weight_decay", weight_decay, 0.0, 1.0, "Fix: use 0 (the blog) or about 1e-4.")
    if not isinstance(epochs, int) or epochs < 0:
        raise ConfigError(f"epochs must be a whole number >= 0, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive whole number, got {batch_size!r}")
    if pipeline not in ("memory", "blog"):
        raise ConfigError(f"unknown pipeline {pipeline!r}; valid: 'memory', 'blog'")

    dev = pick_device(device)
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    use_scaler = bool(amp) and dev.type == "cuda" and (amp == "fp16" or (amp is True and not torch.cuda.is_bf16_supported()))
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    config = dict(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
                  seed=seed, amp=str(amp), channels_last=channels_last, compile=compile, pipeline=pipeline,
                  shuffle=shuffle, recompute_bn=recompute_bn, dataset=data.info.as_dict())
    history = History(model=model_spec(model)["name"], device=str(dev), config=config)

    start_epoch = 1
    if resume is not None:
        state = load_into(model, resume)
        model.to(dev)
        if state.get("optimizer"):
            optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state["extra"].get("scaler"):
            scaler.load_state_dict(state["extra"]["scaler"])
        previous = History.from_dict(state["history"] or {})
        history.records = list(previous.records)
        start_epoch = len(history.records) + 1
        if start_epoch > epochs:
            history.message = f"checkpoint {display_path(resume)} already holds {len(history.records)} epochs"
            return history

    mode = compile if isinstance(compile, str) else None  # e.g. "reduce-overhead"
    step_model = torch.compile(model, mode=mode, dynamic=False) if compile else model
    cuda_graphs = compile == "reduce-overhead" and dev.type == "cuda"
    on_device = data.to(dev)
    batches = BatchIterator(on_device.train_x, on_device.train_y, batch_size, shuffle=shuffle, seed=seed)
    n_train = len(on_device.train_y)
    check_every = check_every or (1 if dev.type == "cpu" else 50)
    loader = blog_loader(data, batch_size, shuffle=shuffle, pin_memory=dev.type == "cuda") if pipeline == "blog" else None

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, initial=start_epoch - 1, desc=history.model, unit="epoch", leave=True)

    def note_stop(status: str, message: str) -> History:
        history.status, history.message = status, message
        print(f"[course_lib] {message}")
        return history

    try:
        for epoch in range(start_epoch, epochs + 1):
            model.train()
            t0 = time.perf_counter()
            if loader is not None:
                if shuffle:  # the same seeding rule as the fast path
                    loader.sampler.generator = epoch_generator(seed, epoch)
                batch_iter = ((xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)) for xb, yb in loader)
                n_steps = len(loader)
            else:
                batch_iter, n_steps = batches.epoch(epoch), len(batches)
            losses = torch.zeros(n_steps, device=dev)
            sizes = torch.zeros(n_steps, device=dev)
            for step, (xb, yb) in enumerate(batch_iter):
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                losses[step] = train_step(step_model, optimizer, xb, yb, dev, amp, scaler, cuda_graphs)
                sizes[step] = len(yb)
                if (step + 1) % check_every == 0 or step + 1 == n_steps:
                    finite = torch.isfinite(losses[: step + 1])
                    if not bool(finite.all()):
                        bad = int((~finite).nonzero()[0])
                        return note_stop(
                            "diverged",
                            f"training diverged: the loss became {losses[bad].item()} at epoch {epoch}, "
                            f"step {bad + 1} of {n_steps} (lr={lr}). The weights are now unusable; the history "
                            f"of the {len(history.records)} completed epoch(s) is returned. Fix: use a smaller lr "
                            f"(try {lr / 10:g}), or add BatchNorm / skips to a deep plain net.",
                        )
            train_loss = (losses * sizes).sum().item() / max(n_train, 1)
            if step_losses is not None:
                step_losses.extend(losses.tolist())
            seconds = time.perf_counter() - t0
            if recompute_bn:
                recompute_bn_stats(model, on_device.train_x)
            test_acc = evaluate(model, on_device.test_x, on_device.test_y, eval_batch_size, amp, channels_last)
            history.records.append(dict(epoch=epoch, train_loss=train_loss, test_acc=test_acc,
                                        seconds=seconds, images_per_s=n_train / seconds))
            if checkpoint is not None:
                extra = {"scaler": scaler.state_dict()} if scaler is not None else {}
                save_checkpoint(checkpoint, model, history, optimizer, extra)
            if bar is not None:
                bar.set_postfix(loss=f"{train_loss:.4f}", acc=f"{test_acc:.2%}")
                bar.update(1)
    except KeyboardInterrupt:
        done = len(history.records)
        where = (f"; the checkpoint of epoch {done} is at {display_path(checkpoint)}, continue with "
                 f"fit(..., resume={str(display_path(checkpoint))!r})" if checkpoint and done else
                 "; pass checkpoint='run.pt' to keep a checkpoint every epoch")
        return note_stop("interrupted", f"training interrupted during epoch {done + 1}: the history of the "
                                        f"{done} completed epoch(s) is returned{where}.")
    finally:
        if bar is not None:
            bar.close()
    return history


def history_to_json(history: History, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(history.as_dict(), indent=2))
    return path
