"""The course's one timing loop: training steps under a timer.

The benchmark (``python -m course_lib bench``), notebook 03's throughput table and the speed lessons all
time training with :class:`StepTimer` (or its one-shot form :func:`time_training_steps`). A step is
training's own :func:`course_lib.training.train_step` under :func:`course_lib.training.amp_policy`, so a
timed step is exactly a step of ``fit``: same autocast, same GradScaler decision, same optimizer call.

A timer trains from a *batch source*: :func:`one_batch` (one batch already on the device: the model's
own cost, no data work), :func:`memory_batches` (batches sliced from tensors on the device, as ``fit``'s
memory pipeline) or :func:`blog_batches` (the blog's dataset + ToTensor + DataLoader, as ``fit``'s blog
pipeline). The clock starts and stops after the device has finished its queued work, so on a GPU it
measures the work, not its launch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from .data import BatchIterator, Data, blog_loader, epoch_generator
from .errors import ConfigError, CourseError
from .training import amp_policy, compiled, pick_device, sync_device, train_step

Batch = tuple[torch.Tensor, torch.Tensor]
BatchSource = Callable[[], Batch]


@dataclass(frozen=True)
class TimingResult:
    """What one timed run measured: ``steps`` training steps over ``images`` images in ``seconds``
    (device work included). ``warmup_seconds``: the untimed steps before (compilation happens there)."""

    steps: int
    images: int
    seconds: float
    warmup_seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        """Training images per second."""
        return self.images / self.seconds

    @property
    def seconds_per_step(self) -> float:
        """Seconds per training step."""
        return self.seconds / self.steps

    def as_dict(self) -> dict:
        """A JSON-able record of the run, rates included."""
        return dict(steps=self.steps, images=self.images, seconds=self.seconds, warmup_seconds=self.warmup_seconds,
                    images_per_s=self.images_per_s, seconds_per_step=self.seconds_per_step)


# --------------------------------------------------------------------------- batch sources


def one_batch(xb: torch.Tensor, yb: torch.Tensor) -> BatchSource:
    """The same batch every step (``xb``: B x C x H x W, ``yb``: B, on the training device): no data work."""
    return lambda: (xb, yb)


def _endless(epochs: Callable[[int], Iterator[Batch]]) -> BatchSource:
    """A batch source that runs through epoch 1, 2, 3, ... of ``epochs(epoch)`` without end."""
    def forever() -> Iterator[Batch]:
        epoch = 1
        while True:
            yield from epochs(epoch)
            epoch += 1

    batches = forever()
    return lambda: next(batches)


def memory_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, seed: int = 0) -> BatchSource:
    """``fit``'s memory pipeline: shuffled batches sliced from ``x``, ``y`` (already on the device),
    epoch after epoch. Only full batches, so every timed step has the same shape."""
    batches = BatchIterator(x, y, batch_size, shuffle=True, seed=seed, drop_last=True)
    if len(batches) == 0:
        raise ConfigError(f"memory_batches needs at least one full batch: {len(y)} images < batch {batch_size}")
    return _endless(batches.epoch)


def blog_batches(data: Data, batch_size: int = 64, device: str | torch.device = "cpu", seed: int = 0) -> BatchSource:
    """``fit``'s blog pipeline: per image uint8 -> PIL -> ``ToTensor``, collated by a ``DataLoader``
    (shuffled with fit's seeding rule), each batch copied to ``device``. Only full batches."""
    dev = torch.device(device)
    loader = blog_loader(data, batch_size, shuffle=True, pin_memory=dev.type == "cuda")
    if len(data.train_y) < batch_size:
        raise ConfigError(f"blog_batches needs at least one full batch: {len(data.train_y)} images < "
                          f"batch {batch_size}")

    def epoch_batches(epoch: int) -> Iterator[Batch]:
        loader.sampler.generator = epoch_generator(seed, epoch)
        for xb, yb in loader:
            if len(yb) == batch_size:
                yield xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)

    return _endless(epoch_batches)


# --------------------------------------------------------------------------- the timing loop


class StepTimer:
    """A model, its SGD optimizer and a batch source, trained ``steps`` steps at a time under a timer.

    The model moves to ``device`` (default: where its parameters are) and to channels_last if asked;
    ``compile`` is ``torch.compile``'s switch or mode. Keep one timer per setting and call :meth:`run`
    round after round to compare settings side by side under the same background load.
    ``check_finite`` adds ``fit``'s per-step bookkeeping (the loss kept on the device and checked for
    NaN/inf every step), to measure what it costs.
    """

    def __init__(self, model: nn.Module, batches: BatchSource | Batch, *, device: str | torch.device | None = None,
                 amp: bool | str = False, channels_last: bool = False, compile: bool | str = False,
                 lr: float = 0.1, check_finite: bool = False):
        self.device = pick_device(device, verbose=False) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.channels_last, self.check_finite = channels_last, check_finite
        self.policy = amp_policy(self.device, amp)
        self.scaler = self.policy.grad_scaler()
        self.step_model = compiled(self.model, compile)
        self.cuda_graphs = compile == "reduce-overhead" and self.device.type == "cuda"
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.next_batch = one_batch(*batches) if isinstance(batches, tuple) else batches
        self.warmup_seconds = 0.0

    def warm_up(self, steps: int = 1) -> float:
        """Train ``steps`` untimed steps (allocator, kernel choice, and compilation if any); returns their seconds."""
        self.warmup_seconds += self.run(steps).seconds if steps > 0 else 0.0
        return self.warmup_seconds

    def run(self, steps: int) -> TimingResult:
        """Train ``steps`` steps; return their :class:`TimingResult` (timed between device syncs)."""
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ConfigError(f"steps must be a whole number >= 1, got {steps!r}")
        losses = torch.zeros(steps, device=self.device) if self.check_finite else None
        images = 0
        self.model.train()
        sync_device(self.device)
        start = time.perf_counter()
        for step in range(steps):
            xb, yb = self.next_batch()
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            loss = train_step(self.step_model, self.optimizer, xb, yb, self.device, self.policy, self.scaler,
                              self.cuda_graphs)
            images += len(yb)  # on the host: no device write per step
            if losses is not None:
                losses[step] = loss
                if not bool(torch.isfinite(losses[step])):
                    lr = self.optimizer.param_groups[0]["lr"]
                    raise CourseError(f"the loss became {losses[step].item()} at timed step {step + 1}. "
                                      f"Fix: time a model that trains at this lr (lr={lr}).")
        sync_device(self.device)
        return TimingResult(steps, images, time.perf_counter() - start, self.warmup_seconds)


def time_training_steps(model: nn.Module, batches: BatchSource | Batch, steps: int, warmup: int = 1, *,
                        device: str | torch.device | None = None, amp: bool | str = False,
                        channels_last: bool = False, compile: bool | str = False, lr: float = 0.1) -> TimingResult:
    """Time ``steps`` training steps of ``model`` after ``warmup`` untimed ones.

    ``batches``: ``(xb, yb)`` (one batch on the device, ``xb``: B x C x H x W) or a batch source
    (:func:`memory_batches`, :func:`blog_batches`). The other arguments are :class:`StepTimer`'s.
    Returns a :class:`TimingResult` (``images_per_s``, ``seconds_per_step``, ``warmup_seconds``).
    """
    timer = StepTimer(model, batches, device=device, amp=amp, channels_last=channels_last, compile=compile, lr=lr)
    timer.warm_up(warmup)
    return timer.run(steps)
