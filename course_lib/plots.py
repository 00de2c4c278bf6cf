"""Figures: the course's one colour table, and saving every figure as ``NN_name.png`` (NN: the notebook)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import torch

from .locations import COMMITTED_PROFILE, figures_dir, in_scratch

# One colour meaning across the whole course (Okabe-Ito, colour-blind safe). Every figure takes its colours from
# here: plain nets are always blue, residual nets vermillion, the CNN green, the blog's reported numbers black.
COLORS: dict[str, str] = {
    "plain": "#0072B2",     # blue
    "residual": "#D55E00",  # vermillion
    "cnn": "#009E73",       # bluish green
    "blog": "#000000",      # the blog's reference numbers
    "preact": "#CC79A7",    # reddish purple: pre-activation residual blocks
    "other": "#E69F00",     # orange: a second condition of the same family (e.g. another init)
    "neutral": "#999999",   # grey: chance level, guides, "all paths"
    "blog-recipe": "#56B4E9",  # sky blue: the blog's training recipe on one of the course's nets (notebook 06)
}


LINE_STYLES = ("-", "--", ":", "-.")  # for several runs of one family in one figure: same colour, another style


def color_for(label: str) -> str:
    """The course colour for a model label: ``plain-20``/``BlogPlain`` -> plain, ``residual-56``/``BlogResNet``/
    ``resnet18`` -> residual, ``BlogCNN``/``blog-cnn`` -> cnn, ``blog`` -> the blog's numbers."""
    key = label.lower().replace("_", "-")
    if "preact" in key or "pre-act" in key:
        return COLORS["preact"]
    if "plain" in key:
        return COLORS["plain"]
    if "cnn" in key:
        return COLORS["cnn"]
    if "res" in key:
        return COLORS["residual"]
    if "blog" in key:
        return COLORS["blog"]
    return COLORS["other"]


def save_figure(fig: "plt.Figure", name: str, folder: str | Path | None = None, verbose: bool = True) -> Path:
    """Save ``fig`` as ``NAME.png`` in ``folder`` (default :func:`figures_dir`) and return the path."""
    folder = Path(folder) if folder is not None else figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name if name.endswith(".png") else f"{name}.png")
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    if verbose and in_scratch(path):  # another profile than the committed figures' one
        print(f"saved {path.name} in {path.parent} (figures/ keeps the {COMMITTED_PROFILE} profile's)")
    elif verbose:
        print(f"saved {path.parent.name}/{path.name}")  # short and machine-independent
    return path


def figure_png(fig: "plt.Figure", dpi: int = 90) -> bytes:
    """``fig`` as PNG bytes, for a widget that redraws it (nothing is written to disk)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def finish_figure(fig: "plt.Figure", title: str = "", name: str | None = None) -> "plt.Figure":
    """Add the suptitle, tighten the layout and, when ``name`` is given, save ``figures/NAME.png``."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if name:
        save_figure(fig, name)
    return fig


def digit_grid(x: torch.Tensor, y: torch.Tensor, per_class: int = 8, title: str = "", name: str | None = None):
    """A grid of ``per_class`` images for each digit 0..9 (rows). ``x``: N x 1 x 28 x 28."""
    fig, axes = plt.subplots(10, per_class, figsize=(per_class * 0.8, 8.4))
    for digit in range(10):
        idx = (y == digit).nonzero().flatten()[:per_class]
        for col in range(per_class):
            ax = axes[digit, col]
            ax.axis("off")
            if col < len(idx):
                ax.imshow(x[idx[col], 0].cpu(), cmap="gray_r", vmin=0, vmax=1)
        axes[digit, 0].text(-8, 14, str(digit), fontsize=12, va="center", ha="right")
    if title:
        fig.suptitle(title, fontsize=10)
    if name:
        save_figure(fig, name)
    return fig


def training_curves(histories: dict[str, Sequence[dict]], title: str = "", name: str | None = None):
    """Training loss (log scale) and test accuracy per epoch of each run in ``histories``, ``{label: [{epoch,
    train_loss, test_acc}, ...]}``."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    seen: dict[str, int] = {}  # runs of one family share its colour and differ in line style
    for label, records in histories.items():
        color = color_for(label)
        style = dict(color=color, ls=LINE_STYLES[seen.get(color, 0) % len(LINE_STYLES)], marker=".", label=label)
        seen[color] = seen.get(color, 0) + 1
        epochs = [r["epoch"] for r in records]
        ax_loss.plot(epochs, [r["train_loss"] for r in records], **style)
        ax_acc.plot(epochs, [100 * r["test_acc"] for r in records], **style)
    ax_loss.set(xlabel="epoch", ylabel="mean training loss", yscale="log", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return finish_figure(fig, title, name)
