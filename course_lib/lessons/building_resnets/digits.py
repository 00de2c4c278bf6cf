"""ResNet-18 on 28x28 digits: the digit variants, how fast each trains, and a short training run of each next to
the blog's ResNet, sized per run profile by :data:`SETTINGS`."""
from __future__ import annotations

import statistics

import torch
from torch import nn

from ...models import build_model, count_params
from ...timing import StepTimer, interleaved_rounds
from ...training import Protocol, SpeedOptions, fit, seed_everything
from .grown import RESNET18_LAYOUT, GrownResNet, scaled_layout

# throughput: the timed steps per model and their rounds (batch 64 = the training's, except in smoke). training:
# ResNet-18 at 28x28 costs ~78x the blog's ResNet per image, so a CPU trains a narrower one on fewer images.
SETTINGS = {
    "smoke": dict(throughput=dict(batch_size=2, steps=20, rounds=5),
                  training=dict(width_divisor=8, train=500, test=500, epochs=1)),
    "cpu": dict(throughput=dict(batch_size=64, steps=10, rounds=5),
                training=dict(width_divisor=4, train=4000, test=1000, epochs=1)),
    "full": dict(throughput=dict(batch_size=64, steps=20, rounds=5),
                 training=dict(width_divisor=1, train=None, test=None, epochs=2)),
}


def digit_variant(width_divisor: int = 1) -> nn.Module:
    """ResNet-18 for 28x28 digits: ``build_model("resnet18")`` at full width, else a :class:`GrownResNet` with
    every stage ``width_divisor`` times narrower (same depth, same 3x3 stem, no max-pool)."""
    if width_divisor == 1:
        return build_model("resnet18")
    model = GrownResNet(scaled_layout(RESNET18_LAYOUT, width_divisor), in_channels=1, num_classes=10)
    model.spec = {"name": f"resnet18-width/{width_divisor}", "kwargs": {}}
    return model


def variant_name(width_divisor: int) -> str:
    """The label of :func:`digit_variant` in tables."""
    return "ResNet-18 (digits)" if width_divisor == 1 else f"ResNet-18 (digits), 1/{width_divisor} width"


def measure_throughput(models: dict[str, nn.Module], batch_size: int = 32, steps: int = 20,
                       device: str | torch.device = "cpu", rounds: int = 2) -> dict[str, list[float]]:
    """Training images/s of each model on random digits in each of ``rounds`` interleaved rounds, ``steps`` SGD
    steps per model in all after one warm-up step: ``{name: [rate, ...]}``."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch_size, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (batch_size,), generator=g)
    dev = torch.device(device)
    timers = [StepTimer(m, (x.to(dev), y.to(dev)), device=dev, lr=0.01) for m in models.values()]
    rates = {name: [] for name in models}
    for timed in interleaved_rounds(timers, steps, rounds):
        for name, t in zip(models, timed):
            rates[name].append(t.images_per_s)
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


def train_digit_models(data, settings: dict, device: str | torch.device = "auto", seed: int = 0) -> dict:
    """Train blog-resnet and :func:`digit_variant` with the blog's protocol on the same data (``settings``: a
    ``training`` row of :data:`SETTINGS`), BatchNorm statistics recomputed before each evaluation.
    Returns ``{label: History}``."""
    subset = data.subset(settings["train"], settings["test"], seed=seed)
    runs = {}
    width = settings["width_divisor"]
    for label, build in (("blog-resnet", lambda: build_model("blog-resnet")),
                         (variant_name(width), lambda: digit_variant(width))):
        seed_everything(seed)
        model = build()
        runs[label] = fit(model, subset, Protocol(epochs=settings["epochs"], seed=seed, recompute_bn=True),
                          SpeedOptions(device=device), progress=False)
        runs[label].config["params"] = count_params(model)
    return runs


def format_runs(runs: dict) -> str:
    """The runs' data and device, then one line per run: params, epochs, test accuracy. No wall-clock times:
    they say as much about the machine's other work as about the model."""
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
