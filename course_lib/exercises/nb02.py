"""Checks for notebook 02: the student's pre-activation residual block, against the worked solution
:class:`SolutionPreActBlock` below (shapes, identity at zero-init, parameters, outputs)."""
from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..lessons.building_resnets import randomize_batchnorm
from ..models import count_params
from . import Report, StudentCodeError, student_call

# (in_channels, out_channels, stride) cases and the input each gets: N x C x 8 x 8
CASES = ((16, 16, 1), (16, 16, 2), (16, 32, 1), (16, 32, 2))
BATCH, SIZE = 2, 8


def _name(c_in: int, c_out: int, stride: int, zero_init: bool = False) -> str:
    return f"MyPreActBlock({c_in}, {c_out}, stride={stride}" + (", zero_init=True)" if zero_init else ")")


def _build(block_cls, c_in: int, c_out: int, stride: int, zero_init: bool = False) -> nn.Module:
    return student_call(f"building {_name(c_in, c_out, stride, zero_init)}", block_cls,
                        c_in, c_out, stride=stride, zero_init=zero_init)


def _usable(block_cls, report: Report) -> bool:
    """Is ``block_cls`` an nn.Module class that takes (in_channels, out_channels, stride=, zero_init=)?"""
    if not (inspect.isclass(block_cls) and issubclass(block_cls, nn.Module)):
        report.error(f"MyPreActBlock must be a class derived from nn.Module; got {block_cls!r}.")
        return False
    try:
        inspect.signature(block_cls).bind(16, 16, stride=1, zero_init=False)
    except TypeError as err:
        report.error(f"MyPreActBlock must accept MyPreActBlock(in_channels, out_channels, stride=1, zero_init=False)"
                     f" but calling it that way fails: {err}. Fix the __init__ arguments.")
        return False
    except ValueError:
        pass  # no signature to inspect: let the calls below tell
    return True


def _param_hint(theirs: int, expected: int, c_in: int, c_out: int) -> str:
    diff = theirs - expected
    if c_in != c_out and diff == 2 * (c_out - c_in):
        return " Hint: bn1 comes *before* conv1, so it normalises the block's input: BatchNorm2d(in_channels)."
    if diff == -c_in * c_out:
        return " Hint: the projection shortcut (1x1 conv with the block's stride) is missing."
    if diff in (c_out, 2 * c_out):
        return (" Hint: extra vectors of size out_channels: the convs need no bias (bias=False), and the paper's "
                "projection is a bare 1x1 conv, without a BatchNorm after it.")
    return " Hint: BN(in) -> relu -> conv3x3(stride) -> BN(out) -> relu -> conv3x3; a 1x1 conv where the shape changes."


def _shape_checks(block_cls, report: Report) -> dict | None:
    """Check the four shape cases; return the built blocks, or None when the block is not written yet."""
    blocks, errors_seen = {}, set()
    for c_in, c_out, stride in CASES:
        name = _name(c_in, c_out, stride)
        try:
            block = _build(block_cls, c_in, c_out, stride)
            out = student_call("running its forward", block, torch.randn(BATCH, c_in, SIZE, SIZE))
        except StudentCodeError as err:
            if "NotImplementedError" in str(err):
                report.error(f"MyPreActBlock is not implemented yet: {err}. Replace each `raise NotImplementedError`"
                             f" by your code.")
                return None
            if str(err) not in errors_seen:  # the same error in every case is reported once
                errors_seen.add(str(err))
                hint = (" Hint: x and f(x) differ in shape here, so x must go through the projection "
                        "(1x1 conv with the block's stride) before the addition."
                        if "must match the size" in str(err) else "")
                report.error(f"{name}: {err}.{hint}")
            continue
        expected = (BATCH, c_out, (SIZE - 1) // stride + 1, (SIZE - 1) // stride + 1)
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        if report.check(got == expected, f"shape: {name} maps {(BATCH, c_in, SIZE, SIZE)} -> {expected}",
                        f"shape: {name} returned {got}, expected {expected}."):
            blocks[(c_in, c_out, stride)] = block
    return blocks


def _identity_checks(block_cls, report: Report) -> None:
    """Zero-init gives the identity on any input, in both modes; the default init does not."""
    x = torch.randn(BATCH, 16, SIZE, SIZE)  # negative entries too: nothing may follow the sum
    try:
        block = _build(block_cls, 16, 16, 1, zero_init=True)
        for mode in ("train", "eval"):
            out = student_call("running its forward", block.train(mode == "train"), x)
            gap = (out - x).abs().max().item() if isinstance(out, Tensor) and out.shape == x.shape else float("inf")
            report.check(gap <= 1e-6, f"identity at zero-init ({mode} mode): {_name(16, 16, 1, True)} returns x, "
                                      f"negative entries included",
                         f"identity at zero-init ({mode} mode): {_name(16, 16, 1, True)} should return x unchanged, "
                         f"but max |y - x| = {gap:.3g}. Hint: set conv2's weight to 0 when zero_init is true, and "
                         f"apply nothing after the addition (no relu: a pre-activation block ends with the sum).")
        out = student_call("running its forward", _build(block_cls, 16, 16, 1), x)
        moved = isinstance(out, Tensor) and out.shape == x.shape and not torch.allclose(out, x)
        report.check(moved, f"without zero_init, {_name(16, 16, 1)} is not the identity (f(x) != 0)",
                     f"without zero_init, {_name(16, 16, 1)} returns its input: f(x) should only be 0 when "
                     f"zero_init=True.")
    except StudentCodeError as err:
        report.error(f"identity at zero-init: {err}.")


def _matched_state(student: nn.Module, reference: nn.Module) -> dict | None:
    """The student's weights under the reference's names: by name, else module by module in the order built
    (BN and conv of the same shapes); None when some reference layer has no match."""
    theirs = student.state_dict()
    if set(theirs) == set(reference.state_dict()):
        return theirs
    kinds = (nn.BatchNorm2d, nn.Conv2d)
    pool = [m for m in student.modules() if isinstance(m, kinds)]
    state = {}
    for ref_name, ref in reference.named_modules():
        if not isinstance(ref, kinds):
            continue
        shapes = {k: v.shape for k, v in ref.state_dict().items()}
        match = next((m for m in pool if type(m) is type(ref)
                      and {k: v.shape for k, v in m.state_dict().items()} == shapes), None)
        if match is None:
            return None
        pool.remove(match)
        state.update({f"{ref_name}.{k}": v for k, v in match.state_dict().items()})
    return state


def _output_checks(blocks: dict, report: Report) -> None:
    """With its own weights (BatchNorm randomised: fresh BNs would hide a misplaced one) copied into the reference,
    the same outputs in eval and in train mode."""
    pairs = []
    for (c_in, c_out, stride), block in blocks.items():
        reference = SolutionPreActBlock(c_in, c_out, stride)
        state = _matched_state(randomize_batchnorm(block, seed=c_in + c_out + stride), reference)
        if state is None or count_params(block) != count_params(reference):
            report.error(f"outputs: {_name(c_in, c_out, stride)}: its layers do not match the reference's (bn1, "
                         f"conv1, bn2, conv2 and, where the shape changes, the shortcut), so the outputs cannot be "
                         f"compared. Fix the parameter count first.")
            return
        reference.load_state_dict(state)
        pairs.append((_name(c_in, c_out, stride), block, reference,
                      torch.randn(BATCH, c_in, SIZE, SIZE, generator=torch.Generator().manual_seed(stride))))
    for mode in ("eval", "train"):
        wrong = []
        for name, block, reference, x in pairs:
            block.train(mode == "train"), reference.train(mode == "train")
            try:
                with torch.no_grad():
                    got = student_call(f"running {name} in {mode} mode", block, x.clone())
                    want = reference(x.clone())
            except StudentCodeError as err:
                report.student_error(err)
                return
            same = isinstance(got, Tensor) and got.shape == want.shape
            if not (same and torch.allclose(got, want, rtol=1e-5, atol=1e-5)):
                wrong.append(f"{name} by up to {(got - want).abs().max().item() if same else float('inf'):.3g}")
        report.check(not wrong, f"outputs ({mode} mode): with its own weights (BatchNorm weights and statistics "
                                f"randomised), each of the {len(pairs)} blocks computes what the reference block "
                                f"computes with them",
                     f"outputs ({mode} mode): holding the same weights (BatchNorm randomised), your block and the "
                     f"reference block differ: {'; '.join(wrong)}. Hint: f = conv2(relu(bn2(conv1(relu(bn1(x)))"
                     f"))): BN then relu before each conv, bn1 on the input; the projection takes relu(bn1(x)), not "
                     f"x; nothing after the sum.")


def check_preact_block(block_cls) -> Report:
    """Check ``block_cls(in_channels, out_channels, stride=1, zero_init=False)``, mapping ``N x C_in x H x W`` to
    ``N x C_out x H/stride x W/stride``; one PASS/FAIL line per check."""
    report = Report("check_preact_block: your pre-activation residual block")
    if not _usable(block_cls, report):
        return report
    torch.manual_seed(0)
    blocks = _shape_checks(block_cls, report)
    if blocks is None:
        return report
    _identity_checks(block_cls, report)
    for (c_in, c_out, stride), block in blocks.items():
        theirs, expected = count_params(block), count_params(SolutionPreActBlock(c_in, c_out, stride))
        report.check(theirs == expected,
                     f"parameters: {_name(c_in, c_out, stride)} has {theirs:,}, as the reference block",
                     f"parameters: {_name(c_in, c_out, stride)} has {theirs:,}, the reference block has "
                     f"{expected:,} ({theirs - expected:+,}).{_param_hint(theirs, expected, c_in, c_out)}")
    _output_checks(blocks, report)
    return report


class SolutionPreActBlock(nn.Module):
    """He et al. (2016)'s pre-activation block: y = f(x) + shortcut, with BN and relu *before* each conv."""

    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)  # normalises the block's input
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.shortcut = None  # the identity when the shape is kept
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        if zero_init:  # f(x) = 0 at the start: the block is the identity, for every x
            nn.init.zeros_(self.conv2.weight)

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut  # nothing after the sum
