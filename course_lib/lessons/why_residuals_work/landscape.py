"""Loss landscapes (Li et al. 2018) for notebook 05: the loss at theta + a d1 (+ b d2) along random directions,
filter-normalised (a filter followed by BatchNorm can be scaled freely: only this makes nets comparable).
Losses are taken in eval mode with the BatchNorm statistics stored at theta.
"""
from __future__ import annotations

import copy
from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ...errors import ConfigError
from ...plots import COLORS, finish_figure, save_figure


def filter_normalize(direction: Sequence[Tensor], weights: Sequence[Tensor], eps: float = 1e-10) -> list[Tensor]:
    """Li et al.'s filter normalisation of two lists of tensors of matching shapes: each ``d[i]`` along dim 0 of a
    2-D or larger weight scaled to ``||w[i]||``; zeros for 1-D parameters. Returns new tensors."""
    if len(direction) != len(weights):
        raise ConfigError(f"direction has {len(direction)} tensors but the model has {len(weights)}")
    out = []
    for d, w in zip(direction, weights):
        if d.shape != w.shape:
            raise ConfigError(f"direction shape {tuple(d.shape)} does not match weight shape {tuple(w.shape)}")
        if w.dim() <= 1:
            out.append(torch.zeros_like(w))
            continue
        d_norm = d.flatten(1).norm(dim=1).view(-1, *[1] * (d.dim() - 1))
        w_norm = w.flatten(1).norm(dim=1).view(-1, *[1] * (d.dim() - 1))
        out.append(d * w_norm / (d_norm + eps))
    return out


def random_direction(model: nn.Module, seed: int) -> list[Tensor]:
    """A filter-normalised Gaussian direction for ``model.parameters()``, from its own seeded generator, so two
    nets with the same shapes (the twins) get the same raw draw."""
    g = torch.Generator().manual_seed(seed)
    weights = [p.detach().cpu() for p in model.parameters()]
    raw = [torch.randn(w.shape, generator=g) for w in weights]
    device = next(model.parameters()).device
    return [d.to(device) for d in filter_normalize(raw, weights)]


@torch.no_grad()
def loss_at(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` in eval mode on ``x`` (N x 1 x 28 x 28), ``y`` (N)."""
    model.eval()
    device = next(model.parameters()).device
    total, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
        logits = model(xb)
        total += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return total / len(y), correct / len(y)


@torch.no_grad()
def loss_surface(model: nn.Module, x: Tensor, y: Tensor, directions: Sequence[Sequence[Tensor]],
                 coords: Sequence[float], progress: bool = False) -> dict:
    """Loss and accuracy at ``theta + a d1`` (one direction) or ``theta + a d1 + b d2`` (two) for a, b in ``coords``,
    on a perturbed copy. ``{"coords", "loss", "acc"}``, 2-D lists indexed ``[b][a]``."""
    if len(directions) not in (1, 2):
        raise ConfigError(f"give one direction (1-D slice) or two (2-D slice), got {len(directions)}")
    probe = copy.deepcopy(model)
    params = list(probe.parameters())
    theta = [p.detach().clone() for p in params]
    coords = [float(c) for c in coords]
    grid = [(a, 0.0) for a in coords] if len(directions) == 1 else [(a, b) for b in coords for a in coords]
    bar = tqdm(total=len(grid), desc=f"{len(directions)}-D slice", unit="point", leave=False, disable=not progress)
    losses, accs = [], []
    for a, b in grid:
        for p, t, d1, d2 in zip(params, theta, directions[0], directions[-1]):
            p.copy_(t + a * d1 + (b * d2 if len(directions) == 2 else 0))
        loss, acc = loss_at(probe, x, y)
        losses.append(loss)
        accs.append(acc)
        bar.update(1)
    bar.close()
    if len(directions) == 2:
        m = len(coords)
        losses = [losses[i * m:(i + 1) * m] for i in range(m)]
        accs = [accs[i * m:(i + 1) * m] for i in range(m)]
    return {"coords": coords, "loss": losses, "acc": accs}


def summarise_surface(surface: dict) -> dict:
    """A 2-D slice in numbers: the losses at the centre, lowest and highest, the shares of the grid below ln 10 and
    within 1 nat of the centre, and ``interior_minima``: ``[[a, b, loss], ...]`` lower than all 8 neighbours."""
    loss = np.array(surface["loss"], dtype=float)
    m = loss.shape[0]
    centre = loss[m // 2, m // 2]
    inner = loss[1:-1, 1:-1]
    neighbours = np.stack([loss[1 + di:m - 1 + di, 1 + dj:m - 1 + dj]
                           for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)])
    coords = np.asarray(surface["coords"], dtype=float)
    minima = [[float(coords[j + 1]), float(coords[i + 1]), float(inner[i, j])]
              for i, j in np.argwhere(inner < neighbours.min(axis=0))]
    return dict(centre_loss=float(centre), min_loss=float(loss.min()), max_loss=float(loss.max()),
                below_chance=float((loss < np.log(10)).mean()), within_1=float((loss < centre + 1.0).mean()),
                interior_minima=minima)


def _distances(surface: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """(loss, distance from the centre, loss at the centre) of a slice; in 2-D the distance is max(|a|, |b|)."""
    loss, coords = np.array(surface["loss"], dtype=float), np.asarray(surface["coords"], dtype=float)
    if loss.ndim == 1:
        dist = np.abs(coords)
    else:
        a, b = np.meshgrid(coords, coords)  # loss is indexed [b][a]
        dist = np.maximum(np.abs(a), np.abs(b))
    centre = loss[np.unravel_index(np.argmin(dist), dist.shape)]
    return loss, np.round(dist, 9), float(centre)


def rise_by_distance(surface: dict, distances: Sequence[float] | None = None) -> dict[float, float]:
    """``{r: mean of loss - loss(theta) over the grid points at distance r}`` of a slice, for the grid distances
    nearest to ``distances`` (default: all). Near theta: how sharp the basin is; far out: how high its walls."""
    loss, dist, centre = _distances(surface)
    on_grid = np.unique(dist[dist > 0])
    wanted = on_grid if distances is None else np.unique([on_grid[np.argmin(np.abs(on_grid - r))] for r in distances])
    return {float(r): float((loss[dist == r] - centre).mean()) for r in wanted}


def lowest_point(surface: dict) -> dict:
    """The lowest point of a slice: ``coords``, ``loss``, ``drop`` (below the loss at theta) and ``steps`` from theta."""
    loss, dist, centre = _distances(surface)
    idx = np.unravel_index(np.argmin(loss), loss.shape)
    coords = np.asarray(surface["coords"], dtype=float)
    step = float(np.diff(coords).mean()) if len(coords) > 1 else 1.0
    where = (float(coords[idx[0]]),) if loss.ndim == 1 else (float(coords[idx[1]]), float(coords[idx[0]]))
    return dict(coords=where, loss=float(loss[idx]), drop=centre - float(loss[idx]),
                steps=int(round(float(dist[idx]) / step)))


PAIR_STYLES = ("-", "--", ":", "-.")  # one line style per direction pair; colour says which net


def plot_slices_1d(slices: dict, name: str | None = "05_landscape_1d", title: str = "",
                   labels: Sequence[str] | None = None, near: float = 0.3):
    """1-D slices ``{kind: [surface per direction]}``: the rise above the loss at theta (each net from its own
    floor), the same within ``near`` of theta, and the accuracy; colour = net, line style = direction."""
    fig, (ax_far, ax_near, ax_acc) = plt.subplots(1, 3, figsize=(14, 3.8))
    for kind, per_pair in slices.items():
        for i, s in enumerate(per_pair):
            a, (loss, _, centre) = np.asarray(s["coords"], dtype=float), _distances(s)
            label = f"{kind} net, {labels[i] if labels else f'direction {i + 1}'}"
            style = dict(color=COLORS.get(kind), ls=PAIR_STYLES[i % len(PAIR_STYLES)], label=label)
            ax_far.plot(a, loss - centre, **style)
            inside = np.abs(a) <= near + 1e-9
            ax_near.plot(a[inside], loss[inside] - centre, **style)
            ax_acc.plot(a, 100 * np.array(s["acc"]), **style)
    ax_far.set(xlabel="step a along the direction", ylabel="loss − loss(θ) (nats)", title="1-D slices: rise of the loss")
    ax_near.set(xlabel="step a along the direction", ylabel="loss − loss(θ) (nats)",
                title=f"the same, within {near:g} of θ")
    ax_acc.set(xlabel="step a along the direction", ylabel="training accuracy (%)", title="1-D slices: accuracy",
               ylim=(0, 100))
    for ax in (ax_far, ax_near, ax_acc):
        ax.grid(alpha=0.3)
    ax_far.legend(fontsize=7)
    return finish_figure(fig, title, name)


def plot_contours(surfaces: dict, name: str | None = "05_landscape_2d", title: str = "", levels: int = 20,
                  labels: Sequence[str] | None = None):
    """Contours of loss − loss(theta) of 2-D slices ``{kind: [surface per direction pair]}`` on the same linear
    round levels, one column per net, one row per pair; thick: loss = ln 10 (chance level), dashed: 1 nat above."""
    kinds = list(surfaces)
    rows = max(len(v) for v in surfaces.values())
    rises: dict[str, list[tuple[np.ndarray, float]]] = {k: [] for k in kinds}  # (loss - loss(theta), loss(theta))
    for k in kinds:
        for s in surfaces[k]:
            loss, _, centre = _distances(s)
            rises[k].append((loss - centre, centre))
    high = max(float(r.max()) for k in kinds for r, _ in rises[k])
    lv = MaxNLocator(levels).tick_values(0, high)[1:] if high > 0 else [1e-6]  # round levels
    fig, axes = plt.subplots(rows, len(kinds), figsize=(4.4 * len(kinds) + 1.2, 3.9 * rows), squeeze=False,
                             layout="constrained")
    cs = None
    for col, kind in enumerate(kinds):
        for row, s in enumerate(surfaces[kind]):
            ax, c = axes[row][col], np.array(s["coords"])
            rise, centre = rises[kind][row]
            cs = ax.contour(c, c, rise, levels=lv, cmap="viridis", vmin=0, vmax=high, linewidths=1)
            if rise.min() < 1.0 < rise.max():
                ax.contour(c, c, rise, levels=[1.0], colors=[COLORS.get(kind, "k")], linewidths=1.5,
                           linestyles="--")
            if rise.min() < np.log(10) - centre < rise.max():
                ax.contour(c, c, rise, levels=[np.log(10) - centre], colors=[COLORS.get(kind, "k")], linewidths=2.5)
            ax.plot(0, 0, "k+", ms=10)
            pair = labels[row] if labels else f"directions {row + 1}"
            ax.set(xlabel="direction 1 (a)", ylabel="direction 2 (b)" if col == 0 else "",
                   title=f"{kind} net, {pair}", aspect="equal")
    fig.colorbar(cs, ax=axes.ravel().tolist(), label="loss − loss(θ), nats (linear levels)", shrink=0.85)
    note = ("+: the trained weights θ; dashed: 1 nat above loss(θ); thick: the loss itself = ln 10 (chance level),"
            " drawn at ln 10 − loss(θ) on this scale")
    fig.suptitle(f"{title}\n{note}" if title else note, fontsize=9)
    if name:
        save_figure(fig, name)
    return fig
