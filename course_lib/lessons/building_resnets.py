"""Building ResNets step by step, and proving that what we built is the real thing (notebook 03).

* **Summaries** -- :func:`summary` and :func:`cost_table`: layer tables, parameter and multiply-add (MAC)
  totals, from :mod:`course_lib.counting`.
* **Growing the network** as fastbook chapter 14 does: :class:`PlainBlock`, :class:`SkipBlock` (+ x),
  :class:`ProjectionBlock` (a 1x1-conv shortcut where the shape changes), :func:`make_stage`,
  :class:`GrownResNet`, with torchvision's layer names so that weights load straight in. The branch f, the
  shortcut rule and zero-init are those of :mod:`course_lib.models`.
* **Parity** -- :func:`randomize_batchnorm`, :func:`copy_weights`, :func:`compare_outputs`,
  :func:`torchvision_parity`: parameter counts and outputs, in eval and train mode, BatchNorms randomised.
* **28x28 digits** -- :func:`shape_trace_table`, :func:`digit_variant`, :func:`measure_throughput`,
  :func:`train_digit_models`, sized per run profile by :data:`THROUGHPUT` and :data:`DIGIT_TRAINING`.

The notebook's diagrams (``figures/03_*.png``) are drawn by :mod:`course_lib.diagrams`.
"""
from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..counting import format_table, layer_table
from ..errors import ConfigError
from ..models import BasicBranch, build_model, conv3x3, count_params, display_name, needs_projection, shortcut
from ..timing import StepTimer, time_training_steps

# --------------------------------------------------------------------------- summaries


def summary(model: nn.Module, input_size: tuple = (1, 28, 28)) -> str:
    """Layer table of ``model`` for one input of ``input_size`` (C x H x W): output shapes, params, MACs."""
    return format_table(layer_table(model, input_size), count_params(model))


def cost_table(models: dict[str, nn.Module], input_size: tuple = (1, 28, 28), baseline: str | None = None) -> str:
    """Parameters and multiply-adds per image for each model, and their ratios to ``baseline`` (default: the first)."""
    costs = {name: (count_params(m), sum(r.macs for r in layer_table(m, input_size))) for name, m in models.items()}
    base_params, base_macs = costs[baseline or next(iter(costs))]
    lines = [f"{'model':<30}{'params':>13}{'x':>8}{'MACs / image':>16}{'x':>8}", "-" * 75]
    for name, (params, macs) in costs.items():
        lines.append(f"{name:<30}{params:>13,}{params / base_params:>8.1f}{macs:>16,}{macs / base_macs:>8.1f}")
    return "\n".join(lines)


def top_level_shapes(model: nn.Module, input_size: tuple = (1, 28, 28)) -> list[tuple[str, tuple]]:
    """``(name, output shape per image)`` after each direct child of ``model`` that runs, in order."""
    shapes: list[tuple[str, tuple]] = []
    handles = [child.register_forward_hook(lambda m, i, out, name=name: shapes.append((name, tuple(out.shape[1:]))))
               for name, child in model.named_children()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return shapes


def describe_step(label: str, module: nn.Module, x: Tensor) -> str:
    """One line: ``label``, input shape -> output shape (``x`` is N x C x H x W), and the module's parameters."""
    with torch.no_grad():
        out = module.eval()(x)
    shape = lambda t: " x ".join(map(str, t.shape))  # noqa: E731
    return f"{label:<34} {shape(x):>16} -> {shape(out):<16} {count_params(module):>9,} params"


# --------------------------------------------------------------------------- growing the network


class PlainBlock(BasicBranch):
    """Step 1: two 3x3 conv + BatchNorm layers, ``relu(f(x))`` with ``f = bn2(conv2(relu(bn1(conv1(x)))))``.

    ``f`` is :class:`course_lib.models.BasicBranch`'s, the branch of every basic block of the course.
    ``x``: N x c_in x H x W -> N x c_out x H/stride x W/stride. The stride sits on the first conv.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.f(x))


class SkipBlock(PlainBlock):
    """Step 2: the same layers plus the identity skip, ``relu(f(x) + x)``: no new parameters.

    ``x + f(x)`` needs both to have the same shape, so the block keeps the channels and the stride is 1.
    """

    def __init__(self, channels: int, c_out: int | None = None, stride: int = 1):
        c_out = channels if c_out is None else c_out
        if needs_projection(channels, c_out, stride):
            raise ConfigError(
                f"an identity skip needs f(x) and x to have the same shape, but {channels}->{c_out} channels "
                f"with stride {stride} makes f(x) {c_out} x H/{stride} x W/{stride} while x stays "
                f"{channels} x H x W. Fix: use ProjectionBlock, whose 1x1-conv shortcut changes x's shape too.")
        super().__init__(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.f(x) + x)


class ProjectionBlock(PlainBlock):
    """Step 3: ``relu(f(x) + shortcut(x))``; the shortcut is the identity unless the shape changes.

    Where it changes, ``downsample`` = 1x1 conv (stride ``stride``, ``c_in -> c_out``) + BatchNorm,
    He et al.'s option B; the rule is :func:`course_lib.models.shortcut`'s. This is torchvision's
    ``BasicBlock``, with the same names and parameters.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__(c_in, c_out, stride)
        self.downsample = shortcut(c_in, c_out, stride)  # None (the identity) unless the shape changes

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(self.f(x) + shortcut)


def make_stage(c_in: int, c_out: int, blocks: int, stride: int = 1) -> nn.Sequential:
    """Step 4: a stage = ``blocks`` ProjectionBlocks; only the first changes the shape (and gets a projection).

    N x c_in x H x W -> N x c_out x H/stride x W/stride.
    """
    if blocks < 1:
        raise ConfigError(f"a stage needs at least 1 block, got {blocks}")
    return nn.Sequential(ProjectionBlock(c_in, c_out, stride), *[ProjectionBlock(c_out, c_out) for _ in range(blocks - 1)])


Layout = Sequence[tuple[int, int, int]]  # one (blocks, channels, stride of the first block) per stage

RESNET18_LAYOUT: list[tuple[int, int, int]] = [(2, 64, 1), (2, 128, 2), (2, 256, 2), (2, 512, 2)]


class GrownResNet(nn.Module):
    """Step 5: a stem, stages of :class:`ProjectionBlock` from a ``layout``, global average pool, a linear layer.

    ``layout``: one ``(blocks, channels, stride)`` per stage. ``small_input=True``: 3x3 stride-1 stem
    and no max-pool (for 28x28 digits); else torchvision's 7x7 stride-2 stem and 3x3 max-pool.
    The stem has as many channels as the first stage. Names follow torchvision, so with
    :data:`RESNET18_LAYOUT` it takes the weights of ``course_lib.models.resnet18`` (or
    ``digit_resnet(18)`` when ``small_input``) unchanged. ``x``: N x in_channels x H x W -> N x num_classes.
    """

    def __init__(self, layout: Layout, in_channels: int = 1, num_classes: int = 10, small_input: bool = True):
        super().__init__()
        layout = [tuple(int(v) for v in stage) for stage in layout]
        if not layout or any(len(stage) != 3 or min(stage) < 1 for stage in layout):
            raise ConfigError(f"layout must be a list of (blocks, channels, stride) with positive numbers, got {layout}")
        self.layout = layout
        width = layout[0][1]
        if small_input:
            self.conv1 = conv3x3(in_channels, width)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, (blocks, channels, stride) in enumerate(layout, start=1):
            self.add_module(f"layer{i}", make_stage(width, channels, blocks, stride))
            width = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, len(self.layout) + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def scaled_layout(layout: Layout, width_divisor: int) -> list[tuple[int, int, int]]:
    """The same layout with every stage's channels divided by ``width_divisor`` (a narrower network)."""
    return [(blocks, max(1, channels // width_divisor), stride) for blocks, channels, stride in layout]


# --------------------------------------------------------------------------- reading a ResNet's structure


@dataclass
class BlockInfo:
    """One residual block of a ResNet, as :func:`block_list` reads it."""

    name: str  # e.g. "layer2.0"
    kind: str  # class name: BasicBlock, Bottleneck, ProjectionBlock
    c_in: int
    c_out: int
    stride: int
    shortcut: str  # "identity" or "projection"

    def __str__(self) -> str:
        return f"{self.name:<10}{self.kind:<16}{self.c_in:>5} -> {self.c_out:<5} stride {self.stride}   {self.shortcut}"


def block_list(model: nn.Module) -> list[BlockInfo]:
    """Every residual block of a ResNet (ours, grown, or torchvision's), in order."""
    rows = []
    for name, m in model.named_modules():
        if hasattr(m, "conv1") and hasattr(m, "downsample") and isinstance(m.conv1, nn.Conv2d):
            convs = [c for c in m.children() if isinstance(c, nn.Conv2d)]
            rows.append(BlockInfo(name, type(m).__name__, convs[0].in_channels, convs[-1].out_channels,
                                  max(c.stride[0] for c in convs),
                                  "identity" if m.downsample is None else "projection"))
    return rows


def stage_layout(model: nn.Module) -> list[tuple[int, int, int]]:
    """``(blocks, channels, stride)`` for each stage ``layer1, layer2, ...`` of a ResNet.

    ``channels`` is the width of the stage's first conv (``planes`` in torchvision; a
    Bottleneck stage outputs 4 times that), ``stride`` is that of its first block.
    """
    layout, i = [], 1
    while hasattr(model, f"layer{i}"):
        stage = getattr(model, f"layer{i}")
        first = block_list(stage)[0]
        layout.append((len(stage), stage[0].conv1.out_channels, first.stride))
        i += 1
    return layout


# --------------------------------------------------------------------------- parity


@dataclass
class Parity:
    """The result of copying one network's weights into another and comparing them, in eval and in train mode."""

    name: str
    params_source: int
    params_target: int
    tensors_copied: int
    input_shape: tuple
    max_abs_diff: float
    allclose: bool
    identical: bool
    max_abs_diff_train: float = 0.0
    allclose_train: bool = True

    @property
    def passed(self) -> bool:
        return self.params_source == self.params_target and self.allclose and self.allclose_train

    def outputs_sentence(self, expect_equal: bool) -> str:
        """One line saying whether the two networks, holding the same weights, compute the same outputs, and
        whether that is what was expected (``expect_equal``): a False is then a finding, not a failed check."""
        same = self.allclose and self.allclose_train
        if same:
            verdict = "the same outputs" + (" (identical)" if self.identical else f" (max |diff| {self.max_abs_diff:.1g})")
        else:
            verdict = f"different outputs (max |diff| {max(self.max_abs_diff, self.max_abs_diff_train):.3g})"
        expected = "as expected" if same == expect_equal else "NOT as expected"
        return f"with the same weights, the two compute {verdict}: {expected}"

    def __str__(self) -> str:
        same = "=" if self.params_source == self.params_target else "!="
        shape = " x ".join(map(str, self.input_shape))
        return (f"{self.name}: params {self.params_target:,} {same} {self.params_source:,}; "
                f"{self.tensors_copied} tensors copied (BatchNorm randomised); outputs on a {shape} input: "
                f"eval mode allclose {self.allclose}, identical {self.identical} (max |diff| {self.max_abs_diff:.1g}); "
                f"train mode allclose {self.allclose_train} (max |diff| {self.max_abs_diff_train:.1g})")


@torch.no_grad()
def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm of ``model`` random weight, bias, running mean and running variance, in place.

    A freshly built BN (weight 1, bias 0, mean 0, variance 1) is nearly the identity in eval mode, so a
    comparison of two networks with fresh BNs cannot see where the BNs sit (conv -> relu -> BN and
    conv -> BN -> relu then compute the same). Random values make every BN a different affine map.
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            if m.affine:
                m.weight.copy_(torch.empty(n).uniform_(0.5, 1.5, generator=g)
                               * torch.where(torch.rand(n, generator=g) < 0.2, -1.0, 1.0))
                m.bias.copy_(0.5 * torch.randn(n, generator=g))
            if m.track_running_stats:
                m.running_mean.copy_(0.5 * torch.randn(n, generator=g))
                m.running_var.copy_(torch.empty(n).uniform_(0.5, 2.0, generator=g))
    return model


def copy_weights(source: nn.Module, target: nn.Module) -> int:
    """Load ``source``'s state dict (weights and BatchNorm statistics) into ``target``; return the tensor count.

    Raises :class:`ConfigError` naming the keys or shapes that do not match.
    """
    theirs, ours = source.state_dict(), target.state_dict()
    missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    bad = [f"{k} {tuple(theirs[k].shape)} vs {tuple(ours[k].shape)}"
           for k in ours if k in theirs and theirs[k].shape != ours[k].shape]
    if missing or extra or bad:
        parts = ([f"only in target: {missing[:3]}"] if missing else []) + \
                ([f"only in source: {extra[:3]}"] if extra else []) + ([f"shapes differ: {bad[:3]}"] if bad else [])
        raise ConfigError(f"the two networks do not have the same layers ({'; '.join(parts)}). "
                          f"Fix: build the target with the same blocks, stages and widths as the source.")
    target.load_state_dict(theirs)
    return len(theirs)


def _max_diff(a: Tensor, b: Tensor) -> tuple[float, bool]:
    return (a - b).abs().max().item(), torch.allclose(a, b, rtol=1e-5, atol=1e-6)


@torch.no_grad()
def compare_outputs(source: nn.Module, target: nn.Module, x: Tensor, name: str = "", seed: int = 0) -> Parity:
    """Copy ``source``'s weights into ``target`` and compare their outputs on ``x`` (N x C x H x W, N >= 2).

    The weights copied are those of a copy of ``source`` whose BatchNorms were randomised
    (:func:`randomize_batchnorm`), so that a BN in the wrong place shows; ``source`` itself is left unchanged.
    Both are run in eval mode (running statistics) and then in train mode (batch statistics).
    """
    source = randomize_batchnorm(copy.deepcopy(source), seed)
    copied = copy_weights(source, target)
    source.eval(), target.eval()
    a, b = source(x), target(x)
    diff, close = _max_diff(a, b)
    identical = torch.equal(a, b)
    kept = copy.deepcopy(target.state_dict())  # a train-mode pass updates the running statistics
    source.train(), target.train()
    diff_train, close_train = _max_diff(source(x), target(x))
    target.load_state_dict(kept)
    target.eval()
    return Parity(name or type(target).__name__, count_params(source), count_params(target), copied,
                  tuple(x.shape), diff, close, identical, diff_train, close_train)


def torchvision_parity(depth: int, input_size: tuple = (3, 224, 224), batch: int = 2, seed: int = 0) -> Parity:
    """Build torchvision's ResNet-``depth`` (random init, no download) and ours; copy theirs into ours; compare."""
    import torchvision

    from .. import models

    if depth not in models.RESNET_LAYOUTS:
        raise ConfigError(f"no ResNet-{depth}; valid depths are {sorted(models.RESNET_LAYOUTS)}")
    torch.manual_seed(seed)
    theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    ours = getattr(models, f"resnet{depth}")()
    x = torch.randn(batch, *input_size, generator=torch.Generator().manual_seed(seed))
    return compare_outputs(theirs, ours, x, name=f"ResNet-{depth} ours vs torchvision")


# --------------------------------------------------------------------------- ResNets for 28x28 digits


def shape_trace_table(models: dict[str, nn.Module], input_size: tuple = (1, 28, 28),
                      layers: Sequence[str] = ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4")) -> str:
    """Output shape per image after each of ``layers`` (top-level module names), one column per model."""
    traces = {name: dict(top_level_shapes(m, input_size)) for name, m in models.items()}
    fmt = lambda shape: " x ".join(map(str, shape)) if shape else "-"  # noqa: E731
    lines = [f"{'after':<10}" + "".join(f"{name:>28}" for name in models), "-" * (10 + 28 * len(models))]
    for layer in layers:
        lines.append(f"{layer:<10}" + "".join(f"{fmt(t.get(layer)):>28}" for t in traces.values()))
    return "\n".join(lines)


def digit_variant(width_divisor: int = 1) -> nn.Module:
    """ResNet-18 for 28x28 digits: ``build_model("resnet18")`` at full width, else a :class:`GrownResNet`
    with every stage ``width_divisor`` times narrower (same depth, same 3x3 stem, no max-pool)."""
    if width_divisor == 1:
        return build_model("resnet18")
    model = GrownResNet(scaled_layout(RESNET18_LAYOUT, width_divisor), in_channels=1, num_classes=10)
    model.spec = {"name": f"resnet18-width/{width_divisor}", "kwargs": {}}
    return model


def variant_name(width_divisor: int) -> str:
    """The label of :func:`digit_variant` in tables."""
    return "ResNet-18 (digits)" if width_divisor == 1 else f"ResNet-18 (digits), 1/{width_divisor} width"


# How big the notebook's 28x28 runs are in each profile. ResNet-18 at 28x28 costs ~78x the
# blog's ResNet per image, so on a CPU the run uses a narrower ResNet-18 (width_divisor).
THROUGHPUT = {  # at least 20 timed steps per model, in rounds whose spread the table shows
    "smoke": dict(batch_size=2, steps=20, rounds=5),
    "cpu": dict(batch_size=8, steps=20, rounds=5),
    "full": dict(batch_size=128, steps=20, rounds=5),
}
DIGIT_TRAINING = {
    "smoke": dict(width_divisor=8, train=500, test=500, epochs=1),
    "cpu": dict(width_divisor=4, train=4000, test=1000, epochs=1),
    "full": dict(width_divisor=1, train=None, test=None, epochs=2),
}


def training_throughput(model: nn.Module, batch_size: int = 64, steps: int = 20,
                        input_size: tuple = (1, 28, 28), seed: int = 0) -> float:
    """Training images per second (SGD steps on random digits, after one warm-up step), on the model's device,
    timed by the course's timing loop (:func:`course_lib.timing.time_training_steps`)."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch_size, *input_size, generator=g).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=g).to(device)
    return time_training_steps(model, (x, y), steps, warmup=1, lr=0.01).images_per_s


def measure_throughput(models: dict[str, nn.Module], batch_size: int = 32, steps: int = 20,
                       device: str | torch.device = "cpu", rounds: int = 2) -> dict[str, list[float]]:
    """Training images/s of each model in each of ``rounds`` interleaved rounds (``steps`` SGD steps per model in
    all, after one warm-up step, on random digits), timed by the course's timing loop: ``{name: [rate, ...]}``."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch_size, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (batch_size,), generator=g)
    dev = torch.device(device)
    timers = {name: StepTimer(m, (x.to(dev), y.to(dev)), device=dev, lr=0.01) for name, m in models.items()}
    for timer in timers.values():
        timer.warm_up(1)
    rates = {name: [] for name in timers}
    rounds = max(1, min(rounds, steps))
    for r in range(rounds):
        for name, timer in timers.items():
            rates[name].append(timer.run(steps // rounds + (r < steps % rounds)).images_per_s)
    return rates


def format_throughput(rates: dict[str, list[float]]) -> str:
    """One line per model: median images/s over the rounds, their range, and the median's ratio to the first."""
    medians = {name: statistics.median(v) for name, v in rates.items()}
    first = next(iter(medians.values()))
    n, rounds = torch.get_num_threads(), len(next(iter(rates.values())))
    head = f"train images/s, {n} thread{'s' * (n != 1)}: median [range] over {rounds} rounds"
    lines = [f"{'model':<32}{head:>64}{'x slower':>10}", "-" * 106]
    lines += [f"{name:<32}{medians[name]:>40,.1f}{f'[{min(v):,.1f} - {max(v):,.1f}]':>24}{first / medians[name]:>10.1f}"
              for name, v in rates.items()]
    return "\n".join(lines)


def throughput_table(models: dict[str, nn.Module], batch_size: int = 32, steps: int = 20,
                     device: str | torch.device = "cpu", rounds: int = 2) -> str:
    """:func:`measure_throughput`, formatted by :func:`format_throughput`."""
    return format_throughput(measure_throughput(models, batch_size, steps, device, rounds))


def v1_stride_macs(depth: int = 50, input_size: tuple = (3, 224, 224)) -> int:
    """MACs per image of torchvision's ResNet-``depth`` with the stride of each downsampling bottleneck moved
    back to its first 1x1 conv, as in He et al. (2015) ("v1"); torchvision's v1.5 puts it on the 3x3 conv."""
    import torchvision

    from ..counting import count_macs

    model = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    for stage in (model.layer2, model.layer3, model.layer4):
        stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
    return count_macs(model, input_size)


def train_digit_models(data, settings: dict, device: str | torch.device = "auto", seed: int = 0) -> dict:
    """Train BlogResNet and :func:`digit_variant` with the blog's protocol (SGD lr 0.1, batch 64) on the same data.

    ``settings``: a row of :data:`DIGIT_TRAINING` (``width_divisor``, ``train``, ``test``, ``epochs``).
    Returns ``{label: History}``; BatchNorm statistics are recomputed before each evaluation.
    """
    from ..training import fit, seed_everything

    subset = data.subset(settings["train"], settings["test"], seed=seed)
    runs = {}
    for label, build in ((display_name("blog-resnet"), lambda: build_model("blog-resnet")),
                         (variant_name(settings["width_divisor"]), lambda: digit_variant(settings["width_divisor"]))):
        seed_everything(seed)
        model = build()
        runs[label] = fit(model, subset, epochs=settings["epochs"], seed=seed, device=device,
                          recompute_bn=True, progress=False)
        runs[label].config["params"] = count_params(model)
    return runs


def format_runs(runs: dict) -> str:
    """What the runs were trained on (data, device), then one line per run: params, epochs, test accuracy.

    No times: a run's wall-clock time says as much about what else the machine was doing as about the model;
    the speed of the models is measured by :func:`throughput_table`, with the course's timing loop.
    """
    first = next(iter(runs.values()))
    d = first.config.get("dataset", {})
    lines = [f"data: {d.get('dataset')} from {d.get('source')}, {d.get('n_train', 0):,} train / "
             f"{d.get('n_test', 0):,} test images" + ("" if d.get("full") else " (not the full dataset)")
             + f"; device: {first.device}",
             f"{'model':<36}{'params':>11}{'epochs':>8}{'test accuracy':>15}", "-" * 70]
    for label, h in runs.items():
        acc = f"{h.final['test_acc']:.1%}" if h.records else h.status
        lines.append(f"{label:<36}{h.config['params']:>11,}{len(h):>8}{acc:>15}")
    return "\n".join(lines)
