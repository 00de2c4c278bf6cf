"""The identity argument (notebook 01): a deeper plain net is at least as good as a shallower one if its extra
layers compute the identity; can a stack of conv + ReLU layers, plain or residual, learn to?"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor, nn

from ...data import load_data
from ...errors import ConfigError
from ...models import ConvPair, DepthNet, apply_init
from ...plots import COLORS, finish_figure
from ...training import seed_everything
from .protocol import PROTOCOL

IDENTITY_KINDS = ("plain", "plain, He init", "residual", "residual, f=0")


def identity_features(n: int, width: int = PROTOCOL["width"], seed: int = 0) -> Tensor:
    """What extra layers of a DepthNet receive: the stem's output on ``n`` real digits, N x width x 7 x 7 (>= 0)."""
    images = load_data("sample", verbose=False).train_x[:n]
    seed_everything(seed)
    stem = DepthNet(2, width).stem.train()
    with torch.no_grad():
        return stem(images)


def identity_stack(kind: str, layers: int, width: int = PROTOCOL["width"]) -> nn.Sequential:
    """``layers`` 3x3 conv+ReLU layers (with bias, no BatchNorm) in pairs, of one of :data:`IDENTITY_KINDS`:
    ``residual, f=0`` zero-initialises each pair's second conv, so it starts as the identity on inputs >= 0."""
    if kind not in IDENTITY_KINDS:
        raise ConfigError(f"unknown stack kind {kind!r}; valid: {', '.join(IDENTITY_KINDS)}")
    pairs = [ConvPair(width, batch_norm=False, residual=kind.startswith("residual")) for _ in range(layers // 2)]
    if kind == "plain, He init":
        apply_init(nn.Sequential(*pairs), "he")
    if kind == "residual, f=0":
        for pair in pairs:
            nn.init.zeros_(pair.conv2.weight)
            nn.init.zeros_(pair.conv2.bias)
    return nn.Sequential(*pairs)


def identity_experiment(layers=(2, 8, 16), steps: int = 100, n: int = 32, lr: float = 1e-3,
                        seed: int = 0, target_error: float = 0.01) -> dict:
    """Train every kind of stack with Adam (fair to the plain one) on ``||stack(x) - x||^2 / ||x||^2`` for real stem
    features x (N x 16 x 7 x 7); the error per step, and the first step below ``target_error``, of each."""
    x = identity_features(n, seed=seed)
    scale = x.pow(2).mean()
    runs = []
    for n_layers in layers:
        for kind in IDENTITY_KINDS:
            seed_everything(seed)
            stack = identity_stack(kind, n_layers).train()
            optimizer = torch.optim.Adam(stack.parameters(), lr=lr)
            errors = []
            for _ in range(steps):
                error = (stack(x) - x).pow(2).mean() / scale
                optimizer.zero_grad(set_to_none=True)
                error.backward()
                optimizer.step()
                errors.append(error.item())
            reached = next((i for i, e in enumerate(errors) if e < target_error), None)
            runs.append(dict(kind=kind, layers=n_layers, errors=errors, final_error=float(np.mean(errors[-10:])),
                             steps_to_target=reached))
    return dict(layers=list(layers), steps=steps, n=n, lr=lr, target_error=target_error, runs=runs)


def print_identity(ident: dict) -> None:
    """The identity experiment as a table: error after the budget and steps to reach the target."""
    print(f"relative error ||stack(x) - x||^2 / ||x||^2 after {ident['steps']} Adam steps "
          f"(mean of the last 10), and the first step below {ident['target_error']:.0%}")
    print(f"{'extra layers':>12} | {'stack':<15} | {'error at step 0':>15} | {'final error':>11} | steps to target")
    for r in ident["runs"]:
        reached = "never" if r["steps_to_target"] is None else str(r["steps_to_target"])
        print(f"{r['layers']:>12} | {r['kind']:<15} | {r['errors'][0]:>15.2g} | {r['final_error']:>11.2g} | {reached}")


def plot_identity(ident: dict, name: str | None = "01_identity", title: str = ""):
    """Relative error per step (log scale), one panel per stack depth; an exact 0 is not drawn, the panel says so."""
    fig, axes = plt.subplots(1, len(ident["layers"]), figsize=(4 * len(ident["layers"]), 3.9), sharey=True,
                             squeeze=False)
    styles = {"plain": (COLORS["plain"], "-"), "plain, He init": (COLORS["plain"], "--"),
              "residual": (COLORS["residual"], "-"), "residual, f=0": (COLORS["residual"], ":")}
    for ax, n_layers in zip(axes[0], ident["layers"]):
        for r in (r for r in ident["runs"] if r["layers"] == n_layers):
            color, style = styles[r["kind"]]
            if max(r["errors"]) == 0.0:
                ax.text(0.03, 0.03, f"{r['kind']}: exactly 0 at every step\n(not drawn: a log axis has no 0)",
                        transform=ax.transAxes, fontsize=7, color=color)
                continue
            ax.plot(r["errors"], style, color=color, label=r["kind"], lw=1.5)
        ax.axhline(ident["target_error"], color="gray", lw=0.8)
        ax.text(ident["steps"] - 1, ident["target_error"] * 1.15, f"target: {ident['target_error']:.0%}",
                fontsize=7, color="dimgray", ha="right", va="bottom")
        ax.set(yscale="log", xlabel="Adam step", title=f"{n_layers} extra layers")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("relative error of copying x")
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))  # outside: off ticks and curves
    n = ident.get("n", "?")
    fig.suptitle(title or f"Learning the identity: stem features of {n} real digits (MNIST sample, 16 x 7 x 7), "
                          f"Adam lr {ident.get('lr')}, {ident['steps']} steps, seed 0", fontsize=10)
    return finish_figure(fig, name=name)
