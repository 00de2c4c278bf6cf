"""The sweep's figures for notebook 01: training loss per step, and final training loss against depth."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ...plots import COLORS, finish_figure
from .gradients import depth_style
from .sweep import budget_steps, summarize


def _smooth(curve: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(curve)))
    return np.convolve(curve, np.ones(window) / window, mode="valid")


def _plain_log_labels(ax) -> None:
    """Label a log y-axis at 1, 2 and 5 times the powers of ten, as plain numbers (0.05, not 5 x 10^-2)."""
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _finished(result: dict, kind: str, steps: int) -> list[dict]:
    """The runs of ``kind`` at the budget of ``steps`` that did not diverge."""
    return [r for r in result["runs"]
            if (r["kind"], r["steps"]) == (kind, steps) and r["final_train_loss"] is not None]


def _label(result: dict) -> str:
    c, m = result["config"], result.get("meta", {})
    seeds = len({r["seed"] for r in result["runs"]})
    data = "MNIST sample" if result["dataset"] == "sample" else result["dataset"]
    n_train = f"{m['n_train']:,}" if m.get("n_train") else "?"
    return (f"{data} ({n_train} training digits), SGD lr {c['lr']} ({c['lr_schedule']}), "
            f"batch {c['batch_size']}, width {c['width']}, {seeds} seed(s); {m.get('device_name')}, "
            f"sizes of the {result['profile']} profile, {m.get('date')}")


def plot_sweep_curves(result: dict, name: str | None = "01_curves", title: str = ""):
    """Training loss per SGD step at the largest budget (moving average, band = min-max over seeds), one line per
    depth (thicker and solid = deeper), plain | residual; dotted lines where the smaller budgets end."""
    budgets = budget_steps(result)
    depths = sorted({r["depth"] for r in result["runs"]})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, kind in zip(axes, ("plain", "residual")):
        for i, depth in enumerate(depths):
            curves = [r["curve"] for r in _finished(result, kind, budgets[-1]) if r["depth"] == depth]
            if not curves:
                continue
            steps = min(len(c) for c in curves)
            window = max(1, budgets[0] // 8)
            smooth = np.array([_smooth(np.asarray(c[:steps]), window) for c in curves])
            x = np.arange(window, steps + 1)
            style = depth_style(i, len(depths)) | dict(marker="")
            ax.plot(x, smooth.mean(0), color=COLORS[kind], label=f"{kind}-{depth}", **style)
            ax.fill_between(x, smooth.min(0), smooth.max(0), color=COLORS[kind], alpha=0.10, lw=0)
        for steps in budgets[:-1]:
            ax.axvline(steps, color=COLORS["neutral"], ls=":", lw=1)
            ax.text(steps, 0.98, f" end of the {steps}-step budget", transform=ax.get_xaxis_transform(),
                    fontsize=7, va="top", color="dimgray")
        ax.axhline(np.log(10), color=COLORS["neutral"], lw=0.8)  # ln 10: guessing among ten digits
        ax.set(yscale="log", xlabel="SGD step", title=f"{kind} nets")
        _plain_log_labels(ax)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower left")
    axes[0].set_ylabel(f"training loss (moving average over {max(1, budgets[0] // 8)} steps)")
    fig.suptitle(title or "Training loss per step; grey line: ln 10, the loss of guessing\n" + _label(result),
                 fontsize=9)
    return finish_figure(fig, name=name)


def plot_sweep_depth(result: dict, name: str | None = "01_depth", title: str = ""):
    """Final training loss against depth at every budget (dots: seeds; line: mean; the longest solid), and test
    accuracy at the largest budget, plain vs residual."""
    budgets = budget_steps(result)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.2))
    for kind, marker in (("plain", "o"), ("residual", "s")):
        styles = (["-", "--"] + [":"] * len(budgets))[:len(budgets)][::-1]  # the longest budget solid
        for steps, style in zip(budgets, styles):
            last = steps == budgets[-1]
            rows = summarize(result, steps)
            mine = [r for r in rows if r["kind"] == kind]
            runs = _finished(result, kind, steps)
            ax_loss.scatter([r["depth"] for r in runs], [r["final_train_loss"] for r in runs], color=COLORS[kind],
                            marker=marker, s=18 if last else 10, facecolors=COLORS[kind] if last else "white")
            ax_loss.plot([r["depth"] for r in mine], [r["loss_mean"] for r in mine], color=COLORS[kind],
                         ls=style, lw=2 if last else 1.2, label=f"{kind}, {steps} steps")
            if last:
                ax_acc.scatter([r["depth"] for r in runs], [100 * r["test_acc"] for r in runs], color=COLORS[kind],
                               marker=marker, s=18)
                ax_acc.plot([r["depth"] for r in mine], [100 * r["acc_mean"] for r in mine], color=COLORS[kind],
                            label=f"{kind}, {steps} steps")
    ax_loss.set(xlabel="depth (layers)", ylabel="final training loss", yscale="log",
                title="final training loss (lower is better)")
    ax_acc.set(xlabel="depth (layers)", ylabel="test accuracy (%)", title="test accuracy (higher is better)")
    _plain_log_labels(ax_loss)
    for ax in (ax_loss, ax_acc):
        ax.set_xticks(sorted({r["depth"] for r in result["runs"]}))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(title or _label(result), fontsize=9)
    return finish_figure(fig, name=name)


# (centre x, centre y, width, height) of F1, F2, F3: on the left each class moves, on the right each holds the last
_CLASSES = {"non-nested: F3 is the biggest, yet its best\nis farther from f* than F2's":
            [(0.0, 0.0, 2.0, 1.4), (1.4, 1.3, 2.0, 1.4), (-0.8, 2.5, 3.6, 1.4)],
            "nested: each class contains the last, so its\nbest is never farther from f*":
            [(0.0, 0.0, 2.0, 1.4), (0.5, 0.3, 3.6, 2.5), (0.9, 0.6, 5.2, 3.6)]}
_TARGET = (2.6, 1.4)  # f*, the function we would like to find


def _closest_in_ellipse(cx: float, cy: float, w: float, h: float, point: tuple[float, float]) -> np.ndarray:
    """The point of the filled ellipse nearest to ``point`` (``point`` itself if inside), by dense sampling."""
    r, t = np.meshgrid(np.linspace(0, 1, 200), np.linspace(0, 2 * np.pi, 720))
    xy = np.stack([cx + r.ravel() * w / 2 * np.cos(t.ravel()), cy + r.ravel() * h / 2 * np.sin(t.ravel())], 1)
    return xy[np.argmin(np.hypot(*(xy - point).T))]


def plot_nested_classes(name: str | None = "01_nested_classes"):
    """d2l's picture: three function classes F1, F2, F3 of growing size and f*. Only when each class contains the
    last (right) can the best function in the bigger class not be farther from f* than before."""
    from matplotlib.patches import Ellipse
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, (title, classes) in zip(axes, _CLASSES.items()):
        for i, (cx, cy, w, h) in enumerate(classes):
            ax.add_patch(Ellipse((cx, cy), w, h, fill=False, lw=1.6, color=COLORS["plain"], ls=("-", "--", ":")[i]))
            best = _closest_in_ellipse(cx, cy, w, h, _TARGET)
            distance = float(np.hypot(*(best - _TARGET)))
            ax.plot(*zip(best, _TARGET), color="gray", lw=0.7)
            ax.plot(*best, "o", color=COLORS["plain"], ms=4)
            ax.text(cx, cy + h / 2 + 0.05, f"F{i + 1}", fontsize=10, ha="center")
            ax.text(0.98, 0.03 + 0.06 * (2 - i), f"best in F{i + 1}: distance {distance:.2f} to f*", fontsize=8,
                    transform=ax.transAxes, ha="right")
        ax.plot(*_TARGET, "*", color=COLORS["residual"], ms=14)
        ax.text(_TARGET[0] + 0.15, _TARGET[1] + 0.1, "f*", fontsize=11)
        ax.set(xlim=(-2.8, 4.4), ylim=(-2.5, 3.6), aspect="equal", xticks=[], yticks=[])
        ax.set_title(title, fontsize=10)
    axes[0].set_xlabel("dots: the function of each class closest to f* (after d2l's nested function classes)",
                       fontsize=8, loc="left")
    return finish_figure(fig, name=name)
