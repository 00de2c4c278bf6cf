"""Gradient flow at initialisation (notebook 01): how much of the loss's gradient reaches each layer of a fresh net,
w.r.t. its output (the backward signal of He et al.'s variance argument) and its weights, in four :data:`REGIMES`.
"""
from __future__ import annotations

import copy
import math

import matplotlib.pyplot as plt
import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from ...data import load_data
from ...models import apply_init, plain_net, residual_net
from ...plots import COLORS, finish_figure
from ...training import seed_everything
from .protocol import PROTOCOL

# regime -> (batch_norm, init); the residual net of each regime is drawn for reference.
REGIMES = {"no BN, default init": (False, "pytorch"), "no BN, He init": (False, "he"),
           "BN, default init": (True, "pytorch"), "BN, He init": (True, "he")}


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The conv and linear layers of ``model`` in forward order (input side first)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def gradient_norms(model: nn.Module, images: Tensor, labels: Tensor) -> list[float]:
    """Norm of the cross-entropy gradient of every conv/linear weight on ``images`` (N x 1 x 28 x 28), ``labels``
    (N), train mode, input side first. In float64: float32 would square entries near 1e-25 to an exact 0."""
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()
    norms = [layer.weight.grad.double().norm().item() for layer in weight_layers(model)]
    model.zero_grad(set_to_none=True)
    return norms


def output_gradient_norms(model: nn.Module, images: Tensor, labels: Tensor) -> list[float]:
    """Norm of the cross-entropy gradient w.r.t. every conv/linear layer's *output* (the backward signal), input
    side first; the same pass as :func:`gradient_norms`, read through forward hooks."""
    outputs: list[Tensor] = []

    def keep(_module, _inputs, output):
        output.retain_grad()
        outputs.append(output)

    hooks = [layer.register_forward_hook(keep) for layer in weight_layers(model)]
    try:
        gradient_norms(model, images, labels)
    finally:
        for hook in hooks:
            hook.remove()
    return [out.grad.double().norm().item() for out in outputs]


def regime_net(kind: str, depth: int, regime: str) -> nn.Module:
    """A fresh ``plain``/``residual`` net of ``depth`` layers in one of the :data:`REGIMES` (seed it first)."""
    batch_norm, init = REGIMES[regime]
    build = plain_net if kind == "plain" else residual_net
    return apply_init(build(depth, PROTOCOL["width"], batch_norm=batch_norm), init)


def gradient_flow(depths, images: Tensor, labels: Tensor, seed: int = 0) -> dict[str, list[float]]:
    """Per-layer weight-gradient norms at initialisation in every regime: plain nets of every depth and a residual
    net of the deepest, each seeded with ``seed``. ``{"plain-32, no BN, He init": [layer 1, ..., layer 32], ...}``."""
    flow = {}
    for regime in REGIMES:
        for kind, depth in [("plain", d) for d in depths] + [("residual", max(depths))]:
            seed_everything(seed)
            flow[f"{kind}-{depth}, {regime}"] = gradient_norms(regime_net(kind, depth, regime), images, labels)
    return flow


def digit_batch(n: int) -> tuple[Tensor, Tensor]:
    """The first ``n`` training digits of the embedded sample (N x 1 x 28 x 28, N): the same everywhere."""
    data = load_data("sample", verbose=False)
    return data.train_x[:n], data.train_y[:n]


def input_to_output_ratio(norms: list[float]) -> float:
    """Gradient norm of the first conv / the last conv (the linear head left out); below 1 it shrinks toward the input."""
    return norms[0] / norms[-2]


def orders_per_layer(norms: list[float]) -> float:
    """Orders of magnitude the gradient norm loses per layer toward the input (negative: it grows): the slope of
    log10(norm) over the body convs, leaving out norms of 0."""
    body = np.asarray(norms[1:-1], dtype=float)
    layers = np.arange(len(body))[body > 0]
    if len(layers) < 2:
        return float("nan")
    return float(np.polyfit(layers, np.log10(body[body > 0]), 1)[0])


def predicted_orders_per_layer(model: nn.Module) -> float:
    """The variance argument's :func:`orders_per_layer` of the backward signal from ``model``'s body weights: half
    the log10 of fan_out * Var(w) / 2 per layer (PyTorch's default init: 0.39; He init: 0). Nets without BN only."""
    convs = [m for m in weight_layers(model) if isinstance(m, nn.Conv2d)][1:]  # the body, not the stem
    gains = [m.out_channels * m.kernel_size[0] * m.kernel_size[1] * m.weight.var().item() / 2 for m in convs]
    return -0.5 * math.log10(float(np.mean(gains)))


def _ratio_text(ratio: float) -> str:
    """``"shrinks x880 toward the input"`` / ``"shrinks 24.3 orders of magnitude ..."`` / ``"grows x29 ..."``."""
    factor = max(ratio, 1 / ratio)
    size = f"x{factor:.1f}" if factor < 10 else f"x{factor:,.0f}" if factor < 1e4 else \
        f"{math.log10(factor):.1f} orders of magnitude"
    return f"{ratio:8.1e} ({'shrinks' if ratio < 1 else 'grows'} {size} toward the input)"


def print_gradient_ratios(flow: dict[str, list[float]]) -> None:
    """For every net: first-conv / last-conv gradient norm and orders of magnitude lost per layer."""
    print(f"{'net':<38} | {'first conv / last conv gradient norm':<60} | orders lost per layer")
    for label, norms in flow.items():
        ratio = input_to_output_ratio(norms)
        text = _ratio_text(ratio) if ratio > 0 else "0 (no gradient reached the first conv)"
        print(f"{label:<38} | {text:<60} | {orders_per_layer(norms):+.2f}")


def prediction_rows(images: Tensor, labels: Tensor, depths, seed: int = 0) -> list[dict]:
    """Plain nets without BatchNorm: the predicted orders lost per layer next to the measured ones of the backward
    signal, the weight gradients, and those with zero biases; ``{regime, depth, predicted, output, weight,
    weight_zero_bias}`` per (regime, depth)."""
    rows = []
    for regime in ("no BN, default init", "no BN, He init"):
        for depth in depths:
            seed_everything(seed)
            net = regime_net("plain", depth, regime)
            zero_bias = copy.deepcopy(net)  # the variance argument assumes zero biases
            for layer in weight_layers(zero_bias):
                nn.init.zeros_(layer.bias)
            rows.append(dict(regime=regime, depth=depth, predicted=predicted_orders_per_layer(net),
                             output=orders_per_layer(output_gradient_norms(net, images, labels)),
                             weight=orders_per_layer(gradient_norms(net, images, labels)),
                             weight_zero_bias=orders_per_layer(gradient_norms(zero_bias, images, labels))))
    return rows


def print_prediction_table(rows: list[dict]) -> None:
    """:func:`prediction_rows` as a table, orders of magnitude lost per layer toward the input."""
    print(f"{'plain net, regime':<30} | {'predicted':>9} | {'output gradient':>15} | {'weight gradient':>15} | "
          f"{'weight gradient, biases 0':>25}")
    for r in rows:
        cells = [f"{round(r[k], 2) + 0:+.2f}" for k in ("predicted", "output", "weight", "weight_zero_bias")]
        print(f"{'plain-' + str(r['depth']) + ', ' + r['regime']:<30} | {cells[0]:>9} | {cells[1]:>15} | "
              f"{cells[2]:>15} | {cells[3]:>25}")


_DEPTH_STYLES = [dict(lw=1.0, marker="o", ms=2.5, ls=":"), dict(lw=1.4, marker="s", ms=2.5, ls="-."),
                 dict(lw=1.8, marker="^", ms=3, ls="--"), dict(lw=2.4, marker="", ls="-")]


def depth_style(i: int, n: int) -> dict:
    """Line style of the i-th of n depths (shallowest first): full colour always; deeper = thicker, solid."""
    offset = max(0, len(_DEPTH_STYLES) - n)  # the deepest net always gets the thickest solid line
    return dict(_DEPTH_STYLES[min(i + offset, len(_DEPTH_STYLES) - 1)])


def plot_gradient_flow(flow: dict[str, list[float]], name: str | None = "01_gradient_flow", title: str = "",
                       quantity: str = "gradient norm of the layer's weights"):
    """One panel per regime: gradient norm per layer (log scale) of every net, with its first / last conv ratio."""
    regimes = list(dict.fromkeys(label.split(", ", 1)[1] for label in flow))
    fig, axes = plt.subplots(1, len(regimes), figsize=(4.2 * len(regimes), 5.4), squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        nets = [k for k in flow if k.endswith(f", {regime}")]
        plain = [k for k in nets if k.startswith("plain")]
        for label in nets:
            norms = flow[label]
            ratio = f"first/last conv x{input_to_output_ratio(norms):.2g}"
            style = depth_style(plain.index(label), len(plain)) if label in plain else \
                dict(lw=1.6, ls="-", marker="o", ms=3, mfc="white")
            ax.plot(range(1, len(norms) + 1), norms, color=COLORS["plain" if label in plain else "residual"],
                    label=f"{label.split(',')[0]} ({ratio})", **style)
        ax.set(yscale="log", xlabel="layer (1 = next to the input)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))  # below the panel: off the data
    bn = [ax for ax, regime in zip(axes[0], regimes) if regime.startswith("BN")]  # BN panels: one shared range
    for ax in bn:
        ax.set_ylim(min(a.get_ylim()[0] for a in bn), max(a.get_ylim()[1] for a in bn))
    for ax, regime in zip(axes[0], regimes):
        low, high = (f"{float(f'{v:.1g}'):g}" for v in ax.get_ylim())  # the axis's own limits, 1 significant digit
        ax.set_title(f"{regime}\ny-axis {low} to {high}" + (" (both BN panels)" if ax in bn else ""), fontsize=10)
    axes[0][0].set_ylabel(quantity)
    fig.suptitle(title or "Gradient norms at initialisation, one batch of 128 real digits (MNIST sample), seed 0; "
                          "the panels' y-ranges differ: compare slopes, not heights", fontsize=10)
    return finish_figure(fig, name=name)
