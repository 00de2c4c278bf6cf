"""The degradation problem, measured: notebook 01 and ``python -m course_lib degradation``.

He et al. (2015) saw that a deeper *plain* network ends with a higher *training*
error than a shallower one, although it could copy the shallower net and make its
extra layers the identity. Three experiments measure this here, each returning
plain data (dicts and lists) that the notebook plots and the CLI writes as JSON:

* :func:`gradient_flow` -- per-layer gradient norms at initialisation, plain and
  residual nets, BatchNorm off and on, on one real batch;
* :func:`run_sweep` -- plain and residual nets of several depths trained with the
  same budget and several seeds (the ``degradation`` command);
* :func:`identity_experiment` -- can a stack of extra layers learn to copy its input?

Sizes live in :data:`SETTINGS`, one row per run profile. The sweep always trains on
the embedded 5,000-digit sample, so its result is the same on every machine and
its cost does not grow when full MNIST is present.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Data, load_data
from ..errors import ConfigError
from ..models import ConvPair, DepthNet, plain_net, residual_net
from ..plots import finish_figure
from ..results import make_meta
from ..training import evaluate, fit, pick_device, recompute_bn_stats, seed_everything

# The protocol, the same in every profile (measured to show degradation clearly on the sample):
# SGD at a constant lr of 0.1 without momentum (issue 3's feasibility study saw momentum 0.9 at this
# lr make the residual nets degrade too).
PROTOCOL = dict(width=16, batch_norm=True, lr=0.1, batch_size=128, momentum=0.0, final_fraction=0.2)

SETTINGS = {
    "smoke": dict(
        sweep=dict(dataset="sample", train_limit=512, test_limit=256, depths=(2, 8, 14), seeds=1, epochs=1),
        gradient=dict(depths=(8, 20, 32, 56), batch=128),  # cheap: the same in every profile
        identity=dict(layers=(2, 8), steps=20, n=16),
    ),
    "cpu": dict(
        sweep=dict(dataset="sample", train_limit=None, test_limit=None, depths=(2, 8, 20, 44), seeds=3, epochs=3),
        gradient=dict(depths=(8, 20, 32, 56), batch=128),
        identity=dict(layers=(2, 8, 16), steps=100, n=32),
    ),
    "full": dict(
        sweep=dict(dataset="sample", train_limit=None, test_limit=None, depths=(2, 8, 20, 32, 56), seeds=3,
                   epochs=8),
        gradient=dict(depths=(8, 20, 32, 56), batch=128),
        identity=dict(layers=(2, 8, 16, 32), steps=300, n=64),
    ),
}

FINAL_LOSS_DEFINITION = ("mean training cross-entropy of the SGD mini-batches over the last {pct:.0f}% of the "
                         "steps (the training loss the net ends with, as He et al. plot it; not a test loss)")
BUILDERS: dict[str, Callable[..., DepthNet]] = {"plain": plain_net, "residual": residual_net}


def settings(profile) -> dict:
    """This module's row of :data:`SETTINGS` for ``profile`` (a Profile or its name)."""
    from ..profiles import get_profile

    prof = profile if hasattr(profile, "pick") else get_profile(profile)
    return prof.pick(SETTINGS)


# --------------------------------------------------------------------------- gradient flow at init


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The conv and linear layers of ``model`` in forward order (input side first)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def gradient_norms(model: nn.Module, images: Tensor, labels: Tensor) -> list[float]:
    """Norm of the cross-entropy gradient of every conv/linear weight, input side first.

    ``images``: N x 1 x 28 x 28, ``labels``: N. One forward and backward pass in
    train mode (BatchNorm uses batch statistics, as during training); the model's
    gradients are cleared afterwards. A DepthNet of depth d gives d numbers.
    """
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()
    norms = [layer.weight.grad.norm().item() for layer in weight_layers(model)]
    model.zero_grad(set_to_none=True)
    return norms


def gradient_flow(depths, images: Tensor, labels: Tensor, seed: int = 0,
                  residual_depth: int | None = None) -> dict[str, list[float]]:
    """Per-layer gradient norms at initialisation, BatchNorm off and on.

    Plain nets of every depth in ``depths`` plus one residual net of ``residual_depth``
    (default: the deepest) for reference, each built after ``seed_everything(seed)``.
    Returns ``{"plain-32, no BN": [norm of layer 1, ..., layer 32], ...}``.
    """
    residual_depth = residual_depth or max(depths)
    nets = [("plain", d) for d in depths] + [("residual", residual_depth)]
    flow = {}
    for batch_norm in (False, True):
        for kind, depth in nets:
            seed_everything(seed)
            model = BUILDERS[kind](depth, PROTOCOL["width"], batch_norm=batch_norm)
            flow[net_label(kind, depth, batch_norm)] = gradient_norms(model, images, labels)
    return flow


def net_label(kind: str, depth: int, batch_norm: bool) -> str:
    """``"plain-32, BN"`` / ``"residual-8, no BN"``: the names used in plots and dicts."""
    return f"{kind}-{depth}, {'BN' if batch_norm else 'no BN'}"


def digit_batch(n: int) -> tuple[Tensor, Tensor]:
    """The first ``n`` training digits of the embedded sample: images N x 1 x 28 x 28, labels N.

    The same batch on every machine and in every profile, so gradient norms are comparable.
    """
    data = load_data("sample", verbose=False)
    return data.train_x[:n], data.train_y[:n]


def input_to_output_ratio(norms: list[float]) -> float:
    """Gradient norm of the first conv layer / that of the last conv layer (the one before the linear head).

    Below 1: the gradient shrinks on its way back to the input; above 1: it grows.
    The linear head (the last entry of ``norms``) is left out: it is a different kind of layer.
    """
    return norms[0] / norms[-2]


def print_gradient_ratios(flow: dict[str, list[float]]) -> None:
    """For every net: first-conv / last-conv gradient norm, in orders of magnitude, and layers with exactly 0."""
    print(f"{'net':<20} | {'layers':>6} | first conv / last conv gradient norm")
    for label, norms in flow.items():
        ratio = input_to_output_ratio(norms)
        zeros = sum(1 for v in norms if v == 0.0)
        if zeros:
            text = (f"0: the first {zeros} layers get a gradient of exactly 0 (too small for float32), the smallest "
                    f"non-zero one is {min(v for v in norms if v > 0):.0e}")
        else:
            direction = "shrinks" if ratio < 1 else "grows"
            text = f"{ratio:7.1e}  ({direction} {abs(np.log10(ratio)):.1f} orders of magnitude toward the input)"
        print(f"{label:<20} | {len(norms):>6} | {text}")


def plot_gradient_flow(flow: dict[str, list[float]], name: str | None = "01_gradient_flow", title: str = ""):
    """Two panels (no BN | BN): gradient norm per layer on a log scale, one line per net."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, bn in zip(axes, ("no BN", "BN")):
        nets = [k for k in flow if k.endswith(f", {bn}")]
        colors = plt.cm.viridis(np.linspace(0, 0.85, max(len(nets) - 1, 1)))
        for i, label in enumerate(k for k in nets if k.startswith("plain")):
            norms = flow[label]
            zeros = sum(1 for v in norms if v == 0.0)  # a log axis cannot show them: say so in the legend
            note = f" (layers 1-{zeros}: exactly 0)" if zeros else ""
            ax.plot(range(1, len(norms) + 1), norms, marker=".", color=colors[i], label=label + note)
        for label in (k for k in nets if k.startswith("residual")):
            norms = flow[label]
            ax.plot(range(1, len(norms) + 1), norms, "--", color="tab:red", label=label)
        ax.set(yscale="log", xlabel="layer (1 = next to the input)",
               title=f"BatchNorm {'off' if bn == 'no BN' else 'on'}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("gradient norm of the layer's weights")
    fig.suptitle(title or "Gradient norms at initialisation, one batch of real digits", fontsize=10)
    return finish_figure(fig, name=name)


# --------------------------------------------------------------------------- the depth sweep


def final_loss(curve: list[float], fraction: float = PROTOCOL["final_fraction"]) -> float:
    """Mean of the last ``fraction`` of a per-step loss curve (at least one step)."""
    k = max(1, round(fraction * len(curve)))
    return float(np.mean(curve[-k:]))


def train_depth_net(kind: str, depth: int, seed: int, data: Data, epochs: int,
                    device: str | torch.device = "auto") -> dict:
    """Train one plain or residual net with the sweep's protocol; return its run record.

    Returns ``{kind, depth, seed, final_train_loss, test_acc, curve}``: ``curve`` is the
    loss of every SGD step, ``test_acc`` in [0, 1] is measured after recomputing the
    BatchNorm statistics over the training set (at a constant lr of 0.1 the running
    averages lag the weights). A diverged run gets ``final_train_loss`` None.
    """
    seed_everything(seed)
    model = BUILDERS[kind](depth, PROTOCOL["width"], batch_norm=PROTOCOL["batch_norm"])
    curve: list[float] = []
    history = fit(model, data, epochs=epochs, batch_size=PROTOCOL["batch_size"], lr=PROTOCOL["lr"],
                  momentum=PROTOCOL["momentum"], seed=seed, device=device, progress=False, step_losses=curve)
    dev = next(model.parameters()).device
    recompute_bn_stats(model, data.train_x.to(dev))
    test_acc = evaluate(model, data.test_x.to(dev), data.test_y.to(dev))
    ok = history.status == "completed"
    return dict(kind=kind, depth=depth, seed=seed, final_train_loss=final_loss(curve) if ok else None,
                test_acc=test_acc, curve=[float(f"{v:.4g}") for v in curve])


def sweep_data(profile) -> Data:
    """The data the sweep trains on in ``profile`` (the sample, possibly cut)."""
    cfg = settings(profile)["sweep"]
    return load_data(cfg["dataset"], train_limit=cfg["train_limit"], test_limit=cfg["test_limit"])


def run_sweep(profile, seeds: int | None = None, verbose: bool = True, device: str | torch.device = "auto") -> dict:
    """Train plain and residual nets at every depth of the profile, same budget, ``seeds`` seeds.

    Args:
        profile: a :class:`course_lib.profiles.Profile` or its name.
        seeds: how many seeds (0, 1, ...); default: the profile's.
        verbose: print one line per trained net.

    Returns a JSON-able dict: ``profile``, ``dataset``, ``source``, ``config`` (width,
    batch_norm, lr, batch_size, epochs), ``runs`` (one ``{kind, depth, seed,
    final_train_loss, test_acc, curve}`` per net), ``final_train_loss_definition`` and
    ``meta`` (what it was measured on: see :func:`course_lib.results.make_meta`).
    """
    from ..profiles import get_profile

    prof = profile if hasattr(profile, "pick") else get_profile(profile)
    cfg = settings(prof)["sweep"]
    n_seeds = cfg["seeds"] if seeds is None else int(seeds)
    if n_seeds < 1:
        raise ConfigError(f"seeds must be at least 1, got {seeds!r}. Fix: pass --seeds 1 or more.")
    torch.set_flush_denormal(True)  # denormals slow small CPU convs several-fold
    dev = pick_device(device, verbose=verbose)
    data = sweep_data(prof)
    if verbose:
        print(f"degradation sweep ({prof.name} profile): depths {list(cfg['depths'])}, {n_seeds} seed(s), "
              f"{cfg['epochs']} epoch(s) each on {data.info}")
    runs, t0 = [], time.perf_counter()
    for seed in range(n_seeds):
        for kind in BUILDERS:
            for depth in cfg["depths"]:
                t = time.perf_counter()
                run = train_depth_net(kind, depth, seed, data, cfg["epochs"], dev)
                runs.append(run)
                if verbose:
                    loss = run["final_train_loss"]
                    print(f"  {kind:>8}-{depth:<3d} seed {seed}: final training loss "
                          f"{'diverged' if loss is None else f'{loss:.3f}'}, test accuracy {run['test_acc']:.1%} "
                          f"({time.perf_counter() - t:.0f} s)", flush=True)
    config = {k: PROTOCOL[k] for k in ("width", "batch_norm", "lr", "batch_size")} | {"epochs": cfg["epochs"]}
    meta = make_meta(data.info, dev, prof, seconds=round(time.perf_counter() - t0, 1),
                     depths=list(cfg["depths"]), seeds=n_seeds, momentum=PROTOCOL["momentum"],
                     final_fraction=PROTOCOL["final_fraction"], recompute_bn_before_eval=True,
                     command=f"python -m course_lib degradation --profile {prof.name} --seeds {n_seeds}")
    return dict(profile=prof.name, dataset=data.info.dataset, source=data.info.source, config=config, runs=runs,
                final_train_loss_definition=FINAL_LOSS_DEFINITION.format(pct=100 * PROTOCOL["final_fraction"]),
                meta=meta)


def summarize(result: dict) -> list[dict]:
    """One row per (kind, depth): mean and spread (max - min over seeds) of loss and accuracy."""
    rows = []
    for kind in BUILDERS:
        for depth in sorted({r["depth"] for r in result["runs"] if r["kind"] == kind}):
            runs = [r for r in result["runs"] if r["kind"] == kind and r["depth"] == depth]
            losses = [r["final_train_loss"] for r in runs if r["final_train_loss"] is not None]
            accs = [r["test_acc"] for r in runs]
            rows.append(dict(kind=kind, depth=depth, seeds=len(runs), diverged=len(runs) - len(losses),
                             loss_mean=statistics.fmean(losses) if losses else float("nan"),
                             loss_spread=max(losses) - min(losses) if losses else float("nan"),
                             acc_mean=statistics.fmean(accs), acc_spread=max(accs) - min(accs)))
    return rows


def print_summary(result: dict) -> None:
    """The sweep as a table: final training loss and test accuracy per depth, plain vs residual."""
    rows = {(r["kind"], r["depth"]): r for r in summarize(result)}
    n = max(r["seeds"] for r in rows.values())
    spread = " (spread = max - min over seeds)" if n > 1 else ""
    print(f"final training loss and test accuracy, mean of {n} seed(s){spread}")
    print(f"{'depth':>5} | {'plain loss':>16} | {'residual loss':>16} | {'plain acc':>9} | {'residual acc':>12}")
    for depth in sorted({d for _, d in rows}):
        p, r = rows.get(("plain", depth)), rows.get(("residual", depth))

        def loss(row):
            return f"{row['loss_mean']:.3f} +- {row['loss_spread']:.3f}" if row else "-"

        print(f"{depth:>5} | {loss(p):>16} | {loss(r):>16} | {p['acc_mean'] if p else 0:>9.1%} | "
              f"{r['acc_mean'] if r else 0:>12.1%}")


def degradation_verdict(result: dict) -> dict:
    """Check, seed by seed, the two facts notebook 01 teaches.

    1. The deepest plain net ends with a higher training loss than the best shallower
       plain net, by more than the seed-to-seed spread (the larger of the two depths'
       max - min over seeds).
    2. The residual net at the deepest depth ends below the plain net at that depth.

    Returns ``{holds, deepest, reference_depth, spread, seeds: [{seed, plain_deepest,
    plain_reference, residual_deepest, deeper_plain_is_worse, residual_is_better}]}``.
    """
    def loss(kind, depth, seed):
        for r in result["runs"]:
            if (r["kind"], r["depth"], r["seed"]) == (kind, depth, seed):
                v = r["final_train_loss"]
                return float("inf") if v is None else v
        return float("nan")

    plain_depths = sorted({r["depth"] for r in result["runs"] if r["kind"] == "plain"})
    seeds = sorted({r["seed"] for r in result["runs"]})
    deepest, shallower = plain_depths[-1], plain_depths[:-1]
    means = {d: statistics.fmean(loss("plain", d, s) for s in seeds) for d in shallower}
    reference = min(means, key=means.get) if means else deepest

    def spread(depth):
        values = [loss("plain", depth, s) for s in seeds]
        return max(values) - min(values)

    gap = max(spread(deepest), spread(reference))
    per_seed = []
    for s in seeds:
        deep, ref, res = loss("plain", deepest, s), loss("plain", reference, s), loss("residual", deepest, s)
        per_seed.append(dict(seed=s, plain_deepest=deep, plain_reference=ref, residual_deepest=res,
                             deeper_plain_is_worse=bool(deep - ref > gap), residual_is_better=bool(res < deep)))
    holds = bool(per_seed) and bool(shallower) and all(
        p["deeper_plain_is_worse"] and p["residual_is_better"] for p in per_seed)
    return dict(holds=holds, deepest=deepest, reference_depth=reference, spread=gap, seeds=per_seed)


def print_verdict(result: dict) -> None:
    """The verdict of :func:`degradation_verdict` in words, one line per seed."""
    v = degradation_verdict(result)
    d, ref = v["deepest"], v["reference_depth"]
    spread = (f"seed-to-seed spread: {v['spread']:.3f}" if len(v["seeds"]) > 1
              else "one seed only, so no seed-to-seed spread to compare with")
    print(f"deepest plain net: plain-{d}; best shallower plain net: plain-{ref}; {spread}")
    for p in v["seeds"]:
        print(f"  seed {p['seed']}: plain-{d} {p['plain_deepest']:.3f} vs plain-{ref} {p['plain_reference']:.3f} "
              f"(worse by more than the spread: {p['deeper_plain_is_worse']}); "
              f"residual-{d} {p['residual_deepest']:.3f} (below plain-{d}: {p['residual_is_better']})")
    print("degradation shown for every seed" if v["holds"] else "degradation NOT shown for every seed")


def _smooth(curve: list[float], window: int) -> np.ndarray:
    window = max(1, min(window, len(curve)))
    return np.convolve(curve, np.ones(window) / window, mode="valid")


def plot_sweep_curves(result: dict, name: str | None = "01_curves", title: str = ""):
    """Training loss per SGD step (moving average, mean over seeds): plain | residual, one line per depth."""
    depths = sorted({r["depth"] for r in result["runs"]})
    colors = dict(zip(depths, plt.cm.viridis(np.linspace(0, 0.9, len(depths)))))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, kind in zip(axes, BUILDERS):
        for depth in depths:
            curves = [r["curve"] for r in result["runs"] if r["kind"] == kind and r["depth"] == depth]
            if not curves:
                continue
            steps = min(len(c) for c in curves)
            mean = np.mean([c[:steps] for c in curves], axis=0)
            window = max(1, steps // 15)
            ax.plot(np.arange(window, steps + 1), _smooth(mean, window), color=colors[depth], label=f"{kind}-{depth}")
        ax.set(yscale="log", xlabel="SGD step", title=f"{kind} nets")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training loss (moving average)")
    fig.suptitle(title or _label(result), fontsize=9)
    return finish_figure(fig, name=name)


def plot_sweep_depth(result: dict, name: str | None = "01_depth", title: str = ""):
    """Final training loss and test accuracy against depth, plain vs residual (dots: seeds, line: mean)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    styles = {"plain": ("tab:blue", "o"), "residual": ("tab:red", "s")}
    rows = summarize(result)
    for kind, (color, marker) in styles.items():
        runs = [r for r in result["runs"] if r["kind"] == kind and r["final_train_loss"] is not None]
        mine = [r for r in rows if r["kind"] == kind]
        ax_loss.scatter([r["depth"] for r in runs], [r["final_train_loss"] for r in runs], color=color,
                        marker=marker, alpha=0.4, s=18)
        ax_loss.plot([r["depth"] for r in mine], [r["loss_mean"] for r in mine], color=color, label=kind)
        ax_acc.scatter([r["depth"] for r in runs], [100 * r["test_acc"] for r in runs], color=color,
                       marker=marker, alpha=0.4, s=18)
        ax_acc.plot([r["depth"] for r in mine], [100 * r["acc_mean"] for r in mine], color=color, label=kind)
    ax_loss.set(xlabel="depth (layers)", ylabel="final training loss", yscale="log", title="training loss (lower is better)")
    ax_acc.set(xlabel="depth (layers)", ylabel="test accuracy (%)", title="test accuracy (higher is better)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(title or _label(result), fontsize=9)
    return finish_figure(fig, name=name)


def plot_compare_sweeps(results: dict[str, dict], name: str | None = "01_live_vs_saved"):
    """Final training loss against depth, one panel per labelled sweep (e.g. the live run and a saved one)."""
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, (label, result) in zip(axes[0], results.items()):
        rows = summarize(result)
        for kind, color, marker in (("plain", "tab:blue", "o"), ("residual", "tab:red", "s")):
            runs = [r for r in result["runs"] if r["kind"] == kind and r["final_train_loss"] is not None]
            ax.scatter([r["depth"] for r in runs], [r["final_train_loss"] for r in runs], color=color,
                       marker=marker, alpha=0.4, s=18)
            mine = [r for r in rows if r["kind"] == kind]
            ax.plot([r["depth"] for r in mine], [r["loss_mean"] for r in mine], color=color, marker=marker,
                    label=kind)
        seeds, meta = len({r["seed"] for r in result["runs"]}), result.get("meta", {})
        ax.set(yscale="log", xlabel="depth (layers)", ylabel="final training loss",
               title=f"{label}\n{result['dataset']} ({meta.get('n_train')} train), {result['config']['epochs']} "
                     f"epochs, {seeds} seed(s), {result['profile']} profile, {meta.get('device_name')}")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return finish_figure(fig, name=name)


def _label(result: dict) -> str:
    c, m = result["config"], result.get("meta", {})
    seeds = len({r["seed"] for r in result["runs"]})
    return (f"{result['dataset']} ({m.get('n_train')} train images), {c['epochs']} epochs, SGD lr {c['lr']}, "
            f"batch {c['batch_size']}, width {c['width']}, {seeds} seed(s); {m.get('device_name')}, "
            f"{result['profile']} profile, {m.get('date')}")


# --------------------------------------------------------------------------- can extra layers copy their input?

IDENTITY_KINDS = ("plain", "residual", "residual, f=0")


def identity_features(n: int, width: int = PROTOCOL["width"], seed: int = 0) -> Tensor:
    """What extra layers of a DepthNet receive: the stem's output on ``n`` real digits, N x width x 7 x 7 (>= 0)."""
    images = load_data("sample", verbose=False).train_x[:n]
    seed_everything(seed)
    stem = DepthNet(2, width).stem.train()
    with torch.no_grad():
        return stem(images)


def identity_stack(kind: str, layers: int, width: int = PROTOCOL["width"]) -> nn.Sequential:
    """``layers`` 3x3 conv+ReLU layers (with bias, no BatchNorm), in pairs.

    ``kind``: ``plain`` (no skips), ``residual`` (an identity skip around every pair,
    default init) or ``residual, f=0`` (the same, with each pair's second conv
    zero-initialised, so f(x) = 0 and the stack starts as the identity on inputs >= 0).
    """
    if kind not in IDENTITY_KINDS:
        raise ConfigError(f"unknown stack kind {kind!r}; valid: {', '.join(IDENTITY_KINDS)}")
    pairs = [ConvPair(width, batch_norm=False, residual=kind != "plain") for _ in range(layers // 2)]
    if kind == "residual, f=0":
        for pair in pairs:
            nn.init.zeros_(pair.conv2.weight)
            nn.init.zeros_(pair.conv2.bias)
    return nn.Sequential(*pairs)


def identity_experiment(layers=(2, 8, 16), steps: int = 100, n: int = 32, lr: float = 1e-3,
                        seed: int = 0, target_error: float = 0.01) -> dict:
    """Train stacks of extra layers to output their input; record the relative error per step.

    Each stack (see :func:`identity_stack`) is trained with Adam (a strong optimiser, to be
    fair to the plain stack) on ``||stack(x) - x||^2 / ||x||^2`` for real stem features x
    (N x 16 x 7 x 7). Returns ``{"layers", "steps", "target_error", "runs": [{kind, layers,
    errors (one per step, before each update), final_error, steps_to_target (None if never)}]}``.
    """
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
    print(f"{'extra layers':>12} | {'stack':<14} | {'error at step 0':>15} | {'final error':>11} | steps to target")
    for r in ident["runs"]:
        reached = "never" if r["steps_to_target"] is None else str(r["steps_to_target"])
        print(f"{r['layers']:>12} | {r['kind']:<14} | {r['errors'][0]:>15.2g} | {r['final_error']:>11.2g} | {reached}")


def plot_identity(ident: dict, name: str | None = "01_identity", title: str = ""):
    """Relative error per step (log scale): one panel per stack depth, plain vs residual."""
    fig, axes = plt.subplots(1, len(ident["layers"]), figsize=(4 * len(ident["layers"]), 3.6), sharey=True,
                             squeeze=False)
    styles = {"plain": ("tab:blue", "-"), "residual": ("tab:red", "-"), "residual, f=0": ("tab:red", ":")}
    positive = [e for r in ident["runs"] for e in r["errors"] if e > 0]
    floor = min(positive) / 10 if positive else 1e-6  # where exact zeros are drawn on the log axis
    for ax, n_layers in zip(axes[0], ident["layers"]):
        for r in (r for r in ident["runs"] if r["layers"] == n_layers):
            color, style = styles[r["kind"]]
            exact_zero = max(r["errors"]) == 0.0
            label = r["kind"] + (" (exactly 0, drawn at the bottom)" if exact_zero else "")
            ax.plot(np.maximum(r["errors"], floor), style, color=color, label=label,
                    lw=2.5 if exact_zero else 1.5)
        ax.axhline(ident["target_error"], color="gray", lw=0.8)
        ax.set(yscale="log", xlabel="Adam step", title=f"{n_layers} extra layers")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("relative error of copying x")
    axes[0][0].legend(fontsize=8)
    n = ident.get("n", "?")
    fig.suptitle(title or f"Learning the identity: stem features of {n} real digits (16 x 7 x 7), Adam lr "
                          f"{ident.get('lr')}", fontsize=10)
    return finish_figure(fig, name=name)
