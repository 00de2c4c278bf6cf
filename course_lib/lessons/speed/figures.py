"""Notebook 06's figures: training throughput of each measured setting, and the bf16 study's accuracy curves."""
from __future__ import annotations

from ...plots import COLORS, color_for, finish_figure
from ...results import describe


def plot_throughput(bench_result: dict, name: str | None = "06_throughput"):
    """Images/s of each contender of a benchmark, one bar each; what was not run is named under the axes, and why."""
    import matplotlib.pyplot as plt

    rows = bench_result["pipelines"] + bench_result["variants"]
    model_colour = color_for(bench_result["settings"]["model"])
    fig, ax = plt.subplots(figsize=(8.5, 1.2 + 0.45 * len(rows)))
    for i, row in enumerate(rows):
        blog = row["kind"] == "pipeline" and row["name"].startswith("blog")
        ax.barh(i, row["images_per_s"], color=COLORS["blog"] if blog else model_colour,
                alpha=0.9 if row["kind"] == "pipeline" else 0.45)
        ax.text(row["images_per_s"], i, f" {row['images_per_s']:,.0f}", va="center", fontsize=8)
    labels = [("model only: " if r["kind"] == "model only" else "") + r["name"] for r in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, max(r["images_per_s"] for r in rows) * 1.18)
    not_run = "\n".join(f"not measured: {why}" for why in bench_result["variants_not_run"])
    ax.set_xlabel("training images per second (median over rounds)" + (f"\n{not_run}" if not_run else ""),
                  fontsize=8)
    s = bench_result["settings"]
    data = s["dataset"]
    ax.set_title(f"{s['model']}, batch {s['batch_size']}, {s['steps']} steps each, {s['threads']} thread(s), "
                 f"device {bench_result['device']}; data: {data.get('dataset')} ({data.get('source')})", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return finish_figure(fig, name=name)


def plot_bf16(result: dict, name: str | None = "06_bf16_accuracy"):
    """Test accuracy per epoch of every run of a bf16 study: fp32 left, bf16 right, one line style per seed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    styles = ["-", "--", ":", "-."]
    curves = [r for r in result["runs"] if r.get("test_acc_per_epoch")]
    for ax, precision in zip(axes, ("fp32", "bf16")):
        for r in (r for r in curves if r["precision"] == precision):
            acc = [100 * a for a in r["test_acc_per_epoch"]]
            ax.plot(range(1, len(acc) + 1), acc, color=color_for(result["meta"]["model"]), lw=1.3,
                    ls=styles[r["seed"] % len(styles)], label=f"seed {r['seed']}: {acc[-1]:.1f}% at the end")
        ax.set(xlabel="epoch", title=precision if precision == "fp32" else "bf16 autocast")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    low = min((100 * min(r["test_acc_per_epoch"]) for r in curves), default=0)
    axes[0].set(ylabel="test accuracy (%)", ylim=(max(0, min(low, 90) - 1), 100))
    return finish_figure(fig, f"{result['meta']['model']}, both in channels_last; {describe(result)}", name=name)
