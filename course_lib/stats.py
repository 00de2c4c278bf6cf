"""The course's rule for a real difference between two models: at least 3 seeds each, Welch's t-test on the
per-seed final accuracies p < 0.05 (5% false positives), and wider than either accuracy's 95% Wilson half-width."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

from .errors import ConfigError

Z95 = 1.959963984540054  # the normal quantile for a two-sided 95% interval
ALPHA = 0.05             # the rule's false-positive rate
MIN_SEEDS = 3


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` of ``correct`` out of ``total``: (960, 1000) gives (0.946, 0.970)."""
    if total <= 0 or not 0 <= correct <= total:
        raise ConfigError(f"wilson_interval needs 0 <= correct <= total and total > 0, got {correct}/{total}")
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(accuracy: float, total: int) -> tuple[float, float]:
    """The 95% Wilson interval of an accuracy (a fraction) measured on ``total`` test images."""
    return wilson_interval(round(accuracy * total), total)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (sd is 0.0 for a single value)."""
    values = [float(v) for v in values]
    if not values:
        raise ConfigError("mean_sd needs at least one value")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def welch_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test for equal means of ``a`` and ``b`` (each at least 2 values)."""
    if len(a) < 2 or len(b) < 2:
        raise ConfigError("Welch's t-test needs at least 2 values per group")
    from scipy import stats as _st

    (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
    if sa == 0 and sb == 0:
        return 1.0 if ma == mb else 0.0
    return float(_st.ttest_ind(list(a), list(b), equal_var=False).pvalue)


def p_text(p: float) -> str:
    """A p-value as the course prints it: ``p < 0.001`` below a thousandth (never ``p = 0.000``), else 2 digits."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`compare_accuracies`: ``real`` and the numbers behind it, with a sentence."""

    real: bool
    difference: float        # mean(a) - mean(b), as a fraction
    p_value: float | None    # None when there were too few seeds to test
    half_width: float        # the larger 95% Wilson half-width of the two means
    reason: str


def compare_accuracies(a: Sequence[float], b: Sequence[float], n_test: int) -> Verdict:
    """Apply the course's rule to per-seed final test accuracies ``a`` and ``b`` (fractions) on ``n_test`` images."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    half = max((hi - lo) / 2 for lo, hi in (accuracy_interval(statistics.fmean(v), n_test) for v in (a, b)))
    if min(len(a), len(b)) < MIN_SEEDS:
        return Verdict(False, diff, None, half,
                       f"not evidence: {min(len(a), len(b))} seed(s); the rule needs at least {MIN_SEEDS} per model")
    p = welch_p_value(a, b)
    if p >= ALPHA:
        return Verdict(False, diff, p, half, f"not shown to be real (Welch {p_text(p)} >= {ALPHA})")
    if abs(diff) <= half:
        return Verdict(False, diff, p, half, f"too small for the test set: {100 * abs(diff):.1f} points is inside "
                                             f"the ±{100 * half:.1f}-point Wilson interval")
    return Verdict(True, diff, p, half, f"a real difference (Welch {p_text(p)}{'' if p < 0.001 else f' < {ALPHA}'}; {100 * abs(diff):.1f} "
                                        f"points > ±{100 * half:.1f}-point Wilson interval)")
