"""The depth sweep: plain and residual nets of several depths, trained with the same schedule at several budgets.

The course's definition of degradation (He et al. 2015): at the end of the same training schedule, the deeper
plain network ends with the higher *training* error, so it is not overfitting. :func:`degradation_verdict`
checks it seed by seed, and checks that the gap is not a slow start: it must not close at the larger budget.
"""
from __future__ import annotations

import copy
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ...data import Data, load_data
from ...errors import ConfigError
from ...profiles import as_profile
from ...results import make_meta
from ...training import evaluate, fit, pick_device, recompute_bn_stats, seed_everything
from .protocol import BUILDERS, PROTOCOL, build_net, settings

FINAL_LOSS_DEFINITION = ("mean training cross-entropy of the SGD mini-batches over the last {pct:.0f}% of the "
                         "steps of the budget (the training loss the net ends with, as He et al. plot it; "
                         "not a test loss)")


def final_loss(curve: Sequence[float], fraction: float = PROTOCOL["final_fraction"]) -> float:
    """Mean of the last ``fraction`` of a per-step loss curve (at least one step)."""
    k = max(1, round(fraction * len(curve)))
    return float(np.mean(curve[-k:]))


def sweep_data(profile=None) -> Data:
    """The digits the sweep trains on in ``profile``: the embedded sample (cut in ``smoke``), the same everywhere."""
    cfg = settings(profile)["sweep"]
    return load_data(cfg["dataset"], train_limit=cfg["train_limit"], test_limit=cfg["test_limit"], verbose=False)


def _test_accuracy(model: nn.Module, data: Data) -> float:
    """Test accuracy of a copy of ``model`` after recomputing its BatchNorm statistics over the training set
    (at a constant lr of 0.1 the running averages lag the weights). The model itself is left as it was."""
    probe = copy.deepcopy(model)
    dev = next(probe.parameters()).device
    recompute_bn_stats(probe, data.train_x.to(dev))
    return evaluate(probe, data.test_x.to(dev), data.test_y.to(dev))


def train_depth_net(kind: str, depth: int, seed: int, data: Data, budgets: Sequence[int],
                    device: str | torch.device = "auto", build: Callable[[int], nn.Module] | None = None) -> list[dict]:
    """Train one net with the sweep's protocol through every budget; one run record per budget.

    ``budgets``: epochs, e.g. ``(2, 6)``. The net trains once, to the largest budget, and is measured at
    the end of each smaller one on the way: with a constant lr, a run stopped after 2 epochs is exactly
    the first 2 epochs of a 6-epoch run (fit resumes from its checkpoint; the tests check the equality).
    ``build``: ``depth -> model`` (default: :func:`build_net` of ``kind``), called after ``seed_everything(seed)``.

    Each record: ``{kind, depth, seed, epochs, steps, final_train_loss, test_acc, curve}``; ``steps`` is the
    number of SGD steps of the budget and ``curve`` the loss of each of them. A diverged run gets
    ``final_train_loss`` None from the budget where it diverged on.
    """
    seed_everything(seed)
    model = build(depth) if build else build_net(kind, depth)
    protocol = dict(batch_size=PROTOCOL["batch_size"], lr=PROTOCOL["lr"], momentum=PROTOCOL["momentum"], seed=seed)
    curve: list[float] = []
    records, ok = [], True
    with tempfile.TemporaryDirectory(prefix="course_lib_sweep_") as tmp:
        checkpoint = Path(tmp) / "run.pt"
        budgets = sorted(budgets)
        for i, epochs in enumerate(budgets):
            if ok:
                history = fit(model, data, epochs=epochs, device=device, progress=False, step_losses=curve,
                              checkpoint=checkpoint if i + 1 < len(budgets) else None,
                              resume=checkpoint if i else None, **protocol)
                ok = history.status == "completed"
            records.append(dict(kind=kind, depth=depth, seed=seed, epochs=epochs, steps=len(curve),
                                final_train_loss=final_loss(curve) if ok else None,
                                test_acc=_test_accuracy(model, data) if ok else None,
                                curve=[float(f"{v:.4g}") for v in curve]))
    return records


def sweep(data: Data, depths: Sequence[int], seeds: Sequence[int], budgets: Sequence[int],
          builders: dict[str, Callable[[int], nn.Module]] | None = None, device: str | torch.device = "auto",
          verbose: bool = True) -> list[dict]:
    """Train every ``builders`` kind (default: plain and residual) at every depth and seed; all run records.

    ``budgets`` in epochs. One line per trained net when ``verbose``.
    """
    builders = builders or BUILDERS
    runs = []
    for seed in seeds:
        for kind, build in builders.items():
            for depth in depths:
                t = time.perf_counter()
                records = train_depth_net(kind, depth, seed, data, budgets, device, build)
                runs += records
                if verbose:
                    ends = ", ".join("diverged" if r["final_train_loss"] is None else
                                     f"{r['final_train_loss']:.3f} after {r['steps']} steps" for r in records)
                    last = records[-1]["test_acc"]
                    print(f"  {kind:>8}-{depth:<3d} seed {seed}: final training loss {ends}; test accuracy "
                          f"{'-' if last is None else f'{last:.1%}'} ({time.perf_counter() - t:.0f} s)", flush=True)
    return runs


def run_sweep(profile=None, seeds: int | None = None, verbose: bool = True,
              device: str | torch.device = "auto") -> dict:
    """The profile's depth sweep: plain and residual nets, every depth, ``seeds`` seeds (default: the profile's).

    Returns a JSON-able dict: ``profile``, ``dataset``, ``source``, ``config`` (width, batch_norm, init, lr,
    lr_schedule, momentum, batch_size, budgets: ``[{epochs, steps}]``), ``runs`` (one record per net and
    budget, see :func:`train_depth_net`), ``final_train_loss_definition`` and ``meta`` (what it was measured on).
    """
    prof = as_profile(profile)
    cfg = settings(prof)["sweep"]
    n_seeds = cfg["seeds"] if seeds is None else seeds
    if not isinstance(n_seeds, int) or n_seeds < 1:
        raise ConfigError(f"seeds must be a whole number of at least 1, got {seeds!r}. Fix: pass --seeds 1 or more.")
    dev = pick_device(device, verbose=verbose)
    data = sweep_data(prof)
    per_epoch = -(-len(data.train_y) // PROTOCOL["batch_size"])
    budgets = [dict(epochs=e, steps=e * per_epoch) for e in sorted(cfg["budgets"])]
    if verbose:
        print(f"degradation sweep ({prof.name} profile): depths {list(cfg['depths'])}, {n_seeds} seed(s), budgets "
              f"{' and '.join(str(b['steps']) for b in budgets)} SGD steps on {data.info}")
    t0 = time.perf_counter()
    runs = sweep(data, cfg["depths"], range(n_seeds), cfg["budgets"], device=dev, verbose=verbose)
    config = {k: PROTOCOL[k] for k in ("width", "batch_norm")} | dict(
        init="PyTorch default", lr=PROTOCOL["lr"], lr_schedule="constant", momentum=PROTOCOL["momentum"],
        batch_size=PROTOCOL["batch_size"], budgets=budgets)
    meta = make_meta(data.info, dev, prof, seconds=round(time.perf_counter() - t0, 1), depths=list(cfg["depths"]),
                     seeds=n_seeds, final_fraction=PROTOCOL["final_fraction"], recompute_bn_before_eval=True,
                     command=f"python -m course_lib degradation --profile {prof.name} --seeds {n_seeds}")
    return dict(profile=prof.name, dataset=data.info.dataset, source=data.info.source, config=config, runs=runs,
                final_train_loss_definition=FINAL_LOSS_DEFINITION.format(pct=100 * PROTOCOL["final_fraction"]),
                meta=meta)


# --------------------------------------------------------------------------- reading the result


def budget_steps(result: dict) -> list[int]:
    """The budgets of a sweep result in SGD steps, shortest first."""
    return sorted({r["steps"] for r in result["runs"]})


def final_losses(result: dict, kind: str, depth: int, steps: int) -> dict[int, float]:
    """``{seed: final training loss}`` of one net at one budget (a diverged run counts as +inf)."""
    return {r["seed"]: float("inf") if r["final_train_loss"] is None else r["final_train_loss"]
            for r in result["runs"] if (r["kind"], r["depth"], r["steps"]) == (kind, depth, steps)}


def summarize(result: dict, steps: int | None = None) -> list[dict]:
    """One row per (kind, depth) at budget ``steps`` (default: the largest): mean and spread over seeds
    (spread = max - min) of the final training loss, and mean test accuracy."""
    steps = steps or budget_steps(result)[-1]
    rows = []
    for kind in dict.fromkeys(r["kind"] for r in result["runs"]):
        for depth in sorted({r["depth"] for r in result["runs"] if r["kind"] == kind}):
            runs = [r for r in result["runs"] if (r["kind"], r["depth"], r["steps"]) == (kind, depth, steps)]
            losses = [r["final_train_loss"] for r in runs if r["final_train_loss"] is not None]
            accs = [r["test_acc"] for r in runs if r["test_acc"] is not None]
            rows.append(dict(kind=kind, depth=depth, steps=steps, seeds=len(runs), diverged=len(runs) - len(losses),
                             loss_mean=statistics.fmean(losses) if losses else float("nan"),
                             loss_spread=max(losses) - min(losses) if losses else float("nan"),
                             acc_mean=statistics.fmean(accs) if accs else float("nan")))
    return rows


def print_summary(result: dict) -> None:
    """Final training loss (mean +- spread over seeds) and test accuracy per depth, plain vs residual, per budget."""
    n = len({r["seed"] for r in result["runs"]})
    print(f"final training loss (mean of {n} seed(s)" + (", +- spread = max - min over seeds)" if n > 1 else ")")
          + " and test accuracy")
    for steps in budget_steps(result):
        rows = {(r["kind"], r["depth"]): r for r in summarize(result, steps)}
        print(f"after {steps} SGD steps:")
        print(f"  {'depth':>5} | {'plain loss':>15} | {'residual loss':>15} | {'plain acc':>9} | {'residual acc':>12}")
        for depth in sorted({d for _, d in rows}):
            p, r = rows.get(("plain", depth)), rows.get(("residual", depth))
            loss = lambda row: f"{row['loss_mean']:.3f} +- {row['loss_spread']:.3f}" if row else "-"  # noqa: E731
            acc = lambda row: f"{row['acc_mean']:.1%}" if row else "-"  # noqa: E731
            print(f"  {depth:>5} | {loss(p):>15} | {loss(r):>15} | {acc(p):>9} | {acc(r):>12}")


def degradation_verdict(result: dict) -> dict:
    """Check, seed by seed at the largest budget, the three facts notebook 01 teaches.

    1. ``deeper_plain_is_worse``: the deepest plain net ends with a higher training loss than the shallow
       reference (the shallower plain net with the lowest mean loss), by more than the seed spread (the
       larger of the two nets' max - min over seeds).
    2. ``residual_is_better``: the residual net of the deepest depth ends below the plain net of that depth.
    3. ``gap_kept`` (only with two budgets or more): the gap deepest - reference at the largest budget is at
       least half the gap at the smallest, so the deep net is not merely starting slowly.

    Returns ``{holds, deepest, reference_depth, budgets, spread, seeds: [{seed, plain_deepest, plain_reference,
    residual_deepest, gap, gap_small, deeper_plain_is_worse, residual_is_better, gap_kept}]}``.
    """
    budgets = budget_steps(result)
    small, large = budgets[0], budgets[-1]
    plain_depths = sorted({r["depth"] for r in result["runs"] if r["kind"] == "plain"})
    if len(plain_depths) < 2:
        raise ConfigError("the verdict compares plain nets of two depths or more; this result has "
                          f"{plain_depths}. Fix: sweep at least two depths.")
    deepest = plain_depths[-1]
    means = {d: statistics.fmean(final_losses(result, "plain", d, large).values()) for d in plain_depths[:-1]}
    reference = min(means, key=means.get)
    at = {(kind, d, s): final_losses(result, kind, d, s) for kind in ("plain", "residual")
          for d in (deepest, reference) for s in (small, large)}
    ends = (at["plain", deepest, large].values(), at["plain", reference, large].values())
    spread = max(max(v) - min(v) for v in ends)
    per_seed = []
    for seed in sorted(at["plain", deepest, large]):
        deep, ref = at["plain", deepest, large][seed], at["plain", reference, large][seed]
        res = at["residual", deepest, large].get(seed, float("nan"))
        gap_small = at["plain", deepest, small][seed] - at["plain", reference, small][seed]
        per_seed.append(dict(seed=seed, plain_deepest=deep, plain_reference=ref, residual_deepest=res,
                             gap=deep - ref, gap_small=gap_small, deeper_plain_is_worse=bool(deep - ref > spread),
                             residual_is_better=bool(res < deep),
                             gap_kept=bool(deep - ref >= gap_small / 2) if len(budgets) > 1 else None))
    holds = all(p["deeper_plain_is_worse"] and p["residual_is_better"] and p["gap_kept"] is not False
                for p in per_seed)
    return dict(holds=bool(per_seed) and holds, deepest=deepest, reference_depth=reference, budgets=budgets,
                spread=spread, seeds=per_seed)


def print_verdict(result: dict) -> None:
    """The verdict of :func:`degradation_verdict` in words, one line per seed."""
    v = degradation_verdict(result)
    d, ref, (small, large) = v["deepest"], v["reference_depth"], (v["budgets"][0], v["budgets"][-1])
    yes = {True: "yes", False: "NO"}
    print(f"deepest plain net: plain-{d}; shallow reference: plain-{ref}; at {large} steps the seed spread is "
          f"{v['spread']:.3f}" + ("" if len(v["seeds"]) > 1 else " (one seed only: no spread to compare with)"))
    for p in v["seeds"]:
        line = (f"  seed {p['seed']}: at {large} steps plain-{d} {p['plain_deepest']:.3f} - plain-{ref} "
                f"{p['plain_reference']:.3f} = gap {p['gap']:.3f} (more than the spread: "
                f"{yes[p['deeper_plain_is_worse']]}); residual-{d} {p['residual_deepest']:.3f} (below plain-{d}: "
                f"{yes[p['residual_is_better']]})")
        if p["gap_kept"] is not None:
            line += f"; gap at {small} steps {p['gap_small']:.3f} (kept at least half: {yes[p['gap_kept']]})"
        print(line)
    if not v["holds"]:
        print("degradation NOT shown for every seed")
    elif len(v["budgets"]) > 1:
        print("degradation shown for every seed, and the gap did not close: not a slow start")
    else:
        print("degradation shown for every seed (one budget only: a slow start is not ruled out)")
