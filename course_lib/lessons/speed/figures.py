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

