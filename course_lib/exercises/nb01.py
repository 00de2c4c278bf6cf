"""Checks for notebook 01 (the degradation problem).

Exercise 1 -- write ``layer_gradient_norms(model, images, labels)``, the measurement
behind the gradient-flow plot, and check it against :func:`course_lib.lessons.degradation.gradient_norms`.

Exercise 2 -- three mystery gradient-flow curves A, B, C: say which net made which.
"""
from __future__ import annotations

import functools

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..lessons.degradation import digit_batch, gradient_norms, input_to_output_ratio, net_label
from ..models import plain_net, residual_net
from ..plots import save_figure
from ..training import seed_everything
from . import Report, StudentCodeError, student_call

# ---------------------------------------------------------------------------- exercise 1: measure it yourself


def solution_layer_gradient_norms(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Gradient norm of every conv/linear weight, input side first (a worked solution).

    images: N x 1 x 28 x 28, labels: N.
    """
    model.train()
    model.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def check_layer_gradient_norms(fn) -> Report:
    """Run the student's ``fn(model, images, labels)`` on two seeded nets and compare with the reference.

    Reports "not implemented yet" for the untouched stub, and the student's own error
    and line if their code raises.
    """
    report = Report("Check: layer_gradient_norms(model, images, labels)")
    images, labels = digit_batch(32)
    for depth, batch_norm in ((8, True), (20, False)):
        seed_everything(0)
        model = plain_net(depth, batch_norm=batch_norm)
        seed_everything(0)
        expected = gradient_norms(plain_net(depth, batch_norm=batch_norm), images, labels)
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
            report.error(f"return a list of plain numbers, one per conv/linear layer (use .norm().item()); "
                         f"got {type(got).__name__} of {', '.join(kinds)}")
            return report
        if not report.check(len(got) == len(expected), f"{name}: one norm per weight layer ({len(expected)})",
                            f"{name}: expected {len(expected)} numbers (the stem conv, {depth - 2} body convs and the "
                            f"linear layer), got {len(got)}. Did you include exactly the nn.Conv2d and nn.Linear "
                            f"weights (not biases or BatchNorm)?"):
            return report
        close = np.allclose(got, expected, rtol=1e-3, atol=1e-30)
        reversed_ok = np.allclose(got[::-1], expected, rtol=1e-3, atol=1e-30)
        hint = ("they are in reverse order: list the layers input side first, as model.modules() yields them"
                if reversed_ok else "compare with the weight gradients after one cross-entropy backward pass in "
                                    "train mode, on exactly the images and labels you were given")
        report.check(close, f"{name}: the norms match the reference (within 0.1%)",
                     f"{name}: the norms differ from the reference: {hint}")
    return report


# ---------------------------------------------------------------------------- exercise 2: which net is which?

MYSTERY_DEPTH, MYSTERY_SEED = 26, 1
MYSTERY_CHOICES = ("plain, no BN", "plain, BN", "residual, no BN")
_MYSTERY = {"A": "plain, BN", "B": "residual, no BN", "C": "plain, no BN"}  # fixed, not sorted by shape
_WHY = {
    "plain, no BN": "the gradient shrinks by many orders of magnitude toward the input: each layer without "
                    "normalisation scales the backward signal down, and nothing restores it (vanishing gradients)",
    "plain, BN": "the gradient does not vanish -- BatchNorm rescales every layer -- it even grows toward "
                 "the input; yet nets like this one are the ones that degrade in the sweep",
    "residual, no BN": "the gradient stays nearly flat although there is no BatchNorm: every skip hands the "
                       "gradient of the output straight to the earlier layers (d(x + f(x))/dx = 1 + df/dx)",
}


def mystery_flow(seed: int = MYSTERY_SEED) -> dict[str, list[float]]:
    """Per-layer gradient norms of the three mystery nets (depth 26), keyed "A", "B", "C"."""
    return {letter: list(norms) for letter, norms in _mystery_flow(seed)}


@functools.lru_cache(maxsize=2)
def _mystery_flow(seed: int) -> tuple:
    images, labels = digit_batch(128)
    flow = []
    for letter, what in _MYSTERY.items():
        kind, bn = what.split(", ")
        seed_everything(seed)
        build = plain_net if kind == "plain" else residual_net
        flow.append((letter, tuple(gradient_norms(build(MYSTERY_DEPTH, batch_norm=bn == "BN"), images, labels))))
    return tuple(flow)


def plot_mystery(name: str | None = "01_exercise_mystery"):
    """The three unlabelled gradient-flow curves of exercise 2 (log scale)."""
    flow = mystery_flow()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for (letter, norms), style in zip(flow.items(), ("-o", "-s", "-^")):
        ax.plot(range(1, len(norms) + 1), norms, style, ms=4, label=f"net {letter}")
    ax.set(yscale="log", xlabel="layer (1 = next to the input)", ylabel="gradient norm of the layer's weights",
           title=f"Three {MYSTERY_DEPTH}-layer nets at initialisation: which is which?")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    if name:
        save_figure(fig, name)
    return fig


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
                     f"net {letter} is not {answer}. Hint: {_hint(flow_shape(letter))}")
    return report


def flow_shape(letter: str) -> str:
    """How a mystery curve looks, in words: 'vanishes', 'grows' or 'flat'."""
    ratio = input_to_output_ratio(mystery_flow()[letter])
    return "vanishes" if ratio < 1e-3 else "grows" if ratio > 3 else "flat"


def _hint(shape: str) -> str:
    return {"vanishes": "its gradient falls by orders of magnitude toward the input -- which net has nothing "
                        "to keep the signal's scale?",
            "grows": "its gradient does not vanish but grows toward the input -- what keeps every layer's "
                     "output at unit scale, and without a shortcut?",
            "flat": "its gradient is nearly the same at every layer -- what carries the gradient past "
                    "the layers unchanged?"}[shape]


def reveal_mystery() -> None:
    """Print the answer to exercise 2 with the reason for each curve."""
    for letter, truth in _MYSTERY.items():
        print(f"net {letter} = {truth} ({net_label(truth.split(',')[0], MYSTERY_DEPTH, 'no' not in truth)}): "
              f"{_WHY[truth]}")
