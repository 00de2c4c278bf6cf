"""Reading a result of :func:`course_lib.lessons.cnn_vs_resnet.protocol.run_compare` against the blog's claims (notebook 04).

* the blog's table (:func:`blog_table`: epochs 10/20/30, or the same fractions of a
  shorter run) with our mean and spread over seeds next to its claims;
* the spread over seeds (:func:`seed_spread`) and the stall of each run (:func:`escape_epoch`);
* slow start or degradation (:func:`diagnose_gap`);
* a plain verdict on each claim (:func:`claim_verdicts`), which the notebook and the
  README print from the saved results, so their numbers cannot drift;
* the figures: curves per epoch and the final numbers next to the claims (``figures/04_*.png``).

Every ``format_*`` function starts with a line saying what the result was measured on.
"""
from __future__ import annotations

import math
import statistics
from typing import Sequence

from ...results import describe, load_result

# What the blog claims at epoch 30 on full MNIST (train loss, test accuracy).
BLOG_CLAIMS = {
    "BlogCNN": {"epoch": 30, "train_loss": 0.2, "test_acc": 0.97},
    "BlogResNet": {"epoch": 30, "train_loss": 0.04, "test_acc": 0.995},
}
_DATASET_NAMES = {"sample": "the MNIST sample", "fashion": "Fashion-MNIST", "mnist": "MNIST"}
CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over 10 classes: 2.303


# --------------------------------------------------------------------------- the blog's table and the spread over seeds


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


def _name_width(result: dict) -> int:
    return max([11] + [len(run["model"]) + 1 for run in result["runs"]])


def _loss(x: float) -> str:
    return f"{x:.4f}" if x >= 1e-3 else f"{x:.1e}"


def _acc_spread(mean: float, low: float, high: float, n: int) -> str:
    return f"{mean:.2%} (1 seed)" if n == 1 else f"{mean:.2%} ({low:.2%}-{high:.2%}, {n} seeds)"


def format_blog_table(result: dict) -> str:
    """The blog's table as text: our mean (min-max over seeds) next to the blog's claim, with a label line."""
    n = result["protocol"]["epochs"]
    w = _name_width(result)
    lines = [f"measured on: {describe(result)}",
             f"{'model':<{w}}{'epoch':>6}{'train loss':>12}{'test acc (min-max over seeds)':>34}"
             f"{'blog loss':>11}{'blog acc':>10}"]
    for r in blog_table(result):
        spread = _acc_spread(r["test_acc"], r["acc_min"], r["acc_max"], r["n_seeds"])
        blog_loss = f"{r['blog_train_loss']:.2f}" if r["blog_train_loss"] is not None else "-"
        blog_acc = f"{r['blog_test_acc']:.1%}" if r["blog_test_acc"] is not None else "-"
        lines.append(f"{r['model']:<{w}}{r['epoch']:>6}{_loss(r['train_loss']):>12}{spread:>34}{blog_loss:>11}{blog_acc:>10}")
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
    w = _name_width(result)
    lines = [f"measured on: {describe(result)}",
             f"{'model':<{w}}{'seeds':>6}{'final test acc: mean (min-max), std':>38}{'final loss: min-max':>22}"
             f"{'  first epoch with loss < 2.0, per seed'}"]
    for r in seed_spread(result):
        acc = f"{r['acc_mean']:.2%} ({r['acc_min']:.2%}-{r['acc_max']:.2%}), {100 * r['acc_std']:.2f} pts"
        esc = ", ".join("never" if e is None else str(e) for e in r["escape_epochs"])
        loss = f"{_loss(r['loss_min'])}-{_loss(r['loss_max'])}"
        lines.append(f"{r['model']:<{w}}{len(r['seeds']):>6}{acc:>38}{loss:>22}  {esc}")
    return "\n".join(lines)


def diagnose_gap(result: dict, plain: str = "BlogPlain", residual: str = "BlogResNet") -> list[dict]:
    """Slow start or degradation? Per seed, compare the plain net's curve to the residual net's.

    The plain net's stall is the epochs before its loss drops below 2.0. Shift its
    curve left by the stall and compare it with the residual net's curve over the
    same number of epochs since it started learning:

    * ``shifted_ratio`` = plain loss at (stall + k) / residual loss at k, for the last k
      both runs have. Near 1 (or below) means the plain net learns as fast once it starts:
      a **slow start**. Well above 1 means it also learns worse once started: an
      optimisation gap. He et al.'s **degradation** is that gap between a deeper plain
      net and a shallower one; two nets of the same depth cannot show it.
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
    return ("learns slower even after its start: an optimisation gap beyond a slow start in this run "
            "(not degradation, which compares a deeper plain net with a shallower one: notebook 01)")


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


# --------------------------------------------------------------------------- the verdict


def _ranges_apart(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when every value of ``a`` is above every value of ``b`` or below it (touching ranges overlap)."""
    return min(a) > max(b) or max(a) < min(b)


def _versus(result: dict, better: str, other: str) -> dict | None:
    """Final test accuracies of two models over their seeds, and whether the gap is beyond seed noise."""
    runs = _by_model(result)
    if better not in runs or other not in runs:
        return None
    a = [run["history"][-1]["test_acc"] for run in runs[better] if run["history"]]
    b = [run["history"][-1]["test_acc"] for run in runs[other] if run["history"]]
    if not a or not b:
        return None
    gap = statistics.fmean(a) - statistics.fmean(b)
    if min(len(a), len(b)) < 2:
        noise = "one seed each, so seed noise cannot be ruled out"
    elif _ranges_apart(a, b):
        noise = f"beyond seed noise (the ranges over {min(len(a), len(b))} seeds do not overlap)"
    else:
        noise = "within seed noise (the ranges over seeds overlap)"
    return {"gap": gap, "noise": noise, "a": a, "b": b}


def claim_verdicts(result: dict) -> list[dict]:
    """The blog's claims, each next to what ``result`` measured and a plain verdict.

    Rows ``{claim, measured, verdict}`` (strings). A claim is judged *reproduced* or
    *not reproduced* only when ``result`` ran the blog's exact protocol (full MNIST,
    30 epochs); on other data the training loss is *not comparable* (it depends on
    the dataset's size) and the accuracy *not verified*, with the direction of the
    difference said. Accuracy counts as reproduced within 0.5 points (or inside our
    range over seeds), a training loss within a factor of 2.
    """
    exact = bool(result.get("meta", {}).get("blog_protocol_exact"))
    spread = {r["model"]: r for r in seed_spread(result)}
    where = ("full MNIST" if exact else
             f"{_DATASET_NAMES.get(result['dataset'], result['dataset'])} "
             f"({result['meta'].get('n_train') or 0:,} training images), not full MNIST")
    rows = []
    for model, claim in BLOG_CLAIMS.items():
        r = spread.get(model)
        if r is None:
            continue
        seeds = f"{len(r['seeds'])} seed{'s' * (len(r['seeds']) > 1)}"
        loss, c_loss = r["loss_mean"], claim["train_loss"]
        measured = f"{_loss(loss)} at epoch {r['epoch']} " + (
            f"({seeds}: {_loss(r['loss_min'])}-{_loss(r['loss_max'])})" if len(r["seeds"]) > 1 else "(1 seed)")
        if r["escape_epochs"] and all(e is None for e in r["escape_epochs"]):
            measured += "; it never left the chance loss ln 10"
        if exact:
            verdict = ("**reproduced**" if 0.5 <= loss / c_loss <= 2 else
                       f"**not reproduced**: ours is {max(loss / c_loss, c_loss / loss):.0f}x "
                       f"{'lower' if loss < c_loss else 'higher'}")
        else:
            verdict = (f"**not comparable**: a training loss depends on the data; ours is "
                       f"{'lower' if loss < c_loss else 'higher'} on {where}")
        rows.append({"claim": f"{model}: train loss {c_loss}", "measured": measured, "verdict": verdict})
        acc, c_acc = r["acc_mean"], claim["test_acc"]
        measured = f"{acc:.2%} at epoch {r['epoch']}" + (
            f" ({seeds}: {r['acc_min']:.2%}-{r['acc_max']:.2%})" if len(r["seeds"]) > 1 else " (1 seed)")
        diff = f"{100 * abs(acc - c_acc):.1f} points {'below' if acc < c_acc else 'above'} the claim"
        if exact:
            inside = abs(acc - c_acc) <= 0.005 or r["acc_min"] <= c_acc <= r["acc_max"]
            verdict = "**reproduced**" if inside else f"**not reproduced**: {diff}"
        else:
            verdict = f"**not verified**: measured on {where}; {diff}"
        rows.append({"claim": f"{model}: test accuracy {c_acc:.1%}", "measured": measured, "verdict": verdict})
    for better, other, claim in (("BlogResNet", "BlogCNN", "Implied: the ResNet beats the CNN"),
                                 ("BlogResNet", "BlogPlain", "Implied: the skips are what make it better")):
        v = _versus(result, better, other)
        if v is None:
            continue
        measured = (f"final test accuracy {better} {', '.join(f'{x:.2%}' for x in v['a'])} vs "
                    f"{other} {', '.join(f'{x:.2%}' for x in v['b'])}")
        if other == "BlogPlain":
            esc = {m: spread[m]["escape_epochs"] for m in (better, other)}
            measured += (f"; loss < 2.0 from epoch {', '.join(str(e or 'never') for e in esc[better])} ({better}) vs "
                         f"{', '.join(str(e or 'never') for e in esc[other])} ({other})")
        lead = f"{better} {'ahead' if v['gap'] >= 0 else 'behind'} by {100 * abs(v['gap']):.1f} points, {v['noise']}"
        rows.append({"claim": claim, "measured": measured, "verdict": lead})
    return rows


# The larger runs committed in results/ (notebook 04, section 3, and the README's verdicts)
SAVED_RUNS = ("04_sample_blog_protocol", "04_fashion_blog_protocol")


def readme_verdicts() -> str:
    """The README's verdict tables: :func:`format_verdicts` of each of :data:`SAVED_RUNS`."""
    return "\n\n".join(format_verdicts(load_result(name)) for name in SAVED_RUNS)


def format_verdicts(result: dict) -> str:
    """:func:`claim_verdicts` as a Markdown table, under a line that says what it was measured on."""
    lines = [f"Measured on: {describe(result)}; {result['protocol']['epochs']} epochs.", "",
             "| The blog's claim (epoch 30, full MNIST) | What we measured | Verdict |", "|---|---|---|"]
    lines += [f"| {r['claim']} | {r['measured']} | {r['verdict']} |" for r in claim_verdicts(result)]
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures

_COLORS = {"BlogCNN": "tab:orange", "BlogPlain": "tab:red", "BlogResNet": "tab:blue",
           "BlogCNN (PyTorch init)": "tab:brown", "BlogPlain (He init)": "tab:purple"}
_STYLES = {"BlogCNN (PyTorch init)": "--"}  # dashed: it may sit on the chance loss with the plain twin


def plot_curves(result: dict, name: str | None = "04_curves", title: str = ""):
    """Training loss (log) and test accuracy per epoch: one colour per model, one line per seed.

    Saved as ``figures/NAME.png`` (when ``name``); the title says what it was measured on.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from ...plots import finish_figure

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

    from ...plots import finish_figure

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
