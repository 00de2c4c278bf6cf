"""Notebook 02's explorer: how the signal (forward) and the gradient (backward) change layer by layer through a
plain and a residual stack of the *same* fully connected layers, live with sliders or as a static PNG.

    plain:    h_l = f_l(h_{l-1})
    residual: h_l = h_{l-1} + f_l(h_{l-1})      with f_l(h) = W_l relu(h)

``W_l`` is ``width x width`` with entries ``N(0, scale^2 * 2 / width)``: scale 1 is He initialisation.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import matplotlib.pyplot as plt
import torch

from ...errors import ConfigError
from ...plots import COLORS, figure_png, finish_figure

MAX_DEPTH = 100


def signal_and_gradient(depth: int, weight_scale: float, width: int = 64, batch: int = 256,
                        seed: int = 0) -> dict[str, list[float]]:
    """Per-layer signal and gradient sizes through a plain and a residual stack (float64, seeded).

    ``h_0``: ``batch x width`` standard normal; loss ``sum(h_depth * r)`` for a fixed random ``r``. Returns
    ``{kind}_signal[l] = rms(h_l) / rms(h_0)`` and ``{kind}_gradient[l] = rms(dLoss/dh_l) / rms(r)`` for
    l = 0..depth, and ``layer``. A deeper stack adds layers on top of the same ones.
    """
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or not 1 <= depth <= MAX_DEPTH:
        raise ConfigError(f"depth must be a whole number from 1 to {MAX_DEPTH}, got {depth!r}")
    if not isinstance(weight_scale, numbers.Real) or not math.isfinite(weight_scale) or weight_scale < 0:
        raise ConfigError(f"weight_scale must be a finite number >= 0 (1 = He init), got {weight_scale!r}")
    gen = torch.Generator().manual_seed(seed)
    weights = torch.randn(MAX_DEPTH, width, width, generator=gen, dtype=torch.float64)[:depth]
    weights = weights * weight_scale * (2.0 / width) ** 0.5
    h0 = torch.randn(batch, width, generator=gen, dtype=torch.float64)
    direction = torch.randn(batch, width, generator=gen, dtype=torch.float64)
    out: dict[str, list[float]] = {"layer": list(range(depth + 1))}
    for kind in ("plain", "residual"):
        hs = [h0.clone().requires_grad_()]
        for w in weights:
            branch = torch.relu(hs[-1]) @ w.T
            hs.append(hs[-1] + branch if kind == "residual" else branch)
        for h in hs[1:]:
            h.retain_grad()
        (hs[-1] * direction).sum().backward()
        rms = [h.detach().pow(2).mean().sqrt().item() for h in hs]
        grad_rms = [h.grad.pow(2).mean().sqrt().item() for h in hs]
        out[f"{kind}_signal"] = [v / rms[0] for v in rms]
        out[f"{kind}_gradient"] = [g / grad_rms[-1] for g in grad_rms]
    return out


def draw_explorer(depth: int, weight_scales: Sequence[float], width: int = 64):
    """One row per weight scale: signal (left) and gradient (right) per layer, plain vs residual, log scale."""
    fig, axes = plt.subplots(len(weight_scales), 2, figsize=(10, 3.4 * len(weight_scales)), squeeze=False)
    for row, scale in zip(axes, weight_scales):
        sizes = signal_and_gradient(depth, scale, width=width)
        for ax, what, label in ((row[0], "signal", "rms(h_l) / rms(h_0)"),
                                (row[1], "gradient", "rms(dLoss/dh_l) / rms(dLoss/dh_L)")):
            for kind in ("plain", "residual"):
                values = [max(v, 1e-300) for v in sizes[f"{kind}_{what}"]]  # 0 cannot sit on a log axis
                ax.plot(sizes["layer"], values, color=COLORS[kind], marker="." if depth <= 40 else None,
                        label=f"{kind}: {values[0 if what == 'gradient' else -1]:.2g} at layer "
                              f"{0 if what == 'gradient' else depth}")
            ax.set(yscale="log", xlabel="layer l", ylabel=label,
                   title=f"{what}, depth {depth}, weight scale {scale:g}")
            ax.axhline(1.0, color=COLORS["neutral"], lw=0.8, ls=":")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def explorer(depth: int = 30, weight_scale: float = 0.5):
    """The live explorer: sliders for depth (1..100) and weight scale (0.05..2) above the picture, an
    ``ipywidgets.Image`` redrawn when a slider is released (no Output widget, so a notebook run never waits on it)."""
    import ipywidgets as widgets

    def png(depth: int, weight_scale: float) -> bytes:
        fig = draw_explorer(depth, (weight_scale,))
        data = figure_png(fig)
        plt.close(fig)
        return data

    style, layout = {"description_width": "180px"}, widgets.Layout(width="520px")
    depth_slider = widgets.IntSlider(value=depth, min=1, max=MAX_DEPTH, step=1, description="depth (layers)",
                                     continuous_update=False, style=style, layout=layout)
    scale_slider = widgets.FloatSlider(value=weight_scale, min=0.05, max=2.0, step=0.05, readout_format=".2f",
                                       description="weight scale (1 = He init)", continuous_update=False,
                                       style=style, layout=layout)
    image = widgets.Image(value=png(depth, weight_scale), format="png")

    def redraw(_change) -> None:
        image.value = png(depth_slider.value, scale_slider.value)

    depth_slider.observe(redraw, names="value")
    scale_slider.observe(redraw, names="value")
    return widgets.VBox([depth_slider, scale_slider, image])


def explorer_figure(depth: int = 30, weight_scales: Sequence[float] = (0.5, 1.0), name: str | None = "02_explorer"):
    """The explorer's picture as a static figure (one row per scale), saved as ``figures/NAME.png``."""
    return finish_figure(draw_explorer(depth, weight_scales), name=name)
