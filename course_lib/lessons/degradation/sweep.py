"""The depth sweep (notebook 01 and the ``degradation`` command): plain and residual nets of several depths trained
with the same schedule, read at several budgets, and the verdict on degradation seed by seed."""
from __future__ import annotations

import copy
import functools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ...data import Data, load_data
from ...devices import pick_device
from ...errors import ConfigError
from ...profiles import get_profile, settings
from ...results import make_meta
from ...stats import ALPHA, accuracy_interval, mean_sd, welch_p_value
from ...training import Protocol, SpeedOptions, evaluate, fit, recompute_bn_stats, seed_everything
from .gradients import gradient_norms, input_to_output_ratio
from .protocol import PROTOCOL, SETTINGS, build_net

FINAL_LOSS_DEFINITION = ("mean training cross-entropy of the SGD mini-batches over the last {pct:.0f}% of the "
                         "steps of the budget, BatchNorm in train mode (the course's stand-in for He et al.'s "
                         "training error; not a test loss)")
GRADIENT_BATCH = 128  # the trained nets' gradient ratio is measured on the first 128 training digits


def final_loss(curve: Sequence[float], fraction: float = PROTOCOL["final_fraction"]) -> float:
    """Mean of the last ``fraction`` of a per-step loss curve (at least one step)."""
    k = max(1, round(fraction * len(curve)))
    return float(np.mean(curve[-k:]))


def sweep_data(profile=None) -> Data:
    """The digits the sweep trains on in ``profile``: the embedded sample (cut in ``smoke``), the same everywhere."""
    cfg = settings(SETTINGS, profile)["sweep"]
    return load_data(cfg["dataset"], train_limit=cfg["train_limit"], test_limit=cfg["test_limit"], verbose=False)


def _measure(model: nn.Module, data: Data) -> tuple[float, float]:
    """On copies of ``model``: test accuracy with BatchNorm statistics recomputed on the training set (at a constant
    lr of 0.1 the running averages lag the weights), and the first-conv / last-conv weight-gradient norm."""
    probe, dev = copy.deepcopy(model), next(model.parameters()).device
    recompute_bn_stats(probe, data.train_x.to(dev))
    accuracy = evaluate(probe, data.test_x.to(dev), data.test_y.to(dev))
    x, y = data.train_x[:GRADIENT_BATCH].to(dev), data.train_y[:GRADIENT_BATCH].to(dev)
    return accuracy, input_to_output_ratio(gradient_norms(copy.deepcopy(model), x, y))


def train_depth_net(kind: str, depth: int, seed: int, data: Data, budgets: Sequence[int],
                    device: str | torch.device = "auto", build: Callable[[int], nn.Module] | None = None) -> list[dict]:
    """Train one net once, to the largest of ``budgets`` (epochs), measured at the end of each (with a constant lr a
    shorter run is the start of a longer one); one record per budget. ``build``: ``depth -> model``."""
    seed_everything(seed)
    model = build(depth) if build else build_net(kind, depth)
    speed = SpeedOptions(device=device)
    curve: list[float] = []
    records, ok = [], True
    with tempfile.TemporaryDirectory(prefix="course_lib_sweep_") as tmp:
        checkpoint = Path(tmp) / "run.pt"
        budgets = sorted(budgets)
        for i, epochs in enumerate(budgets):
            if ok:
                protocol = Protocol(epochs=epochs, batch_size=PROTOCOL["batch_size"], lr=PROTOCOL["lr"],
                                    momentum=PROTOCOL["momentum"], seed=seed)
                history = fit(model, data, protocol, speed, progress=False, step_losses=curve,
                              checkpoint=checkpoint if i + 1 < len(budgets) else None,
                              resume=checkpoint if i else None)
                ok = history.status == "completed"
            accuracy, ratio = _measure(model, data) if ok else (None, None)
            records.append(dict(kind=kind, depth=depth, seed=seed, epochs=epochs, steps=len(curve),
                                final_train_loss=final_loss(curve) if ok else None, test_acc=accuracy,
                                gradient_ratio=float(f"{ratio:.4g}") if ok else None,
                                curve=[float(f"{v:.4g}") for v in curve]))
    return records


def sweep(data: Data, depths: Sequence[int], seeds: Sequence[int], budgets: Sequence[int],
          builders: dict[str, Callable[[int], nn.Module]] | None = None, device: str | torch.device = "auto",
          verbose: bool = True) -> list[dict]:
    """Train every ``builders`` kind (default: plain and residual) at every depth and seed; all run records."""
    builders = builders or {kind: functools.partial(build_net, kind) for kind in ("plain", "residual")}
    runs = []
    for seed in seeds:
        for kind, build in builders.items():
            for depth in depths:
                records = train_depth_net(kind, depth, seed, data, budgets, device, build)
                runs += records
                if verbose:
                    ends = ", ".join("diverged" if r["final_train_loss"] is None else
                                     f"{r['final_train_loss']:.3f} after {r['steps']} steps" for r in records)
                    last = records[-1]["test_acc"]
                    print(f"  {kind:>8}-{depth:<3d} seed {seed}: final training loss {ends}; test accuracy "
                          f"{'-' if last is None else f'{last:.1%}'}", flush=True)
    return runs


def run_sweep(profile=None, seeds: int | None = None, verbose: bool = True,
              device: str | torch.device = "auto") -> dict:
    """The profile's depth sweep with ``seeds`` seeds (default: the profile's), as a JSON-able dict: ``profile``,
    ``dataset``, ``source``, ``config``, ``runs`` (see :func:`train_depth_net`), ``final_train_loss_definition``, ``meta``."""
    prof = get_profile(profile)
    cfg = settings(SETTINGS, prof)["sweep"]
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


def budget_steps(result: dict) -> list[int]:
    """The budgets of a sweep result in SGD steps, shortest first."""
    return sorted({r["steps"] for r in result["runs"]})


def final_losses(result: dict, kind: str, depth: int, steps: int) -> dict[int, float]:
    """``{seed: final training loss}`` of one net at one budget (a diverged run counts as +inf)."""
    return {r["seed"]: float("inf") if r["final_train_loss"] is None else r["final_train_loss"]
            for r in result["runs"] if (r["kind"], r["depth"], r["steps"]) == (kind, depth, steps)}


def summarize(result: dict, steps: int | None = None) -> list[dict]:
    """Per (kind, depth) at budget ``steps`` (default: the largest): final training loss and test accuracy, mean and
    sd over seeds, and each seed's test accuracy (``accs``)."""
    steps = steps or budget_steps(result)[-1]
    rows = []
    for kind in dict.fromkeys(r["kind"] for r in result["runs"]):
        for depth in sorted({r["depth"] for r in result["runs"] if r["kind"] == kind}):
            runs = [r for r in result["runs"] if (r["kind"], r["depth"], r["steps"]) == (kind, depth, steps)]
            losses = [r["final_train_loss"] for r in runs if r["final_train_loss"] is not None]
            accs = [r["test_acc"] for r in runs if r["test_acc"] is not None]
            loss_mean, loss_sd = mean_sd(losses) if losses else (float("nan"), float("nan"))
            acc_mean, acc_sd = mean_sd(accs) if accs else (float("nan"), float("nan"))
            rows.append(dict(kind=kind, depth=depth, steps=steps, seeds=len(runs), diverged=len(runs) - len(losses),
                             loss_mean=loss_mean, loss_sd=loss_sd, acc_mean=acc_mean, acc_sd=acc_sd, accs=accs))
    return rows


def print_summary(result: dict) -> None:
    """:func:`summarize` per budget, one net a line: loss and accuracy as mean +- sd over seeds, then every seed's
    test accuracy with its 95% Wilson interval for the test-set size."""
    n_test = result.get("meta", {}).get("n_test")
    print("final training loss and test accuracy (%), mean +- sd over seeds; then each seed's test accuracy"
          + (f" [95% Wilson interval, {n_test:,} test digits]" if n_test else ""))
    for steps in budget_steps(result):
        print(f"after {steps} SGD steps:")
        for r in summarize(result, steps):
            each = ", ".join(f"{100 * a:.1f}" + (" [{:.1f}, {:.1f}]".format(*(100 * v for v in accuracy_interval(
                a, n_test))) if n_test else "") for a in r["accs"])
            print(f"  {r['kind']:>8}-{r['depth']:<3d} loss {r['loss_mean']:.3f} +- {r['loss_sd']:.3f} | test "
                  f"{100 * r['acc_mean']:4.1f} +- {100 * r['acc_sd']:4.1f} | {each}")


def _reference_depth(result: dict, large: int) -> tuple[int, int]:
    """The deepest plain depth and the shallow reference (the shallower plain net with the lowest mean loss)."""
    plain_depths = sorted({r["depth"] for r in result["runs"] if r["kind"] == "plain"})
    if len(plain_depths) < 2:
        raise ConfigError("the verdict compares plain nets of two depths or more; this result has "
                          f"{plain_depths}. Fix: sweep at least two depths.")
    means = {d: statistics.fmean(final_losses(result, "plain", d, large).values()) for d in plain_depths[:-1]}
    return plain_depths[-1], min(means, key=means.get)


def degradation_verdict(result: dict) -> dict:
    """Seed by seed at the largest budget: does the deepest plain net end above the shallow reference by more than
    the seed spread (Welch p < 0.05), the residual net of its depth below it, with a gap that did not narrow?"""
    budgets = budget_steps(result)
    small, large = budgets[0], budgets[-1]
    deepest, reference = _reference_depth(result, large)
    at = {(kind, d, s): final_losses(result, kind, d, s) for kind in ("plain", "residual")
          for d in (deepest, reference) for s in (small, large)}
    ends = (at["plain", deepest, large].values(), at["plain", reference, large].values())
    spread = max(max(v) - min(v) for v in ends)
    welch_p = welch_p_value(*[list(v) for v in ends]) if min(len(v) for v in ends) >= 2 else None
    per_seed = []
    for seed in sorted(at["plain", deepest, large]):
        deep, ref = at["plain", deepest, large][seed], at["plain", reference, large][seed]
        res = at["residual", deepest, large].get(seed, float("nan"))
        gap_small = at["plain", deepest, small][seed] - at["plain", reference, small][seed]
        two = len(budgets) > 1
        per_seed.append(dict(seed=seed, plain_deepest=deep, plain_reference=ref, residual_deepest=res,
                             gap=deep - ref, gap_small=gap_small, deeper_plain_is_worse=bool(deep - ref > spread),
                             residual_is_better=bool(res < deep),
                             gap_widened=bool(deep - ref >= gap_small) if two else None))
    holds = all(p["deeper_plain_is_worse"] and p["residual_is_better"] and p["gap_widened"] is not False
                for p in per_seed) and (welch_p is None or welch_p < ALPHA)
    return dict(holds=bool(per_seed) and holds, deepest=deepest, reference_depth=reference, budgets=budgets,
                spread=spread, welch_p=welch_p, seeds=per_seed)


def print_verdict(result: dict) -> None:
    """The verdict of :func:`degradation_verdict` in words, one line per seed."""
    v = degradation_verdict(result)
    d, ref, (small, large) = v["deepest"], v["reference_depth"], (v["budgets"][0], v["budgets"][-1])
    yes = {True: "yes", False: "NO"}
    print(f"deepest plain net: plain-{d}; shallow reference: plain-{ref}; at {large} steps the seed spread "
          f"(max - min over seeds) is {v['spread']:.3f}" +
          (f"; Welch's t-test on the per-seed losses: p = {v['welch_p']:.3f} (the rule: p < {ALPHA}, "
           f"{ALPHA:.0%} false positives)" if v["welch_p"] is not None else
           " (one seed only: no spread, no test, no evidence)"))
    for p in v["seeds"]:
        line = (f"  seed {p['seed']}: at {large} steps plain-{d} {p['plain_deepest']:.3f} - plain-{ref} "
                f"{p['plain_reference']:.3f} = gap {p['gap']:.3f} (more than the spread: "
                f"{yes[p['deeper_plain_is_worse']]}); residual-{d} {p['residual_deepest']:.3f} (below plain-{d}: "
                f"{yes[p['residual_is_better']]})")
        if p["gap_widened"] is not None:
            line += f"; gap at {small} steps {p['gap_small']:.3f} (not narrower: {yes[p['gap_widened']]})"
        print(line)
    if not v["holds"]:
        print("degradation NOT shown for every seed")
    elif len(v["budgets"]) > 1:
        print(f"degradation shown for every seed, and the gap did not narrow from {small} to {large} steps")
    else:
        print("degradation shown for every seed (one budget only: a slow start is not ruled out)")


def print_catch_up(result: dict) -> None:
    """Is it a slow start? Every deeper plain net's gap to the reference at every budget, and the deepest plain net
    after k times the steps against the reference after the shortest budget."""
    budgets = budget_steps(result)
    deepest, ref = _reference_depth(result, budgets[-1])
    mean = lambda kind, d, s: statistics.fmean(final_losses(result, kind, d, s).values())  # noqa: E731
    depths = sorted({r["depth"] for r in result["runs"] if r["kind"] == "plain" and r["depth"] > ref})
    print(f"gap to plain-{ref} (mean final training loss over seeds) after " +
          ", ".join(f"{s}" for s in budgets) + " SGD steps:")
    for d in depths:
        print(f"  plain-{d:<3d} " + "  ".join(f"{mean('plain', d, s) - mean('plain', ref, s):+.3f}" for s in budgets))
    short = final_losses(result, "plain", ref, budgets[0])
    print(f"plain-{deepest} after k times the steps vs plain-{ref} after {budgets[0]} steps:")
    for s in budgets[1:]:
        deep = final_losses(result, "plain", deepest, s)
        (m1, sd1), (m0, sd0) = mean_sd(deep.values()), mean_sd(short.values())
        p = welch_p_value(list(deep.values()), list(short.values())) if min(len(deep), len(short)) >= 2 else None
        print(f"  k = {s / budgets[0]:g}: plain-{deepest} at {s} steps {m1:.3f} +- {sd1:.3f}, plain-{ref} at "
              f"{budgets[0]} steps {m0:.3f} +- {sd0:.3f}" + (f" (Welch p = {p:.2f})" if p is not None else ""))


def print_trained_gradients(result: dict) -> None:
    """First-conv / last-conv weight-gradient norm of the trained nets at every budget (geometric mean over seeds)."""
    runs = [r for r in result["runs"] if r.get("gradient_ratio")]
    print("first conv / last conv weight-gradient norm after training (geometric mean over seeds [min, max])")
    for steps in budget_steps(result):
        print(f"after {steps} SGD steps:")
        for kind in dict.fromkeys(r["kind"] for r in runs):
            cells = []
            for depth in sorted({r["depth"] for r in runs if r["kind"] == kind}):
                ratios = [r["gradient_ratio"] for r in runs
                          if (r["kind"], r["depth"], r["steps"]) == (kind, depth, steps)]
                if ratios:
                    geo = float(np.exp(np.mean(np.log(ratios))))
                    cells.append(f"{kind}-{depth} x{geo:.2g} [{min(ratios):.2g}, {max(ratios):.2g}]")
            print("  " + "; ".join(cells))
