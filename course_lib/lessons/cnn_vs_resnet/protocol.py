"""The blog's experiment, reproduced honestly: BlogCNN vs BlogPlain vs BlogResNet (notebook 04).

:func:`run_compare` trains the three models with the blog's protocol (batch 64, SGD
lr 0.1, cross-entropy; 30 epochs in the ``full`` profile) for one or more seeds and
returns a JSON-able dict::

    {dataset, source, device, profile,
     protocol: {batch_size, lr, optimizer, epochs},
     runs: [{model, seed, params, history: [{epoch, train_loss, test_acc, seconds}]}],
     meta: {...}}           # course_lib.results.make_meta: what it ran on, and when

:func:`combine` puts the runs of several results side by side, and :func:`signal_at_init`
shows why a plain stack stalls. Reading a result against the blog's claims (the spread over
seeds, the stalls in SGD steps, the course's rule for a real difference, the verdicts) is
:mod:`~course_lib.lessons.cnn_vs_resnet.claims`, its figures :mod:`~course_lib.lessons.cnn_vs_resnet.figures`;
the missing shuffle is measured in :mod:`~course_lib.lessons.cnn_vs_resnet.shuffling`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from ...data import Data, load_data
from ...errors import ConfigError
from ...models import MODEL_REGISTRY, build_model, count_params
from ...profiles import Profile, as_profile, settings
from ...results import make_meta
from ...training import Protocol, SpeedOptions, fit, pick_device, seed_everything

# The blog's protocol (its claims are in course_lib.lessons.cnn_vs_resnet.claims).
BLOG_PROTOCOL = {"batch_size": 64, "lr": 0.1, "optimizer": "SGD (momentum 0, weight decay 0)", "epochs": 30}


def blog_protocol(epochs: int, seed: int, shuffle: bool = True) -> Protocol:
    """:data:`BLOG_PROTOCOL` as the :class:`course_lib.training.Protocol` that ``fit`` takes (SGD, no momentum,
    no weight decay), for ``epochs`` epochs whose shuffles are seeded by ``seed``."""
    return Protocol(epochs=epochs, batch_size=BLOG_PROTOCOL["batch_size"], lr=BLOG_PROTOCOL["lr"], momentum=0.0,
                    weight_decay=0.0, seed=seed, shuffle=shuffle)

# Views of course_lib.models.MODEL_REGISTRY, keyed by the display names the results use.
# MODELS: the blog's three models, display name -> CLI name.
MODELS = {e.display: e.cli for e in MODEL_REGISTRY if not e.kwargs}
# INIT_VARIANTS: the same architectures with the other initialisation (course_lib.models.apply_init), for
# the init experiment of notebook 04 (BlogCNN as the blog built it would start from PyTorch's default):
# display name -> (CLI name, its fixed arguments).
INIT_VARIANTS = {e.display: (e.cli, dict(e.kwargs)) for e in MODEL_REGISTRY if e.kwargs}

# Sizes per profile. The protocol (batch 64, lr 0.1) never changes; only how much of it runs. The cpu row keeps
# notebook 04 within 3 minutes of one CPU core: 3 seeds (the fewest the course's rule for a real difference
# accepts) x 3 models x 3 epochs of 63 steps, and the shuffle demo on shuffle_train training images (None: all).
SETTINGS = {
    "smoke": dict(dataset="sample", train_limit=640, test_limit=320, epochs=2, seeds=1,
                  shuffle_epochs=1, shuffle_train=None),
    "cpu": dict(dataset="mnist", train_limit=4000, test_limit=1000, epochs=3, seeds=3,
                shuffle_epochs=3, shuffle_train=2000),
    "full": dict(dataset="mnist", train_limit=None, test_limit=None, epochs=30, seeds=3,
                 shuffle_epochs=3, shuffle_train=None),
}


def settings_for(profile: Profile | str | None = None) -> dict:
    """This module's row of :data:`SETTINGS` for ``profile`` (a Profile, a name, or None = $COURSE_PROFILE)."""
    return settings(SETTINGS, profile)


def compare_data(profile: Profile | str | None = None, dataset: str | None = None, verbose: bool = True) -> Data:
    """The data :func:`run_compare` trains on in ``profile``: the profile's dataset and limits from :data:`SETTINGS`.

    An explicit ``dataset`` in the ``full`` profile is used whole. Images ``N x 1 x 28 x 28`` in [0, 1].
    """
    prof = as_profile(profile)
    cfg = settings(SETTINGS, prof)
    whole = dataset is not None and prof.name == "full"
    data = load_data(dataset or cfg["dataset"], train_limit=None if whole else cfg["train_limit"],
                     test_limit=None if whole else cfg["test_limit"], verbose=verbose)
    if verbose:
        print(f"data for the comparison: {data.info}")
    return data


def build_named(name: str):
    """Build a model of this experiment by its display name: a key of :data:`MODELS` or :data:`INIT_VARIANTS`."""
    if name not in MODELS and name not in INIT_VARIANTS:
        raise ConfigError(f"unknown model {name!r}; valid: {', '.join([*MODELS, *INIT_VARIANTS])}")
    return build_model(name)


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
    limits: tuple[int | None, int | None] | None = None,
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
        models: which of ``BlogCNN``, ``BlogPlain``, ``BlogResNet`` to train (or of :data:`INIT_VARIANTS`).
        epochs: override the profile's number of epochs (recorded in ``protocol``).
        limits: ``(train images, test images)``: train and test on a seeded subset of that size (None keeps a
            split whole; recorded in ``meta``).
        data: train on this :class:`Data` instead of loading (its ``info`` labels the result).
        checkpoint_dir: keep each run's weights there as ``MODEL_seedS.pt`` (for later evaluation).

    Returns:
        ``{dataset, source, device, profile, protocol, runs, meta}``; see the module docstring.
        Images are ``N x 1 x 28 x 28`` in [0, 1]; ``test_acc`` is in [0, 1].
    """
    prof = as_profile(profile)
    cfg = settings(SETTINGS, prof)
    models = list(models)
    unknown = [m for m in models if m not in MODELS and m not in INIT_VARIANTS]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; run_compare trains {list(MODELS)} "
                          f"(and the init variants {list(INIT_VARIANTS)})")
    seed_list = _seed_list(seeds, cfg["seeds"])
    n_epochs = cfg["epochs"] if epochs is None else epochs
    if not isinstance(n_epochs, int) or isinstance(n_epochs, bool) or n_epochs < 1:
        raise ConfigError(f"epochs must be a whole number >= 1, got {n_epochs!r} (the blog's protocol: 30)")
    if data is None:
        data = compare_data(prof, dataset, verbose=False)
    if limits is not None and any(n is not None for n in limits):
        data = data.subset(*limits)
    dev = pick_device(device, verbose=False)
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
            run, status = _train_one(name, seed, on_device, n_epochs, dev, checkpoint_dir, verbose)
            runs.append(run)
            statuses.append(status)
    protocol = dict(BLOG_PROTOCOL, epochs=n_epochs)
    meta = make_meta(info, dev, prof, seeds=seed_list, train_limit=info.n_train, test_limit=info.n_test,
                     note=info.note, run_status=statuses, shuffle=True,
                     blog_protocol_exact=bool(info.full and info.dataset == "mnist" and n_epochs == 30))
    # the offline fallback is labelled "mnist" by load_data; the result says plainly it is the sample
    dataset_label = "sample" if info.dataset == "mnist" and info.source.startswith("sample") else info.dataset
    return {"dataset": dataset_label, "source": info.source, "device": str(dev), "profile": prof.name,
            "protocol": protocol, "runs": runs, "meta": meta}


def _train_one(name: str, seed: int, data: Data, n_epochs: int, dev: torch.device,
               checkpoint_dir: str | Path | None, verbose: bool) -> tuple[dict, dict]:
    """Train one model of the experiment with one seed; return its run record and its status record."""
    seed_everything(seed)
    model = build_named(name)
    ckpt = Path(checkpoint_dir) / f"{name}_seed{seed}.pt" if checkpoint_dir else None
    history = fit(model, data, blog_protocol(n_epochs, seed), SpeedOptions(device=dev),
                  progress=False, checkpoint=ckpt)
    records = [{k: r[k] for k in ("epoch", "train_loss", "test_acc", "seconds")} for r in history.records]
    if verbose:
        last = records[-1] if records else {}
        print(f"[compare] {name:<10} seed {seed}: " + (  # no seconds: they measure the machine's load
            f"epoch {last['epoch']}: train loss {last['train_loss']:.4f}, test acc {last['test_acc']:.2%}"
            if last else "no epoch completed")
            + ("" if history.status == "completed" else f" ({history.status})"))
    run = {"model": name, "seed": seed, "params": count_params(model), "history": records}
    return run, {"model": name, "seed": seed, "status": history.status, "message": history.message}


def combine(*results: dict) -> dict:
    """One result holding the runs of several, cut to the epochs they all have.

    For results trained on the same data with the same protocol (e.g. the live run and
    the init variants): a run's first k epochs do not depend on how many epochs follow,
    because each epoch's shuffle is seeded by ``(seed, epoch)``. The label (meta) is the
    first result's, with ``meta["parts"]``: each result's meta and models, so every row keeps
    its own run date and source. Raises :class:`ConfigError` when the dataset, its size or the
    protocol differ (the device may differ: it changes the speed, not the experiment).
    """
    first = results[0]
    for other in results[1:]:
        if other["dataset"] != first["dataset"]:
            raise ConfigError(f"cannot combine results on different datasets: {first['dataset']!r} vs "
                              f"{other['dataset']!r}")
        for key in ("batch_size", "lr", "optimizer"):
            if other["protocol"][key] != first["protocol"][key]:
                raise ConfigError(f"cannot combine results trained with different {key}")
        if (other["meta"].get("n_train"), other["meta"].get("n_test")) != (first["meta"].get("n_train"),
                                                                         first["meta"].get("n_test")):
            raise ConfigError("cannot combine results trained on different amounts of data")
    epochs = min(r["protocol"]["epochs"] for r in results)
    runs = [dict(run, history=[h for h in run["history"] if h["epoch"] <= epochs]) for r in results for run in r["runs"]]
    parts = [part for r in results for part in (r["meta"].get("parts") or
                                                 [{"meta": r["meta"], "models": list(dict.fromkeys(
                                                     run["model"] for run in r["runs"]))}])]
    return dict(first, protocol=dict(first["protocol"], epochs=epochs), runs=runs,
                meta=dict(first["meta"], parts=parts))


# --------------------------------------------------------------------------- why a plain stack stalls


def signal_at_init(data: Data, models: Iterable[str] = (*MODELS, *INIT_VARIANTS), n_images: int = 256,
                   seed: int = 0) -> list[dict]:
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
        model = build_named(name)
        logits = model(x)
        F.cross_entropy(logits, y).backward()
        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        rows.append({"model": name, "layers": len(layers), "input_dependence": logits.detach().std(0).mean().item(),
                     "first_grad": layers[0].weight.grad.norm().item(),
                     "last_grad": layers[-1].weight.grad.norm().item()})
    return rows


def format_signal(rows: list[dict]) -> str:
    """:func:`signal_at_init` as a small table."""
    lines = [f"{'model':<23}{'weight layers':>14}{'logits vary across images (std)':>34}"
             f"{'grad norm, first layer':>24}{'last layer':>12}"]
    for r in rows:
        lines.append(f"{r['model']:<23}{r['layers']:>14}{r['input_dependence']:>34.1e}{r['first_grad']:>24.1e}"
                     f"{r['last_grad']:>12.1e}")
    return "\n".join(lines)
