"""Training as the course does it: the protocol and speed settings, one step, one epoch, evaluation, ``fit``.

Read it top to bottom as ``fit`` runs. Seeded CPU runs reproduce exactly; a NaN/inf loss or Ctrl-C stops
cleanly with the history so far; a run resumed from its checkpoint equals the uninterrupted run.
"""
from __future__ import annotations

import math
import numbers
import random
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import load_into, model_spec, save_checkpoint
from .data import BatchIterator, Data, blog_loader, epoch_generator, random_crops
from .devices import AmpPolicy, amp_policy, as_device, check_amp, flush_denormals, native_bf16, pick_device
from .errors import CheckpointError, ConfigError
from .history import History
from .locations import display_path


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and all GPUs). Call before building a model."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- settings


def _check_number(name: str, value: Any, low: float, high: float, hint: str) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or not (low <= value <= high):
        raise ConfigError(f"{name}={value!r} is outside the sensible range [{low}, {high}]. {hint}")


@dataclass(frozen=True)
class Protocol:
    """What is trained and how: everything a run's numbers depend on; the defaults are the blog's. ``seed``
    seeds the shuffle and the crops (seed the init with :func:`seed_everything`); ``recompute_bn``: exact BatchNorm
    statistics. ``schedule``: ``constant`` (the blog) or ``cosine`` (:func:`warmup_cosine` over all the steps, with
    ``warmup_epochs`` of linear warm-up). ``crop_padding``: each training image is cut at a random place out of a
    copy padded with this many zero pixels (0: no augmentation)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0
    shuffle: bool = True
    recompute_bn: bool = False
    schedule: str = "constant"
    warmup_epochs: int = 0
    crop_padding: int = 0

    def __post_init__(self):
        _check_number("lr", self.lr, 1e-7, 10.0, "Fix: the blog's protocol uses lr=0.1; try 0.01 to 0.5.")
        _check_number("momentum", self.momentum, 0.0, 0.999, "Fix: use 0 (the blog) or 0.9.")
        _check_number("weight_decay", self.weight_decay, 0.0, 1.0, "Fix: use 0 (the blog) or about 1e-4.")
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise ConfigError(f"epochs must be a whole number >= 0, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive whole number, got {self.batch_size!r}")
        if not isinstance(self.seed, numbers.Integral):
            raise ConfigError(f"seed must be a whole number, got {self.seed!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; valid: {', '.join(SCHEDULES)}")
        for name, high in (("warmup_epochs", max(self.epochs, 0)), ("crop_padding", 8)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
                raise ConfigError(f"{name} must be a whole number from 0 to {high}, got {value!r}")

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate of 0-based ``step`` of the run, under the schedule."""
        if self.schedule == "constant":
            return self.lr
        return warmup_cosine(step, self.epochs * steps_per_epoch, self.warmup_epochs * steps_per_epoch, self.lr)


SCHEDULES = ("constant", "cosine")


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, peak_lr: float) -> float:
    """The lr of 0-based ``step``: rising linearly to ``peak_lr`` over ``warmup_steps`` (the first step gets
    peak_lr / warmup_steps), then falling along half a cosine to 0 at ``total_steps``."""
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * peak_lr * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class SpeedOptions:
    """How fast a run goes; in fp32 on CPU none of these changes the result (``amp`` rounds differently).
    ``compile``: ``torch.compile``, or its mode (``"reduce-overhead"``: CUDA graphs). ``pipeline``: ``memory``
    (batches sliced on the device) or ``blog`` (dataset + ToTensor + DataLoader). ``check_every``: steps between
    NaN/inf checks of the loss (default 1 on CPU, 50 on a GPU, where each check waits for the device)."""

    device: str | torch.device = "auto"
    amp: bool | str = False
    channels_last: bool = False
    compile: bool | str = False
    pipeline: str = "memory"
    eval_batch_size: int = 1000
    check_every: int | None = None

    def __post_init__(self):
        if self.pipeline not in ("memory", "blog"):
            raise ConfigError(f"unknown pipeline {self.pipeline!r}; valid: 'memory', 'blog'")
        check_amp(self.amp)
        for name in ("eval_batch_size", "check_every"):
            value = getattr(self, name)
            if not (value is None and name == "check_every") and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}")


def fast_speed_options(device: str | torch.device = "auto") -> SpeedOptions:
    """The course's fast settings on ``device``. CPU: ``channels_last`` and bf16 only where native (emulated
    bf16 is slower than fp32), no compile (minutes of warm-up). CUDA: also AMP and CUDA graphs, since at batch 64
    the GPU waits on kernel launches. MPS: plain settings."""
    dev = as_device(device)
    if dev.type == "cuda":
        return SpeedOptions(device=dev, amp=True, channels_last=True, compile="reduce-overhead")
    if dev.type == "cpu":
        return SpeedOptions(device=dev, amp="bf16" if native_bf16(dev) else False, channels_last=True)
    return SpeedOptions(device=dev)


def run_config(protocol: Protocol, speed: SpeedOptions, data: Data) -> dict:
    """The settings a History records (the keys saved results and checkpoints have always held)."""
    p, s = protocol, speed
    return dict(epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay,
                seed=p.seed, amp=str(s.amp), channels_last=s.channels_last, compile=s.compile, pipeline=s.pipeline,
                shuffle=p.shuffle, recompute_bn=p.recompute_bn, schedule=p.schedule, warmup_epochs=p.warmup_epochs,
                crop_padding=p.crop_padding, dataset=data.info.as_dict())


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
             amp: bool | str | AmpPolicy = False, channels_last: bool = False) -> float:
    """Accuracy in [0, 1] of ``model`` on ``x`` (N x C x H x W) and ``y`` (N), in eval mode, no gradients."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = torch.zeros((), dtype=torch.long, device=device)
    try:
        with amp_policy(device, amp).autocast():
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
    """Replace BatchNorm running statistics by exact averages over ``x`` (the training images): at a constant
    lr of 0.1 the running averages lag the weights and eval-mode accuracy jumps around."""
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


# --------------------------------------------------------------------------- one step, one epoch


def train_step(step_model: nn.Module, optimizer: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
               device: torch.device, amp: bool | str | AmpPolicy = False, scaler=None,
               cuda_graphs: bool = False) -> torch.Tensor:
    """One SGD step with cross-entropy on ``xb`` (B x C x H x W), ``yb`` (B) under :func:`amp_policy`.
    ``scaler``: the policy's GradScaler, kept across steps. Returns the loss, still on the device (no sync)."""
    if cuda_graphs:  # a new training step: earlier graph outputs may be overwritten
        torch.compiler.cudagraph_mark_step_begin()
    with amp_policy(device, amp).autocast():
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


@dataclass
class EpochResult:
    """What :func:`train_epoch` measured. ``diverged_at``: the 1-based step whose loss was NaN/inf, else None."""

    train_loss: float
    seconds: float
    step_losses: torch.Tensor
    diverged_at: int | None = None


def train_epoch(step_model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable, n_steps: int,
                device: torch.device, speed: SpeedOptions, policy: AmpPolicy, scaler=None,
                lr_at: Callable[[int], float] | None = None) -> EpochResult:
    """One pass over ``batches`` (``n_steps`` pairs on ``device``); ``train_loss`` is the mean loss per image. Losses
    stay on the device, checked for NaN/inf every ``speed.check_every`` steps; a compiled model has static shapes,
    so a smaller last batch runs eagerly rather than compiling a second time. ``lr_at(step)``: the lr of each step."""
    step_model.train()
    eager = getattr(step_model, "_orig_mod", step_model)  # torch.compile's wrapper holds the eager model here
    cuda_graphs = speed.compile == "reduce-overhead" and device.type == "cuda"
    check_every = speed.check_every or (1 if device.type == "cpu" else 50)
    start = time.perf_counter()
    losses = torch.zeros(n_steps, device=device)
    sizes: list[int] = []
    checked = 0  # steps before this one are known to be finite
    for step, (xb, yb) in enumerate(batches):
        if speed.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        net = step_model if not sizes or len(yb) == sizes[0] else eager
        if lr_at is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
        losses[step] = train_step(net, optimizer, xb, yb, device, policy, scaler, cuda_graphs and net is step_model)
        sizes.append(len(yb))
        if (step + 1) % check_every == 0 or step + 1 == n_steps:
            finite = torch.isfinite(losses[checked:step + 1])
            if not bool(finite.all()):
                bad = checked + int((~finite).nonzero()[0])
                return EpochResult(float("nan"), time.perf_counter() - start, losses[:step + 1], diverged_at=bad + 1)
            checked = step + 1
    weights = torch.tensor(sizes, dtype=losses.dtype).to(device, non_blocking=True)
    train_loss = (losses * weights).sum().item() / max(sum(sizes), 1)
    return EpochResult(train_loss, time.perf_counter() - start, losses)


# --------------------------------------------------------------------------- fit and its pieces


def resume_from(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, history: History,
                protocol: Protocol, scaler=None) -> None:
    """Load weights, optimizer and GradScaler state and the completed epochs from ``fit(checkpoint=...)``'s file;
    refuse another model's checkpoint and one trained under another protocol (all but ``epochs``)."""
    state = load_into(model, path)
    saved = (state.get("history") or {}).get("config") or {}
    now = {f.name: getattr(protocol, f.name) for f in fields(protocol) if f.name != "epochs"}
    differ = [f"{k}: checkpoint {saved[k]!r}, now {v!r}" for k, v in now.items() if k in saved and saved[k] != v]
    if differ:
        raise CheckpointError(f"checkpoint {display_path(path)} was trained under another protocol "
                              f"({'; '.join(differ)}). Fix: resume with the settings it was trained with, "
                              f"or train afresh without resume.")
    if state.get("optimizer"):
        optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and (state.get("extra") or {}).get("scaler"):
        scaler.load_state_dict(state["extra"]["scaler"])
    history.records = list(History.from_dict(state.get("history") or {}).records)


def compiled(model: nn.Module, compile: bool | str) -> nn.Module:
    """``model`` itself, or ``torch.compile(model)`` with static shapes; ``compile`` may name the mode."""
    if not compile:
        return model
    return torch.compile(model, mode=compile if isinstance(compile, str) else None, dynamic=False)


def batch_source(data: Data, on_device: Data, protocol: Protocol, speed: SpeedOptions,
                 device: torch.device) -> Callable[[int], tuple[Iterator, int]]:
    """``epoch -> (batches on device, number of steps)`` for the speed options' pipeline; both pipelines
    shuffle with :func:`course_lib.data.epoch_generator`, so they see the same images in the same order."""
    if speed.pipeline == "memory":
        batches = BatchIterator(on_device.train_x, on_device.train_y, protocol.batch_size,
                                shuffle=protocol.shuffle, seed=protocol.seed)
        return lambda epoch: (batches.epoch(epoch), len(batches))
    loader = blog_loader(data, protocol.batch_size, shuffle=protocol.shuffle, pin_memory=device.type == "cuda")

    def epoch_batches(epoch: int) -> tuple[Iterator, int]:
        if protocol.shuffle:
            loader.sampler.generator = epoch_generator(protocol.seed, epoch)
        return ((xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)) for xb, yb in loader), len(loader)
    return epoch_batches


def fit(model: nn.Module, data: Data, protocol: Protocol | None = None, speed: SpeedOptions | None = None, *,
        progress: bool = True, checkpoint: str | Path | None = None, resume: str | Path | None = None,
        step_losses: list | None = None, until: int | None = None) -> History:
    """Train ``model`` (N x 1 x 28 x 28 in [0, 1] -> N x 10) on ``data`` with SGD; the blog's protocol by default.

    ``checkpoint``: written after every epoch; ``resume``: continue from one, exactly. ``step_losses``: receives
    every step's loss. ``until``: stop after this epoch, the schedule still spanning ``protocol.epochs`` (the first
    epochs of a long run). On a NaN/inf loss or Ctrl-C the history so far comes back, ``status`` saying why.
    """
    protocol = Protocol() if protocol is None else protocol
    speed = SpeedOptions() if speed is None else speed
    if not isinstance(protocol, Protocol) or not isinstance(speed, SpeedOptions):
        raise ConfigError("fit(model, data, protocol, speed): protocol must be a Protocol and speed a "
                          "SpeedOptions (or None). Fix: e.g. fit(model, data, Protocol(epochs=3)).")
    flush_denormals()
    device = pick_device(speed.device)
    policy = amp_policy(device, speed.amp)
    model.to(device)
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=protocol.lr, momentum=protocol.momentum,
                                weight_decay=protocol.weight_decay)
    scaler = policy.grad_scaler()
    history = History(model=model_spec(model)["name"], device=str(device), config=run_config(protocol, speed, data))
    if resume is not None:
        resume_from(resume, model, optimizer, history, protocol, scaler)
        if len(history) >= protocol.epochs:
            history.message = f"checkpoint {display_path(resume)} already holds {len(history)} epochs"
            return history
    step_model = compiled(model, speed.compile)
    on_device = data.to(device)
    epoch_batches = batch_source(data, on_device, protocol, speed, device)
    bar = None
    if progress:
        from tqdm.auto import tqdm  # imported only when a bar is shown

        bar = tqdm(total=protocol.epochs, initial=len(history), desc=history.model, unit="epoch", leave=True)
    try:
        for epoch in range(len(history) + 1, min(until or protocol.epochs, protocol.epochs) + 1):
            batches, n_steps = epoch_batches(epoch)
            if protocol.crop_padding:
                crops = epoch_generator(protocol.seed, -epoch)  # its own stream: the shuffle stays the same
                batches = ((random_crops(xb, protocol.crop_padding, crops), yb) for xb, yb in batches)
            lr_at = None if protocol.schedule == "constant" else (
                lambda step, first=(epoch - 1) * n_steps, n=n_steps: protocol.lr_at(first + step, n))
            result = train_epoch(step_model, optimizer, batches, n_steps, device, speed, policy, scaler, lr_at)
            if result.diverged_at is not None:
                return _stop(history, "diverged", _diverged_message(result, epoch, n_steps, protocol.lr, len(history)))
            if step_losses is not None:
                step_losses.extend(result.step_losses.tolist())
            if protocol.recompute_bn:
                recompute_bn_stats(model, on_device.train_x)
            test_acc = evaluate(model, on_device.test_x, on_device.test_y, speed.eval_batch_size, policy,
                                speed.channels_last)
            history.records.append(dict(epoch=epoch, train_loss=result.train_loss, test_acc=test_acc,
                                        seconds=result.seconds, images_per_s=len(data.train_y) / result.seconds))
            if checkpoint is not None:
                extra = {"scaler": scaler.state_dict()} if scaler is not None else {}
                save_checkpoint(checkpoint, model, history, optimizer, extra)
            if bar is not None:
                bar.set_postfix(loss=f"{result.train_loss:.4f}", acc=f"{test_acc:.2%}")
                bar.update(1)
    except KeyboardInterrupt:
        return _stop(history, "interrupted", _interrupted_message(len(history), checkpoint))
    finally:
        if bar is not None:
            bar.close()
    return history


def _stop(history: History, status: str, message: str) -> History:
    history.status, history.message = status, message
    print(f"[course_lib] {message}")
    return history


def _diverged_message(result: EpochResult, epoch: int, n_steps: int, lr: float, done: int) -> str:
    loss = result.step_losses[result.diverged_at - 1].item()
    return (f"training diverged: the loss became {loss} at epoch {epoch}, step {result.diverged_at} of {n_steps} "
            f"(lr={lr}). The weights are now unusable; the history of the {done} completed epoch(s) is returned. "
            f"Fix: use a smaller lr (try {lr / 10:g}), or add BatchNorm / skips to a deep plain net.")


def _interrupted_message(done: int, checkpoint: str | Path | None) -> str:
    where = (f"; the checkpoint of epoch {done} is at {display_path(checkpoint)}, continue with "
             f"fit(..., resume={str(display_path(checkpoint))!r})" if checkpoint and done else
             "; pass checkpoint='run.pt' to keep a checkpoint every epoch")
    return (f"training interrupted during epoch {done + 1}: the history of the {done} completed epoch(s) "
            f"is returned{where}.")

