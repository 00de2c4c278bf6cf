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
from ...plots import finish_figure, save_figure

COLORS = {"plain": "tab:red", "residual": "tab:blue"}


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
    """Numbers that describe a 2-D slice: the loss at the centre, the lowest and highest loss,
    the share of the grid below chance-level loss ln(10) = 2.30, and the number of grid
    points that are strict local minima of their 8 neighbours (1 for a single clean basin), and
    where they are: ``minima`` = ``[[a, b, loss], ...]`` (points on the grid's edge are compared with
    the neighbours they have)."""
    loss = np.array(surface["loss"], dtype=float)
    m = loss.shape[0]
    centre = loss[m // 2, m // 2]
    padded = np.pad(loss, 1, constant_values=np.inf)
    neighbours = np.stack([padded[1 + di:1 + di + m, 1 + dj:1 + dj + m]
                           for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)])
    where = np.argwhere(loss < neighbours.min(axis=0))
    coords = np.asarray(surface["coords"], dtype=float)
    minima = [[float(coords[j]), float(coords[i]), float(loss[i, j])] for i, j in where]  # loss is [b][a]
    return dict(centre_loss=float(centre), min_loss=float(loss.min()), max_loss=float(loss.max()),
                below_chance=float((loss < np.log(10)).mean()), local_minima=len(minima), minima=minima)


# --------------------------------------------------------------------------- plots


def plot_slices_1d(slices: dict[str, dict], name: str | None = "05_landscape_1d", title: str = ""):
    """Loss (log scale) along one filter-normalised direction, one line per net.

    ``slices``: ``{kind: surface}`` with 1-D surfaces from :func:`loss_surface`.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.6))
    for kind, s in slices.items():
        ax_loss.semilogy(s["coords"], s["loss"], color=COLORS.get(kind), label=f"{kind} net")
        ax_acc.plot(s["coords"], 100 * np.array(s["acc"]), color=COLORS.get(kind), label=f"{kind} net")
    ax_loss.set(xlabel="step a along the direction", ylabel="training loss (log scale)", title="1-D slice: loss")
    ax_acc.set(xlabel="step a along the direction", ylabel="training accuracy (%)", title="1-D slice: accuracy",
               ylim=(0, 100))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return finish_figure(fig, name=name)


def plot_contours(surfaces: dict[str, dict], name: str | None = "05_landscape_2d", title: str = "",
                  levels: int = 20):
    """Contour plots of 2-D slices side by side, on the same (log-spaced) loss levels.

    ``surfaces``: ``{kind: surface}`` with 2-D surfaces from :func:`loss_surface`.
    """
    kinds = list(surfaces)
    all_loss = np.concatenate([np.ravel(surfaces[k]["loss"]) for k in kinds])
    low, high = max(all_loss.min(), 1e-3), all_loss.max()
    lv = np.geomspace(low, high, levels) if high > low * 1.01 else np.linspace(low * 0.99, high * 1.01 + 1e-6, levels)
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds), 4.6), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        s = surfaces[kind]
        c = np.array(s["coords"])
        cs = ax.contour(c, c, np.array(s["loss"]), levels=lv, cmap="viridis", norm="log", linewidths=1)
        ax.plot(0, 0, "k+", ms=10)
        ax.set(xlabel="direction 1 (a)", ylabel="direction 2 (b)", title=f"{kind} net", aspect="equal")
    fig.colorbar(cs, ax=list(axes[0]), label="training loss (log-spaced levels)", shrink=0.85, format="%.2g")
    if title:
        fig.suptitle(title, fontsize=9)
    if name:
        save_figure(fig, name)
    return fig
