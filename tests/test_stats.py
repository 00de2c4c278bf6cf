"""course_lib.stats: the Wilson interval against published values, and each branch of the rule for a real difference."""
from __future__ import annotations

import numpy as np
import pytest

from course_lib.errors import ConfigError
from course_lib.stats import (ALPHA, MIN_SEEDS, accuracy_interval, compare_accuracies, mean_sd, welch_p_value,
                              wilson_interval)


@pytest.mark.parametrize("correct, total, low, high", [
    (960, 1000, 0.9460, 0.9705),  # the docstring's example
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3 (Wilson)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_published_values(correct, total, low, high):
    lo, hi = wilson_interval(correct, total)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_at_the_edges_stays_inside_0_1_and_is_not_empty():
    z2 = 1.959963984540054 ** 2
    assert wilson_interval(0, 10) == (0.0, pytest.approx(z2 / (10 + z2)))  # 0.2775: never "exactly 0%"
    assert wilson_interval(10, 10) == (pytest.approx(10 / (10 + z2)), pytest.approx(1.0))  # 0.7225: never "exactly 100%"
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(1 - hi) and lo < 0.5 < hi  # symmetric around one half


def test_more_test_images_give_a_narrower_interval():
    widths = [np.diff(wilson_interval(int(0.96 * n), n))[0] for n in (100, 1000, 10000)]
    assert widths[0] > widths[1] > widths[2]
    assert accuracy_interval(0.96, 1000) == wilson_interval(960, 1000)


@pytest.mark.parametrize("correct, total", [(1, 0), (-1, 10), (11, 10), (0, -5)])
def test_impossible_counts_are_refused(correct, total):
    with pytest.raises(ConfigError, match="0 <= correct <= total"):
        wilson_interval(correct, total)


def test_mean_sd_over_seeds():
    assert mean_sd([0.9, 0.92, 0.94]) == (pytest.approx(0.92), pytest.approx(0.02))
    assert mean_sd([0.9]) == (0.9, 0.0)  # one seed has no spread (and is never evidence)
    with pytest.raises(ConfigError):
        mean_sd([])


def test_welch_p_value_edge_cases():
    assert welch_p_value([0.9, 0.9], [0.9, 0.9]) == 1.0
    assert welch_p_value([0.9, 0.9], [0.8, 0.8]) == 0.0
    assert welch_p_value([0.90, 0.91, 0.92], [0.90, 0.91, 0.92]) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="at least 2"):
        welch_p_value([0.9], [0.8, 0.81])


def test_fewer_than_three_seeds_is_never_evidence():
    v = compare_accuracies([0.99, 0.99], [0.50, 0.50, 0.50], 10_000)
    assert not v.real and v.p_value is None and f"at least {MIN_SEEDS}" in v.reason
    assert v.difference == pytest.approx(0.49)


def test_within_seed_noise_is_not_real():
    v = compare_accuracies([0.95, 0.97, 0.96], [0.955, 0.965, 0.958], 10_000)
    assert not v.real and v.p_value >= ALPHA and "not shown to be real (Welch p = " in v.reason


def test_a_gap_inside_the_wilson_interval_is_too_small_for_the_test_set():
    v = compare_accuracies([0.951, 0.952, 0.953], [0.941, 0.942, 0.943], 1000)
    assert v.p_value < ALPHA  # the seeds agree ...
    assert not v.real and abs(v.difference) <= v.half_width and "too small for the test set" in v.reason
    # ... and the same gap on ten times the test images is resolved
    assert compare_accuracies([0.951, 0.952, 0.953], [0.941, 0.942, 0.943], 10_000).real


def test_a_real_difference_either_way():
    v = compare_accuracies([0.98, 0.981, 0.982], [0.90, 0.905, 0.91], 10_000)
    assert v.real and v.difference == pytest.approx(0.076) and v.p_value < ALPHA and "real difference" in v.reason
    w = compare_accuracies([0.90, 0.905, 0.91], [0.98, 0.981, 0.982], 10_000)
    assert w.real and w.difference == pytest.approx(-0.076)


def test_the_rule_calls_equal_models_different_at_most_about_5_percent_of_the_time():
    """The false-positive rate the course states: two equally good models, normal seed noise, 3 seeds each."""
    rng = np.random.RandomState(0)
    trials = 1000
    real = sum(compare_accuracies(list(0.95 + 0.004 * rng.randn(3)), list(0.95 + 0.004 * rng.randn(3)), 100_000).real
               for _ in range(trials))
    assert 0.02 < real / trials <= 0.07
