"""Notebook 03's block diagrams: a residual block grown step by step, and the blog's ResNet with its shapes.

Colours mean what they mean in every figure of the course: the shortcut, which makes a block residual, in the
residual colour; the layers, which plain and residual nets share, in neutral grey.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.colors import to_hex, to_rgb
from matplotlib.patches import Circle, FancyBboxPatch

from ...models import BlogResNet, count_params
from ...plots import COLORS, finish_figure


def _tint(color: str, amount: float) -> str:
    """``color`` mixed with white (``amount`` 0: the colour, 1: white; below 0: darker)."""
    return to_hex([min(1.0, max(0.0, c + (1 - c) * amount if amount >= 0 else c * (1 + amount))) for c in to_rgb(color)])


_INK = _tint(COLORS["neutral"], -0.45)  # dark grey: arrows and outlines of the main path


# Box fills by layer kind: the layers in shades of grey, the projection (on the shortcut) in the residual colour.
_FILLS = {"conv": _tint(COLORS["neutral"], 0.6), "bn": _tint(COLORS["neutral"], 0.85), "relu": "white",
          "pool": _tint(COLORS["neutral"], 0.75), "fc": _tint(COLORS["neutral"], 0.45), "io": _tint(COLORS["neutral"], 0.92),
          "proj": _tint(COLORS["residual"], 0.8)}


def _box(ax, x: float, y: float, text: str, kind: str, w: float = 2.6, h: float = 0.55, size: int = 9) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=_FILLS[kind], ec=_INK, lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def _arrow(ax, x0: float, y0: float, x1: float, y1: float, colour: str = _INK) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.2, shrinkA=0, shrinkB=0))


def _add(ax, x: float, y: float) -> None:
    ax.add_patch(Circle((x, y), 0.22, fc="white", ec=_INK, lw=1.2))
    ax.text(x, y, "+", ha="center", va="center", fontsize=13)


def _chain(ax, x: float, y: float, boxes: list[tuple[str, str]], step: float = 0.8, w: float = 2.6) -> float:
    """Draw boxes top-down from ``y`` with arrows between them; return the y just below the last one."""
    for text, kind in boxes:
        _box(ax, x, y, text, kind, w=w)
        _arrow(ax, x, y - 0.28, x, y - step + 0.28)
        y -= step
    return y


def _skip(ax, x: float, y_from: float, y_to: float, offset: float, label: str, box: str | None = None) -> None:
    """The shortcut: out to the side (right for ``offset`` > 0) at ``y_from``, down, and into the + at ``y_to``."""
    xs, side = x + offset, (1 if offset > 0 else -1)
    colour = COLORS["residual"]
    y_box = (y_from + y_to) / 2
    if box:
        ax.plot([x, xs, xs], [y_from, y_from, y_box + 0.36], color=colour, lw=1.6)
        _box(ax, xs, y_box, box, "proj", w=2.0, h=0.72, size=8)
        ax.plot([xs, xs], [y_box - 0.36, y_to], color=colour, lw=1.6)
    else:
        ax.plot([x, xs, xs], [y_from, y_from, y_to], color=colour, lw=1.6)
    _arrow(ax, xs, y_to, x + side * 0.23, y_to, colour)
    ax.text(xs + side * 0.12, y_box + (1.4 if box else 0), label, color=colour, fontsize=8,
            rotation=90, va="center", ha="left" if side > 0 else "right")


def draw_residual_blocks(name: str | None = "03_residual_block"):
    """Three panels: the plain block, with an identity skip, and with a projection shortcut (``figures/NAME.png``)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 6.4))
    panels = [
        ("1. plain block: relu(f(x))", "x: C x H x W", [("3x3 conv, C -> C", "conv")], None, None),
        ("2. residual block: relu(f(x) + x)", "x: C x H x W", [("3x3 conv, C -> C", "conv")], "identity: x", None),
        ("3. projection: relu(f(x) + BN(Wx))", "x: C x H x W", [("3x3 conv, stride 2, C -> 2C", "conv")],
         "projection shortcut", "1x1 conv, stride 2\nC -> 2C, + BN"),
    ]
    for ax, (title, top, first, skip_label, proj) in zip(axes, panels):
        ax.set(xlim=(-2.3, 4.0), ylim=(-7.2, 0.9), aspect="equal")
        ax.axis("off")
        ax.set_title(title, fontsize=10)
        _box(ax, 0, 0.3, top, "io")
        _arrow(ax, 0, 0.02, 0, -0.52)
        width = "2C" if proj else "C"
        body = first + [("BatchNorm", "bn"), ("ReLU", "relu"), (f"3x3 conv, {width} -> {width}", "conv"),
                        ("BatchNorm", "bn")]
        y = _chain(ax, 0, -0.8, body, w=2.9)  # y: where the next element goes; an arrow already points at it
        ax.plot([-1.65, -1.65], [-0.55, y + 0.55], color=_INK, lw=1)
        ax.text(-1.8, (y - 0.25) / 2, "f(x)", rotation=90, ha="right", va="center", fontsize=10, color=_INK)
        if skip_label:
            _add(ax, 0, y + 0.06)
            _skip(ax, 0, 0.3 - 0.4, y + 0.06, 2.75 if proj else 1.9, skip_label, proj)
            _arrow(ax, 0, y - 0.16, 0, y - 0.52)
            y -= 0.8
        _box(ax, 0, y, "ReLU", "relu")
        _arrow(ax, 0, y - 0.28, 0, y - 0.52)
        _box(ax, 0, y - 0.8, f"output: {'2C x H/2 x W/2' if proj else 'C x H x W'}", "io")
    fig.suptitle("Growing a residual block: the skip adds no parameters; the projection adds one 1x1 conv "
                 "where the shape changes", fontsize=10)
    return finish_figure(fig, name=name)


def draw_blog_resnet(name: str | None = "03_blog_resnet"):
    """The blog's ResNet top to bottom, with each output shape and its two skips (``figures/NAME.png``)."""
    fig, ax = plt.subplots(figsize=(7.6, 11.5))
    ax.set(xlim=(-4.4, 4.4), ylim=(-16.4, 0.8), aspect="equal")
    ax.axis("off")
    step, w = 0.8, 3.3
    y = 0.3
    _box(ax, 0, y, "input digit", "io", w=w)
    ax.text(1.9, y, "1 x 28 x 28", fontsize=8, va="center")

    def layer(text, kind, shape=None):
        nonlocal y
        _arrow(ax, 0, y - 0.28, 0, y - step + 0.28)
        y -= step
        _box(ax, 0, y, text, kind, w=w)
        if shape:
            ax.text(1.9, y, shape, fontsize=8, va="center")

    def res_block(channels, hw):
        nonlocal y
        top = y - 0.4
        layer(f"5x5 conv, {channels} -> 30, pad 2", "conv", f"30 x {hw} x {hw}")
        layer("ReLU", "relu")
        layer(f"3x3 conv, 30 -> {channels}, pad 1", "conv", f"{channels} x {hw} x {hw}")
        _arrow(ax, 0, y - 0.28, 0, y - step + 0.22)
        y -= step
        _add(ax, 0, y)
        _skip(ax, 0, top, y, -2.2, "identity skip: x")
        ax.text(-2.8, (top + y) / 2, f"ResBlock({channels})", rotation=90, ha="right", va="center", fontsize=9,
                color=COLORS["residual"])
        y += 0.28 - 0.22  # the + circle is smaller than a box
        layer("ReLU", "relu", f"{channels} x {hw} x {hw}")

    layer("5x5 conv, 1 -> 20, pad 2", "conv", "20 x 28 x 28")
    layer("ReLU", "relu")
    layer("2x2 max-pool", "pool", "20 x 14 x 14")
    res_block(20, 14)
    layer("3x3 conv, 20 -> 15, pad 1", "conv", "15 x 14 x 14")
    layer("ReLU", "relu")
    layer("2x2 max-pool", "pool", "15 x 7 x 7")
    res_block(15, 7)
    layer("flatten", "io", "735 = 15 x 7 x 7")
    layer("Linear 735 -> 245", "fc", "245")
    layer("ReLU", "relu")
    layer("Linear 245 -> 10", "fc", "10 logits")
    ax.set_title(f"The blog's ResNet (BlogResNet, {count_params(BlogResNet()):,} parameters): layers and output shapes",
                 fontsize=10)
    return finish_figure(fig, name=name)
