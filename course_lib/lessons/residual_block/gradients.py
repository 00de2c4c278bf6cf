"""The gradient of a residual block (notebook 02): dy/dx = I + df/dx for one block and two, and the gradient that
reaches the input of L blocks in seeded nets."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...models import BasicBlock, plain_net, residual_net
from ...plots import COLORS, color_for, finish_figure


def small_block(channels: int = 2, seed: int = 0) -> BasicBlock:
    """A seeded float64 :class:`BasicBlock` in eval mode (BN is then a fixed affine map), for exact Jacobians."""
    torch.manual_seed(seed)
    block = BasicBlock(channels, channels).double().eval()
    with torch.no_grad():  # give BN non-trivial statistics so it is not the identity
        for bn in (block.bn1, block.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    return block


def _jacobian(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    jac = torch.autograd.functional.jacobian(fn, x)
    return jac.reshape(x.numel(), x.numel())


def block_jacobians(block: BasicBlock, x: Tensor) -> dict[str, Tensor]:
    """Jacobians (``D x D``, D = C*H*W) at ``x`` (``1 x C x H x W``, float64) of ``f(x) + x`` (``J_sum``), of f
    (``J_f``) and of the block (``J_block``), with ``mask`` (where f(x) + x > 0) and ``I``."""
    with torch.no_grad():
        mask = ((block.f(x) + x) > 0).to(x.dtype).flatten()
    return {
        "J_sum": _jacobian(lambda t: block.f(t) + t, x),
        "J_f": _jacobian(block.f, x),
        "J_block": _jacobian(block, x),
        "mask": mask,
        "I": torch.eye(x.numel(), dtype=x.dtype),
    }


def two_block_jacobians(block1: BasicBlock, block2: BasicBlock, x: Tensor) -> dict[str, Tensor]:
    """Jacobians of two blocks ``g(t) = t + f(t)`` in a row at ``x``: ``J_chain`` of the pair, ``J1``, ``J2`` (at
    g1(x)) and ``I``; the claim is ``J_chain == (I + J2) @ (I + J1)``."""
    def g1(t):
        return t + block1.f(t)

    def g2(t):
        return t + block2.f(t)

    with torch.no_grad():
        mid = g1(x)
    return {
        "J_chain": _jacobian(lambda t: g2(g1(t)), x),
        "J1": _jacobian(block1.f, x),
        "J2": _jacobian(block2.f, mid),
        "I": torch.eye(x.numel(), dtype=x.dtype),
    }


def plot_jacobians(jacobians: dict[str, Tensor], name: str | None = "02_jacobian"):
    """Heat maps of ``J_f``, ``I`` and ``J_sum = I + J_f``, each on its own scale so df/dx stays visible."""
    panels = (("df/dx", jacobians["J_f"]), ("I", jacobians["I"]), ("dy/dx = I + df/dx", jacobians["J_sum"]))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (title, matrix) in zip(axes, panels):
        limit = matrix.abs().max().item()
        image = ax.imshow(matrix.detach().numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set(title=f"{title}\n(colour scale ±{limit:.2g})", xlabel="input unit j")
        fig.colorbar(image, ax=ax, shrink=0.85)
    axes[0].set_ylabel("output unit i")
    return finish_figure(fig, name=name)


# How far the depth sweep goes, per run profile (blocks = ConvPairs; the net has 2*blocks + 2 layers).
SETTINGS = {
    "smoke": {"blocks": (1, 2, 4, 8, 16), "batch": 32, "seeds": (0,)},
    "cpu": {"blocks": (1, 2, 4, 8, 16, 32, 64), "batch": 32, "seeds": (0, 1, 2)},
    "full": {"blocks": (1, 2, 4, 8, 16, 32, 64, 128), "batch": 128, "seeds": (0, 1, 2, 3, 4)},
}


# The nets a sweep compares: builder(depth, width=, batch_norm=) and the formula of one block, for the legend.
PLAIN_VS_RESIDUAL = {"plain": (plain_net, "y = relu(f(x))"), "residual": (residual_net, "y = relu(f(x) + x)")}


def gradient_through_body(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    """(||d loss / d h0||, ||d loss / d hL||) at the input ``h0 = stem(x)`` and the output of the blocks (both
    ``N x width x 7 x 7``), in train mode; ``x``: ``N x 1 x 28 x 28``, ``y``: ``N``."""
    model.train()
    h0 = model.stem(x).detach().requires_grad_()
    h_last = model.body(h0)
    h_last.retain_grad()
    F.cross_entropy(model.classify(h_last), y).backward()
    return h0.grad.norm().item(), h_last.grad.norm().item()


def gradient_vs_depth(x: Tensor, y: Tensor, blocks: Sequence[int], seeds: Sequence[int] = (0,),
                      batch_norm: bool = True, width: int = 16, nets: dict | None = None) -> dict:
    """The gradient norm at the input of L blocks for each L in ``blocks``, per seed, in float64 nets of each kind
    of ``nets`` (default :data:`PLAIN_VS_RESIDUAL`), and under ``"in/out"`` the input norm / output norm.
    ``{"blocks", "batch_norm", "through": False, "kinds", "formulas", kind: [[value per seed] per L], "in/out"}``."""
    nets = nets or PLAIN_VS_RESIDUAL
    x = x.double()
    result = {"blocks": list(blocks), "batch_norm": batch_norm, "through": False, "kinds": list(nets),
              "formulas": {kind: formula for kind, (_, formula) in nets.items()}, "in/out": {}}
    for kind, (builder, _) in nets.items():
        result[kind], result["in/out"][kind] = [], []
        for n_blocks in blocks:
            pairs = []
            for seed in seeds:
                torch.manual_seed(seed)
                pairs.append(gradient_through_body(builder(2 * n_blocks + 2, width=width, batch_norm=batch_norm)
                                                   .double(), x, y))
            result[kind].append([g_in for g_in, _ in pairs])
            result["in/out"][kind].append([g_in / g_out for g_in, g_out in pairs])
    return result


def through_blocks(result: dict) -> dict:
    """``result`` of :func:`gradient_vs_depth` read as how much the L blocks scale the gradient on its way through
    them: each value is ||gradient at their input|| / ||gradient at their output||."""
    return {**result, **result["in/out"], "through": True}


def geometric_mean(values: Sequence[float]) -> float:
    """exp(mean(log v)): the middle of numbers that differ by orders of magnitude (0 if any is 0)."""
    if min(values) <= 0:
        return 0.0
    return math.exp(sum(math.log(v) for v in values) / len(values))


def per_block_factor(result: dict, kind: str) -> float:
    """The average factor per block by which ``kind``'s input gradient changes from the shallowest to the deepest net."""
    first, last = geometric_mean(result[kind][0]), geometric_mean(result[kind][-1])
    blocks = result["blocks"][-1] - result["blocks"][0]
    return (last / first) ** (1 / blocks) if first > 0 and last > 0 else 0.0


def format_gradient_table(results: Sequence[dict]) -> str:
    """The sweeps of :func:`gradient_vs_depth` side by side (geometric mean over seeds)."""
    def column(r, kind):
        return kind + (" in/out" if r["through"] else (" +BN" if r["batch_norm"] else " no BN"))

    header = f"{'blocks L':>9}" + "".join(f"{column(r, kind):>17}" for r in results for kind in r["kinds"])
    lines = [header, "-" * len(header)]
    for i, n_blocks in enumerate(results[0]["blocks"]):
        lines.append(f"{n_blocks:>9}" + "".join(f"{geometric_mean(r[kind][i]):>17.3g}"
                                                for r in results for kind in r["kinds"]))
    return "\n".join(lines)


def plot_gradient_vs_depth(results: Sequence[dict], title: str = "", name: str | None = "02_gradient_vs_depth"):
    """One panel per :func:`gradient_vs_depth` result: the gradient (log axis) against the number of blocks (linear
    axis, where a constant factor per block is a straight line)."""
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, result in zip(axes[0], results):
        for kind in result["kinds"]:
            color = color_for(kind)
            for depth, values in zip(result["blocks"], result[kind]):
                ax.scatter([depth] * len(values), values, color=color, s=12, alpha=0.5)
            ax.plot(result["blocks"], [geometric_mean(v) for v in result[kind]], color=color, marker="o",
                    label=f"{kind}: {result['formulas'][kind]}")
        if result["through"]:
            panel, ylabel = "through the L blocks", "||grad at input|| / ||grad at output||"
            ax.axhline(1.0, color=COLORS["neutral"], lw=0.8, ls=":")
        else:
            panel = "with BatchNorm" if result["batch_norm"] else "without BatchNorm"
            ylabel = "||dLoss/d(input of the L blocks)||"
        ax.set(yscale="log", xlabel="number of blocks L (2 convs each)", ylabel=ylabel, title=panel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="best")
    if len(results) > 1:
        title += ("\n" if title else "") + "each panel has its own y range"
    return finish_figure(fig, title, name)
