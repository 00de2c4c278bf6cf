"""Reading a result of :func:`course_lib.lessons.cnn_vs_resnet.protocol.run_compare` against the blog's claims.

* the blog's results table, restated (:func:`blog_claims_markdown`);
* the spread over seeds with each accuracy's 95% Wilson interval, and each run's stall in SGD steps
  (:func:`seed_spread`);
* how fast the plain twin learns once it has left the chance loss (:func:`learning_speed`);
* the course's rule for a real difference applied to two models, with Welch's 95% confidence interval of the
  difference (:func:`differences`, :func:`welch_interval`), and how many comparisons a notebook made
  (:func:`format_family_rate`);
* a plain verdict on each claim (:func:`claim_verdicts`), which the notebook and the README print from the
  saved results, so their numbers cannot drift.

Every statistic comes from :mod:`course_lib.stats`. Every ``format_*`` function starts with a line saying what
the result was measured on (:func:`measured_on`: data and source, device, profile; never a machine path).
The figures are in :mod:`course_lib.lessons.cnn_vs_resnet.figures`.
"""
from __future__ import annotations

import math
import re
import warnings
from typing import Sequence

from ...errors import ConfigError
from ...results import describe, load_result
from ...stats import ALPHA, MIN_SEEDS, Verdict, accuracy_interval, compare_accuracies, mean_sd

# What the blog reports after 30 epochs on full MNIST (train loss, test accuracy), one run per model.
BLOG_CLAIMS = {
    "BlogCNN": {"epoch": 30, "train_loss": 0.2, "test_acc": 0.97},
    "BlogResNet": {"epoch": 30, "train_loss": 0.04, "test_acc": 0.995},
}
# The blog's table restated in the course's words: its column names in Chinese and English, its row names.
# Chinese first, English in full-width parentheses, in every cell.
BLOG_COLUMNS = (("模型", "model"), ("训练轮数", "epochs"), ("训练损失", "training loss"),
                ("测试准确率", "test accuracy"))
BLOG_ROW_NAMES = {"BlogCNN": "传统 CNN（traditional CNN）", "BlogResNet": "残差网络（ResNet）"}
MNIST_TEST_IMAGES = 10_000  # MNIST's test split: what the blog's accuracies were measured on

CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over 10 classes: 2.303
ESCAPE_LOSS = 2.0           # an epoch whose mean training loss is below this has left the chance loss
LEARNED_LOSS = 0.3          # ... and below this, the net has learned most of the training set
_DATASET_NAMES = {"sample": "the MNIST sample", "fashion": "Fashion-MNIST", "mnist": "MNIST"}
_MACHINE_PATH = re.compile(r"\s*\((?:/|~|[A-Za-z]:\\)[^()]*\)")  # " (/usr/share/...)" after a source name


# --------------------------------------------------------------------------- labels


def measured_on(result: dict) -> str:
    """:func:`course_lib.results.describe` of ``result``, with any machine path in parentheses removed."""
    return _MACHINE_PATH.sub("", describe(result))


def measured_on_lines(result: dict) -> list[str]:
    """``["measured on: ..."]``: one line for a single result; for one made by
    :func:`~course_lib.lessons.cnn_vs_resnet.protocol.combine`, one line per part naming its models, so that each
    row's run date and source stay visible."""
    parts = result.get("meta", {}).get("parts")
    if not parts:
        return [f"measured on: {measured_on(result)}"]
    return [f"measured on: {measured_on(p)} ({', '.join(p['models'])})" for p in parts]


def steps_per_epoch(result: dict) -> int:
    """SGD steps in one epoch of ``result``: its training images divided by the batch size, rounded up."""
    return math.ceil((result["meta"].get("n_train") or 0) / result["protocol"]["batch_size"])


def n_test(result: dict) -> int:
    """How many test images each accuracy of ``result`` was measured on."""
    return int(result["meta"].get("n_test") or 0)


def runs_by_model(result: dict) -> dict[str, list[dict]]:
    """The runs of ``result`` grouped by model name, in the order they were trained."""
    out: dict[str, list[dict]] = {}
    for run in result["runs"]:
        out.setdefault(run["model"], []).append(run)
    return out


def final_accuracies(result: dict, model: str) -> list[float]:
    """The final test accuracy of each seed of ``model`` in ``result`` (fractions, in seed order)."""
    return [run["history"][-1]["test_acc"] for run in runs_by_model(result).get(model, []) if run["history"]]


def _pct_interval(acc: float, n: int) -> str:
    lo, hi = accuracy_interval(acc, n)
    return f"{100 * lo:.1f}-{100 * hi:.1f}%"


def _loss(x: float) -> str:
    return f"{x:.4f}" if x >= 1e-3 else f"{x:.1e}"


# --------------------------------------------------------------------------- the blog's table


def blog_claims_markdown() -> str:
    """The blog's results table as Markdown: its columns in Chinese and English, and the 95% Wilson interval
    each of its accuracies would have on MNIST's 10,000 test images."""
    head = " | ".join(f"{zh}（{en}）" for zh, en in BLOG_COLUMNS)
    lines = [f"| {head} | 95% Wilson interval on {MNIST_TEST_IMAGES:,} test images (ours) |",
             "|---|---|---|---|---|"]
    for model, c in BLOG_CLAIMS.items():
        lines.append(f"| {BLOG_ROW_NAMES[model]} | {c['epoch']} | {c['train_loss']} | {c['test_acc']:.1%} | "
                     f"{_pct_interval(c['test_acc'], MNIST_TEST_IMAGES)} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- stalls and the spread over seeds


def escape_epoch(train_losses: Sequence[float], threshold: float = ESCAPE_LOSS) -> int | None:
    """First epoch (1-based) whose mean training loss is below ``threshold``; None if it never got there.

    A net that has learned nothing sits at the chance loss ln 10 = 2.303; below 2.0 it has left it.
    """
    return next((i + 1 for i, loss in enumerate(train_losses) if loss < threshold), None)


def _steps(epoch: int | None, per_epoch: int) -> int | None:
    return None if epoch is None else epoch * per_epoch


def seed_spread(result: dict) -> list[dict]:
    """Per model: the final test accuracy over seeds and the stall of each seed, in epochs and SGD steps.

    Rows ``{model, seeds, epoch, steps, acc_mean, acc_sd, acc_min, acc_max, acc_low, acc_high, loss_mean,
    loss_min, loss_max, escape_epochs, escape_steps}``. ``acc_low``/``acc_high`` is the 95% Wilson interval of
    the mean accuracy on the result's test images; ``escape_steps`` counts to the end of the first epoch whose
    mean loss is below 2.0 (None: never), so its resolution is one epoch.
    """
    per_epoch, n = steps_per_epoch(result), n_test(result)
    rows = []
    for model, runs in runs_by_model(result).items():
        finals = [run["history"][-1] for run in runs if run["history"]]
        accs = [f["test_acc"] for f in finals]
        losses = [f["train_loss"] for f in finals]
        mean, sd = mean_sd(accs)
        low, high = accuracy_interval(mean, n) if n else (float("nan"), float("nan"))
        escapes = [escape_epoch([r["train_loss"] for r in run["history"]]) for run in runs]
        epoch = finals[0]["epoch"] if finals else 0
        rows.append({"model": model, "seeds": [run["seed"] for run in runs], "epoch": epoch,
                     "steps": epoch * per_epoch, "acc_mean": mean, "acc_sd": sd, "acc_min": min(accs),
                     "acc_max": max(accs), "acc_low": low, "acc_high": high, "loss_mean": mean_sd(losses)[0],
                     "loss_min": min(losses), "loss_max": max(losses), "escape_epochs": escapes,
                     "escape_steps": [_steps(e, per_epoch) for e in escapes]})
    return rows


def _stall(row: dict) -> str:
    return ", ".join(f"never in {row['steps']:,}" if s is None else f"{s:,}" for s in row["escape_steps"])


def format_seed_spread(result: dict) -> str:
    """:func:`seed_spread` as text, under a line saying what it was measured on."""
    w = max([11] + [len(run["model"]) + 1 for run in result["runs"]])
    n = n_test(result)
    lines = [*measured_on_lines(result), f"{result['protocol']['epochs']} epochs of {steps_per_epoch(result):,} "
             "SGD steps each",
             f"{'model':<{w}}{'seeds':>6}  {'final test acc, mean ± sd':>25}  {f'95% Wilson, n={n:,}':>19}"
             f"  {'final loss (min-max)':>20}  left ln 10 (loss < 2.0) by step, per seed"]
    for r in seed_spread(result):
        acc = f"{r['acc_mean']:.2%} ± {100 * r['acc_sd']:.2f}" if len(r["seeds"]) > 1 else f"{r['acc_mean']:.2%}"
        wilson = f"{100 * r['acc_low']:.1f}-{100 * r['acc_high']:.1f}%"
        loss = f"{_loss(r['loss_min'])}-{_loss(r['loss_max'])}" if len(r["seeds"]) > 1 else _loss(r["loss_min"])
        lines.append(f"{r['model']:<{w}}{len(r['seeds']):>6}  {acc:>25}  {wilson:>19}  {loss:>20}  {_stall(r)}")
    lines.append(f"(± sd: the spread over seeds. 95% Wilson: test-set noise only, from {n:,} test images, not seeds.)")
    return "\n".join(lines)


def format_first_epochs(result: dict, epochs: int = 8, seed: int = 0) -> str:
    """The first ``epochs`` epochs of every model of ``result`` for one ``seed``, side by side: the epoch's end step,
    then each model's mean training loss and test accuracy after it. An epoch's mean loss averages all its steps,
    so a mean well above its neighbours' can hide a stall in part of that epoch."""
    per_epoch = steps_per_epoch(result)
    runs = {m: next((r for r in rs if r["seed"] == seed), None) for m, rs in runs_by_model(result).items()}
    runs = {m: r for m, r in runs.items() if r is not None}
    w = max([15] + [len(m) + 2 for m in runs])
    lines = [*measured_on_lines(result), f"seed {seed}: mean training loss of the epoch / test accuracy after it",
             f"{'epoch':>5} {'to step':>8}" + "".join(f"{m:>{w}}" for m in runs)]
    for e in range(epochs):
        cells = [f"{r['history'][e]['train_loss']:.3f} / {r['history'][e]['test_acc']:.1%}"
                 if e < len(r["history"]) else "" for r in runs.values()]
        lines.append(f"{e + 1:>5} {(e + 1) * per_epoch:>8,}" + "".join(f"{c:>{w}}" for c in cells))
    return "\n".join(lines)


# --------------------------------------------------------------------------- slow start, or slower learning too?


def learning_speed(result: dict, models: Sequence[str] = ("BlogPlain", "BlogResNet"),
                   learned: float = LEARNED_LOSS) -> list[dict]:
    """Per seed and model: when the run left the chance loss, and how many SGD steps it then needed to reach
    ``learned``. A plain net that needs about as many steps as its residual twin once it has left ln 10 had a
    slow start; one that needs many more also learns slower after its start.

    Rows ``{seed, model, escape_step, learned_step, steps_after}`` (None where the run never got there);
    step counts are at epoch ends, so their resolution is one epoch (:func:`steps_per_epoch`).
    """
    per_epoch = steps_per_epoch(result)
    runs = runs_by_model(result)
    rows = []
    for seed in sorted({run["seed"] for m in models for run in runs.get(m, [])}):
        for model in models:
            run = next((r for r in runs.get(model, []) if r["seed"] == seed), None)
            if run is None:
                continue
            losses = [r["train_loss"] for r in run["history"]]
            esc, done = _steps(escape_epoch(losses), per_epoch), _steps(escape_epoch(losses, learned), per_epoch)
            rows.append({"seed": seed, "model": model, "escape_step": esc, "learned_step": done,
                         "steps_after": None if esc is None or done is None else done - esc})
    return rows


def format_learning_speed(result: dict, learned: float = LEARNED_LOSS) -> str:
    """:func:`learning_speed` as text, one line per seed and model."""
    per_epoch = steps_per_epoch(result)
    total = result["protocol"]["epochs"] * per_epoch
    lines = [*measured_on_lines(result), f"step counts at epoch ends (1 epoch = {per_epoch:,} steps)"]
    for r in learning_speed(result, learned=learned):
        if r["escape_step"] is None:
            text = f"never left ln 10 in {total:,} steps"
        elif r["learned_step"] is None:
            text = f"left ln 10 by step {r['escape_step']:,}; never reached loss {learned} in {total:,} steps"
        else:
            text = (f"left ln 10 by step {r['escape_step']:,}, reached loss {learned} by step "
                    f"{r['learned_step']:,}: {r['steps_after']:,} steps after leaving ln 10")
        lines.append(f"seed {r['seed']}  {r['model']:<11} {text}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- real differences


PAIRS = (("BlogResNet", "BlogPlain"), ("BlogResNet", "BlogCNN"))  # the control first, then the blog's comparison


def p_text(p: float) -> str:
    """A p-value as the course prints it: ``p < 0.001`` below a thousandth (never ``p = 0.000``), else 2 digits."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """``(difference, low, high)``: mean(a) - mean(b) and its Welch confidence interval at ``level``.

    The standard error is sqrt(var_a/n_a + var_b/n_b) with the sample variances over seeds; the degrees of freedom
    come from the Welch-Satterthwaite equation. Each group needs at least 2 values. When both variances are 0 the
    interval is the difference itself.
    """
    from scipy import stats as _st

    if min(len(a), len(b)) < 2:
        raise ConfigError(f"welch_interval needs at least 2 values per group, got {len(a)} and {len(b)}")
    (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
    va, vb = sa * sa / len(a), sb * sb / len(b)
    diff = ma - mb
    if va + vb == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    half = float(_st.t.ppf(0.5 + level / 2, df)) * math.sqrt(va + vb)
    return diff, diff - half, diff + half


def rule_text(v: Verdict) -> str:
    """The course's verdict in words: *not evidence*, *not shown to be real*, *too small for the test set* or
    *a real difference*, with Welch's p (:func:`p_text`) and the wider of the two means' Wilson half-widths."""
    if v.p_value is None:
        return v.reason
    gap, half = f"{100 * abs(v.difference):.2f} points", f"{100 * v.half_width:.1f} points"
    inside = abs(v.difference) <= v.half_width
    if v.p_value >= ALPHA:
        also = f"; {gap} is also inside the wider Wilson half-width, {half}" if inside else ""
        return f"not shown to be real (Welch {p_text(v.p_value)} >= {ALPHA}{also})"
    below = p_text(v.p_value) + ("" if v.p_value < 0.001 else f" < {ALPHA}")
    if inside:
        return f"too small for the test set: Welch {below}, but {gap} is inside the wider Wilson half-width, {half}"
    return f"a real difference (Welch {below}; {gap} > the wider Wilson half-width, {half})"


def differences(result: dict, pairs: Sequence[tuple[str, str]] = PAIRS) -> list[dict]:
    """The course's rule (:func:`course_lib.stats.compare_accuracies`) applied to each pair of models.

    Rows ``{a, b, acc_a, acc_b, verdict, interval}``; ``verdict`` is a :class:`course_lib.stats.Verdict`,
    ``interval`` the :func:`welch_interval` of mean(a) - mean(b) (None with fewer than 2 seeds).
    """
    rows = []
    for a, b in pairs:
        acc_a, acc_b = final_accuracies(result, a), final_accuracies(result, b)
        if acc_a and acc_b:
            with warnings.catch_warnings():
                # a model stuck at chance gives identical accuracies over seeds (sd 0); scipy warns about precision,
                # but Welch's test is still defined by the other model's spread
                warnings.simplefilter("ignore", RuntimeWarning)
                verdict = compare_accuracies(acc_a, acc_b, n_test(result))
            interval = welch_interval(acc_a, acc_b) if min(len(acc_a), len(acc_b)) >= 2 else None
            rows.append({"a": a, "b": b, "acc_a": acc_a, "acc_b": acc_b, "verdict": verdict, "interval": interval})
    return rows


def _mean_sd_text(accs: Sequence[float]) -> str:
    mean, sd = mean_sd(accs)
    return f"{mean:.2%} ± {100 * sd:.2f} ({len(accs)} seeds)" if len(accs) > 1 else f"{mean:.2%} (1 seed)"


def _difference_text(row: dict) -> str:
    if row["interval"] is None:
        return f"{100 * row['verdict'].difference:+.2f} points"
    d, lo, hi = (100 * x for x in row["interval"])
    return f"{d:+.2f} points, Welch 95% CI [{lo:+.2f}, {hi:+.2f}]"


def format_differences(result: dict, pairs: Sequence[tuple[str, str]] = PAIRS) -> str:
    """:func:`differences` as text: mean ± sd of each model, the difference with its Welch 95% confidence
    interval, and the rule's verdict (:func:`rule_text`)."""
    lines = [*measured_on_lines(result), f"final test accuracy on {n_test(result):,} images"]
    for r in differences(result, pairs):
        lines.append(f"{r['a']} {_mean_sd_text(r['acc_a'])} vs {r['b']} {_mean_sd_text(r['acc_b'])}: "
                     f"difference {_difference_text(r)} -> {rule_text(r['verdict'])}")
    return "\n".join(lines)


def tested_comparisons(*checks: tuple[dict, Sequence[tuple[str, str]]]) -> int:
    """How many of the ``(result, pairs)`` comparisons went through Welch's test (at least 3 seeds per model)."""
    return sum(d["verdict"].p_value is not None for result, pairs in checks for d in differences(result, pairs))


def format_family_rate(k: int) -> str:
    """What the rule's 5% false-positive rate per comparison means after ``k`` comparisons."""
    return (f"Welch's test ran {k} times here (pairs with at least {MIN_SEEDS} seeds each), each with a "
            f"{ALPHA:.0%} false-positive rate. Were all the models equally good, the chance of at least one false "
            f"positive among them would be 1 - {1 - ALPHA}^{k} = {1 - (1 - ALPHA) ** k:.0%} for independent "
            f"comparisons, and at most {k} x {ALPHA:.0%} = {min(1.0, k * ALPHA):.0%} whatever their dependence.")


def format_skips_lead(*labelled: tuple[str, dict]) -> str:
    """For each ``(label, result)``: the rule's verdict on BlogResNet vs BlogPlain at the result's last step, and in
    how many seeds BlogPlain had left ln 10 by then, so that a lead which is only the plain twin's late start reads
    as one."""
    lines = []
    for label, result in labelled:
        d = next(iter(differences(result, [("BlogResNet", "BlogPlain")])), None)
        row = next((r for r in seed_spread(result) if r["model"] == "BlogPlain"), None)
        if d is None or row is None:
            continue
        k, left = len(row["seeds"]), sum(s is not None for s in row["escape_steps"])
        seeds = f"{k} seed{'s' * (k > 1)}"
        lines.append(f"{label} ({_DATASET_NAMES.get(result['dataset'], result['dataset'])}, {seeds}), step "
                     f"{row['steps']:,}: BlogResNet {'ahead' if d['verdict'].difference >= 0 else 'behind'} by "
                     f"{100 * abs(d['verdict'].difference):.2f} points -> {rule_text(d['verdict'])}; BlogPlain had "
                     f"left ln 10 in {left} of {seeds} by then")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the verdict on each claim


def _accuracy_verdict(row: dict, claim: float, n: int, exact: bool, where: str) -> str:
    diff = f"{100 * abs(row['acc_mean'] - claim):.1f} points {'below' if row['acc_mean'] < claim else 'above'}"
    if not exact:
        return f"**not verified**: measured on {where}; ours is {diff} the claim"
    if len(row["seeds"]) < MIN_SEEDS:
        return f"**not judged**: {len(row['seeds'])} seed(s); the course needs at least {MIN_SEEDS}"
    # the blog's number is one run: reproduced when it lies where one of our runs could land, test noise included
    low = min(accuracy_interval(a, n)[0] for a in row["accs"])
    high = max(accuracy_interval(a, n)[1] for a in row["accs"])
    return "**reproduced**" if low <= claim <= high else f"**not reproduced**: ours is {diff} the claim"


def claim_verdicts(result: dict) -> list[dict]:
    """The blog's claims, each next to what ``result`` measured and a plain verdict.

    Rows ``{claim, measured, verdict}`` (strings). A claim is judged *reproduced* or *not reproduced* only when
    ``result`` ran the blog's exact protocol (full MNIST, 30 epochs) with at least 3 seeds; on other data a
    training loss is *not comparable* (it depends on the data) and an accuracy *not verified*, with the direction
    of the difference said. On the exact protocol an accuracy is reproduced when the blog's number lies inside
    the range of our seeds widened by each seed's 95% Wilson interval, a training loss when it is within a factor
    of 2 of our mean. The two implied claims are judged with the course's rule (:func:`differences`).
    """
    exact = bool(result.get("meta", {}).get("blog_protocol_exact"))
    n = n_test(result)
    spread = {r["model"]: r for r in seed_spread(result)}
    where = ("full MNIST" if exact else f"{_DATASET_NAMES.get(result['dataset'], result['dataset'])}, "
             "not full MNIST")
    rows = []
    for model, claim in BLOG_CLAIMS.items():
        r = spread.get(model)
        if r is None:
            continue
        r = dict(r, accs=final_accuracies(result, model))
        seeds = f"{len(r['seeds'])} seed{'s' * (len(r['seeds']) > 1)}"
        loss, c_loss = r["loss_mean"], claim["train_loss"]
        measured = f"{_loss(loss)} at step {r['steps']:,} ({seeds}" + (
            f": {_loss(r['loss_min'])}-{_loss(r['loss_max'])})" if len(r["seeds"]) > 1 else ")")
        if all(s is None for s in r["escape_steps"]):
            measured += f"; it never left the chance loss ln 10 in {r['steps']:,} steps"
        if exact:
            verdict = ("**reproduced**" if 0.5 <= loss / c_loss <= 2 else
                       f"**not reproduced**: ours is {max(loss / c_loss, c_loss / loss):.0f}x "
                       f"{'lower' if loss < c_loss else 'higher'}")
        else:
            verdict = (f"**not comparable** (other data): ours is "
                       f"{'lower' if loss < c_loss else 'higher'}")
        rows.append({"claim": f"{model}: train loss {c_loss}", "measured": measured, "verdict": verdict})
        measured = (f"{_mean_sd_text(r['accs'])} at step {r['steps']:,}; 95% Wilson {_pct_interval(r['acc_mean'], n)} "
                    f"on {n:,} test images")
        rows.append({"claim": f"{model}: test accuracy {claim['test_acc']:.1%}", "measured": measured,
                     "verdict": _accuracy_verdict(r, claim["test_acc"], n, exact, where)})
    claims = {("BlogResNet", "BlogCNN"): "Implied: the ResNet beats the CNN",
              ("BlogResNet", "BlogPlain"): "Implied: the skips are what make it better"}
    for d in differences(result, list(claims)):
        v = d["verdict"]
        measured = (f"{d['a']} {_mean_sd_text(d['acc_a'])} vs {d['b']} {_mean_sd_text(d['acc_b'])}; difference "
                    f"{_difference_text(d)}")
        if d["b"] == "BlogPlain":
            measured += (f"; steps to leave ln 10: {_stall(spread[d['a']])} ({d['a']}) vs "
                         f"{_stall(spread[d['b']])} ({d['b']})")
        lead = f"{d['a']} {'ahead' if v.difference >= 0 else 'behind'} by {100 * abs(v.difference):.2f} points: "
        rows.append({"claim": claims[(d["a"], d["b"])], "measured": measured,
                     "verdict": lead + rule_text(v).replace("a real difference", "**a real difference**", 1)})
    return rows


# The larger runs committed in results/ (notebook 04, and the README's verdicts), and the run of BlogCNN from
# PyTorch's default initialisation at the blog's scale
SAVED_RUNS = ("04_sample_blog_protocol", "04_fashion_blog_protocol")
DEFAULT_INIT_RUN = "04_fashion_cnn_pytorch_init"
EXTRA_RUNS = ("04_sample_init_variants", DEFAULT_INIT_RUN)  # summarised in one line per model in the README


def format_verdicts(result: dict) -> str:
    """:func:`claim_verdicts` as a Markdown table, under a line that says what it was measured on."""
    lines = [f"Measured on: {measured_on(result)}; {result['protocol']['epochs']} epochs "
             f"({result['protocol']['epochs'] * steps_per_epoch(result):,} SGD steps).", "",
             "| The blog's claim (epoch 30, full MNIST) | What we measured | Verdict |", "|---|---|---|"]
    lines += [f"| {r['claim']} | {r['measured']} | {r['verdict']} |" for r in claim_verdicts(result)]
    return "\n".join(lines)


def format_run_summary(result: dict) -> str:
    """One Markdown line per model of ``result``: final loss and accuracy (Wilson interval) and when it left ln 10."""
    n = n_test(result)
    lines = []
    for r in seed_spread(result):
        acc = f"{r['acc_mean']:.2%}" + (f" ± {100 * r['acc_sd']:.2f}" if len(r["seeds"]) > 1 else "")
        stall = (f"it never left the chance loss ln 10 in {r['steps']:,} steps" if all(
                     s is None for s in r["escape_steps"]) else
                 f"it left the chance loss ln 10 by step {_stall(r)}")
        lines.append(f"{r['model']} on {measured_on(result)}: after {r['steps']:,} SGD steps, "
                     f"{len(r['seeds'])} seed{'s' * (len(r['seeds']) > 1)}: training loss {_loss(r['loss_mean'])}, "
                     f"test accuracy {acc} (95% Wilson {100 * r['acc_low']:.1f}-{100 * r['acc_high']:.1f}% on "
                     f"{n:,} images); {stall}.")
    return "\n".join(lines)


def readme_verdicts() -> str:
    """The README's verdict tables: the rule used, :func:`format_verdicts` of each of :data:`SAVED_RUNS`, and the
    runs of :data:`EXTRA_RUNS` (the other initialisations) in one line per model."""
    rule = (f"Rule for a real difference (`course_lib.stats.compare_accuracies`): at least {MIN_SEEDS} seeds per "
            f"model, Welch's t-test p < {ALPHA} ({ALPHA:.0%} false positives per comparison) and a gap wider than the "
            f"95% Wilson half-width. Wilson intervals are test-set noise only; ± is the sd over seeds.")
    extra = [load_result(name) for name in EXTRA_RUNS]
    tail = [format_run_summary(r) for r in extra if r is not None]
    return "\n\n".join([rule] + [format_verdicts(load_result(name)) for name in SAVED_RUNS] + tail)
