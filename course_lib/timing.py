"""The course's one timing loop: each timed step is exactly a step of ``fit``, timed between device syncs so that
on a GPU the clock measures the work, not its launch."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from .data import BatchIterator, Data, blog_loader, epoch_generator
from .devices import amp_policy, flush_denormals, pick_device, sync_device
from .errors import ConfigError, CourseError
from .training import compiled, train_step

Batch = tuple[torch.Tensor, torch.Tensor]
BatchSource = Callable[[], Batch]


@dataclass(frozen=True)
class TimingResult:
    """``steps`` training steps over ``images`` images in ``seconds``, after ``warmup_seconds`` of untimed steps."""

    steps: int
    images: int
    seconds: float
    warmup_seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / self.steps

    def as_dict(self) -> dict:
        """The run as JSON values, rates included."""
        return dict(steps=self.steps, images=self.images, seconds=self.seconds, warmup_seconds=self.warmup_seconds,
                    images_per_s=self.images_per_s, seconds_per_step=self.seconds_per_step)


def _endless(epochs: Callable[[int], Iterator[Batch]]) -> BatchSource:
    """Epoch 1, 2, 3, ... of ``epochs(epoch)``, without end."""
    batches = itertools.chain.from_iterable(map(epochs, itertools.count(1)))
    return lambda: next(batches)


def memory_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, seed: int = 0) -> BatchSource:
    """``fit``'s memory pipeline: shuffled full batches sliced from ``x``, ``y`` (on the device), without end."""
    batches = BatchIterator(x, y, batch_size, shuffle=True, seed=seed, drop_last=True)
    if len(batches) == 0:
        raise ConfigError(f"memory_batches needs at least one full batch: {len(y)} images < batch {batch_size}")
    return _endless(batches.epoch)


def blog_batches(data: Data, batch_size: int = 64, device: str | torch.device = "cpu", seed: int = 0) -> BatchSource:
    """``fit``'s blog pipeline (uint8 -> PIL -> ``ToTensor`` -> ``DataLoader``), full batches copied to ``device``."""
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


class StepTimer:
    """A model, its SGD optimizer and a batch source (or one batch), trained ``steps`` steps at a time on ``device``
    (default: its parameters'). ``check_finite`` adds ``fit``'s per-step NaN/inf check."""

    def __init__(self, model: nn.Module, batches: BatchSource | Batch, *, device: str | torch.device | None = None,
                 amp: bool | str = False, channels_last: bool = False, compile: bool | str = False,
                 lr: float = 0.1, check_finite: bool = False):
        flush_denormals()
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
        self.next_batch = (lambda: batches) if isinstance(batches, tuple) else batches  # one batch: no data work
        self.warmup_seconds = 0.0

    def warm_up(self, steps: int = 1) -> float:
        """Train ``steps`` untimed steps (allocator, kernel choice, compilation); return the warm-up seconds."""
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
    """Time ``steps`` training steps of ``model`` after ``warmup`` untimed ones (arguments as :class:`StepTimer`)."""
    timer = StepTimer(model, batches, device=device, amp=amp, channels_last=channels_last, compile=compile, lr=lr)
    timer.warm_up(warmup)
    return timer.run(steps)


def interleaved_rounds(timers: Sequence[StepTimer], steps: int, rounds: int,
                       warmup: int = 1) -> Iterator[list[TimingResult]]:
    """After ``warmup`` untimed steps each, time every timer ``steps`` steps over ``rounds`` rounds; yield each
    round's results in ``timers``' order. Round r starts with timer r, so background load falls on all alike."""
    for timer in timers:
        timer.warm_up(warmup)
    rounds = max(1, min(rounds, steps))
    for r in range(rounds):
        n = steps // rounds + (r < steps % rounds)
        order = [(r + i) % len(timers) for i in range(len(timers))]
        done = {i: timers[i].run(n) for i in order}
        yield [done[i] for i in range(len(timers))]
