"""Checks and worked solutions for notebook 05: the student's lesion (delete blocks, measure accuracy) and Li et
al.'s filter normalisation, against the library's own."""
from __future__ import annotations

import torch
from torch import nn

from ..lessons.why_residuals_work.landscape import filter_normalize
from ..lessons.why_residuals_work.lesion import lesion_accuracy
from ..models import plain_net, residual_net
from . import Report, StudentCodeError, student_call

LESION_CASES = ([], [0], [1, 3], [0, 1, 2, 3])  # blocks to delete, numbered from 0 as model.body[i]


def _example_nets(seed: int = 0) -> tuple[dict[str, nn.Module], torch.Tensor, dict[str, torch.Tensor]]:
    """A seeded plain and residual net of 4 blocks with non-trivial BatchNorm, in *training* mode (a lesion must
    switch to eval mode and back), 96 random images, and each intact net's eval-mode predictions as labels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(96, 1, 28, 28, generator=g)
    nets, labels = {}, {}
    for kind, build in (("plain", plain_net), ("residual", residual_net)):
        torch.manual_seed(seed)
        net = build(10, width=8)
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):  # statistics and affine parameters as after training
                    m.weight.uniform_(0.5, 1.5, generator=g)
                    m.bias.uniform_(-0.2, 0.2, generator=g)
            net.train()
            net(x)
            net.eval()
            # An untrained head gives every image the same class, so no lesion could change a prediction.
            # Spread the classes: a random head on the standardised pooled features of the intact net.
            pooled = net.pool(net.body(net.stem(x)))
            w = torch.randn(10, pooled.shape[1], generator=g) / pooled.std(0).clamp_min(1e-6)
            net.head.weight.copy_(w)
            net.head.bias.copy_(-(w @ pooled.mean(0)))
            labels[kind] = net(x).argmax(1)  # all right when intact: a lesion can only cost accuracy
        nets[kind] = net.train()
    return nets, x, labels


def _bn_statistics(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if "running_" in k or "num_batches_tracked" in k}


def _what_changed(net: nn.Module, body: list, params: dict, stats: dict, training: bool) -> set[str]:
    """Which of "mode", "statistics", "blocks" the student's call changed; then puts all of it back."""
    changed = set()
    if net.training != training:
        changed.add("mode")
    if any(not torch.equal(v, stats[k]) for k, v in _bn_statistics(net).items()):
        changed.add("statistics")
    if (len(net.body) != len(body) or any(a is not b for a, b in zip(net.body, body))
            or any(not torch.equal(p, params[k]) for k, p in net.named_parameters())):
        changed.add("blocks")
    with torch.no_grad():
        for i, block in enumerate(body):
            net.body[i] = block
        for k, p in net.named_parameters():
            p.copy_(params[k])
        net.load_state_dict({**net.state_dict(), **stats})
    net.train(training)
    return changed


def _lesion_hint(net: nn.Module, x, y, blocks: list[int], got: float) -> str:
    """Name the likely mistake when the student's accuracy differs from the library's."""
    if not blocks:
        return (" With no block deleted you should get the intact net's accuracy, 100% on these labels: "
                "evaluate in eval mode (model.eval()), so BatchNorm uses its stored statistics.")
    shifted = [b - 1 for b in blocks]
    if blocks and min(shifted) >= 0 and abs(got - lesion_accuracy(net, x, y, shifted)) < 1e-9:
        return (f" Your number is the accuracy without blocks {shifted}: blocks are numbered from 0, "
                f"block i is model.body[i].")
    if abs(got - 1.0) < 1e-9:
        return " That is the intact net's accuracy: did the blocks really get replaced by nn.Identity()?"
    return (" Replace each listed block by nn.Identity() (do not `del` it: that shifts the numbers of the "
            "blocks after it), evaluate in eval mode, then put the blocks back.")


_CHANGED = {
    "mode": ("is back in the mode it was given in (training mode)",
             "was left in eval mode: remember model.training before you call model.eval(), and put it back with "
             "model.train(was_training) in a `finally`"),
    "statistics": ("kept its BatchNorm running statistics",
                   "had its BatchNorm running statistics changed: a forward pass in training mode updates them. "
                   "Call model.eval() before measuring"),
    "blocks": ("has all its blocks and weights back afterwards",
               "was changed by your function: put the original blocks back (a try/finally does it even after an "
               "error), or lesion a copy.deepcopy of the model"),
}


def check_lesion(fn) -> Report:
    """``fn(model, x, y, blocks)`` must return ``model``'s accuracy on ``x``, ``y`` in eval mode with the body blocks
    ``blocks`` replaced by the identity, and leave the model's blocks, weights, statistics and mode as they were."""
    report = Report("check_lesion: your lesion against course_lib's lesion_accuracy")
    nets, x, labels = _example_nets()
    for kind, net in nets.items():
        y = labels[kind]
        body = list(net.body)
        params = {k: p.detach().clone() for k, p in net.named_parameters()}
        stats, training = _bn_statistics(net), net.training
        changed: set[str] = set()
        for blocks in LESION_CASES:
            what = f"the {kind} net without blocks {blocks}"
            try:
                got = student_call(f"measuring {what}", fn, net, x, y, list(blocks))
            except StudentCodeError as err:
                report.student_error(err)
                return report
            finally:
                changed |= _what_changed(net, body, params, stats, training)
            try:
                got = float(got)
            except (TypeError, ValueError):
                report.error(f"{what}: expected a number in [0, 1], got {type(got).__name__}")
                continue
            want = lesion_accuracy(net, x, y, blocks)
            ok = abs(got - want) <= 1 / len(y) + 1e-9  # one image of slack: batch sizes may round differently
            report.check(ok, f"{what}: {got:.1%}, as the library's lesion_accuracy",
                         f"{what}: got {got:.4g}, the library gives {want:.4g}."
                         + ("" if ok else _lesion_hint(net, x, y, list(blocks), got)))
        for key, (good, bad) in _CHANGED.items():
            report.check(key not in changed, f"the {kind} net {good}", f"the {kind} net {bad}")
    return report


def solution_lesion_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, blocks: list[int]) -> float:
    """Replace the listed blocks by the identity, measure accuracy in eval mode, put the blocks and the mode back."""
    saved = {i: model.body[i] for i in blocks}
    was_training = model.training
    try:
        for i in saved:
            model.body[i] = nn.Identity()  # a residual block without f, or a plain block removed
        model.eval()  # stored BatchNorm statistics, and a forward pass that does not update them
        with torch.no_grad():
            predictions = model(x).argmax(dim=1)
        return (predictions == y).float().mean().item()
    finally:
        for i, block in saved.items():
            model.body[i] = block
        model.train(was_training)


def check_filter_normalize(fn) -> Report:
    """``fn(direction, weights)`` (two lists of tensors) must return Li et al.'s filter-normalised direction."""
    report = Report("check_filter_normalize")
    g = torch.Generator().manual_seed(0)
    shapes = [(8, 1, 3, 3), (8,), (8,), (4, 8, 3, 3), (10, 4), (10,)]  # conv, BN weight/bias, conv, linear, bias
    weights = [torch.randn(s, generator=g) * (0.1 + i) for i, s in enumerate(shapes)]
    direction = [torch.randn(s, generator=g) for s in shapes]
    before = [d.clone() for d in direction]
    try:
        got = student_call("filter-normalising a direction", fn, direction, weights)
    except StudentCodeError as err:
        report.student_error(err)
        return report
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
