"""Checks for notebook 06 (training fast): predict, then measure, what channels_last gives on this machine."""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
from torch import nn

from . import Report, StudentCodeError, student_call
from ..models import build_model
from ..timing import time_training_steps
from ..training import seed_everything

ROUNDS = 2  # each layout is timed twice, in turns, and the faster round kept: other programs only ever slow a round


def solution_speed_of(channels_last: bool, batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                      steps: int = 10, model: str = "blog-cnn") -> float:
    """Training images/s of a fresh ``model`` (default BlogCNN) on ``batch`` (``xb``: 64 x 1 x 28 x 28,
    ``yb``: 64; default a seeded random batch: the pixel values do not change the time), NCHW or ``channels_last``."""
    if batch is None:
        g = torch.Generator().manual_seed(0)
        batch = (torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g))
    seed_everything(0)
    net = build_model(model)
    timed = time_training_steps(net, batch, steps, warmup=2, device="cpu", channels_last=channels_last)
    return timed.images_per_s


class _ConvSpy:
    """Watches every convolution with more than one input channel while the student's code runs (a global
    forward hook): the layout of its weights, and how many images it saw while training with gradients."""

    def __init__(self):
        self.layouts: set[str] = set()
        self.images: dict[int, int] = {}  # per convolution: images seen in training forward passes

    def __call__(self, module: nn.Module, inputs, output) -> None:
        if isinstance(module, nn.Conv2d) and module.in_channels > 1:
            w = module.weight
            nhwc, nchw = w.is_contiguous(memory_format=torch.channels_last), w.is_contiguous()
            if nhwc != nchw:  # a 1x1 kernel is both at once: it says nothing about the layout
                self.layouts.add("channels_last" if nhwc else "NCHW")
            if module.training and torch.is_grad_enabled():
                self.images[id(module)] = self.images.get(id(module), 0) + inputs[0].shape[0]

    @property
    def training_images(self) -> int:
        """Images that went through the model in training mode (each convolution sees each image once)."""
        return max(self.images.values(), default=0)


def _timed_call(speed_of: Callable, layout: bool) -> tuple[object, _ConvSpy, float]:
    spy = _ConvSpy()
    handle = nn.modules.module.register_module_forward_hook(spy)
    start = time.perf_counter()
    try:
        rate = student_call(f"calling speed_of(channels_last={layout})", speed_of, layout)
    finally:
        handle.remove()
    return rate, spy, time.perf_counter() - start


def _prediction_problem(prediction) -> str | None:
    ok = isinstance(prediction, (int, float)) and not isinstance(prediction, bool) and math.isfinite(prediction) \
        and 0 < prediction <= 10
    return None if ok else (f"prediction should be a number: channels_last images/s divided by NCHW images/s, "
                            f"e.g. 1.1 for 10% faster or 0.9 for 10% slower; got {prediction!r}")


def _rate_problem(layout: bool, rate, spy: _ConvSpy, seconds: float) -> str | None:
    """What is wrong with one call of the student's ``speed_of``, or None."""
    call, name = f"speed_of(channels_last={layout})", "channels_last" if layout else "NCHW"
    if not (isinstance(rate, (int, float)) and not isinstance(rate, bool) and math.isfinite(rate) and rate > 0):
        return (f"{call} should return images per second (a positive number, e.g. `.images_per_s` of "
                f"time_training_steps), got {rate!r}")
    if spy.training_images == 0:
        return (f"{call} trained no model: no convolution ran in training mode with gradients. Time training "
                f"steps (time_training_steps), not evaluation.")
    if spy.layouts != {name}:
        return (f"{call} should train with {name} weights, but the convolutions ran with "
                f"{' and '.join(sorted(spy.layouts))} weights. Pass channels_last={layout} to time_training_steps.")
    floor = spy.training_images / seconds  # images trained / the call's whole time (model build and warm-up included)
    if rate < 0.5 * floor:  # generous: a timed round slowed by another program must not fail a right answer
        return (f"{call} returned {rate:,.2f}, but {spy.training_images} images were trained in {seconds:.1f} s, "
                f"so at least {floor:,.0f} images/s. Return images per second, not steps per second or seconds.")
    return None


def check_channels_last(speed_of: Callable[[bool], float], prediction) -> Report:
    """Check the student's ``speed_of(channels_last) -> images/s`` and their ``prediction`` of the ratio, then
    report what was measured: channels_last images/s over NCHW images/s on this machine, each the better of
    :data:`ROUNDS` rounds taken in turns."""
    report = Report("channels_last: prediction and measurement")
    problem = _prediction_problem(prediction)
    report.check(problem is None, f"your prediction: channels_last at x{prediction} the speed of NCHW", problem or "")
    best = {False: 0.0, True: 0.0}
    for _ in range(ROUNDS):
        for layout in (False, True):
            try:
                rate, spy, seconds = _timed_call(speed_of, layout)
            except StudentCodeError as err:
                report.student_error(err)
                return report
            problem = _rate_problem(layout, rate, spy, seconds)
            if problem:
                report.error(problem)
                return report
            best[layout] = max(best[layout], rate)
    for layout in (False, True):
        report.check(True, f"speed_of(channels_last={layout}) trained with {'channels_last' if layout else 'NCHW'} "
                           f"weights: {best[layout]:,.0f} images/s (the better of {ROUNDS} rounds)", "")
    ratio = best[True] / best[False]
    line = f"measured on this machine: channels_last at x{ratio:.2f} the speed of NCHW"
    if report.passed:
        close = abs(prediction / ratio - 1) <= 0.1
        line += f"; your prediction x{prediction} is {'within' if close else 'more than'} 10% {'of it' if close else 'off'}"
    report.check(True, line, "")
    return report
