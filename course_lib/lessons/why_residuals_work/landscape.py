"""Loss landscapes (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets").

The method in four lines:

1. Take the trained weights theta (all parameters, as a list of tensors).
2. Draw a random Gaussian direction d with the shapes of theta.
3. Filter-normalise it: for every filter (a conv's output channel, a linear layer's
   output unit) rescale d's filter to the norm of theta's filter. Biases and
   BatchNorm parameters get direction 0 (Li et al.'s "ignore biasbn").
4. Evaluate the loss at theta + a*d1 (a 1-D slice) or theta + a*d1 + b*d2 (a 2-D
   slice) on a grid of a, b in [-1, 1].

Step 3 is what makes two nets comparable: a filter followed by BatchNorm can be
scaled without changing the function, so an un-normalised step of size 1 would be
huge for a small filter and tiny for a large one.

Losses are evaluated in eval mode, with the BatchNorm statistics stored at theta,
as Li et al.'s code does. Plots: :func:`plot_slices_1d`, :func:`plot_contours`.
"""
from __future__ import annotations

import copy
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError
from ...plots import COLORS, finish_figure, save_figure


def filter_normalize(direction: Sequence[Tensor], weights: Sequence[Tensor], eps: float = 1e-10) -> list[Tensor]:
    """Li et al.'s filter normalisation. Both arguments: lists of tensors of matching shapes.

    For a weight with 2 or more dimensions (conv ``C_out x C_in x k x k``, linear
    ``out x in``), each slice ``d[i]`` along dim 0 is rescaled to ``||w[i]|| / ||d[i]||``
    times itself. 1-D parameters (biases, BatchNorm weights and biases) get zeros.
    Returns new tensors; the inputs are not changed.
    """
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
    """A filter-normalised Gaussian direction for ``model``'s parameters (same order as ``model.parameters()``).

    Seeded with its own generator: two nets with the same parameter shapes (a plain net
    and its residual twin) get the same raw Gaussian draw.
    """
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
    """Loss and accuracy on a grid around the model's weights.

    ``directions``: one direction (a 1-D slice: ``theta + a d1``) or two (a 2-D slice:
    ``theta + a d1 + b d2``), each from :func:`random_direction`; ``coords``: the values
    of a (and b), e.g. ``np.linspace(-1, 1, 21)``.
    Returns ``{"coords", "loss", "acc"}`` with ``loss``/``acc`` lists of shape
    ``len(coords)`` (1-D) or ``len(coords) x len(coords)`` indexed ``[b][a]`` (2-D).
    The model itself is not changed (a copy is perturbed).
    """
    if len(directions) not in (1, 2):
        raise ConfigError(f"give one direction (1-D slice) or two (2-D slice), got {len(directions)}")
    probe = copy.deepcopy(model)
    params = list(probe.parameters())
    theta = [p.detach().clone() for p in params]
    coords = [float(c) for c in coords]
    grid = [(a, 0.0) for a in coords] if len(directions) == 1 else [(a, b) for b in coords for a in coords]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(grid), desc=f"{len(directions)}-D slice", unit="point", leave=False)
    losses, accs = [], []
    for a, b in grid:
        for p, t, d1, d2 in zip(params, theta, directions[0], directions[-1]):
            p.copy_(t + a * d1 + (b * d2 if len(directions) == 2 else 0))
        loss, acc = loss_at(probe, x, y)
        losses.append(loss)
        accs.append(acc)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if len(directions) == 2:
        m = len(coords)
        losses = [losses[i * m:(i + 1) * m] for i in range(m)]
        accs = [accs[i * m:(i + 1) * m] for i in range(m)]
    return {"coords": coords, "loss": losses, "acc": accs}


def summarise_surface(surface: dict) -> dict:
    """Numbers that describe a 2-D slice (``surface`` from :func:`loss_surface`, loss indexed ``[b][a]``).

    ``centre_loss``, ``min_loss``, ``max_loss``; ``below_chance``: the share of the grid below the
    chance-level loss ln(10) = 2.30 (an absolute yardstick); ``within_1``: the share whose loss is less
    than 1 nat above the centre's (a yardstick that does not depend on how low the centre sits);
    ``interior_minima``: ``[[a, b, loss], ...]``, the grid points *inside* the grid (not on its edge) that
    are strictly lower than all 8 neighbours -- 1 for a single clean basin. A point on the edge has
    neighbours on one side only, so it is not counted: a loss that still falls towards the edge is not a minimum.
    """
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
    """(loss, distance from the centre, loss at the centre) of a 1-D or 2-D slice. The distance of a 2-D grid
    point is max(|a|, |b|), so the points at one distance form a square ring around theta."""
    loss, coords = np.array(surface["loss"], dtype=float), np.asarray(surface["coords"], dtype=float)
    if loss.ndim == 1:
        dist = np.abs(coords)
    else:
        a, b = np.meshgrid(coords, coords)  # loss is indexed [b][a]
        dist = np.maximum(np.abs(a), np.abs(b))
    centre = loss[np.unravel_index(np.argmin(dist), dist.shape)]
    return loss, np.round(dist, 9), float(centre)


def rise_by_distance(surface: dict, distances: Sequence[float] | None = None) -> dict[float, float]:
    """How far the loss climbs above the loss at theta, by distance from theta.

    ``surface``: a 1-D or 2-D slice from :func:`loss_surface`. For each distance r on the grid, the mean of
    loss - loss(theta) over the points at distance r (2-D: the square ring max(|a|, |b|) = r; 1-D: a = +-r).
    ``distances``: the r wanted (each replaced by the nearest distance on the grid; duplicates dropped);
    default every distance on the grid. Returns ``{r: mean rise}`` in increasing r. Near theta this measures
    how sharp the basin is; far out, how high its walls are.
    """
    loss, dist, centre = _distances(surface)
    on_grid = np.unique(dist[dist > 0])
    wanted = on_grid if distances is None else np.unique([on_grid[np.argmin(np.abs(on_grid - r))] for r in distances])
    return {float(r): float((loss[dist == r] - centre).mean()) for r in wanted}


def lowest_point(surface: dict) -> dict:
    """The lowest grid point of a 1-D or 2-D slice: ``coords`` (a,) or (a, b), ``loss``, ``drop`` (loss at
    theta minus the lowest loss, >= 0) and ``steps`` (its distance from theta in grid steps; 0: theta itself)."""
    loss, dist, centre = _distances(surface)
    idx = np.unravel_index(np.argmin(loss), loss.shape)
    coords = np.asarray(surface["coords"], dtype=float)
    step = float(np.diff(coords).mean()) if len(coords) > 1 else 1.0
    where = (float(coords[idx[0]]),) if loss.ndim == 1 else (float(coords[idx[1]]), float(coords[idx[0]]))
    return dict(coords=where, loss=float(loss[idx]), drop=centre - float(loss[idx]),
                steps=int(round(float(dist[idx]) / step)))


# --------------------------------------------------------------------------- plots


def _as_pairs(by_kind: dict) -> dict[str, list[dict]]:
    """``{kind: surface}`` or ``{kind: [surface per direction pair]}`` -> the list form."""
    return {kind: v if isinstance(v, (list, tuple)) else [v] for kind, v in by_kind.items()}


PAIR_STYLES = ("-", "--", ":", "-.")  # one line style per direction pair; colour says which net


def plot_slices_1d(slices: dict, name: str | None = "05_landscape_1d", title: str = "",
                   labels: Sequence[str] | None = None, near: float = 0.3):
    """1-D slices along filter-normalised directions: colour = net, line style = direction.

    Three panels: the rise of the loss above the loss at theta on a linear axis, the same within ``near`` of
    theta, and the accuracy. The rise, not the loss itself, so that two nets whose losses at theta differ
    tenfold are compared from their own floors; a log axis would stretch the lower net's small rises.
    ``slices``: ``{kind: surface}`` or ``{kind: [surface, ...]}`` with 1-D surfaces from :func:`loss_surface`,
    one per random direction; ``labels``: one name per direction (default "direction 1", ...).
    """
    slices = _as_pairs(slices)
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
    """Contour plots of 2-D slices: one column per net, one row per pair of directions.

    The contours are of loss − loss(theta), on the same linearly spaced levels in every panel, so that each net
    is read from its own floor (log-spaced levels of the loss itself would crowd the lower net's centre). Drawn
    thick in the net's colour: loss = ln 10 (inside it the loss is below chance level); dashed: 1 nat above
    the loss at theta. ``surfaces``: ``{kind: surface}`` or ``{kind: [surface per pair]}`` with 2-D surfaces
    from :func:`loss_surface`; ``labels``: one name per pair (default "directions 1").
    """
    surfaces = _as_pairs(surfaces)
    kinds = list(surfaces)
    rows = max(len(v) for v in surfaces.values())
    rises: dict[str, list[tuple[np.ndarray, float]]] = {k: [] for k in kinds}  # (loss - loss(theta), loss(theta))
    for k in kinds:
        for s in surfaces[k]:
            loss, _, centre = _distances(s)
            rises[k].append((loss - centre, centre))
    high = max(float(r.max()) for k in kinds for r, _ in rises[k])
    lv = np.linspace(0, high, levels + 1)[1:] if high > 0 else [1e-6]
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
    fig.colorbar(cs, ax=axes.ravel().tolist(), label="loss − loss(θ), nats (linear levels)", shrink=0.85,
                 format="%.3g")
    note = "+: the trained weights θ; thick line: loss = ln 10 (chance level); dashed: 1 nat above loss(θ)"
    fig.suptitle(f"{title}\n{note}" if title else note, fontsize=9)
    if name:
        save_figure(fig, name)
    return fig
