"""Gradient flow at initialisation: how much of the loss's gradient reaches each layer of a fresh net.

Two quantities per layer, measured on one batch of real digits:

* the gradient of the loss w.r.t. the layer's *output* (the backward signal, :func:`output_gradient_norms`):
  this is what the variance argument is about. Back through a 3x3 conv and a ReLU its variance is multiplied
  by fan_out * Var(w) * 1/2 (fan_out = 9 * c_out; equal to fan_in here, c_in = c_out = 16; He et al. 2015,
  "Delving Deep into Rectifiers", Section 2.2, zero biases assumed). PyTorch's default Var(w) = 1/(3 fan_in)
  gives 1/6: 0.39 orders of magnitude of norm per layer (vanishing); He init, 2/fan_in, gives 1;
* the gradient w.r.t. the layer's *weights* (:func:`gradient_norms`), about the backward signal times the
  layer's input: what SGD actually uses. It follows the backward signal only while the layer inputs keep their
  scale (with default init, the biases keep them from shrinking; Glorot & Bengio 2010 make the same split).

Regimes (:data:`REGIMES`): no BN with the default init; no BN with He init; BN with either init. With BN the
gradient grows toward the input (exploding; Yang et al. 2019 show BatchNorm itself causes this at
initialisation in deep nets without skips, for common initialisation schemes).
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
REGIMES = {"no BN, default init": (False, "pytorch"), "no BN, He init": (False, "he"),
           "BN, default init": (True, "pytorch"), "BN, He init": (True, "he")}


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The conv and linear layers of ``model`` in forward order (input side first)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def gradient_norms(model: nn.Module, images: Tensor, labels: Tensor) -> list[float]:
    """Norm of the cross-entropy gradient of every conv/linear weight, input side first.

    ``images``: N x 1 x 28 x 28, ``labels``: N. One forward and backward pass in train mode (BatchNorm
    uses batch statistics, as during training); the model's gradients are cleared afterwards. A net of
    depth d gives d numbers. The norm is taken in float64: a float32 norm squares the entries, and entries
    near 1e-25 (the first layers of plain-56 without BN) would underflow to an exact 0.
    """
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()
    norms = [layer.weight.grad.double().norm().item() for layer in weight_layers(model)]
    model.zero_grad(set_to_none=True)
    return norms


def output_gradient_norms(model: nn.Module, images: Tensor, labels: Tensor) -> list[float]:
    """Norm of the cross-entropy gradient w.r.t. every conv/linear layer's *output*, input side first.

    The backward signal the variance argument predicts (the weight gradient is about this times the layer's
    input). Same pass as :func:`gradient_norms`, read through forward hooks; float64 norms; d numbers.
    """
    outputs: list[Tensor] = []

    def keep(_module, _inputs, output):
        output.retain_grad()
        outputs.append(output)

    hooks = [layer.register_forward_hook(keep) for layer in weight_layers(model)]
    try:
        model.train()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
    finally:
        for hook in hooks:
            hook.remove()
    model.zero_grad(set_to_none=True)
    return [out.grad.double().norm().item() for out in outputs]


def net_label(kind: str, depth: int, regime: str) -> str:
    """``"plain-32, no BN, He init"`` / ``"residual-56, BN"``: the names used in plots and dicts."""
    return f"{kind}-{depth}, {regime}"


def regime_net(kind: str, depth: int, regime: str) -> nn.Module:
    """A fresh ``plain``/``residual`` net of ``depth`` layers in one of the :data:`REGIMES` (seed it first)."""
    batch_norm, init = REGIMES[regime]
    build = plain_net if kind == "plain" else residual_net
    return apply_init(build(depth, PROTOCOL["width"], batch_norm=batch_norm), init)


def gradient_flow(depths, images: Tensor, labels: Tensor, seed: int = 0, measure=gradient_norms,
                  regimes=None) -> dict[str, list[float]]:
    """Per-layer gradient norms at initialisation in every regime of ``regimes`` (default: :data:`REGIMES`).

    Plain nets of every depth in ``depths`` plus one residual net of the deepest depth per regime, each
    built after ``seed_everything(seed)``. ``measure``: :func:`gradient_norms` (weight gradients) or
    :func:`output_gradient_norms` (the backward signal). Returns ``{"plain-32, no BN, He init": [layer 1, ...,
    layer 32], ...}``.
    """
    flow = {}
    for regime in regimes or REGIMES:
        for kind, depth in [("plain", d) for d in depths] + [("residual", max(depths))]:
            seed_everything(seed)
            flow[net_label(kind, depth, regime)] = measure(regime_net(kind, depth, regime), images, labels)
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
    layer); a layer whose gradient norm is 0 (no gradient reached it at all) is left out.
    """
    body = np.asarray(norms[1:-1], dtype=float)
    layers = np.arange(len(body))[body > 0]
    if len(layers) < 2:
        return float("nan")
    return float(np.polyfit(layers, np.log10(body[body > 0]), 1)[0])


def predicted_orders_per_layer(model: nn.Module) -> float:
    """What the variance argument predicts for :func:`orders_per_layer` from ``model``'s own body weights.

    The prediction is about the backward signal (:func:`output_gradient_norms`): back through a 3x3 conv and a
    ReLU its variance is multiplied by fan_out * Var(w) * 1/2 (the ReLU passes half of it; fan_out =
    9 * c_out, equal to fan_in in these nets); the norm loses half that factor's log10 per layer. PyTorch's
    default (Var(w) = 1/(3 fan_in)): 1/6, 0.39 orders; He init (Var(w) = 2/fan_in): 1, 0 orders. Meant for
    nets without BatchNorm, which rescales the signal and breaks the argument.
    """
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


def without_biases(model: nn.Module) -> nn.Module:
    """``model`` with every conv/linear bias set to 0, in place (the variance argument assumes zero biases)."""
    for layer in weight_layers(model):
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return model


def prediction_rows(images: Tensor, labels: Tensor, depths, seed: int = 0) -> list[dict]:
    """For the plain nets without BatchNorm: the variance argument's prediction (orders lost per layer, from
    each net's own weights) next to the measured slopes of the backward signal (gradient w.r.t. each layer's
    output: the quantity it predicts), of the weight gradients, and of the weight gradients with the biases
    set to 0. One dict per (regime, depth): ``{regime, depth, predicted, output, weight, weight_zero_bias}``."""
    rows = []
    for regime in ("no BN, default init", "no BN, He init"):
        for depth in depths:
            row = dict(regime=regime, depth=depth)
            for key, measure, prepare in (("output", output_gradient_norms, None), ("weight", gradient_norms, None),
                                          ("weight_zero_bias", gradient_norms, without_biases)):
                seed_everything(seed)
                net = regime_net("plain", depth, regime)
                if key == "output":
                    row["predicted"] = predicted_orders_per_layer(net)
                row[key] = orders_per_layer(measure(prepare(net) if prepare else net, images, labels))
            rows.append(row)
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
    """One panel per regime: gradient norm per layer on a log scale; plain nets blue (thicker and solid =
    deeper), the residual net vermillion with white dots. The legend gives each net's first / last conv ratio."""
    regimes = list(dict.fromkeys(label.split(", ", 1)[1] for label in flow))
    fig, axes = plt.subplots(1, len(regimes), figsize=(4.2 * len(regimes), 4.2), squeeze=False)
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
        ax.set(yscale="log", xlabel="layer (1 = next to the input)", title=regime)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(quantity)
    fig.suptitle(title or "Gradient norms at initialisation, one batch of 128 real digits (MNIST sample), seed 0",
                 fontsize=10)
    return finish_figure(fig, name=name)
