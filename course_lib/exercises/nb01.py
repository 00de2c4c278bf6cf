"""Checks for notebook 01: measure per-layer gradient norms, tell three mystery gradient-flow curves apart, and
add the identity skip to the plain net's pair of convs (then train a net of it next to the sweep's)."""
from __future__ import annotations

import copy
import functools

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import Data
from ..lessons.degradation import (PROTOCOL, digit_batch, final_losses, gradient_norms, input_to_output_ratio,
                                   regime_net, sweep)
from ..models import ConvPair, count_params, plain_net
from ..plots import finish_figure
from ..training import seed_everything
from . import Report, StudentCodeError, student_call

# ---------------------------------------------------------------------------- exercise 1: measure it yourself


def solution_layer_gradient_norms(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Gradient norm of every conv/linear weight, input side first (a worked solution); images: N x 1 x 28 x 28."""
    model.train()
    model.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    # float64 before the norm: a float32 norm squares entries near 1e-25 into an exact 0
    return [m.weight.grad.double().norm().item() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def check_layer_gradient_norms(fn) -> Report:
    """Run the student's ``fn(model, images, labels)`` on three seeded nets and compare with the reference."""
    report = Report("Check: layer_gradient_norms(model, images, labels)")
    images, labels = digit_batch(32)
    for depth, batch_norm in ((8, True), (20, False), (56, False)):  # plain-56 without BN: gradients near 1e-25
        seed_everything(0)
        model = plain_net(depth, batch_norm=batch_norm)
        expected = gradient_norms(copy.deepcopy(model), images, labels)
        name = f"plain_net({depth}, batch_norm={batch_norm})"
        try:
            got = student_call(f"measuring {name}", fn, model, images, labels)
        except StudentCodeError as err:
            report.student_error(err)
            return report
        if got is None:
            report.error("your function returned None: `return` the list of norms")
            return report
        try:
            got = [float(v) for v in got]
        except (TypeError, ValueError, RuntimeError):
            kinds = sorted({type(v).__name__ for v in got}) if isinstance(got, (list, tuple)) else [type(got).__name__]
            report.error(f"return a list of plain numbers, one per conv/linear layer (use .double().norm().item()); "
                         f"got {type(got).__name__} of {', '.join(kinds)}")
            return report
        if not report.check(len(got) == len(expected), f"{name}: one norm per weight layer ({len(expected)})",
                            f"{name}: expected {len(expected)} numbers (the stem conv, {depth - 2} body convs and the "
                            f"linear layer), got {len(got)}. Did you include exactly the nn.Conv2d and nn.Linear "
                            f"weights (not biases or BatchNorm)?"):
            return report
        close = np.allclose(got, expected, rtol=1e-3, atol=0)
        reversed_ok = np.allclose(got[::-1], expected, rtol=1e-3, atol=0)
        underflow = any(g == 0 < e for g, e in zip(got, expected))
        hint = ("they are in reverse order: list the layers input side first, as model.modules() yields them"
                if reversed_ok else "some of your norms are exactly 0 where the gradient is tiny but not 0: a "
                                    "float32 norm squares entries near 1e-25 below float32's range; take "
                                    "grad.double().norm()" if underflow else
                "compare with the weight gradients after one cross-entropy backward pass in train mode, on "
                "exactly the images and labels you were given")
        report.check(close, f"{name}: the norms match the reference (within 0.1%)",
                     f"{name}: the norms differ from the reference: {hint}")
    return report


# ---------------------------------------------------------------------------- exercise 2: which net is which?

MYSTERY_DEPTH, MYSTERY_SEED = 26, 1
MYSTERY_CHOICES = ("plain, no BN", "plain, BN", "residual, no BN")  # all with PyTorch's default init
_MYSTERY = {"A": "plain, BN", "B": "residual, no BN", "C": "plain, no BN"}  # fixed, not sorted by shape
_WHY = {
    "plain, no BN": "the gradient shrinks by many orders of magnitude toward the input (vanishing): with "
                    "PyTorch's default init the backward signal (the gradient w.r.t. each layer's output) loses "
                    "a factor of about 6 in variance per conv + ReLU layer (fan_out x 1/(3 fan_in) x 1/2), and "
                    "the weight gradients follow it because the biases keep the layer inputs from shrinking",
    "plain, BN": "the gradient does not vanish -- BatchNorm rescales every layer -- it grows toward the input "
                 "(exploding); yet nets like this one are the ones that degrade in the sweep",
    "residual, no BN": "the gradient stays within a small factor although there is no BatchNorm: every skip hands "
                       "the gradient of its output straight to its input (d(x + f(x))/dx = 1 + df/dx)",
}


@functools.lru_cache(maxsize=1)
def _mystery_flow() -> dict[str, list[float]]:
    """Per-layer gradient norms of the three mystery nets (depth 26), keyed "A", "B", "C"; cached, so read only."""
    images, labels = digit_batch(128)
    flow = {}
    for letter, what in _MYSTERY.items():
        kind, bn = what.split(", ")
        seed_everything(MYSTERY_SEED)
        flow[letter] = gradient_norms(regime_net(kind, MYSTERY_DEPTH, f"{bn}, default init"), images, labels)
    return flow


def plot_mystery(name: str | None = "01_exercise_mystery"):
    """The three unlabelled gradient-flow curves of exercise 2 (log scale; neutral colours on purpose)."""
    flow = _mystery_flow()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for (letter, norms), style in zip(flow.items(), ("-o", "-s", "-^")):
        ax.plot(range(1, len(norms) + 1), norms, style, ms=4, color="black", alpha=0.8, label=f"net {letter}",
                mfc="white" if letter == "B" else None)
    ax.set(yscale="log", xlabel="layer (1 = next to the input)", ylabel="gradient norm of the layer's weights",
           title=f"Three {MYSTERY_DEPTH}-layer nets at initialisation: which is which?")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return finish_figure(fig, name=name)


def check_mystery_guess(guess: dict) -> Report:
    """Compare the student's ``{"A": choice, "B": choice, "C": choice}`` with the truth, explaining each."""
    report = Report("Check: which net made which gradient-flow curve?")
    if not isinstance(guess, dict) or set(guess) != set(_MYSTERY):
        report.error(f"give a dict with the keys 'A', 'B' and 'C'; got {guess!r}")
        return report
    if all(v is None for v in guess.values()):
        report.error(f"not answered yet: fill in each of A, B, C with one of {list(MYSTERY_CHOICES)}")
        return report
    for letter, truth in _MYSTERY.items():
        answer = guess[letter]
        if answer not in MYSTERY_CHOICES:
            report.error(f"net {letter}: {answer!r} is not one of the choices {list(MYSTERY_CHOICES)}")
            continue
        report.check(answer == truth, f"net {letter} is {truth}: {_WHY[truth]}",
                     f"net {letter} is not {answer}. Hint: {_HINTS[flow_shape(letter)]}")
    return report


def flow_shape(letter: str) -> str:
    """How a mystery curve looks, in words: 'vanishes', 'grows' or 'flat'."""
    ratio = input_to_output_ratio(_mystery_flow()[letter])
    return "vanishes" if ratio < 1e-3 else "grows" if ratio > 3 else "flat"


_HINTS = {"vanishes": "its gradient falls by orders of magnitude toward the input -- which net has nothing to "
                       "keep the signal's scale?",
          "grows": "its gradient does not vanish but grows toward the input -- what keeps every layer's output at "
                   "unit scale, and without a shortcut?",
          "flat": "its gradient is nearly the same at every layer -- what carries the gradient past the layers "
                  "unchanged?"}


# ---------------------------------------------------------------------------- exercise 3: add the skip


class SolutionSkipPair(nn.Module):
    """The plain net's pair of 3x3 convs with an identity skip, ``relu(f(x) + x)`` (a worked solution)."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + x)


def net_with_pairs(pair_class, depth: int) -> nn.Module:
    """``plain_net(depth)`` with each pair of body convs replaced by ``pair_class(width)`` holding its weights, so
    it starts where the sweep's nets of the same seed start."""
    net = plain_net(depth, PROTOCOL["width"], batch_norm=PROTOCOL["batch_norm"])
    for i, plain_pair in enumerate(net.body):
        mine = pair_class(PROTOCOL["width"])
        mine.load_state_dict(plain_pair.state_dict())
        net.body[i] = mine
    net.spec = {"name": f"yours-{depth}", "kwargs": {}}
    return net


def _skip_hint(out: torch.Tensor, branch: torch.Tensor, x: torch.Tensor) -> str:
    """What the student's pair computed instead of relu(f(x) + x), when it is one of the usual slips."""
    for computed, hint in ((branch + x, "you return f(x) + x: apply the ReLU after the addition"),
                           (F.relu(branch) + x, "you return relu(f(x)) + x: add x first, then the ReLU"),
                           (F.relu(branch), "you return relu(f(x)): x is never added, there is no skip")):
        if torch.allclose(out, computed, atol=1e-5):
            return hint
    return "compute f(x) = bn2(conv2(relu(bn1(conv1(x))))) and return relu(f(x) + x)"


def check_skip_pair(pair_class) -> Report:
    """Check the student's ``pair_class(16)`` is the plain pair plus an identity skip: parameters, names, shape,
    its input passed through when its branch is zeroed, ``relu(f(x) + x)``, and a 20-layer net of it."""
    report = Report("Check: SkipPair(width), the plain pair with an identity skip")
    width = PROTOCOL["width"]
    plain, reference = ConvPair(width, residual=False), ConvPair(width, residual=True)
    try:
        pair = student_call(f"building SkipPair({width})", pair_class, width)
        if not report.check(isinstance(pair, nn.Module), "SkipPair(16) builds an nn.Module",
                            f"SkipPair(16) returned a {type(pair).__name__}, not an nn.Module"):
            return report
        mine, theirs = count_params(pair), count_params(plain)
        report.check(mine == theirs, f"the same {theirs:,} parameters as the plain pair: an identity skip adds none",
                     f"{mine:,} parameters, the plain pair has {theirs:,}: an identity skip adds no parameter "
                     f"(no extra conv or 1x1 projection: the shapes already match)")
        keys, wanted = set(pair.state_dict()), set(reference.state_dict())
        extra, missing = sorted(keys - wanted), sorted(wanted - keys)
        if extra or missing:
            report.error("keep exactly the stub's layers conv1, bn1, conv2, bn2 (the check gives them known weights)"
                         + (f"; not in the stub: {', '.join(extra[:4])}" if extra else "")
                         + (f"; missing: {', '.join(missing[:4])}" if missing else ""))
            return report
        pair.load_state_dict(reference.state_dict())
        torch.manual_seed(0)
        x = torch.randn(8, width, 7, 7)
        out = student_call("running your pair on a batch of 8 x 16 x 7 x 7", pair.train(), x)
        if not report.check(isinstance(out, torch.Tensor) and out.shape == x.shape,
                            "output shape = input shape (8 x 16 x 7 x 7), so the skip can add x",
                            f"output {getattr(out, 'shape', type(out).__name__)}, expected {tuple(x.shape)}"):
            return report
        zeroed, x_pos = copy.deepcopy(pair), x.relu()  # inside the net a pair's input is a ReLU output, >= 0
        nn.init.zeros_(zeroed.bn2.weight)
        nn.init.zeros_(zeroed.bn2.bias)  # f(x) = 0 now
        passed = student_call("running your pair with its branch zeroed", zeroed, x_pos)
        report.check(torch.allclose(passed, x_pos, atol=1e-6),
                     "with its branch zeroed (f(x) = 0) it passes its input through: the skip is there",
                     "with its branch zeroed (f(x) = 0) it should output its input x, but " +
                     ("it outputs 0: there is no skip" if passed.abs().max() == 0 else "it does not"))
        report.check(torch.allclose(out, reference.train()(x), atol=1e-5),
                     "it computes relu(f(x) + x), exactly like the course's residual pair",
                     _skip_hint(out, reference.f(x), x))
        logits = student_call("running a 20-layer net of your pairs", net_with_pairs(pair_class, 20), digit_batch(4)[0])
        report.check(tuple(logits.shape) == (4, 10), "a 20-layer net of your pairs maps 4 digits to 4 x 10 logits",
                     f"a 20-layer net of your pairs gave {tuple(logits.shape)}, expected (4, 10)")
    except StudentCodeError as err:
        report.student_error(err)
    return report


def rerun_with(pair_class, result: dict, data: Data, device: str = "auto") -> dict | None:
    """Once ``pair_class`` passes :func:`check_skip_pair`: train a net of its pairs at the sweep's deepest depth
    (seed 0, the shortest budget) and print its final training loss next to the sweep's nets; return its record."""
    if not check_skip_pair(pair_class).passed:
        print(f"FAIL  not run yet: your {getattr(pair_class, '__name__', 'pair')} does not pass check_skip_pair; "
              f"once it does, this cell trains a net of your pairs next to the sweep's plain and residual nets")
        return None
    depth = max(r["depth"] for r in result["runs"])
    steps = min(r["steps"] for r in result["runs"])
    epochs = next(r["epochs"] for r in result["runs"] if r["steps"] == steps)
    yours = sweep(data, [depth], [0], [epochs], builders={"yours": functools.partial(net_with_pairs, pair_class)},
                  device=device, verbose=False)[0]
    sweep_losses = {kind: final_losses(result, kind, depth, steps).get(0) for kind in ("plain", "residual")}
    print(f"final training loss after {steps} SGD steps, seed 0, depth {depth}:")
    for name, loss in [("your net", yours["final_train_loss"])] + [(f"the sweep's {kind}-{depth}", loss)
                                                                    for kind, loss in sweep_losses.items()]:
        print(f"  {name:<24} " + ("-" if loss is None else f"{loss:.4f}"))
    if yours["final_train_loss"] == sweep_losses["residual"]:
        print(f"your net trained exactly like residual-{depth}: the same weights, the same skips, the same numbers")
    return yours
