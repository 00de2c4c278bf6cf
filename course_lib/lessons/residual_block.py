"""The residual block, y = f(x) + x, taken apart and checked numerically (notebook 02).

* The blog's first block with both of its defects kept (:class:`BlogFirstBlock`,
  :class:`BlogFirstBlockNamesFixed`), the fixed block (:class:`FixedBlock`) and
  :func:`try_forward`, which runs a block and reports its output shape or its error.
* The identity at initialisation: :func:`zero_init_last_bn`.
* The gradient: :func:`block_jacobians` (one block, dy/dx = I + df/dx),
  :func:`two_block_jacobians` (the product of (I + J_l)), and
  :func:`gradient_vs_depth` (the gradient norm that reaches the input of L blocks,
  plain vs residual, on seeded ``plain_net``/``residual_net`` and real digits).
* Shortcuts when the shape changes: :class:`ZeroPadShortcut` (He et al.'s option A)
  and :func:`projection_shortcut` (option B).
* Costs by formula: :func:`conv_cost`, :func:`basic_block_cost`, :func:`bottleneck_cost`,
  :func:`block_cost_table` (formula next to :mod:`course_lib.counting`'s count).
* Figures: :func:`plot_jacobians` and :func:`plot_gradient_vs_depth` save
  ``figures/02_jacobian.png`` and ``figures/02_gradient_vs_depth.png``.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..counting import count_macs
from ..models import BasicBlock, Bottleneck, DepthNet, conv1x1, conv3x3, count_params, plain_net, residual_net
from ..plots import finish_figure

# --------------------------------------------------------------------------- the blog's two blocks


class BlogFirstBlock(nn.Module):
    """The blog's first residual block, with both of its defects kept on purpose.

    Defect 1: ``__init__`` builds ``self.main_path``, but ``forward`` calls
    ``self.conv1`` and ``self.conv2``, which were never defined: AttributeError.
    Defect 2: ``stride`` (and ``out_channels != in_channels``) changes the shape of
    the main path's output, but the shortcut is the bare input, so ``out += residual``
    can never add them. Input ``N x in_channels x H x W``.

    The layer list inside ``main_path`` is the usual conv-BN-relu-conv-BN; the
    constructor's signature, ``main_path`` and the forward pass carry the blog's two defects.
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super(BlogFirstBlock, self).__init__()
        self.main_path = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x):
        residual = x
        out = self.conv1(x)
        out = self.conv2(out)
        out += residual
        return F.relu(out)


class BlogFirstBlockNamesFixed(BlogFirstBlock):
    """Defect 1 fixed (forward uses ``main_path``), defect 2 kept: fails when the shape changes."""

    def forward(self, x):
        residual = x
        out = self.main_path(x)
        out += residual
        return F.relu(out)


class FixedBlock(nn.Module):
    """The blog's block, fixed: ``relu(main_path(x) + shortcut(x))``.

    ``main_path``: conv3x3(stride) - BN - ReLU - conv3x3 - BN (no conv bias: the BN
    right after would cancel it). ``shortcut``: the identity when the shape is kept,
    else a 1x1 conv with the same stride + BN (He et al.'s option B). Parameter for
    parameter the same as :class:`course_lib.models.BasicBlock` with its ``downsample``.
    ``N x in_channels x H x W -> N x out_channels x ceil(H/stride) x ceil(W/stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.main_path = nn.Sequential(
            conv3x3(in_channels, out_channels, stride),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            conv3x3(out_channels, out_channels),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = projection_shortcut(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.main_path(x) + self.shortcut(x))


def as_basic_block(block: FixedBlock) -> BasicBlock:
    """The reference :class:`BasicBlock` (torchvision's names) holding ``block``'s weights."""
    first, second = block.main_path[0], block.main_path[3]
    stride = first.stride[0]
    projected = not isinstance(block.shortcut, nn.Identity)
    downsample = projection_shortcut(first.in_channels, second.out_channels, stride) if projected else None
    reference = BasicBlock(first.in_channels, second.out_channels, stride, downsample)
    renames = {"main_path.0": "conv1", "main_path.1": "bn1", "main_path.3": "conv2", "main_path.4": "bn2",
               "shortcut.0": "downsample.0", "shortcut.1": "downsample.1"}
    state = {}
    for key, value in block.state_dict().items():
        module, _, tensor = key.rpartition(".")
        state[f"{renames[module]}.{tensor}"] = value
    reference.load_state_dict(state)
    return reference.train(block.training)


def try_forward(block: nn.Module, x: Tensor) -> str:
    """Run ``block(x)`` and say what happened in one line: the output shape, or the error's type and message."""
    try:
        with torch.no_grad():
            out = block(x)
    except Exception as err:  # noqa: BLE001 - showing the error is the point
        return f"{type(err).__name__}: {str(err).splitlines()[0]}"
    return f"ok: {tuple(x.shape)} -> {tuple(out.shape)}"


def source_of(obj) -> str:
    """The source code of a class or function without its docstring, to print in a notebook."""
    lines = inspect.getsource(obj).splitlines()
    doc = inspect.getdoc(obj)
    if doc:
        start = next(i for i, line in enumerate(lines) if '"""' in line)
        end = start if lines[start].count('"""') == 2 else next(
            i for i in range(start + 1, len(lines)) if '"""' in lines[i])
        lines = lines[:start] + lines[end + 1:]
        if start < len(lines) and not lines[start].strip():
            del lines[start]
    return "\n".join(lines).rstrip()


# --------------------------------------------------------------------------- identity at init


def zero_init_last_bn(block: nn.Module) -> nn.Module:
    """Set the weight (gamma) of the last BatchNorm of the residual branch to 0, in place; returns ``block``.

    Works on :class:`FixedBlock` (``main_path[-1]``), :class:`BasicBlock` (``bn2``),
    :class:`Bottleneck` (``bn3``) and :class:`course_lib.models.ConvPair` (``bn2``).
    Then f(x) = 0 exactly and the block is ``relu(x + 0)``, the identity on x >= 0.
    """
    if isinstance(block, FixedBlock):
        last = block.main_path[-1]
    elif isinstance(block, Bottleneck):
        last = block.bn3
    else:
        last = block.bn2
    with torch.no_grad():
        last.weight.zero_()
    return block


def residual_branch(block: nn.Module, x: Tensor) -> Tensor:
    """f(x) of a :class:`BasicBlock` or :class:`FixedBlock`: the branch before ``+ x`` and the last relu."""
    if isinstance(block, FixedBlock):
        return block.main_path(x)
    return block.bn2(block.conv2(F.relu(block.bn1(block.conv1(x)))))


# --------------------------------------------------------------------------- the gradient of one and of two blocks


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
    """Jacobians of one block at ``x`` (``1 x C x H x W``, float64), each ``D x D`` with D = C*H*W.

    Returns ``J_sum`` (of y = f(x) + x), ``J_f`` (of f alone), ``J_block`` (of the whole
    block, ``relu(f(x) + x)``), ``mask`` (``D``: 1 where f(x) + x > 0) and ``I``.
    The claims: ``J_sum == I + J_f`` and ``J_block == diag(mask) @ (I + J_f)``.
    """
    with torch.no_grad():
        mask = ((residual_branch(block, x) + x) > 0).to(x.dtype).flatten()
    return {
        "J_sum": _jacobian(lambda t: residual_branch(block, t) + t, x),
        "J_f": _jacobian(lambda t: residual_branch(block, t), x),
        "J_block": _jacobian(block, x),
        "mask": mask,
        "I": torch.eye(x.numel(), dtype=x.dtype),
    }


def two_block_jacobians(block1: BasicBlock, block2: BasicBlock, x: Tensor) -> dict[str, Tensor]:
    """Two identity-skip blocks ``g_l(t) = t + f_l(t)`` in a row, at ``x`` (``1 x C x H x W``, float64).

    Returns ``J_chain`` (autograd, of ``g2(g1(x))``), ``J1`` = df1/dx at x, ``J2`` = df2/dt at
    t = g1(x), and ``I``; the claim is ``J_chain == (I + J2) @ (I + J1) = I + J1 + J2 + J2 @ J1``.
    """
    def g1(t):
        return t + residual_branch(block1, t)

    def g2(t):
        return t + residual_branch(block2, t)

    with torch.no_grad():
        mid = g1(x)
    return {
        "J_chain": _jacobian(lambda t: g2(g1(t)), x),
        "J1": _jacobian(lambda t: residual_branch(block1, t), x),
        "J2": _jacobian(lambda t: residual_branch(block2, t), mid),
        "I": torch.eye(x.numel(), dtype=x.dtype),
    }


def plot_jacobians(jacobians: dict[str, Tensor], name: str | None = "02_jacobian"):
    """Heat maps of ``J_f``, ``I`` and ``J_sum = I + J_f`` from :func:`block_jacobians` (``D x D`` each).

    Each panel has its own colour scale (symmetric around 0), so the small entries of df/dx stay visible.
    """
    panels = (("df/dx", jacobians["J_f"]), ("I", jacobians["I"]), ("dy/dx = I + df/dx", jacobians["J_sum"]))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (title, matrix) in zip(axes, panels):
        limit = matrix.abs().max().item()
        image = ax.imshow(matrix.detach().numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set(title=title, xlabel="input unit j")
        fig.colorbar(image, ax=ax, shrink=0.85)
    axes[0].set_ylabel("output unit i")
    return finish_figure(fig, name=name)


# --------------------------------------------------------------------------- the gradient through L blocks

# How far the depth sweep goes, per run profile (blocks = ConvPairs; the net has 2*blocks + 2 layers).
GRADIENT_SETTINGS = {
    "smoke": {"blocks": (1, 2, 4, 8, 16), "batch": 32, "seeds": (0,)},
    "cpu": {"blocks": (1, 2, 4, 8, 16, 32, 64), "batch": 32, "seeds": (0, 1, 2)},
    "full": {"blocks": (1, 2, 4, 8, 16, 32, 64, 128), "batch": 128, "seeds": (0, 1, 2, 3, 4)},
}


def input_gradient_norm(model: DepthNet, x: Tensor, y: Tensor) -> float:
    """||d loss / d h0||: the gradient of the cross-entropy that reaches the input ``h0`` of the body.

    ``x``: ``N x 1 x 28 x 28`` digits, ``y``: ``N`` labels; ``h0 = model.stem(x)``
    (``N x width x 7 x 7``) is the input of the L blocks. The model stays in train
    mode, as during training (BatchNorm uses batch statistics).
    """
    model.train()
    h0 = model.stem(x).detach().requires_grad_()
    logits = model.head(torch.flatten(F.adaptive_avg_pool2d(model.body(h0), 1), 1))
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), h0)
    return grad.norm().item()


def gradient_vs_depth(x: Tensor, y: Tensor, blocks: Sequence[int], seeds: Sequence[int] = (0,),
                      batch_norm: bool = True, width: int = 16) -> dict:
    """The input-gradient norm of seeded plain and residual nets with ``blocks`` ConvPairs, in float64.

    Each (depth, seed) builds ``plain_net`` and ``residual_net`` from the same seed
    (the same weights; only the skips differ). float64 so that a vanishing gradient
    is measured rather than flushed to 0. Returns ``{"blocks", "batch_norm",
    "plain": [[norm per seed] per depth], "residual": [...]}``.
    """
    x, result = x.double(), {"blocks": list(blocks), "batch_norm": batch_norm, "plain": [], "residual": []}
    for n_blocks in blocks:
        for kind, builder in (("plain", plain_net), ("residual", residual_net)):
            norms = []
            for seed in seeds:
                torch.manual_seed(seed)
                model = builder(2 * n_blocks + 2, width=width, batch_norm=batch_norm).double()
                norms.append(input_gradient_norm(model, x, y))
            result[kind].append(norms)
    return result


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
    header = f"{'blocks L':>9}" + "".join(
        f"{kind + (' +BN' if r['batch_norm'] else ' no BN'):>17}" for r in results for kind in ("plain", "residual"))
    lines = [header, "-" * len(header)]
    for i, n_blocks in enumerate(results[0]["blocks"]):
        lines.append(f"{n_blocks:>9}" + "".join(f"{geometric_mean(r[kind][i]):>17.3g}"
                                                for r in results for kind in ("plain", "residual")))
    return "\n".join(lines)


def plot_gradient_vs_depth(results: Sequence[dict], title: str = "", name: str | None = "02_gradient_vs_depth"):
    """One panel per result of :func:`gradient_vs_depth`: gradient norm at the input vs number of blocks (log-log)."""
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, result in zip(axes[0], results):
        for kind, color in (("plain", "tab:red"), ("residual", "tab:blue")):
            for depth, norms in zip(result["blocks"], result[kind]):
                ax.scatter([depth] * len(norms), norms, color=color, s=12, alpha=0.5)
            ax.plot(result["blocks"], [geometric_mean(n) for n in result[kind]], color=color, marker="o",
                    label=f"{kind}: y = {'relu(f(x))' if kind == 'plain' else 'relu(f(x) + x)'}")
        bn = "with BatchNorm" if result["batch_norm"] else "without BatchNorm (PyTorch's default init)"
        ax.set(xscale="log", yscale="log", xlabel="number of blocks L (2 convs each)",
               ylabel="||dLoss/d(input of the L blocks)||", title=bn)
        ax.set_xticks(result["blocks"], [str(b) for b in result["blocks"]])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return finish_figure(fig, title, name)


# --------------------------------------------------------------------------- shortcuts when the shape changes


class ZeroPadShortcut(nn.Module):
    """He et al.'s option A: subsample by ``stride``, then pad the new channels with zeros. No parameters.

    ``N x in_channels x H x W -> N x out_channels x ceil(H/stride) x ceil(W/stride)``;
    output channels ``in_channels..out_channels-1`` are all zero.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A can only add channels (got {in_channels} -> {out_channels}); use a projection")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))


def projection_shortcut(in_channels: int, out_channels: int, stride: int = 2) -> nn.Sequential:
    """He et al.'s option B: 1x1 conv with ``stride`` + BN, exactly torchvision's ``downsample``."""
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


def shortcut_macs(shortcut: nn.Module, input_size: tuple) -> int:
    """MACs per image of a shortcut for one ``C x H x W`` input; 0 for one without parameters (no conv in it).

    (:func:`course_lib.counting.count_macs` looks up the device from the first parameter,
    so it cannot run on a parameter-free module such as :class:`ZeroPadShortcut`.)
    """
    if next(shortcut.parameters(), None) is None:
        return 0
    return count_macs(shortcut, input_size)


def projection_params(model: nn.Module) -> tuple[int, int]:
    """(number of projection shortcuts, their parameters) in a :class:`course_lib.models.ResNet`."""
    projections = [m.downsample for m in model.modules()
                   if isinstance(m, (BasicBlock, Bottleneck)) and m.downsample is not None]
    return len(projections), sum(count_params(p) for p in projections)


# --------------------------------------------------------------------------- costs by formula


def conv_cost(c_in: int, c_out: int, k: int, h_out: int, w_out: int, bias: bool = False) -> tuple[int, int]:
    """(params, MACs per image) of a ``k x k`` conv ``c_in -> c_out`` producing ``h_out x w_out``.

    params = c_out * c_in * k^2 (+ c_out bias); MACs = params without bias * h_out * w_out.
    """
    weights = c_out * c_in * k * k
    return weights + (c_out if bias else 0), weights * h_out * w_out


def _out_size(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # a 3x3 pad-1 or 1x1 pad-0 conv with this stride


def basic_block_cost(c_in: int, c_out: int, h: int, w: int, stride: int = 1) -> tuple[int, int]:
    """(params, MACs per image) of a :class:`BasicBlock` by formula, projection included when the shape changes.

    Two 3x3 convs (9*c_in*c_out + 9*c_out^2 weights), two BNs (2*c_out each); the
    projection adds a 1x1 conv (c_in*c_out) and a BN. BN, relu and the addition count 0 MACs.
    """
    ho, wo = _out_size(h, stride), _out_size(w, stride)
    parts = [conv_cost(c_in, c_out, 3, ho, wo), conv_cost(c_out, c_out, 3, ho, wo), (4 * c_out, 0)]
    if stride != 1 or c_in != c_out:
        parts += [conv_cost(c_in, c_out, 1, ho, wo), (2 * c_out, 0)]
    return sum(p for p, _ in parts), sum(m for _, m in parts)


def bottleneck_cost(c_in: int, planes: int, h: int, w: int, stride: int = 1) -> tuple[int, int]:
    """(params, MACs per image) of a :class:`Bottleneck` (output ``4 * planes``) by formula.

    1x1 reduce (c_in*planes), 3x3 with the stride (9*planes^2), 1x1 expand (planes*4planes),
    BNs (2*(planes + planes + 4planes)); the projection (c_in*4planes + BN) when the shape changes.
    """
    c_out, ho, wo = 4 * planes, _out_size(h, stride), _out_size(w, stride)
    parts = [conv_cost(c_in, planes, 1, h, w), conv_cost(planes, planes, 3, ho, wo),
             conv_cost(planes, c_out, 1, ho, wo), (2 * (planes + planes + c_out), 0)]
    if stride != 1 or c_in != c_out:
        parts += [conv_cost(c_in, c_out, 1, ho, wo), (2 * c_out, 0)]
    return sum(p for p, _ in parts), sum(m for _, m in parts)


def build_block(kind: str, c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    """A reference block, ``kind`` "basic" or "bottleneck" (``planes = c_out // 4``), with its projection if needed."""
    block_cls = BasicBlock if kind == "basic" else Bottleneck
    planes = c_out // block_cls.expansion
    downsample = projection_shortcut(c_in, c_out, stride) if stride != 1 or c_in != c_out else None
    return block_cls(c_in, planes, stride, downsample)


def block_cost_table(configs: Sequence[tuple[str, int, int, int]], size: int = 56) -> list[dict]:
    """Formula vs count for each ``(kind, c_in, c_out, stride)`` on a ``c_in x size x size`` input.

    Each row: ``block`` (a label), ``params_formula``, ``params_counted`` (:func:`count_params`),
    ``macs_formula``, ``macs_counted`` (:func:`course_lib.counting.count_macs`, hooks on a real forward).
    """
    rows = []
    for kind, c_in, c_out, stride in configs:
        if kind == "basic":
            params, macs = basic_block_cost(c_in, c_out, size, size, stride)
            label = f"basic {c_in}->{c_out}"
        else:
            params, macs = bottleneck_cost(c_in, c_out // 4, size, size, stride)
            label = f"bottleneck {c_in}->{c_out // 4}->{c_out}"
        block = build_block(kind, c_in, c_out, stride)
        rows.append({"block": label + (f", stride {stride}" if stride != 1 else ""),
                     "params_formula": params, "params_counted": count_params(block),
                     "macs_formula": macs, "macs_counted": count_macs(block, (c_in, size, size))})
    return rows


def format_cost_table(rows: Sequence[dict]) -> str:
    """The rows of :func:`block_cost_table` as fixed-width text (MACs in millions)."""
    lines = [f"{'block':<34}{'params (formula)':>17}{'params (count)':>16}{'MMACs (formula)':>17}{'MMACs (count)':>15}",
             "-" * 99]
    for r in rows:
        lines.append(f"{r['block']:<34}{r['params_formula']:>17,}{r['params_counted']:>16,}"
                     f"{r['macs_formula'] / 1e6:>17,.1f}{r['macs_counted'] / 1e6:>15,.1f}")
    return "\n".join(lines)
