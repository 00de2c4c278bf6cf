"""The blog's experiment, reproduced honestly (notebook 04): the blog's two models and the plain twin under its
protocol, several seeds, as one JSON-able result ``{dataset, source, device, protocol, runs, meta}``."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...data import Data, load_data
from ...devices import pick_device
from ...errors import ConfigError
from ...models import BLOG_MODELS, build_model, count_params, unknown_model
from ...profiles import Profile, get_profile, settings
from ...results import make_meta
from ...training import Protocol, SpeedOptions, fit, seed_everything

BLOG_PROTOCOL = {"batch_size": 64, "lr": 0.1, "optimizer": "SGD (momentum 0, weight decay 0)", "epochs": 30}


def blog_protocol(epochs: int, seed: int, shuffle: bool = True) -> Protocol:
    """:data:`BLOG_PROTOCOL` as ``fit``'s Protocol: ``epochs`` epochs of SGD whose shuffles are seeded by ``seed``."""
    return Protocol(epochs=epochs, batch_size=BLOG_PROTOCOL["batch_size"], lr=BLOG_PROTOCOL["lr"], momentum=0.0,
                    weight_decay=0.0, seed=seed, shuffle=shuffle)


# The blog's two models and the plain twin; the init variants of course_lib.models.BLOG_MODELS may join them.
COMPARED = ("blog-cnn", "blog-plain", "blog-resnet")

# How much of the protocol runs per profile. The cpu row keeps notebook 04 within 3 minutes of one CPU core:
# 3 seeds (the rule's minimum) x 3 models x 3 epochs of 63 steps; shuffle_train: the shuffle demo's images.
SETTINGS = {
    "smoke": dict(dataset="sample", train_limit=640, test_limit=320, epochs=2, seeds=1,
                  shuffle_epochs=1, shuffle_train=None),
    "cpu": dict(dataset="mnist", train_limit=4000, test_limit=1000, epochs=3, seeds=3,
                shuffle_epochs=3, shuffle_train=2000),
    "full": dict(dataset="mnist", train_limit=None, test_limit=None, epochs=30, seeds=3,
                 shuffle_epochs=3, shuffle_train=None),
}


def compare_data(profile: Profile | str | None = None, dataset: str | None = None, verbose: bool = True) -> Data:
    """The data :func:`run_compare` trains on in ``profile``; an explicit ``dataset`` in ``full`` is used whole."""
    prof = get_profile(profile)
    cfg = settings(SETTINGS, prof)
    whole = dataset is not None and prof.name == "full"
    data = load_data(dataset or cfg["dataset"], train_limit=None if whole else cfg["train_limit"],
                     test_limit=None if whole else cfg["test_limit"], verbose=verbose)
    if verbose:
        print(f"data for the comparison: {data.info}")
    return data


def compared_models(names: Iterable[str] | None = None) -> list[str]:
    """``names`` (any case; None: :data:`COMPARED`) as model names; one not in ``BLOG_MODELS`` raises ConfigError."""
    names = list(COMPARED) if names is None else list(names)
    unknown = [m for m in names if str(m).strip().lower() not in BLOG_MODELS]
    if unknown:
        raise unknown_model(unknown[0], f"{', '.join(BLOG_MODELS)} (what run_compare trains)")
    return [str(m).strip().lower() for m in names]


def _seed_list(seeds: int | Sequence[int] | None, default: int) -> list[int]:
    seeds = default if seeds is None else seeds
    out = list(range(seeds)) if isinstance(seeds, int) and not isinstance(seeds, bool) else [int(s) for s in seeds]
    if not out:
        raise ConfigError(f"seeds must be a positive number of seeds or a list of seeds such as [0], got {seeds!r}")
    return out


# --------------------------------------------------------------------------- the experiment


def run_compare(
    profile: Profile | str | None = None,
    dataset: str | None = None,
    seeds: int | Sequence[int] | None = None,
    device: str | torch.device = "auto",
    verbose: bool = True,
    *,
    models: Iterable[str] = COMPARED,
    epochs: int | None = None,
    limits: tuple[int | None, int | None] | None = None,
    data: Data | None = None,
    checkpoint_dir: str | Path | None = None,
) -> dict:
    """Train ``models`` with the blog's protocol for each seed, sized by ``profile`` (:data:`SETTINGS`).
    ``limits``: ``(train, test)`` images, a seeded subset; ``checkpoint_dir``: each run's ``MODEL_seedS.pt``."""
    prof = get_profile(profile)
    cfg = settings(SETTINGS, prof)
    models = compared_models(models)
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
            print("[compare] NOTE: the blog's hyperparameters on a smaller dataset, not on full MNIST.")
    on_device = data.to(dev)
    done = [_train_one(name, seed, on_device, n_epochs, dev, checkpoint_dir, verbose)
            for seed in seed_list for name in models]
    runs, statuses = [run for run, _ in done], [status for _, status in done]
    protocol = dict(BLOG_PROTOCOL, epochs=n_epochs)
    meta = make_meta(info, dev, prof, protocol="blog" if prof.name == "full" else prof.name, seeds=seed_list, train_limit=info.n_train, test_limit=info.n_test,
                     note=info.note, run_status=statuses, shuffle=True,
                     blog_protocol_exact=bool(info.full and info.dataset == "mnist" and n_epochs == 30))
    # the offline fallback is labelled "mnist" by load_data; the result says plainly it is the sample
    dataset_label = "sample" if info.dataset == "mnist" and info.source.startswith("sample") else info.dataset
    return {"dataset": dataset_label, "source": info.source, "device": str(dev), "protocol": protocol, "runs": runs,
            "meta": meta}


def _train_one(name: str, seed: int, data: Data, n_epochs: int, dev: torch.device,
               checkpoint_dir: str | Path | None, verbose: bool) -> tuple[dict, dict]:
    """Train one model of the experiment with one seed; return its run record and its status record."""
    seed_everything(seed)
    model = build_model(name)
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
    """The runs of ``results`` on the same data and protocol (any device) as one result, cut to the epochs all have
    (each epoch's shuffle is seeded by (seed, epoch)); ``meta["parts"]`` keeps each part's meta and models."""
    def recipe(r: dict) -> dict:  # what must match: the data and the protocol, not the device
        return {"dataset": r["dataset"], "n_train": r["meta"].get("n_train"), "n_test": r["meta"].get("n_test"),
                **{k: r["protocol"][k] for k in ("batch_size", "lr", "optimizer")}}

    first, want = results[0], recipe(results[0])
    for got in map(recipe, results[1:]):
        if differ := [f"{k} ({want[k]!r} vs {got[k]!r})" for k in want if got[k] != want[k]]:
            raise ConfigError(f"cannot combine results trained with different {', '.join(differ)}")
    epochs = min(r["protocol"]["epochs"] for r in results)
    runs = [dict(run, history=[h for h in run["history"] if h["epoch"] <= epochs])
            for r in results for run in r["runs"]]
    parts = [part for r in results for part in r["meta"].get("parts") or
             [{"meta": r["meta"], "models": list(dict.fromkeys(run["model"] for run in r["runs"]))}]]
    return dict(first, protocol=dict(first["protocol"], epochs=epochs), runs=runs,
                meta=dict(first["meta"], parts=parts))


def signal_at_init(data: Data, models: Iterable[str] = tuple(BLOG_MODELS), n_images: int = 256,
                   seed: int = 0) -> list[dict]:
    """Why a plain stack stalls: per model, one pass on ``n_images`` training images gives ``input_dependence`` (the
    mean std of each logit across images: near 0, all get one output) and the first and last layers' grad norms."""
    idx = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))[:n_images]
    x, y = data.train_x.cpu()[idx], data.train_y.cpu()[idx]  # a random draw: stored data may be sorted by label
    rows = []
    for name in models:
        seed_everything(seed)
        model = build_model(name)
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
