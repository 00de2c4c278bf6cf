"""Gradient flow at initialisation: how much of the loss's gradient reaches each layer of a fresh net.

Three regimes of plain ReLU nets, measured on one batch of real digits:

* ``no BN, default init`` -- PyTorch's default weights have variance 1/(3 fan_in); on its way back through
  a conv + ReLU layer the gradient's variance is multiplied by fan_in * 1/(3 fan_in) * 1/2 = 1/6, so its norm
  by 1/sqrt(6): about 0.39 orders of magnitude lost per layer (vanishing);
* ``no BN, He init`` -- variance 2/fan_in makes that factor 1: the gradient stays within a small factor;
* ``BN`` -- BatchNorm after every conv: the gradient grows toward the input with depth (exploding;
  Yang et al. 2019 show BatchNorm itself causes this in deep nets without skips).
"""
from __future__ import annotations

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
REGIMES = {"no BN, default init": (False, "pytorch"), "no BN, He init": (False, "he"), "BN": (True, "pytorch")}


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The conv and linear layers of ``model`` in forward order (input side first)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def gradient_norms(model: nn.Module, images: Tensor, labels: Tensor) -> list[float]:
    """Norm of the cross-entropy gradient of every conv/linear weight, input side first.

    ``images``: N x 1 x 28 x 28, ``labels``: N. One forward and backward pass in train mode (BatchNorm
    uses batch statistics, as during training); the model's gradients are cleared afterwards. A net of
    depth d gives d numbers.
    """
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()
    norms = [layer.weight.grad.norm().item() for layer in weight_layers(model)]
    model.zero_grad(set_to_none=True)
    return norms


def net_label(kind: str, depth: int, regime: str) -> str:
    """``"plain-32, no BN, He init"`` / ``"residual-56, BN"``: the names used in plots and dicts."""
    return f"{kind}-{depth}, {regime}"


def regime_net(kind: str, depth: int, regime: str) -> nn.Module:
    """A fresh ``plain``/``residual`` net of ``depth`` layers in one of the :data:`REGIMES` (seed it first)."""
    batch_norm, init = REGIMES[regime]
    build = plain_net if kind == "plain" else residual_net
    return apply_init(build(depth, PROTOCOL["width"], batch_norm=batch_norm), init)


def gradient_flow(depths, images: Tensor, labels: Tensor, seed: int = 0) -> dict[str, list[float]]:
    """Per-layer gradient norms at initialisation in every regime of :data:`REGIMES`.

    Plain nets of every depth in ``depths`` plus one residual net of the deepest depth per regime, each
    built after ``seed_everything(seed)``. Returns ``{"plain-32, no BN, He init": [layer 1, ..., layer 32], ...}``.
    """
    flow = {}
    for regime in REGIMES:
        for kind, depth in [("plain", d) for d in depths] + [("residual", max(depths))]:
            seed_everything(seed)
            flow[net_label(kind, depth, regime)] = gradient_norms(regime_net(kind, depth, regime), images, labels)
    return flow


def digit_batch(n: int) -> tuple[Tensor, Tensor]:
    """The first ``n`` training digits of the embedded sample: images N x 1 x 28 x 28, labels N.

    The same batch on every machine and in every profile, so gradient norms are comparable.
    """
    data = load_data("sample", verbose=False)
    return data.train_x[:n], data.train_y[:n]


def input_to_output_ratio(norms: list[float]) -> float:
    """Gradient norm of the first conv layer / that of the last conv layer (the one before the linear head).

    Below 1: the gradient shrinks on its way back to the input; above 1: it grows. The linear head (the
    last entry of ``norms``) is left out: it is a different kind of layer.
    """
    return norms[0] / norms[-2]


def orders_per_layer(norms: list[float]) -> float:
    """Orders of magnitude the gradient norm loses per layer toward the input (negative: it grows).

    A straight-line fit of log10(norm) over the 3x3 body convs (the stem and the head are other kinds of
    layer); layers whose gradient is exactly 0 (below float32's range) are left out.
    """
    body = np.asarray(norms[1:-1], dtype=float)
    layers = np.arange(len(body))[body > 0]
    if len(layers) < 2:
        return float("nan")
    return float(np.polyfit(layers, np.log10(body[body > 0]), 1)[0])


def predicted_orders_per_layer(model: nn.Module) -> float:
    """What the variance argument predicts for :func:`orders_per_layer` from ``model``'s own body weights.

    Back through a 3x3 conv and a ReLU the gradient's variance is multiplied by fan_in * Var(w) * 1/2 (the
    ReLU passes half of it); the norm loses half that factor's log10 per layer. PyTorch's default
    (Var(w) = 1/(3 fan_in)): 1/6, 0.39 orders; He init (Var(w) = 2/fan_in): 1, 0 orders. Meant for nets
    without BatchNorm, which rescales the signal and breaks the argument.
    """
    convs = [m for m in weight_layers(model) if isinstance(m, nn.Conv2d)][1:]  # the body, not the stem
    gains = [m.weight[0].numel() * m.weight.var().item() / 2 for m in convs]
    return -0.5 * math.log10(float(np.mean(gains)))


def print_gradient_ratios(flow: dict[str, list[float]]) -> None:
    """For every net: first-conv / last-conv gradient norm and orders of magnitude lost per layer."""
    print(f"{'net':<32} | {'first conv / last conv gradient norm':<58} | orders lost per layer")
    for label, norms in flow.items():
        ratio, zeros = input_to_output_ratio(norms), sum(1 for v in norms if v == 0.0)
        if zeros:
            text = f"0 (the first {zeros} layers get exactly 0: below float32's range)"
        else:
            factor = max(ratio, 1 / ratio)
            size = f"x{factor:.1f}" if factor < 10 else f"x{factor:,.0f}" if factor < 1e4 else \
                f"{math.log10(factor):.1f} orders of magnitude"
            text = f"{ratio:8.1e} ({'shrinks' if ratio < 1 else 'grows'} {size} toward the input)"
        print(f"{label:<32} | {text:<58} | {orders_per_layer(norms):+.2f}")


def plot_gradient_flow(flow: dict[str, list[float]], name: str | None = "01_gradient_flow", title: str = ""):
    """One panel per regime: gradient norm per layer on a log scale; plain nets blue (darker = deeper),
    the residual net vermillion and dashed. The legend gives each net's first / last conv ratio."""
    fig, axes = plt.subplots(1, len(REGIMES), figsize=(15, 4.2))
    for ax, regime in zip(axes, REGIMES):
        nets = [k for k in flow if k.endswith(f", {regime}")]
        plain = [k for k in nets if k.startswith("plain")]
        for i, label in enumerate(nets):
            norms = flow[label]
            zeros = sum(1 for v in norms if v == 0.0)  # a log axis cannot show them: say so in the legend
            ratio = f"layers 1-{zeros}: exactly 0" if zeros else f"first/last conv x{input_to_output_ratio(norms):.2g}"
            is_plain = label in plain
            shade = 0.35 + 0.65 * plain.index(label) / max(len(plain) - 1, 1) if is_plain else 1.0
            ax.plot(range(1, len(norms) + 1), norms, "-" if is_plain else "--", marker="." if is_plain else None,
                    color=COLORS["plain" if is_plain else "residual"], alpha=shade,
                    label=f"{label.split(',')[0]} ({ratio})")
        ax.set(yscale="log", xlabel="layer (1 = next to the input)", title=regime)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("gradient norm of the layer's weights")
    fig.suptitle(title or "Gradient norms at initialisation, one batch of 128 real digits (MNIST sample), seed 0",
                 fontsize=10)
    return finish_figure(fig, name=name)
