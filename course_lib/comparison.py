"""The blog's experiment, reproduced honestly: BlogCNN vs BlogPlain vs BlogResNet (notebook 04).

:func:`run_compare` trains the three models with the blog's protocol (batch 64, SGD
lr 0.1, cross-entropy; 30 epochs in the ``full`` profile) for one or more seeds and
returns a JSON-able dict::

    {dataset, source, device, profile,
     protocol: {batch_size, lr, optimizer, epochs},
     runs: [{model, seed, params, history: [{epoch, train_loss, test_acc, seconds}]}],
     meta: {...}}           # course_lib.results.make_meta: what it ran on, and when

The rest of the module reads such a result (the blog's table, the seed spread, the
slow-start diagnosis), measures what the blog's missing shuffle does, and times the
speed options of the GPU section side by side. Plots save to ``figures/04_*.png``.
"""
from __future__ import annotations

import contextlib
import logging
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from .data import Data, blog_loader, load_data
from .errors import ConfigError
from .models import build_model, count_params
from .profiles import Profile, get_profile
from .results import describe, make_meta
from .training import fit, mps_available, pick_device, seed_everything

# The blog's protocol and what it claims at epoch 30 on full MNIST (train loss, test accuracy).
BLOG_PROTOCOL = {"batch_size": 64, "lr": 0.1, "optimizer": "SGD (momentum 0, weight decay 0)", "epochs": 30}
BLOG_CLAIMS = {
    "BlogCNN": {"epoch": 30, "train_loss": 0.2, "test_acc": 0.97},
    "BlogResNet": {"epoch": 30, "train_loss": 0.04, "test_acc": 0.995},
}
MODELS = {"BlogCNN": "blog-cnn", "BlogPlain": "blog-plain", "BlogResNet": "blog-resnet"}
CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over 10 classes: 2.303

# Sizes per profile. The protocol (batch 64, lr 0.1) never changes; only how much of it runs.
SETTINGS = {
    "smoke": dict(dataset="sample", train_limit=640, test_limit=320, epochs=2, seeds=1,
                  shuffle_epochs=1, speed_steps=5, speed_rounds=1, compile_on_cpu=False),
    "cpu": dict(dataset="mnist", train_limit=4000, test_limit=1000, epochs=9, seeds=3,
                shuffle_epochs=3, speed_steps=25, speed_rounds=3,
                compile_on_cpu=False),
    "full": dict(dataset="mnist", train_limit=None, test_limit=None, epochs=30, seeds=3,
                 shuffle_epochs=3, speed_steps=100, speed_rounds=3,
                 compile_on_cpu=True),
}


def settings_for(profile: Profile | str | None = None) -> dict:
    """This module's row of :data:`SETTINGS` for ``profile`` (a Profile, a name, or None = $COURSE_PROFILE)."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    return dict(prof.pick(SETTINGS))


def compare_data(profile: Profile | str | None = None, dataset: str | None = None, verbose: bool = True) -> Data:
    """The data :func:`run_compare` trains on in ``profile``: the profile's dataset and limits from :data:`SETTINGS`.

    An explicit ``dataset`` in the ``full`` profile is used whole. Images ``N x 1 x 28 x 28`` in [0, 1].
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = settings_for(prof)
    whole = dataset is not None and prof.name == "full"
    data = load_data(dataset or cfg["dataset"], train_limit=None if whole else cfg["train_limit"],
                     test_limit=None if whole else cfg["test_limit"], verbose=verbose)
    if verbose:
        print(f"data for the comparison: {data.info}")
    return data


def _seed_list(seeds: int | Sequence[int] | None, default: int) -> list[int]:
    if seeds is None:
        seeds = default
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be a positive number of seeds (or a list of seeds), got {seeds}")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out:
        raise ConfigError("seeds is an empty list; give at least one seed, e.g. seeds=[0]")
    return out


# --------------------------------------------------------------------------- the experiment


def run_compare(
    profile: Profile | str | None = None,
    dataset: str | None = None,
    seeds: int | Sequence[int] | None = None,
    device: str | torch.device = "auto",
    verbose: bool = True,
    *,
    models: Iterable[str] = tuple(MODELS),
    epochs: int | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    data: Data | None = None,
    checkpoint_dir: str | Path | None = None,
) -> dict:
    """Train BlogCNN, BlogPlain and BlogResNet with the blog's protocol; return the JSON-able result.

    Args:
        profile: ``smoke`` | ``cpu`` | ``full`` (or a Profile); sizes come from :data:`SETTINGS`.
        dataset: ``mnist`` | ``fashion`` | ``sample``; default the profile's. An explicit
            dataset in the ``full`` profile is used whole (no limits).
        seeds: how many seeds (0..K-1) or a list of seeds; default the profile's.
        device: ``auto`` | ``cpu`` | ``cuda[:N]`` | ``mps``.
        models: which of ``BlogCNN``, ``BlogPlain``, ``BlogResNet`` to train.
        epochs, train_limit, test_limit: override the profile's sizes (recorded in ``meta``).
        data: train on this :class:`Data` instead of loading (its ``info`` labels the result).
        checkpoint_dir: keep each run's weights there as ``MODEL_seedS.pt`` (for later evaluation).

    Returns:
        ``{dataset, source, device, profile, protocol, runs, meta}``; see the module docstring.
        Images are ``N x 1 x 28 x 28`` in [0, 1]; ``test_acc`` is in [0, 1].
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = settings_for(prof)
    models = list(models)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; run_compare trains {list(MODELS)}")
    seed_list = _seed_list(seeds, cfg["seeds"])
    n_epochs = cfg["epochs"] if epochs is None else epochs
    if not isinstance(n_epochs, int) or isinstance(n_epochs, bool) or n_epochs < 1:
        raise ConfigError(f"epochs must be a whole number >= 1, got {n_epochs!r} (the blog's protocol: 30)")
    if data is None:
        data = compare_data(prof, dataset, verbose=False)
    if train_limit is not None or test_limit is not None:
        data = data.subset(train_limit, test_limit)
    dev = pick_device(device, verbose=False)
    torch.set_flush_denormal(True)  # as setup() does: denormals slow the no-BatchNorm nets on CPU
    info = data.info
    if verbose:
        print(f"[compare] {info} | device {dev} | profile {prof.name} | "
              f"{len(seed_list)} seed(s) x {len(models)} models x {n_epochs} epochs")
        if prof.name == "full" and not info.full:
            print("[compare] NOTE: this is the blog's protocol on a smaller dataset, not on full MNIST.")
    on_device = data.to(dev)
    runs, statuses = [], []
    for seed in seed_list:
        for name in models:
            seed_everything(seed)
            model = build_model(MODELS[name])
            ckpt = Path(checkpoint_dir) / f"{name}_seed{seed}.pt" if checkpoint_dir else None
            history = fit(model, on_device, epochs=n_epochs, batch_size=BLOG_PROTOCOL["batch_size"],
                          lr=BLOG_PROTOCOL["lr"], seed=seed, device=dev, progress=False, checkpoint=ckpt)
            records = [{k: r[k] for k in ("epoch", "train_loss", "test_acc", "seconds")} for r in history.records]
            runs.append({"model": name, "seed": seed, "params": count_params(model), "history": records})
            statuses.append({"model": name, "seed": seed, "status": history.status, "message": history.message})
            if verbose:
                last = records[-1] if records else {}
                print(f"[compare] {name:<10} seed {seed}: " + (
                    f"epoch {last['epoch']}: train loss {last['train_loss']:.4f}, test acc {last['test_acc']:.2%}, "
                    f"{sum(r['seconds'] for r in records):.0f} s training" if last else "no epoch completed")
                    + ("" if history.status == "completed" else f" ({history.status})"))
    protocol = dict(BLOG_PROTOCOL, epochs=n_epochs)
    meta = make_meta(info, dev, prof, seeds=seed_list, train_limit=info.n_train, test_limit=info.n_test,
                     note=info.note, run_status=statuses, shuffle=True,
                     blog_protocol_exact=bool(info.full and info.dataset == "mnist" and n_epochs == 30))
    # the offline fallback is labelled "mnist" by load_data; the result says plainly it is the sample
    dataset_label = "sample" if info.dataset == "mnist" and info.source.startswith("sample") else info.dataset
    return {"dataset": dataset_label, "source": info.source, "device": str(dev), "profile": prof.name,
            "protocol": protocol, "runs": runs, "meta": meta}


# --------------------------------------------------------------------------- reading a result


def table_epochs(n_epochs: int) -> list[int]:
    """The blog's table rows (epochs 10, 20, 30), or the same fractions (1/3, 2/3, 1) of a shorter run."""
    if n_epochs < 1:
        return []
    return sorted({max(1, round(n_epochs * f)) for f in (1 / 3, 2 / 3, 1)})


def _by_model(result: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for run in result["runs"]:
        out.setdefault(run["model"], []).append(run)
    return out


def _at(run: dict, epoch: int) -> dict | None:
    return next((r for r in run["history"] if r["epoch"] == epoch), None)


def blog_table(result: dict) -> list[dict]:
    """Rows ``{model, epoch, train_loss, test_acc, acc_min, acc_max, n_seeds, blog_train_loss, blog_test_acc}``.

    Our numbers are means over seeds at the blog's table epochs (see :func:`table_epochs`);
    the blog's claims sit on its epoch-30 row (None elsewhere: it gave no others).
    """
    n_epochs = result["protocol"]["epochs"]
    rows = []
    for model, runs in _by_model(result).items():
        for epoch in table_epochs(n_epochs):
            recs = [r for r in (_at(run, epoch) for run in runs) if r is not None]
            if not recs:
                continue
            accs = [r["test_acc"] for r in recs]
            claim = BLOG_CLAIMS.get(model, {})
            on_claim_row = epoch == n_epochs and n_epochs == claim.get("epoch")
            rows.append({"model": model, "epoch": epoch, "n_seeds": len(recs),
                         "train_loss": statistics.fmean(r["train_loss"] for r in recs),
                         "test_acc": statistics.fmean(accs), "acc_min": min(accs), "acc_max": max(accs),
                         "blog_train_loss": claim.get("train_loss") if on_claim_row else None,
                         "blog_test_acc": claim.get("test_acc") if on_claim_row else None})
    return rows


def _loss(x: float) -> str:
    return f"{x:.4f}" if x >= 1e-3 else f"{x:.1e}"


def _acc_spread(mean: float, low: float, high: float, n: int) -> str:
    return f"{mean:.2%} (1 seed)" if n == 1 else f"{mean:.2%} ({low:.2%}-{high:.2%}, {n} seeds)"


def format_blog_table(result: dict) -> str:
    """The blog's table as text: our mean (min-max over seeds) next to the blog's claim, with a label line."""
    n = result["protocol"]["epochs"]
    lines = [f"measured on: {describe(result)}",
             f"{'model':<11}{'epoch':>6}{'train loss':>12}{'test acc (min-max over seeds)':>34}"
             f"{'blog loss':>11}{'blog acc':>10}"]
    for r in blog_table(result):
        spread = _acc_spread(r["test_acc"], r["acc_min"], r["acc_max"], r["n_seeds"])
        blog_loss = f"{r['blog_train_loss']:.2f}" if r["blog_train_loss"] is not None else "-"
        blog_acc = f"{r['blog_test_acc']:.1%}" if r["blog_test_acc"] is not None else "-"
        lines.append(f"{r['model']:<11}{r['epoch']:>6}{_loss(r['train_loss']):>12}{spread:>34}{blog_loss:>11}{blog_acc:>10}")
    if n == 30 and not (result["meta"].get("full_data") and result["dataset"] == "mnist"):
        lines.append("(the blog's numbers are for full MNIST, 60,000 train / 10,000 test images; ours are for the data "
                     "named on the first line, so they are side by side, not like for like)")
    if n != 30:
        lines.append(f"(a {n}-epoch run: rows are at 1/3, 2/3 and all of it; the blog's claims are for epoch 30 "
                     f"on full MNIST, so they are not shown next to shorter runs)")
    return "\n".join(lines)


def escape_epoch(train_losses: Sequence[float], threshold: float = 2.0) -> int | None:
    """First epoch (1-based) whose mean training loss is below ``threshold``; None if it never got there.

    A net that has not learned anything sits at the chance loss ln 10 = 2.303; the
    epochs before it drops below 2.0 are its "stall".
    """
    return next((i + 1 for i, loss in enumerate(train_losses) if loss < threshold), None)


def seed_spread(result: dict) -> list[dict]:
    """Per model: final test accuracy and train loss over seeds (mean, min, max, std) and the stall per seed."""
    rows = []
    for model, runs in _by_model(result).items():
        finals = [run["history"][-1] for run in runs if run["history"]]
        accs = [f["test_acc"] for f in finals]
        losses = [f["train_loss"] for f in finals]
        rows.append({"model": model, "seeds": [run["seed"] for run in runs],
                     "epoch": finals[0]["epoch"] if finals else 0,
                     "acc_mean": statistics.fmean(accs), "acc_min": min(accs), "acc_max": max(accs),
                     "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                     "loss_mean": statistics.fmean(losses), "loss_min": min(losses), "loss_max": max(losses),
                     "escape_epochs": [escape_epoch([r["train_loss"] for r in run["history"]]) for run in runs]})
    return rows


def format_seed_spread(result: dict) -> str:
    """:func:`seed_spread` as text, with a label line."""
    lines = [f"measured on: {describe(result)}",
             f"{'model':<11}{'seeds':>6}{'final test acc: mean (min-max), std':>38}{'final loss: min-max':>22}"
             f"{'  first epoch with loss < 2.0, per seed'}"]
    for r in seed_spread(result):
        acc = f"{r['acc_mean']:.2%} ({r['acc_min']:.2%}-{r['acc_max']:.2%}), {100 * r['acc_std']:.2f} pts"
        esc = ", ".join("never" if e is None else str(e) for e in r["escape_epochs"])
        loss = f"{_loss(r['loss_min'])}-{_loss(r['loss_max'])}"
        lines.append(f"{r['model']:<11}{len(r['seeds']):>6}{acc:>38}{loss:>22}  {esc}")
    return "\n".join(lines)


def diagnose_gap(result: dict, plain: str = "BlogPlain", residual: str = "BlogResNet") -> list[dict]:
    """Slow start or degradation? Per seed, compare the plain net's curve to the residual net's.

    The plain net's stall is the epochs before its loss drops below 2.0. Shift its
    curve left by the stall and compare it with the residual net's curve over the
    same number of epochs since it started learning:

    * ``shifted_ratio`` = plain loss at (stall + k) / residual loss at k, for the last k
      both runs have. Near 1 (or below) means the plain net learns as fast once it starts:
      a **slow start**. Well above 1 means it also learns worse once started, the
      signature He et al. call **degradation** (for a deeper plain net vs a shallower one).
    * ``final_ratio`` = plain / residual training loss at the last epoch.
    """
    runs = _by_model(result)
    out = []
    for p_run in runs.get(plain, []):
        r_run = next((r for r in runs.get(residual, []) if r["seed"] == p_run["seed"]), None)
        if r_run is None or not p_run["history"] or not r_run["history"]:
            continue
        p_loss = [r["train_loss"] for r in p_run["history"]]
        r_loss = [r["train_loss"] for r in r_run["history"]]
        p_esc, r_esc = escape_epoch(p_loss), escape_epoch(r_loss)
        row = {"seed": p_run["seed"], "plain_escape": p_esc, "residual_escape": r_esc,
               "plain_final_loss": p_loss[-1], "residual_final_loss": r_loss[-1],
               "final_ratio": p_loss[-1] / r_loss[-1], "shifted_ratio": None, "compared_epochs": 0}
        if p_esc is not None and r_esc is not None:
            k = min(len(p_loss) - p_esc, len(r_loss) - r_esc)  # epochs of learning both runs have
            if k >= 1:
                row["shifted_ratio"] = p_loss[p_esc - 1 + k] / r_loss[r_esc - 1 + k]
                row["compared_epochs"] = k
        row["reading"] = _reading(row)
        out.append(row)
    return out


def _reading(row: dict) -> str:
    if row["plain_escape"] is None:
        return "the plain net never left the chance loss in this run: a stall; too short a run to tell more"
    if row["shifted_ratio"] is None:
        return "the plain net started learning too late in this run to compare its learning speed"
    if row["shifted_ratio"] <= 1.5:
        return "slow start: once it leaves the plateau, the plain net learns as fast as the ResNet"
    return "learns slower even after its start: beyond a slow start (degradation-like) in this run"


def format_diagnosis(result: dict) -> str:
    """:func:`diagnose_gap` as text, one line per seed, with a label line."""
    lines = [f"measured on: {describe(result)}"]
    for d in diagnose_gap(result):
        shifted = (f"{d['shifted_ratio']:.2f} over {d['compared_epochs']} epoch(s) of learning"
                   if d["shifted_ratio"] is not None else "n/a")
        lines.append(f"seed {d['seed']}: loss < 2.0 from epoch {d['plain_escape'] or 'never'} (plain) vs "
                     f"{d['residual_escape'] or 'never'} (ResNet); final loss ratio plain/ResNet {d['final_ratio']:.2f}; "
                     f"shifted ratio {shifted}\n   -> {d['reading']}")
    return "\n".join(lines)


def signal_at_init(data: Data, models: Iterable[str] = tuple(MODELS), n_images: int = 256, seed: int = 0) -> list[dict]:
    """Why a plain stack stalls: at initialisation, how much does the output depend on the input?

    For each model, built with ``seed``, one forward/backward pass on ``n_images`` training images
    (``N x 1 x 28 x 28``) gives ``input_dependence`` (std of each logit across the images, averaged
    over the 10 logits: near 0 means every image gets the same output) and ``first_grad`` /
    ``last_grad``, the gradient norms of the first and last layer's weights.
    """
    from torch import nn

    idx = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))[:n_images]
    x, y = data.train_x.cpu()[idx], data.train_y.cpu()[idx]  # a random draw: stored data may be sorted by label
    rows = []
    for name in models:
        seed_everything(seed)
        model = build_model(MODELS[name])
        logits = model(x)
        F.cross_entropy(logits, y).backward()
        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        rows.append({"model": name, "layers": len(layers), "input_dependence": logits.detach().std(0).mean().item(),
                     "first_grad": layers[0].weight.grad.norm().item(),
                     "last_grad": layers[-1].weight.grad.norm().item()})
    return rows


def format_signal(rows: list[dict]) -> str:
    """:func:`signal_at_init` as a small table."""
    lines = [f"{'model':<11}{'weight layers':>14}{'logits vary across images (std)':>34}"
             f"{'grad norm, first layer':>24}{'last layer':>12}"]
    for r in rows:
        lines.append(f"{r['model']:<11}{r['layers']:>14}{r['input_dependence']:>34.1e}{r['first_grad']:>24.1e}"
                     f"{r['last_grad']:>12.1e}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the missing shuffle


def order_report(labels: torch.Tensor, batch_size: int = 64) -> dict:
    """How sorted a training order is. ``labels``: (N,) int64, in the order training will see them.

    Returns ``first_labels`` (the first 20), ``mean_run`` (mean length of runs of equal
    consecutive labels: about 1.1 for a random order of 10 classes, N/10 for sorted data),
    ``single_class_batches`` (share of batches holding one class) and ``classes_per_batch``.
    """
    y = labels.cpu()
    changes = int((y[1:] != y[:-1]).sum()) if len(y) > 1 else 0
    batches = [y[i:i + batch_size] for i in range(0, len(y), batch_size)]
    counts = [len(torch.unique(b)) for b in batches]
    return {"first_labels": y[:20].tolist(), "mean_run": len(y) / (changes + 1),
            "single_class_batches": sum(c == 1 for c in counts) / max(len(counts), 1),
            "classes_per_batch": statistics.fmean(counts) if counts else 0.0}


def reorder(data: Data, order: str, seed: int = 0) -> Data:
    """``data`` with its training split put in a fixed ``order``: ``random`` (one seeded
    permutation) or ``sorted`` (by label, stable). ``fit(shuffle=False)`` then sees exactly this order every epoch."""
    if order == "random":
        idx = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))
    elif order == "sorted":
        idx = torch.sort(data.train_y.cpu(), stable=True).indices
    else:
        raise ConfigError(f"unknown order {order!r}; valid: 'random', 'sorted'")
    idx = idx.to(data.train_y.device)
    return replace(data, train_x=data.train_x[idx], train_y=data.train_y[idx])


# name -> (order of the training split, reshuffle every epoch?)
SHUFFLE_CONDITIONS = {
    "shuffled every epoch (course default)": ("random", True),
    "fixed unsorted order, never shuffled (the blog on MNIST's files)": ("random", False),
    "sorted by label, never shuffled": ("sorted", False),
}


def shuffle_experiment(data: Data, epochs: int, model: str = "BlogResNet", seed: int = 0,
                       device: str | torch.device = "auto", profile: Profile | str | None = None,
                       verbose: bool = True) -> dict:
    """Train ``model`` under each of :data:`SHUFFLE_CONDITIONS` with the blog's protocol.

    Returns ``{conditions: [{name, order, shuffle, order_report, history, predicted_counts}], meta}``;
    ``predicted_counts[c]`` is how many test images the trained model calls class ``c``.
    """
    dev = pick_device(device, verbose=False)
    torch.set_flush_denormal(True)
    out = []
    for name, (order, shuffle) in SHUFFLE_CONDITIONS.items():
        ordered = reorder(data, order, seed)
        seed_everything(seed)
        net = build_model(MODELS[model])
        history = fit(net, ordered, epochs=epochs, batch_size=BLOG_PROTOCOL["batch_size"], lr=BLOG_PROTOCOL["lr"],
                      seed=seed, shuffle=shuffle, device=dev, progress=False)
        with torch.no_grad():
            net.eval()
            preds = torch.cat([net(ordered.test_x[i:i + 1000].to(dev)).argmax(1).cpu()
                               for i in range(0, len(ordered.test_y), 1000)])
        counts = torch.bincount(preds, minlength=10).tolist()
        records = [{k: r[k] for k in ("epoch", "train_loss", "test_acc", "seconds")} for r in history.records]
        out.append({"name": name, "order": order, "shuffle": shuffle, "order_report": order_report(ordered.train_y),
                    "history": records, "predicted_counts": counts})
        if verbose and records:
            print(f"[shuffle] {name}: epoch {records[-1]['epoch']} loss {records[-1]['train_loss']:.4f}, "
                  f"test acc {records[-1]['test_acc']:.2%}")
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    return {"model": model, "conditions": out, "meta": make_meta(data.info, dev, prof, epochs=epochs, seed=seed)}


def format_shuffle(result: dict) -> str:
    """The shuffle experiment as text: order statistics, final loss/accuracy, what the model predicts."""
    lines = [f"{result['model']}, {result['meta']['epochs']} epochs, seed {result['meta']['seed']}; "
             f"measured on: {describe(result)}"]
    for c in result["conditions"]:
        rep, last = c["order_report"], c["history"][-1]
        top = max(range(10), key=lambda k: c["predicted_counts"][k])
        share = c["predicted_counts"][top] / max(sum(c["predicted_counts"]), 1)
        lines.append(f"{c['name']}\n   order: mean run of equal labels {rep['mean_run']:.1f}, "
                     f"{rep['single_class_batches']:.0%} of batches hold one class | final loss "
                     f"{last['train_loss']:.4f}, test acc {last['test_acc']:.2%} | {share:.0%} of test images "
                     f"predicted as {top}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the GPU section: devices and speed


def list_devices() -> list[dict]:
    """Every device torch can train on here: ``[{device, name}]``, the CPU first, then CUDA GPUs, then MPS."""
    import platform

    devices = [{"device": "cpu", "name": f"{platform.processor() or platform.machine()}, "
                                         f"{torch.get_num_threads()} threads"}]
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        devices.append({"device": f"cuda:{i}", "name": torch.cuda.get_device_name(i)})
    if mps_available():
        devices.append({"device": "mps", "name": "Apple GPU (MPS)"})
    return devices


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


@contextlib.contextmanager
def _quiet_compiler_logs():
    # On a CPU-only machine inductor logs a line with a local path about CUDA_HOME; it is noise here.
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class _Trainer:
    """One model, optimizer and batch source, trained ``steps`` steps at a time; for side-by-side timing."""

    def __init__(self, model_name: str, data: Data, dev: torch.device, batch_size: int, pipeline: str = "memory",
                 amp: bool = False, channels_last: bool = False, cudnn_benchmark: bool = False,
                 compile: bool = False, seed: int = 0):
        seed_everything(seed)
        self.dev, self.channels_last, self.cudnn_benchmark = dev, channels_last, cudnn_benchmark
        self.model = build_model(MODELS.get(model_name, model_name)).to(dev)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.step_model = torch.compile(self.model) if compile else self.model
        self.opt = torch.optim.SGD(self.model.parameters(), lr=BLOG_PROTOCOL["lr"])
        self.dtype = None
        if amp:
            bf16 = dev.type == "cpu" or (dev.type == "cuda" and torch.cuda.is_bf16_supported())
            self.dtype = torch.bfloat16 if bf16 else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 and dev.type == "cuda" else None
        self.batch_size, self.pipeline = batch_size, pipeline
        if pipeline == "memory":
            self.x, self.y = data.train_x.to(dev), data.train_y.to(dev)
            self.gen = torch.Generator(device="cpu").manual_seed(seed)
        else:
            self.loader = blog_loader(data, batch_size, shuffle=True, pin_memory=dev.type == "cuda")
            self.it = iter(self.loader)

    def _batch(self):
        if self.pipeline == "memory":
            idx = torch.randint(len(self.y), (self.batch_size,), generator=self.gen).to(self.dev, non_blocking=True)
            return self.x[idx], self.y[idx]
        try:
            xb, yb = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            xb, yb = next(self.it)
        return xb.to(self.dev, non_blocking=True), yb.to(self.dev, non_blocking=True)

    def run(self, steps: int) -> float:
        """Train ``steps`` steps; return images per second (timed between device syncs)."""
        if self.dev.type == "cuda":
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
        _sync(self.dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            xb, yb = self._batch()
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            ctx = torch.autocast(self.dev.type, dtype=self.dtype) if self.dtype else contextlib.nullcontext()
            with ctx:
                loss = F.cross_entropy(self.step_model(xb), yb)
            self.opt.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
            else:
                loss.backward()
                self.opt.step()
        _sync(self.dev)
        return steps * self.batch_size / (time.perf_counter() - t0)


def device_speeds(data: Data, model: str = "BlogResNet", steps: int = 25, batch_size: int = 64,
                  verbose: bool = True) -> list[dict]:
    """Training images/s of the same model on every device present (data kept on the device).

    Returns ``[{device, name, images_per_s}]``; ``data`` is any :class:`Data` (N x 1 x 28 x 28).
    """
    rows = []
    for d in list_devices():
        trainer = _Trainer(model, data, torch.device(d["device"]), batch_size)
        trainer.run(max(2, steps // 5))  # warm-up: allocator, kernels, cuDNN heuristics
        rows.append(dict(d, images_per_s=trainer.run(steps)))
        if verbose:
            print(f"[speed] {model} training on {d['device']} ({d['name']}): {rows[-1]['images_per_s']:,.0f} images/s")
    return rows


# name -> (what it compares, the baseline's options, the variant's options, device types where it applies)
SPEED_OPTIONS = {
    "data on device vs DataLoader": ("batches sliced from device tensors vs the blog's dataset+ToTensor+DataLoader",
                                     {"pipeline": "blog"}, {"pipeline": "memory"}, ("cpu", "cuda", "mps")),
    "AMP (mixed precision)": ("bf16 autocast (fp16 + GradScaler where bf16 is missing) vs float32",
                              {}, {"amp": True}, ("cuda", "mps")),
    "channels_last": ("NHWC memory layout vs NCHW", {}, {"channels_last": True}, ("cpu", "cuda")),
    "cudnn.benchmark": ("cuDNN autotuned convolutions vs its heuristics", {}, {"cudnn_benchmark": True}, ("cuda",)),
    "torch.compile": ("compiled model vs eager (compile time not counted)", {}, {"compile": True}, ("cpu", "cuda")),
}


def _skip_reason(option: str, dev: torch.device, cfg: dict) -> str | None:
    types = SPEED_OPTIONS[option][3]
    if dev.type not in types:
        return f"needs a {' or '.join(t.upper() for t in types if t != 'cpu')} device; this one is {dev.type}"
    if option == "torch.compile" and dev.type == "cpu":
        import shutil

        if not cfg.get("compile_on_cpu"):
            return ("on a CPU, compiling takes minutes of C++ code generation, more than this profile's "
                    "budget (run the full profile, or a GPU, to measure it)")
        if not (shutil.which("g++") or shutil.which("clang++")):
            return "on a CPU, torch.compile needs a C++ compiler (g++ or clang++), and none was found"
    return None


def speed_ratios(data: Data, device: str | torch.device = "auto", profile: Profile | str | None = None,
                 model: str = "BlogResNet", options: Iterable[str] = tuple(SPEED_OPTIONS),
                 verbose: bool = True) -> dict:
    """Each speed option measured side by side with its baseline on ``device``, as a ratio.

    Baseline and variant are trained alternately, ``speed_rounds`` x ``speed_steps`` steps
    each (from :data:`SETTINGS`), after a warm-up; the ratio is variant / baseline of the
    median images/s (> 1: the option is faster). Options the device cannot use are
    skipped with a printed line; an option that fails (e.g. no compiler) is reported, never raised.

    Returns ``{rows: [{option, what, status, baseline_img_s, variant_img_s, ratio, note}], meta}``.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = settings_for(prof)
    dev = pick_device(device, verbose=False)
    steps, rounds = cfg["speed_steps"], cfg["speed_rounds"]
    rows = []
    for option in options:
        what, base_opts, var_opts, _ = SPEED_OPTIONS[option]
        row = {"option": option, "what": what, "status": "skipped", "baseline_img_s": None,
               "variant_img_s": None, "ratio": None, "note": _skip_reason(option, dev, cfg) or ""}
        if not row["note"]:
            try:
                with _quiet_compiler_logs():
                    base = _Trainer(model, data, dev, 64, **base_opts)
                    var = _Trainer(model, data, dev, 64, **var_opts)
                    t0 = time.perf_counter()
                    var.run(3)  # warm-up; for torch.compile this is the compilation
                    warm = time.perf_counter() - t0
                    base.run(3)
                    b_speed, v_speed = [], []
                    for _ in range(rounds):
                        b_speed.append(base.run(steps))
                        v_speed.append(var.run(steps))
                b, v = statistics.median(b_speed), statistics.median(v_speed)
                row.update(status="measured", baseline_img_s=b, variant_img_s=v, ratio=v / b,
                           note=f"first steps took {warm:.1f} s" if option == "torch.compile" else "")
            except Exception as err:  # noqa: BLE001 - a speed option that fails here is a finding, not a crash
                row.update(status="failed", note=f"{type(err).__name__}: {str(err).splitlines()[0][:160]}")
            finally:
                if dev.type == "cuda":
                    torch.backends.cudnn.benchmark = False
        if verbose:
            print(_speed_line(row, dev))
        rows.append(row)
    meta = make_meta(data.info, dev, prof, model=model, steps=steps, rounds=rounds, batch_size=64)
    return {"rows": rows, "meta": meta}


def _speed_line(row: dict, dev: torch.device) -> str:
    if row["status"] == "measured":
        extra = f"; {row['note']}" if row["note"] else ""
        return (f"[speed] {row['option']:<29} on {dev.type}: x{row['ratio']:.2f} "
                f"({row['variant_img_s']:,.0f} vs {row['baseline_img_s']:,.0f} images/s{extra})")
    return f"[speed] {row['option']:<29} on {dev.type}: {row['status'].upper()} -- {row['note']}"


# --------------------------------------------------------------------------- figures

_COLORS = {"BlogCNN": "tab:orange", "BlogPlain": "tab:red", "BlogResNet": "tab:blue"}
_STYLES = {"BlogCNN": "--"}  # dashed, so it stays visible where it overlaps the plain twin at the chance loss


def plot_curves(result: dict, name: str | None = "04_curves", title: str = ""):
    """Training loss (log) and test accuracy per epoch: one colour per model, one line per seed.

    Saved as ``figures/NAME.png`` (when ``name``); the title says what it was measured on.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from .plots import finish_figure

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for model, runs in _by_model(result).items():
        for i, run in enumerate(runs):
            epochs = [r["epoch"] for r in run["history"]]
            kw = dict(color=_COLORS.get(model), alpha=0.9 if i == 0 else 0.55, lw=1.5, marker=".",
                      ls=_STYLES.get(model, "-"),
                      label=f"{model} ({len(runs)} seed{'s' * (len(runs) > 1)})" if i == 0 else None)
            ax_loss.plot(epochs, [r["train_loss"] for r in run["history"]], **kw)
            ax_acc.plot(epochs, [100 * r["test_acc"] for r in run["history"]], **kw)
    ax_loss.axhline(CHANCE_LOSS, color="gray", ls=":", lw=1, label="chance loss ln 10")
    ax_loss.set(xlabel="epoch", ylabel="mean training loss", yscale="log", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy", ylim=(0, 100))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title or describe(result), fontsize=9)
    return finish_figure(fig, name=name)


def plot_claims(result: dict, name: str | None = "04_blog_claims"):
    """Final train loss and test accuracy per model (mean, min-max over seeds) next to the blog's claims."""
    import matplotlib.pyplot as plt

    from .plots import finish_figure

    spread = seed_spread(result)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, r in enumerate(spread):
        color = _COLORS.get(r["model"])
        ax_loss.bar(i, r["loss_mean"], color=color, alpha=0.8)
        ax_loss.errorbar(i, r["loss_mean"], [[r["loss_mean"] - r["loss_min"]], [r["loss_max"] - r["loss_mean"]]],
                         color="black", capsize=4)
        ax_acc.bar(i, 100 * r["acc_mean"], color=color, alpha=0.8)
        ax_acc.errorbar(i, 100 * r["acc_mean"], [[100 * (r["acc_mean"] - r["acc_min"])],
                                                 [100 * (r["acc_max"] - r["acc_mean"])]], color="black", capsize=4)
        claim = BLOG_CLAIMS.get(r["model"])
        if claim:
            ax_loss.plot(i, claim["train_loss"], "k*", ms=12, label="blog's claim (epoch 30, MNIST)" if i == 0 else None)
            ax_acc.plot(i, 100 * claim["test_acc"], "k*", ms=12, label="blog's claim (epoch 30, MNIST)" if i == 0 else None)
    epoch = spread[0]["epoch"] if spread else 0
    for ax, label in ((ax_loss, f"train loss at epoch {epoch}"), (ax_acc, f"test accuracy (%) at epoch {epoch}")):
        ax.set_xticks(range(len(spread)), [r["model"] for r in spread])
        ax.set(ylabel=label)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    ax_loss.set_yscale("log")
    fig.suptitle(f"ours (bars: mean, whiskers: min-max over seeds) vs the blog's claims -- {describe(result)}", fontsize=8)
    return finish_figure(fig, name=name)


def plot_shuffle(result: dict, name: str | None = "04_shuffle"):
    """Test accuracy per epoch for each shuffle condition, and what each trained model predicts."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from .plots import finish_figure

    fig, (ax_acc, ax_pred) = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / max(len(result["conditions"]), 1)
    for i, c in enumerate(result["conditions"]):
        ax_acc.plot([r["epoch"] for r in c["history"]], [100 * r["test_acc"] for r in c["history"]],
                    marker="o", label=c["name"])
        ax_pred.bar([k + (i - 1) * width for k in range(10)], c["predicted_counts"], width=width, label=c["name"])
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 100), title=f"{result['model']}: test accuracy")
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_pred.set(xlabel="predicted class", ylabel="test images", xticks=range(10), title="what the trained model predicts")
    for ax in (ax_acc, ax_pred):
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=7)
    fig.suptitle(describe(result), fontsize=8)
    return finish_figure(fig, name=name)


def plot_speed(result: dict, name: str | None = "04_speed"):
    """Speed-up of each option over its baseline (bars; skipped options are listed as such)."""
    import matplotlib.pyplot as plt

    from .plots import finish_figure

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.55 * len(rows)))
    for i, r in enumerate(rows):
        if r["status"] == "measured":
            ax.barh(i, r["ratio"], color="tab:green" if r["ratio"] >= 1 else "tab:red", alpha=0.8)
            ax.text(r["ratio"], i, f" x{r['ratio']:.2f}", va="center", fontsize=8)
        else:
            ax.text(1.0, i, f"  {r['status']} on {result['meta']['device']}", va="center", fontsize=8, color="gray")
    ax.axvline(1.0, color="black", lw=1)
    ax.set_yticks(range(len(rows)), [r["option"] for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # top to bottom, room for the rows that have no bar
    measured = [r["ratio"] for r in rows if r["ratio"]]
    ax.set_xlim(0, max(measured + [1.0]) * 1.3)
    ax.set(xlabel="speed of the option / speed of its baseline (training images/s)")
    ax.set_title(f"{result['meta']['model']}, {describe(result)}", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return finish_figure(fig, name=name)
