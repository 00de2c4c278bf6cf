"""Residual networks as ensembles of paths (Veit et al. 2016), notebook 05: delete blocks of a trained net at test
time, and measure the gradient along each of the 2^n paths of a small residual net.

A deleted block becomes the identity in both nets: without f, a residual block's ``relu(f(x) + x)`` is ``relu(x) = x``.
"""
from __future__ import annotations

import copy
import itertools
import math
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError
from ...plots import COLORS, color_for, finish_figure
from ...training import evaluate, recompute_bn_stats

CHANCE = 0.10  # ten classes


def _body(model: nn.Module) -> nn.Sequential:
    body = getattr(model, "body", None)
    if not isinstance(body, nn.Sequential):
        raise ConfigError(f"{type(model).__name__} has no .body of blocks; the lesion study needs a depth-family "
                          f"net. Fix: use course_lib.plain_net(depth) or course_lib.residual_net(depth).")
    return body


def n_blocks(model: nn.Module) -> int:
    """Number of blocks in the body of a depth-family net: (depth - 2) / 2."""
    return len(_body(model))


def _check_blocks(model: nn.Module, blocks: Iterable[int]) -> list[int]:
    n = n_blocks(model)
    blocks = sorted(set(int(b) for b in blocks))
    bad = [b for b in blocks if not 0 <= b < n]
    if bad:
        raise ConfigError(f"block index {bad} out of range: this net has blocks 0..{n - 1}")
    return blocks


@contextmanager
def blocks_deleted(model: nn.Module, blocks: Iterable[int]) -> Iterator[nn.Module]:
    """Inside the ``with``, the body blocks listed in ``blocks`` (0-based) are the identity; put back on exit."""
    body = _body(model)
    saved = {i: body[i] for i in _check_blocks(model, blocks)}
    try:
        for i in saved:
            body[i] = nn.Identity()
        yield model
    finally:
        for i, block in saved.items():
            body[i] = block


def lesion_accuracy(model: nn.Module, x: Tensor, y: Tensor, blocks: Iterable[int] = (),
                    bn_images: Tensor | None = None) -> float:
    """Test accuracy with ``blocks`` deleted; ``x``: N x 1 x 28 x 28, ``y``: N. With ``bn_images`` (M x 1 x 28 x 28)
    the BatchNorm statistics are recomputed on them first, and restored afterwards."""
    with blocks_deleted(model, blocks):
        if bn_images is None:
            return evaluate(model, x, y)
        saved = copy.deepcopy(model.state_dict())
        try:
            recompute_bn_stats(model, bn_images)
            return evaluate(model, x, y)
        finally:
            model.load_state_dict(saved)


def single_deletions(model: nn.Module, x: Tensor, y: Tensor, bn_images: Tensor | None = None) -> list[float]:
    """Accuracy with each block deleted alone: a list of n values, entry i = block i deleted."""
    return [lesion_accuracy(model, x, y, [i], bn_images) for i in range(n_blocks(model))]


def random_block_sets(n: int, draws: int, seed: int = 0) -> dict[int, list[list[int]]]:
    """For k = 1..n, ``draws`` different seeded random k-subsets of range(n) (all of them if fewer exist)."""
    rng = np.random.default_rng(seed)
    sets: dict[int, list[list[int]]] = {}
    for k in range(1, n + 1):
        if math.comb(n, k) <= draws:
            sets[k] = [list(c) for c in itertools.combinations(range(n), k)]
            continue
        chosen: set[tuple[int, ...]] = set()
        while len(chosen) < draws:
            chosen.add(tuple(sorted(rng.choice(n, size=k, replace=False).tolist())))
        sets[k] = [list(c) for c in sorted(chosen)]
    return sets


def random_deletions(model: nn.Module, x: Tensor, y: Tensor, block_sets: dict[int, list[list[int]]],
                     bn_images: Tensor | None = None) -> dict[int, list[float]]:
    """Accuracy for every subset in ``block_sets`` (from :func:`random_block_sets`): k -> list of accuracies."""
    return {k: [lesion_accuracy(model, x, y, s, bn_images) for s in sets] for k, sets in block_sets.items()}


def mean_by_block(block_sets: dict, accuracies: dict, block: int) -> dict[int, tuple[float | None, float | None]]:
    """For each k: (mean accuracy over the subsets that delete ``block``, over those that keep it; None if none).
    Keys of ``block_sets``/``accuracies`` may be strings, as after JSON."""
    out = {}
    for k, sets in block_sets.items():
        accs = accuracies[k] if k in accuracies else accuracies[str(k)]
        hit = [a for s, a in zip(sets, accs) if block in s]
        miss = [a for s, a in zip(sets, accs) if block not in s]
        out[int(k)] = (float(np.mean(hit)) if hit else None, float(np.mean(miss)) if miss else None)
    return out


def path_length_counts(n: int) -> list[int]:
    """Number of paths of each length k = 0..n through n residual blocks: C(n, k). Sums to 2^n."""
    if n < 0:
        raise ConfigError(f"number of blocks must be >= 0, got {n}")
    return [math.comb(n, k) for k in range(n + 1)]


def gradient_by_path_length(model: nn.Module, x: Tensor, y: Tensor, max_blocks: int = 12) -> dict:
    """The summed cross-entropy's gradient on ``x`` (N x 1 x 28 x 28), ``y`` (N) along each of the 2^n paths of a
    residual net, at the body's input, by path length k (how many f's it goes through). Backward through block i
    is ``g -> m + J_f^T m`` with ``m = g * [f(x_i) + x_i > 0]``; ``sum_check`` compares the sum with autograd."""
    body = _body(model)
    n = len(body)
    if not all(getattr(b, "residual", False) for b in body):
        raise ConfigError("gradient_by_path_length needs a residual net: a plain net has a single path "
                          "(through every block). Fix: pass a course_lib.residual_net(depth).")
    if n > max_blocks:
        raise ConfigError(f"{n} blocks give 2^{n} = {2 ** n:,} paths, too many to enumerate (max_blocks={max_blocks}). "
                          f"Fix: use a shallower residual net, or raise max_blocks if you have the time.")
    was_training = model.training
    model.eval()  # stored BatchNorm statistics: a fixed function, as at test time
    try:
        with torch.enable_grad():
            x0 = model.stem(x).detach().requires_grad_(True)
            inputs, f_outs, masks = [], [], []
            h = x0
            for block in body:
                h_in = h.detach().requires_grad_(True)
                f_out = block.f(h_in)
                pre = f_out + h_in
                inputs.append(h_in)
                f_outs.append(f_out)
                masks.append((pre > 0).to(pre.dtype))
                h = F.relu(pre)
            h_last = h.detach().requires_grad_(True)
            logits = model.classify(h_last)
            g_top, = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), h_last)
            logits_full = model.classify(body(x0))  # for the check
            g_true, = torch.autograd.grad(F.cross_entropy(logits_full, y, reduction="sum"), x0)

            norm_sum = torch.zeros(n + 1, dtype=torch.float64)
            grad_sum = torch.zeros_like(x0)

            def descend(i: int, g: Tensor, length: int) -> None:
                nonlocal grad_sum
                if i < 0:  # reached the body's input: one complete path
                    grad_sum = grad_sum + g
                    norm_sum[length] += g.flatten(1).norm(dim=1).mean().double()
                    return
                m = g * masks[i]
                descend(i - 1, m, length)  # through the skip
                through_f, = torch.autograd.grad(f_outs[i], inputs[i], m, retain_graph=True)
                descend(i - 1, through_f, length + 1)  # through f

            descend(n - 1, g_top, 0)
    finally:
        model.train(was_training)
    paths = path_length_counts(n)
    per_path = [float(norm_sum[k]) / paths[k] for k in range(n + 1)]
    total = [float(norm_sum[k]) for k in range(n + 1)]
    share = [t / sum(total) for t in total]
    mean_length = sum(k * sh for k, sh in enumerate(share))
    sum_check = float((grad_sum - g_true).norm() / g_true.norm().clamp_min(1e-30))
    return dict(n=n, lengths=list(range(n + 1)), paths=paths, per_path=per_path, total=total,
                share=share, path_share=[p / 2 ** n for p in paths], mean_length_gradient=mean_length,
                mean_length_paths=n / 2, sum_check=sum_check, n_images=len(y))


def _finish(fig, title: str, name: str | None):
    if title:
        fig.suptitle(title, fontsize=9)
    return finish_figure(fig, name=name)


def plot_single_deletions(result: dict, name: str | None = "05_single_deletions", title: str = ""):
    """One bar chart per net of a lesion study's result: test accuracy with each block deleted alone."""
    kinds = [k for k in ("plain", "residual") if k in result]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4.2), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        r = result[kind]
        blocks = np.arange(len(r["single"]))  # numbered from 0, as model.body[i]
        width = 0.4 if r.get("single_bn") else 0.8
        ax.bar(blocks - (width / 2 if r.get("single_bn") else 0), 100 * np.array(r["single"]), width,
               color=COLORS[kind], label="stored BN statistics")
        if r.get("single_bn"):
            ax.bar(blocks + width / 2, 100 * np.array(r["single_bn"]), width, color=COLORS[kind], alpha=0.4,
                   label="BN statistics recomputed")
        ax.axhline(100 * r["intact"], color=COLORS[kind], lw=1, ls="--", label=f"intact: {r['intact']:.1%}")
        if r.get("single_bn"):
            ax.axhline(100 * r["intact_bn"], color=COLORS[kind], lw=1, ls="-.", alpha=0.6,
                       label=f"intact, BN recomputed: {r['intact_bn']:.1%}")
        ax.axhline(100 * CHANCE, color=COLORS["neutral"], lw=1, ls=":", label="chance (10%)")
        ax.set(xlabel="deleted block (model.body[i])", ylabel="test accuracy (%)", title=f"{kind} net", ylim=(0, 100), xticks=blocks)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below: bars reach 0
    return _finish(fig, title, name)


def plot_random_deletions(result: dict, name: str | None = "05_random_deletions", title: str = "",
                          kept_block: int | None = None):
    """Test accuracy against the number k of randomly deleted blocks (mean and min-max over draws), both nets:
    stored BatchNorm statistics, and recomputed ones when measured. ``kept_block``: also the draws that keep it."""
    panels = [("random", "stored BatchNorm statistics")]
    if all(result[k].get("random_bn") for k in ("plain", "residual") if k in result):
        panels.append(("random_bn", "BatchNorm statistics recomputed"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.8), sharey=True, squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        for kind in ("plain", "residual"):
            if kind not in result:
                continue
            rnd = {int(k): v for k, v in result[kind][key].items()}
            ks = sorted(rnd)
            intact = result[kind]["intact" if key == "random" else "intact_bn"]
            ax.plot([0] + ks, [100 * intact] + [100 * np.mean(rnd[k]) for k in ks], marker="o",
                    color=COLORS[kind], label=f"{kind}: mean over draws")
            ax.fill_between(ks, [100 * np.min(rnd[k]) for k in ks], [100 * np.max(rnd[k]) for k in ks],
                            color=COLORS[kind], alpha=0.2, label=f"{kind}: min to max")
            if kept_block is not None and key == "random" and kind == "residual":
                split = mean_by_block(result["block_sets"], result[kind][key], kept_block)
                kk = [k for k in ks if split[k][1] is not None]
                ax.plot(kk, [100 * split[k][1] for k in kk], ls="--", marker=".", color=COLORS[kind],
                        label=f"{kind}: draws that keep block {kept_block}")
        ax.axhline(100 * CHANCE, color=COLORS["neutral"], lw=1, ls=":", label="chance (10%)")
        ax.set(xlabel="number of blocks deleted at random (k)", ylabel="test accuracy (%)", ylim=(0, 100),
               title=f"deleting k random blocks: {label}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)  # below: the bands fill the axes
    return _finish(fig, title, name)


def plot_path_lengths(paths: dict, name: str | None = "05_paths", title: str = ""):
    """Veit et al.'s Figure 6 for :func:`gradient_by_path_length`'s result: (a) paths per length, (b) gradient
    along one path of length k, (c) the summed per-path norms of each length as a share of all."""
    k = np.array(paths["lengths"])
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 4.0))
    a.bar(k, paths["paths"], color=COLORS["neutral"])
    a.set(xlabel="path length k", ylabel="number of paths", title=f"(a) C({paths['n']}, k) paths of length k")
    b.semilogy(k, paths["per_path"], marker="o", color=COLORS["residual"])
    b.set(xlabel="path length k", ylabel="mean gradient norm", title="(b) gradient along one path")
    c.bar(k, 100 * np.array(paths["share"]), color=COLORS["residual"], label="share of the summed path norms")
    c.plot(k, 100 * np.array(paths["path_share"]), "o--", color=COLORS["neutral"], label="share of paths")
    c.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below: bars fill the panel
    c.set(xlabel="path length k", ylabel="share of summed per-path norms (%)", title="(c) all paths of length k")
    for ax in (a, b, c):
        ax.set_xticks(k)
        ax.grid(alpha=0.3)
    return _finish(fig, title, name)


def lesion_table(models: dict[str, nn.Module], x: Tensor, y: Tensor, blocks: Sequence[int],
                 bn_images: Tensor | None = None) -> dict[str, dict[str, float]]:
    """``{kind: {"intact": acc, "lesioned": acc}}`` for each net with the same ``blocks`` deleted."""
    return {kind: {"intact": lesion_accuracy(m, x, y, ()), "lesioned": lesion_accuracy(m, x, y, blocks, bn_images)}
            for kind, m in models.items()}


def plot_lesion_choice(table: dict[str, dict[str, float]], blocks: Sequence[int],
                       name: str | None = "05_explorer", title: str = ""):
    """Intact vs lesioned test accuracy of both nets (``table`` from :func:`lesion_table`), as the widget shows."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    kinds = list(table)
    pos = np.arange(len(kinds))
    ax.bar(pos - 0.2, [100 * table[k]["intact"] for k in kinds], 0.4, color=COLORS["neutral"], alpha=0.5, label="intact")
    bars = ax.bar(pos + 0.2, [100 * table[k]["lesioned"] for k in kinds], 0.4,
                  color=[color_for(k) for k in kinds], label="blocks deleted")
    for bar, k in zip(bars, kinds):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1, f"{table[k]['lesioned']:.1%}",
                ha="center", fontsize=8)
    ax.axhline(100 * CHANCE, color=COLORS["neutral"], lw=1, ls=":", label="chance")
    deleted = ", ".join(str(b) for b in sorted(blocks)) or "none"
    ax.set(xticks=pos, xticklabels=[f"{k} net" for k in kinds], ylabel="test accuracy (%)", ylim=(0, 105),
           title=f"deleted blocks: {deleted}")
    ax.legend(fontsize=7, loc="upper right")
    return _finish(fig, title, name)


def lesion_explorer(models: dict[str, nn.Module], x: Tensor, y: Tensor, bn_images: Tensor | None = None):
    """An ipywidgets panel: toggle blocks of both nets and see their test accuracy on ``x``, ``y`` live; with
    ``bn_images``, a checkbox recomputes BatchNorm statistics."""
    import ipywidgets as W

    counts = {n_blocks(m) for m in models.values()}
    if len(counts) != 1:
        raise ConfigError(f"the nets have different numbers of blocks {sorted(counts)}; build both at the same depth")
    n = counts.pop()
    intact = {kind: lesion_accuracy(m, x, y) for kind, m in models.items()}
    buttons = [W.ToggleButton(value=False, description=f"block {i}", tooltip=f"delete model.body[{i}]",
                              layout=W.Layout(width="86px")) for i in range(n)]
    recompute = W.Checkbox(value=False, description="recompute BatchNorm statistics after deleting",
                           disabled=bn_images is None, indent=False, layout=W.Layout(width="auto"))
    bars = {kind: W.FloatProgress(value=100 * a, min=0, max=100, description=f"{kind} net",
                                  style={"description_width": "90px", "bar_color": color_for(kind)},
                                  layout=W.Layout(width="460px"))
            for kind, a in intact.items()}
    labels = {kind: W.HTML() for kind in models}
    status = W.HTML()

    def update(_change=None) -> None:
        blocks = [i for i, b in enumerate(buttons) if b.value]
        for b in buttons:
            b.button_style = "warning" if b.value else ""
        for kind, model in models.items():
            acc = lesion_accuracy(model, x, y, blocks, bn_images if recompute.value else None)
            bars[kind].value = 100 * acc
            labels[kind].value = f"<b>{acc:.1%}</b> &nbsp;(intact {intact[kind]:.1%})"
        deleted = ", ".join(str(i) for i in blocks) or "none"
        status.value = f"deleted: {deleted} &nbsp;|&nbsp; chance level is 10% &nbsp;|&nbsp; {len(y):,} test images"

    for w in buttons + [recompute]:
        w.observe(update, names="value")
    update()
    rows = [W.HBox([bars[k], labels[k]]) for k in models]
    panel = W.VBox([W.HTML("<b>Click blocks to delete them</b> (both nets lose the same blocks):"),
                    W.HBox(buttons, layout=W.Layout(flex_flow="row wrap")), recompute, *rows, status])
    panel.buttons, panel.bars, panel.labels, panel.update = buttons, bars, labels, update
    return panel
