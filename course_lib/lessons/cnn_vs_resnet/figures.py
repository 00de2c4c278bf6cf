"""The figures of notebook 04: training curves per seed, and the final accuracies next to the blog's claims.

Colours come from :data:`course_lib.plots.COLORS` (the CNN green, plain nets blue, residual nets vermillion, the
blog's numbers black); a model built with its other initialisation keeps its family's colour, dashed. Titles name
data sources, never machine paths (:func:`course_lib.lessons.cnn_vs_resnet.claims.measured_on`).
"""
from __future__ import annotations

from typing import Sequence

from ...plots import COLORS, color_for, finish_figure
from ...stats import accuracy_interval, mean_sd
from .claims import (BLOG_CLAIMS, CHANCE_LOSS, MNIST_TEST_IMAGES, runs_by_model, final_accuracies, measured_on,
                     n_test, steps_per_epoch)

_PANEL_MODELS = ("BlogCNN", "BlogPlain", "BlogResNet")


def _style(model: str) -> str:
    return "--" if "init)" in model else "-"  # "BlogCNN (PyTorch init)", "BlogPlain (He init)": dashed


def plot_curves(result: dict, name: str | None = "04_curves", title: str = ""):
    """Training loss (log) and test accuracy per epoch: one colour per model family, one line per seed.

    A second x-axis on top counts SGD steps. Saved as ``figures/NAME.png`` when ``name`` is given.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    per_epoch = steps_per_epoch(result)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for model, runs in runs_by_model(result).items():
        for i, run in enumerate(runs):
            epochs = [r["epoch"] for r in run["history"]]
            kw = dict(color=color_for(model), alpha=0.9 if i == 0 else 0.5, lw=1.5, marker=".", ls=_style(model),
                      label=f"{model} ({len(runs)} seed{'s' * (len(runs) > 1)})" if i == 0 else None)
            ax_loss.plot(epochs, [r["train_loss"] for r in run["history"]], **kw)
            ax_acc.plot(epochs, [100 * r["test_acc"] for r in run["history"]], **kw)
    ax_loss.axhline(CHANCE_LOSS, color=COLORS["neutral"], ls=":", lw=1, label="chance loss ln 10")
    ax_loss.set(xlabel="epoch", ylabel="mean training loss of the epoch", yscale="log", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"test accuracy ({n_test(result):,} images)",
               ylim=(0, 100))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        top = ax.secondary_xaxis("top", functions=(lambda e: e * per_epoch, lambda s: s / per_epoch))
        top.set_xlabel("SGD steps", fontsize=8)
        top.tick_params(labelsize=7)
    ax_loss.legend(fontsize=7)
    fig.suptitle(title or measured_on(result), fontsize=9)
    return finish_figure(fig, name=name)


def _claims_panel(ax) -> None:
    for i, (model, claim) in enumerate(BLOG_CLAIMS.items()):
        acc = claim["test_acc"]
        lo, hi = accuracy_interval(acc, MNIST_TEST_IMAGES)
        ax.errorbar(i, 100 * acc, [[100 * (acc - lo)], [100 * (hi - acc)]], fmt="o", color=COLORS["blog"],
                    capsize=4, ms=7)
        ax.annotate(f"{acc:.1%}", (i, 100 * acc), textcoords="offset points", xytext=(8, -3), fontsize=8)
    ax.set_xticks(range(len(BLOG_CLAIMS)), list(BLOG_CLAIMS))
    ax.set_title(f"the blog's claims: full MNIST,\n1 run each, {MNIST_TEST_IMAGES:,} test images", fontsize=9)


def _result_panel(ax, result: dict, label: str) -> None:
    n = n_test(result)
    models = [m for m in _PANEL_MODELS if final_accuracies(result, m)]
    for i, model in enumerate(models):
        accs = final_accuracies(result, model)
        mean, _ = mean_sd(accs)
        lo, hi = accuracy_interval(mean, n)
        ax.plot([i + 0.18] * len(accs), [100 * a for a in accs], "o", ms=4, color=color_for(model), alpha=0.6)
        ax.errorbar(i, 100 * mean, [[100 * (mean - lo)], [100 * (hi - mean)]], fmt="D", color=color_for(model),
                    capsize=4, ms=6)
    for marker, text in (("o", "one seed"), ("D", "mean and its 95% Wilson interval")):  # legend in neutral grey
        ax.plot([], [], marker, color=COLORS["neutral"], label=text)
    ax.set_xticks(range(len(models)), models)
    seeds = len(final_accuracies(result, models[0])) if models else 0
    ax.set_title(f"ours: {label},\n{seeds} seed{'s' * (seeds > 1)}, {n:,} test images", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")


def plot_claims(results: Sequence[tuple[str, dict]], name: str | None = "04_blog_claims"):
    """Final test accuracy: the blog's claims in their own panel, then one panel per ``(label, result)``.

    Dots on a zoomed axis: each seed's accuracy (small dots) and the mean with its 95% Wilson interval for the
    panel's test-set size. Panels have their own y-axes because they measure different data; only a run of the
    blog's protocol on full MNIST would belong in the claims' panel.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(results), figsize=(3.6 * (1 + len(results)), 3.8))
    _claims_panel(axes[0])
    for ax, (label, result) in zip(axes[1:], results):
        _result_panel(ax, result, label)
    for ax in axes:
        ax.set_xlim(-0.5, len(ax.get_xticks()) - 0.5)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo))  # zoomed to the data, with room for the bars
        ax.set_ylabel("final test accuracy (%)")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Final test accuracy: each panel is different data, so compare within a panel, not across",
                 fontsize=9)
    return finish_figure(fig, name=name)
