"""Checks for notebook 04 (the blog's experiment): is a difference between two models real?"""
from __future__ import annotations

from typing import Callable

from . import Report, StudentCodeError, student_call
from ..stats import accuracy_interval, compare_accuracies, welch_p_value


_REAL_CASES = [  # (acc_a, acc_b, n_test, why); the expected answer is the course's own compare_accuracies
    ([0.97], [0.10], 10_000, "one seed each: never evidence, however large the gap"),
    ([0.97, 0.971], [0.95, 0.951], 10_000, "two seeds each: still not enough"),
    ([0.968, 0.960, 0.966], [0.958, 0.958, 0.947], 1_000, "the saved sample run, ResNet vs plain twin: p = 0.09"),
    ([0.970, 0.971, 0.969], [0.950, 0.951, 0.949], 10_000, "3 tight seeds each, 2 points apart"),
    ([0.950, 0.951, 0.949], [0.970, 0.971, 0.969], 10_000, "the same, arguments swapped: the order must not matter"),
    ([0.965, 0.966, 0.9655], [0.960, 0.961, 0.9605], 1_000, "p < 0.05, but 0.5 points is inside the Wilson interval "
                                                           "of 1,000 test images"),
    ([0.965, 0.966, 0.9655], [0.960, 0.961, 0.9605], 100_000, "the same accuracies on 100,000 test images"),
    ([0.96, 0.50, 0.95, 0.97], [0.10, 0.11, 0.10, 0.12], 1_000, "4 seeds, one of which stalled"),
]


def solution_real_difference(acc_a, acc_b, n_test) -> bool:
    """A worked solution (docs/answers/04.md): the course's rule, written out."""
    if min(len(acc_a), len(acc_b)) < 3:
        return False  # one or two seeds are never evidence
    if welch_p_value(acc_a, acc_b) >= 0.05:
        return False  # not shown to be real: the seeds' spread could explain the gap
    mean_a, mean_b = sum(acc_a) / len(acc_a), sum(acc_b) / len(acc_b)
    half = max((hi - lo) / 2 for lo, hi in (accuracy_interval(m, n_test) for m in (mean_a, mean_b)))
    return abs(mean_a - mean_b) > half  # larger than what the test set can resolve


def check_real_difference(fn: Callable) -> Report:
    """Check the student's ``real_difference(acc_a, acc_b, n_test) -> bool`` against the course's rule."""
    report = Report("real_difference")
    for acc_a, acc_b, n, why in _REAL_CASES:
        expected = compare_accuracies(acc_a, acc_b, n).real
        try:
            got = student_call(f"calling real_difference({acc_a}, {acc_b}, {n})", fn, acc_a, acc_b, n)
        except StudentCodeError as err:
            report.student_error(err)
            return report
        is_bool = isinstance(got, bool) or type(got).__name__ == "bool_"  # numpy's bool too
        report.check(is_bool and bool(got) == expected, f"{acc_a} vs {acc_b} on {n:,} images -> {expected} ({why})",
                     f"{acc_a} vs {acc_b} on {n:,} images: expected {expected} ({why}), got {got!r}")
    return report
