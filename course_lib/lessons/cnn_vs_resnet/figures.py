"""Notebook 04's figures, in the course's colours (a model's other initialisation: its family's colour, dashed)."""
from __future__ import annotations

from typing import Sequence

from ...plots import COLORS, color_for, finish_figure
from ...stats import accuracy_interval, mean_sd
from .claims import (BLOG_CLAIMS, CHANCE_LOSS, MNIST_TEST_IMAGES, final_accuracies, measured_on_lines, n_test,
                     runs_by_model, steps_per_epoch)
from .protocol import COMPARED


# Display names: which model, and from which initialisation (blog-cnn is the course's reconstruction)
NAMES = {"blog-cnn": "BlogCNN (reconstructed, He init)", "blog-plain": "BlogPlain (default init)",
         "blog-resnet": "BlogResNet (default init)", "blog-cnn-pytorch-init": "BlogCNN (reconstructed, default init)",
         "blog-plain-he-init": "BlogPlain (He init)"}


def _curve(runs: list[dict], key: str, mean: bool) -> list[tuple[list[int], list[float], list[float], list[float]]]:
    """``(epochs, values, lows, highs)`` per line: one per seed, or one mean over seeds with its min-max band."""
    scale = 100 if key == "test_acc" else 1
    per_seed = [([r["epoch"] for r in run["history"]], [scale * r[key] for r in run["history"]]) for run in runs]
    if not mean:
        return [(e, v, v, v) for e, v in per_seed]
    n = min(len(v) for _, v in per_seed)
    cols = [[v[i] for _, v in per_seed] for i in range(n)]
    return [(per_seed[0][0][:n], [sum(c) / len(c) for c in cols], [min(c) for c in cols], [max(c) for c in cols])]


def plot_curves(result: dict, name: str | None = "04_curves", title: str = "", mean_over_seeds: bool = False):
    """Training loss (log) and test accuracy per epoch and SGD step: one line per seed, or with ``mean_over_seeds``
    one per model (the mean) in a band from the lowest to the highest seed."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    per_epoch = steps_per_epoch(result)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(13, 4.2))
    for model, runs in runs_by_model(result).items():
        seeds = f"{len(runs)} seed{'s' * (len(runs) > 1)}"
        label = f"{NAMES.get(model, model)} ({'mean of ' if mean_over_seeds and len(runs) > 1 else ''}{seeds})"
        style = "--" if model.endswith("-init") else "-"  # the other initialisation: its family's colour, dashed
        for ax, key in ((ax_loss, "train_loss"), (ax_acc, "test_acc")):
            for i, (epochs, values, lows, highs) in enumerate(_curve(runs, key, mean_over_seeds)):
                ax.plot(epochs, values, color=color_for(model), alpha=0.7, lw=1.8 if
                        mean_over_seeds else 1.5, marker=".", ls=style, label=label if i == 0 else None)
                if mean_over_seeds and len(runs) > 1:
                    ax.fill_between(epochs, lows, highs, color=color_for(model), alpha=0.12, lw=0)
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
    # outside the panels, so that it covers no curve; long handles tell dashed from solid lines
    ax_acc.legend(*ax_loss.get_legend_handles_labels(), fontsize=8, handlelength=3.5, loc="upper left",
                  bbox_to_anchor=(1.02, 1))
    where = "\n".join(line.removeprefix("measured on: ") for line in measured_on_lines(result))
    fig.suptitle(title or where + (" (band: lowest to highest seed)" if mean_over_seeds else ""), fontsize=8)
    return finish_figure(fig, name=name)


def _claims_panel(ax) -> None:
    for i, (model, claim) in enumerate(BLOG_CLAIMS.items()):
        acc = claim["test_acc"]
        lo, hi = accuracy_interval(acc, MNIST_TEST_IMAGES)
        ax.errorbar(i, 100 * acc, [[100 * (acc - lo)], [100 * (hi - acc)]], fmt="o", color=COLORS["blog"],
                    capsize=4, ms=7)
        ax.annotate(f"{acc:.1%}".replace(".0%", "%"), (i, 100 * acc), textcoords="offset points", xytext=(8, -3), fontsize=8)
    ax.set_xticks(range(len(BLOG_CLAIMS)), ["the blog's\nCNN", "the blog's\nResNet"])
    ax.set_title(f"the blog's numbers (full MNIST); bars: our\n95% Wilson interval on {MNIST_TEST_IMAGES:,} test images",
                 fontsize=9)


def _result_panel(ax, result: dict, label: str) -> None:
    n = n_test(result)
    models = [m for m in COMPARED if final_accuracies(result, m)]
    seeds = len(final_accuracies(result, models[0])) if models else 0
    for i, model in enumerate(models):
        accs = final_accuracies(result, model)
        mean, _ = mean_sd(accs)
        lo, hi = accuracy_interval(mean, n)
        if len(accs) > 1:  # side by side, so that seeds with the same accuracy stay visible
            ax.plot([i + 0.14 + 0.07 * k for k in range(len(accs))], [100 * a for a in accs], "o", ms=4,
                    color=color_for(model), alpha=0.6)
        ax.errorbar(i, 100 * mean, [[100 * (mean - lo)], [100 * (hi - mean)]], fmt="D", color=color_for(model),
                    capsize=4, ms=6)
    # the legend in neutral grey; one seed is one run, not a mean
    entries = ((("o", "one seed each"), ("D", "mean of the seeds, 95% Wilson interval\n(test-set noise only)"))
               if seeds > 1 else (("D", "one run, 95% Wilson interval\n(test-set noise only)"),))
    for marker, text in entries:
        ax.plot([], [], marker, color=COLORS["neutral"], label=text)
    ax.set_xticks(range(len(models)), [NAMES[m].replace(" (", "\n(").replace(", ", ",\n") for m in models])
    ax.set_title(f"ours: {label},\n{seeds} seed{'s' * (seeds > 1)}, {n:,} test images", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")



def plot_claims(results: Sequence[tuple[str, dict]], name: str | None = "04_blog_claims"):
    """Final test accuracy: the blog's claims, then one panel per ``(label, result)`` with each seed and the mean's
    95% Wilson interval. Each panel is different data, with its own y-axis, but every axis spans as many points."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(results), figsize=(3.8 * (1 + len(results)), 4.2))
    _claims_panel(axes[0])
    for ax, (label, result) in zip(axes[1:], results):
        _result_panel(ax, result, label)
    limits = [ax.get_ylim() for ax in axes]
    span = 1.3 * max(hi - lo for lo, hi in limits)  # the widest panel's data, with room for the bars and legend
    for ax, (lo, hi) in zip(axes, limits):
        ax.set_xlim(-0.5, len(ax.get_xticks()) - 0.5)
        centre = (lo + hi) / 2
        ax.set_ylim(centre - 0.6 * span, centre + 0.4 * span)  # more room below: the legend sits there
        ax.set_ylabel("final test accuracy (%)")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"Final test accuracy, every axis {span:.1f} points tall: each panel is different data, so "
                 "compare within a panel, not across", fontsize=9)
    return finish_figure(fig, name=name)
