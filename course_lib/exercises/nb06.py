"""Checks for notebook 06 (training a ResNet well): write the sound recipe's learning-rate schedule."""
from __future__ import annotations

import math
from typing import Callable

from . import Report, StudentCodeError, student_call
from ..training import warmup_cosine

# the cases the check tries: (total_steps, warmup_steps, peak_lr)
CASES = ((100, 10, 0.1), (469 * 15, 469, 0.1), (50, 0, 0.5), (7, 3, 1.0))


# the course's answer is the schedule fit uses (docs/answers/06.md writes it out)
solution_warmup_cosine = warmup_cosine


def _first_problem(fn: Callable, total: int, warmup: int, peak: float) -> str | None:
    """The first step at which ``fn`` differs from the schedule, said the way a student can act on."""
    for step in range(total):
        got = student_call(f"computing step {step} of {total}", fn, step, total, warmup, peak)
        want = warmup_cosine(step, total, warmup, peak)
        if not isinstance(got, (int, float)) or isinstance(got, bool) or not math.isfinite(got):
            return f"step {step} returned {got!r}: return the learning rate as a float"
        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            phase = ("during the warm-up (lr should rise linearly to the peak: step s gets peak * (s + 1) / warmup)"
                     if step < warmup else "after the warm-up (lr should fall along half a cosine from the peak to "
                                           "0 at total_steps)")
            return f"step {step} of {total} (warm-up {warmup}, peak {peak}): got {got:.6g}, expected {want:.6g}, {phase}"
    return None


def check_schedule(fn: Callable[[int, int, int, float], float]) -> Report:
    """Compare the student's ``fn(step, total_steps, warmup_steps, peak_lr)`` with the course's schedule at every
    step of a few schedules, naming the first step that differs and what that step should be."""
    report = Report("Checking your schedule, fn(step, total_steps, warmup_steps, peak_lr):")
    for total, warmup, peak in CASES:
        try:
            problem = _first_problem(fn, total, warmup, peak)
        except StudentCodeError as err:
            report.student_error(err)
            return report
        label = f"{total} steps, {warmup} of warm-up, peak {peak}"
        if not report.check(problem is None, f"{label}: every step right", problem or ""):
            return report
    return report
