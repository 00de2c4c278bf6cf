"""Checks and worked solutions for notebook 05 (why residual networks work).

* :func:`check_path_counts`: how many paths of each length n residual blocks give.
* :func:`check_filter_normalize`: Li et al.'s filter normalisation, the heart of the loss-landscape method.

Each check runs the student's function through :func:`student_call` (their own error
and line are reported if it raises) and returns a :class:`Report`. A stub that raises
``NotImplementedError`` is reported as "not implemented yet", never as a crash.
"""
from __future__ import annotations

import math

import torch

from ..lessons.why_residuals_work.landscape import filter_normalize
from . import Report, StudentCodeError, student_call


def _not_done(report: Report, err: StudentCodeError) -> Report:
    if "NotImplementedError" in str(err):
        report.error("not implemented yet: replace `raise NotImplementedError` by your code and run the check again")
    else:
        report.error(str(err))
    return report


def check_path_counts(fn) -> Report:
    """``fn(n)`` must return a list of n + 1 whole numbers: the number of paths of length k = 0..n."""
    report = Report("check_path_counts")
    for n in (1, 3, 6, 10):
        try:
            got = student_call(f"counting paths for n={n}", fn, n)
        except StudentCodeError as err:
            return _not_done(report, err)
        want = [math.comb(n, k) for k in range(n + 1)]
        try:
            got = [int(v) for v in got]
        except (TypeError, ValueError):
            report.error(f"n={n}: expected a list of whole numbers, got {got!r}")
            continue
        if len(got) != n + 1:
            report.error(f"n={n}: expected {n + 1} numbers (lengths 0..{n}), got {len(got)}")
            continue
        report.check(got == want, f"n={n}: {got} (they sum to 2^{n} = {2 ** n})",
                     f"n={n}: got {got}, expected {want}. Hint: a path picks a subset of the blocks "
                     f"whose f it passes through; how many subsets of size k are there?")
    return report


def solution_path_counts(n: int) -> list[int]:
    """A path chooses, for each block, the skip or f: C(n, k) paths pass through exactly k of the f's."""
    return [math.comb(n, k) for k in range(n + 1)]


def _example_tensors(seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(8, 1, 3, 3), (8,), (8,), (4, 8, 3, 3), (10, 4), (10,)]  # conv, BN weight/bias, conv, linear, bias
    weights = [torch.randn(s, generator=g) * (0.1 + i) for i, s in enumerate(shapes)]
    direction = [torch.randn(s, generator=g) for s in shapes]
    return direction, weights


def check_filter_normalize(fn) -> Report:
    """``fn(direction, weights)`` (two lists of tensors) must return Li et al.'s filter-normalised direction."""
    report = Report("check_filter_normalize")
    direction, weights = _example_tensors()
    before = [d.clone() for d in direction]
    try:
        got = student_call("filter-normalising a direction", fn, direction, weights)
    except StudentCodeError as err:
        return _not_done(report, err)
    want = filter_normalize(before, weights)
    if not isinstance(got, (list, tuple)) or len(got) != len(want):
        report.error(f"expected a list of {len(want)} tensors (one per parameter), got {type(got).__name__}"
                     + (f" of length {len(got)}" if hasattr(got, "__len__") else ""))
        return report
    shapes_ok = all(isinstance(g, torch.Tensor) and g.shape == w.shape for g, w in zip(got, want))
    report.check(shapes_ok, "one tensor per parameter, with the parameter's shape",
                 "each returned tensor must have the shape of its parameter")
    if not shapes_ok:
        return report
    multi = [i for i, w in enumerate(weights) if w.dim() > 1]
    single = [i for i, w in enumerate(weights) if w.dim() <= 1]
    norms_ok = all(torch.allclose(got[i].flatten(1).norm(dim=1), weights[i].flatten(1).norm(dim=1), rtol=1e-4)
                   for i in multi)
    report.check(norms_ok, "every filter of the direction has the norm of the weight's filter",
                 "filter norms differ: for each output channel i, rescale d[i] so that ||d[i]|| = ||w[i]||")
    same_dir = all(torch.allclose(got[i], want[i], rtol=1e-4, atol=1e-6) for i in multi)
    report.check(same_dir, "each filter keeps the direction of the random draw (only its length changes)",
                 "the filters do not point the same way as the random draw: multiply d[i] by ||w[i]|| / ||d[i]||, "
                 "do not replace it")
    zeros_ok = all(torch.count_nonzero(got[i]) == 0 for i in single)
    report.check(zeros_ok, "biases and BatchNorm parameters (1-D) get a zero direction",
                 "1-D parameters (biases, BatchNorm) should get zeros: Li et al. do not perturb them")
    unchanged = all(torch.equal(a, b) for a, b in zip(direction, before))
    report.check(unchanged, "the input direction was left unchanged",
                 "your function changed the direction passed in; return new tensors instead (avoid in-place ops)")
    return report


def solution_filter_normalize(direction: list[torch.Tensor], weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Rescale each filter d[i] to the norm of w[i]; zero for biases and BatchNorm parameters."""
    out = []
    for d, w in zip(direction, weights):
        if w.dim() <= 1:
            out.append(torch.zeros_like(w))
        else:
            scale = w.flatten(1).norm(dim=1) / d.flatten(1).norm(dim=1)  # one number per filter
            out.append(d * scale.view(-1, *[1] * (d.dim() - 1)))
    return out
