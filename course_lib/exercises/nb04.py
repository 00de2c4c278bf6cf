"""Checks for notebook 04 (the blog's experiment): seed noise, and the shuffle the blog forgot."""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from . import Report, StudentCodeError, student_call


# --------------------------------------------------------------------------- exercise 1: real difference or noise?


def gap_beyond_noise_solution(acc_a: Sequence[float], acc_b: Sequence[float]) -> bool:
    """True when the two sets of per-seed accuracies do not overlap: every seed of one beats every seed of the other."""
    return min(acc_a) > max(acc_b) or min(acc_b) > max(acc_a)


_GAP_CASES = [  # (acc_a, acc_b, expected, why)
    ([0.97, 0.96, 0.965], [0.79, 0.27, 0.55], True, "every ResNet seed beats every plain seed"),
    ([0.97, 0.90], [0.95, 0.80], False, "the ranges 0.90-0.97 and 0.80-0.95 overlap"),
    ([0.50], [0.51], True, "one seed each cannot overlap (which is why one seed proves little)"),
    ([0.80, 0.82], [0.91, 0.93], True, "b beats a on every seed: the order of the arguments must not matter"),
    ([0.90, 0.95], [0.95, 0.99], False, "0.95 appears in both: touching ranges overlap"),
]


def check_gap_beyond_noise(fn: Callable) -> Report:
    """Check the student's ``gap_beyond_noise(acc_a, acc_b) -> bool`` on hand-made cases."""
    report = Report("gap_beyond_noise")
    for acc_a, acc_b, expected, why in _GAP_CASES:
        try:
            got = student_call(f"calling gap_beyond_noise({acc_a}, {acc_b})", fn, acc_a, acc_b)
        except StudentCodeError as err:
            report.student_error(err)
            return report
        is_bool = isinstance(got, bool) or type(got).__name__ == "bool_"  # numpy's bool too
        report.check(is_bool and bool(got) == expected,
                     f"{acc_a} vs {acc_b} -> {expected} ({why})",
                     f"{acc_a} vs {acc_b}: expected {expected} ({why}), got {got!r}")
    return report


# --------------------------------------------------------------------------- exercise 2: the missing shuffle


def shuffled_batches_solution(x: torch.Tensor, y: torch.Tensor, batch_size: int,
                              generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of a fresh random order: one permutation per call, images and labels kept together."""
    order = torch.randperm(len(y), generator=generator)
    return [(x[order[i:i + batch_size]], y[order[i:i + batch_size]]) for i in range(0, len(y), batch_size)]


def _toy(n: int = 150) -> tuple[torch.Tensor, torch.Tensor]:
    # image i is filled with the value i, its label is i % 10: pairing and coverage can be read back.
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 28, 28).clone()
    return x, torch.arange(n) % 10


def check_shuffled_batches(fn: Callable) -> Report:
    """Check the student's ``shuffled_batches(x, y, batch_size, generator)`` on 150 numbered toy images."""
    report = Report("shuffled_batches")
    x, y = _toy()

    def call(seed: int):
        return student_call(f"calling shuffled_batches(x, y, 64, generator seeded {seed})", fn,
                            x, y, 64, torch.Generator().manual_seed(seed))

    try:
        first, again, other = call(0), call(0), call(1)
    except StudentCodeError as err:
        report.error("not implemented yet: replace `raise NotImplementedError` with your code"
                     if "NotImplementedError" in str(err) else str(err))
        return report
    try:
        batches = [(xb, yb) for xb, yb in first]
    except (TypeError, ValueError):
        report.error(f"expected a list of (images, labels) pairs, got {type(first).__name__}")
        return report
    sizes = [len(yb) for _, yb in batches]
    report.check(sizes == [64, 64, 22], "batch sizes 64, 64, 22 (the last batch keeps the remainder)",
                 f"batch sizes should be [64, 64, 22] for 150 images, got {sizes}")
    if sizes != [64, 64, 22]:
        return report
    ids = torch.cat([xb[:, 0, 0, 0] for xb, _ in batches]).long()
    labels = torch.cat([yb for _, yb in batches])
    report.check(sorted(ids.tolist()) == list(range(150)), "every image appears exactly once per epoch",
                 "some images are missing or repeated: an epoch must use each image exactly once")
    report.check(bool((labels == ids % 10).all()), "each image keeps its own label",
                 "images and labels got separated: index both with the same permutation")
    report.check(ids.tolist() != list(range(150)), "the order is shuffled, not the stored order",
                 "the batches come in the stored order: that is the blog's bug")

    def order(result):
        return torch.cat([xb[:, 0, 0, 0] for xb, _ in result]).long().tolist()

    report.check(order(again) == ids.tolist(), "the same seed gives the same order (reproducible)",
                 "two generators with the same seed gave different orders: draw the order from `generator`")
    report.check(order(other) != ids.tolist(), "another seed (another epoch) gives another order",
                 "a different generator gave the same order: draw a fresh permutation from `generator` each call")
    return report
