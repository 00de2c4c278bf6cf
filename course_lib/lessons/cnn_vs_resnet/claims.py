"""Reading a result of ``run_compare`` against the blog's claims (notebook 04, the README's verdicts); every text
starts with what the result was measured on, never a machine path."""
from __future__ import annotations

import math
import re
import warnings
from typing import Sequence

from ...errors import ConfigError
from ...results import describe, load_result
from ...stats import ALPHA, MIN_SEEDS, Verdict, accuracy_interval, compare_accuracies, mean_sd
from .protocol import combine

# The blog's results table as it prints it: its column names (with our English) and its three rows.
BLOG_COLUMNS = (("轮次", "epoch"), ("传统CNN训练损失", "traditional CNN, training loss"),
                ("残差网络训练损失", "ResNet, training loss"), ("传统CNN验证准确率", "traditional CNN, \"validation\" accuracy"),
                ("残差网络验证准确率", "ResNet, \"validation\" accuracy"))
BLOG_TABLE = ((10, 1.2, 0.7, 0.90, 0.95), (20, 0.8, 0.2, 0.96, 0.98), (30, 0.2, 0.04, 0.97, 0.995))
# Its epoch-30 row, the numbers judged below (one run per model, full MNIST).
BLOG_CLAIMS = {"blog-cnn": {"epoch": 30, "train_loss": 0.2, "test_acc": 0.97},
               "blog-resnet": {"epoch": 30, "train_loss": 0.04, "test_acc": 0.995}}
BLOG_NAMES = {"blog-cnn": "the blog's CNN", "blog-resnet": "the blog's ResNet"}
COURSE_NAMES = {"blog-cnn": "BlogCNN (the course's reconstruction)", "blog-resnet": "BlogResNet"}
LENET5_ACC = 1 - 0.0095  # LeCun et al. 1998: LeNet-5, 0.95% test error on MNIST
MNIST_TEST_IMAGES = 10_000  # MNIST's test split: what the blog's accuracies were measured on

CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over 10 classes: 2.303
ESCAPE_LOSS = 2.0           # an epoch whose mean training loss is below this has left the chance loss
_DATASET_NAMES = {"sample": "the MNIST sample", "fashion": "Fashion-MNIST", "mnist": "MNIST"}
_MACHINE_PATH = re.compile(r"\s*\((?:/|~|[A-Za-z]:\\)[^()]*\)")  # " (/usr/share/...)" after a source name

# --------------------------------------------------------------------------- labels and small texts


def measured_on(result: dict) -> str:
    """:func:`course_lib.results.describe` of ``result``, without any machine path."""
    return _MACHINE_PATH.sub("", describe(result))


def measured_on_lines(result: dict) -> list[str]:
    """``["measured on: ..."]``, one line per part (naming its models) for a result made by ``combine``."""
    parts = result.get("meta", {}).get("parts")
    return ([f"measured on: {measured_on(p)} ({', '.join(p['models'])})" for p in parts] if parts else
            [f"measured on: {measured_on(result)}"])


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


def _dataset(result: dict) -> str:
    return _DATASET_NAMES.get(result["dataset"], result["dataset"])


def blog_table_markdown() -> str:
    """The blog's results table as it prints it (its Chinese column names, our English under them), then the 95%
    Wilson interval its epoch-30 accuracies would have on MNIST's 10,000 test images, and LeNet-5's for scale."""
    lines = ["| " + " | ".join(f"{zh}<br>({en})" for zh, en in BLOG_COLUMNS) + " |", "|---" * len(BLOG_COLUMNS) + "|"]
    lines += [f"| {e} | {a} | {b} | {c:.0%} | {d:.1%} |".replace(".0%", "%") for e, a, b, c, d in BLOG_TABLE]
    wilson = "; ".join(f"{BLOG_NAMES[m]} {c['test_acc']:.1%}: {_wilson(*accuracy_interval(c['test_acc'], MNIST_TEST_IMAGES))}"
                       for m, c in BLOG_CLAIMS.items())
    return "\n".join(lines + ["", f"95% Wilson interval on {MNIST_TEST_IMAGES:,} test images (ours): {wilson}. "
                                  f"LeNet-5 (LeCun et al. 1998): {LENET5_ACC:.2%}."])


# --------------------------------------------------------------------------- stalls and the spread over seeds


def escape_step(train_losses: Sequence[float], per_epoch: int, threshold: float = ESCAPE_LOSS) -> int | None:
    """The end step of the first epoch whose mean training loss is below ``threshold`` (by default: has left the
    chance loss ln 10 = 2.303); None if it never got there."""
    return next(((i + 1) * per_epoch for i, loss in enumerate(train_losses) if loss < threshold), None)


def seed_spread(result: dict) -> list[dict]:
    """Per model: rows ``{model, seeds, epoch, steps, accs, acc_mean, acc_sd, acc_low, acc_high, loss_mean,
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
                     "acc_low": low, "acc_high": high, "loss_mean": mean_sd(losses)[0], "loss_min": min(losses),
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
             f"  {'final loss (min-max)':>20}  left ln 10 (loss < 2.0) by step, per seed"]
    for r in seed_spread(result):
        loss = f"{_loss(r['loss_min'])}-{_loss(r['loss_max'])}" if len(r["seeds"]) > 1 else _loss(r["loss_min"])
        lines.append(f"{r['model']:<{w}}{len(r['seeds']):>6}  {_acc(r['accs']):>25}  "
                     f"{_wilson(r['acc_low'], r['acc_high']):>19}  {loss:>20}  {_stall(r)}")
    lines.append(f"(± sd: the spread over seeds. 95% Wilson: test-set noise only, from {n:,} test images, not seeds.)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- real differences


PAIRS = (("blog-resnet", "blog-plain"), ("blog-resnet", "blog-cnn"))  # the control first, then the blog's comparison


def p_text(p: float) -> str:
    """A p-value as the course prints it: ``p < 0.001`` below a thousandth (never ``p = 0.000``), else 2 digits."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


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
    if not exact:
        return f"**not verified**: measured on {where}; ours is {diff} the claim"
    if len(row["seeds"]) < MIN_SEEDS:
        return f"**not judged**: {len(row['seeds'])} seed(s); the course needs at least {MIN_SEEDS}"
    # the blog's number is one run: reproduced when it lies where one of our runs could land, test noise included
    low = min(accuracy_interval(a, n)[0] for a in row["accs"])
    high = max(accuracy_interval(a, n)[1] for a in row["accs"])
    return "**reproduced**" if low <= claim <= high else f"**not reproduced**: ours is {diff} the claim"


def _loss_verdict(loss: float, claim: float, exact: bool) -> str:
    direction = "lower" if loss < claim else "higher"
    if not exact:
        return f"**not comparable** (other data): ours is {direction}"
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
        rows.append({"claim": f"{BLOG_NAMES[model]}: train loss {claim['train_loss']}", "measured": measured,
                     "verdict": _loss_verdict(r["loss_mean"], claim["train_loss"], exact)})
        measured = (f"{COURSE_NAMES[model]}: {_mean_sd_text(r['accs'])} at step {r['steps']:,}; 95% Wilson "
                    f"{_wilson(*accuracy_interval(r['acc_mean'], n))} on {n:,} test images")
        rows.append({"claim": f"{BLOG_NAMES[model]}: test accuracy {claim['test_acc']:.1%}", "measured": measured,
                     "verdict": _accuracy_verdict(r, claim["test_acc"], n, exact, where)})
    implied = {("blog-resnet", "blog-cnn"): "ResNet vs CNN: \"有所提升\" (some improvement)",
               ("blog-resnet", "blog-plain"): "Implied: the skips are what make it better"}
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
_ZH = ((r"(\d+) seeds?(\(s\))?", r"\1 个种子"), (r"([\d.]+) points", r"\1 个百分点"), (r" at step ([\d,]+)", r"，第 \1 步"),
       (r"\*\*not comparable\*\* \(other data\): ours is ", "**不可比（数据不同）**：我们的"), ("the MNIST sample", "MNIST 样本"),
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
       (" > the wider Wilson half-width,", "大于较宽的 Wilson 半宽"), ("steps to leave ln 10", "离开 ln 10 的步数"),
       (r"never in (\d{1,3}(?:,\d{3})*)", r"\1 步内未离开"),
       (r"^(\S+) on (.+?): after ([\d,]+) SGD steps, ", r"\1，\2：\3 步 SGD 后，"),
       ("training loss|train loss", "训练损失"), (", test accuracy", "，测试准确率"), ("test accuracy", "测试准确率"),
       (r"it never left the chance loss ln 10 in ([\d,]+) steps", r"在 \1 步内始终没有离开机会损失 ln 10"),
       ("it left the chance loss ln 10 by step ", "离开机会损失 ln 10 的步数："), (" ahead by ", " 领先 "),
       (r'ResNet vs CNN: "有所提升" \(some improvement\)', "ResNet 对 CNN：“有所提升”"), (r"Implied: the skips[\w ]+better", "隐含：让它更好的是残差连接"),
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


# --------------------------------------------------------------------------- the blog claim by claim (04, the site)


def _depth_losses() -> str:
    """Notebook 01's saved sweep: mean final training loss per depth at its longest budget, plain / residual."""
    runs = (load_result("01_degradation_full") or {}).get("runs", [])
    last = max((r["steps"] for r in runs), default=0)
    mean = {(k, d): mean_sd([r["final_train_loss"] for r in runs if (r["kind"], r["depth"], r["steps"]) == (k, d, last)])[0]
            for k, d in {(r["kind"], r["depth"]) for r in runs}}
    depths = sorted({d for _, d in mean})
    return (f"{last:,} steps: " + " / ".join(f"{d}" for d in depths) + " layers, plain " +
            " / ".join(f"{mean[('plain', d)]:.2f}" for d in depths) + ", residual " +
            " / ".join(f"{mean[('residual', d)]:.3f}" for d in depths)) if runs else "not saved"


def claim_table() -> list[dict]:
    """Every claim of the blog, once: rows ``{claim, where, measured, verdict}``, each an ``(English, Chinese)`` pair,
    the numbers read from the saved results (:data:`SAVED_RUNS`, :data:`EXTRA_RUNS`, notebook 01's sweep)."""
    saved, fashion, variants, fashion_default = (load_result(n) for n in SAVED_RUNS + EXTRA_RUNS)
    sp, fa = ({r["model"]: r for r in seed_spread(x)} for x in (saved, fashion))
    var = {r["model"]: r for r in seed_spread(combine(saved, variants))}
    d = {(r["a"], r["b"]): r for r in differences(combine(saved, variants), PAIRS + (
        ("blog-resnet", "blog-cnn-pytorch-init"),))}
    cnn, plain, pt = d[("blog-resnet", "blog-cnn")], d[("blog-resnet", "blog-plain")], d[("blog-resnet", "blog-cnn-pytorch-init")]
    late = seed_spread(fashion_default)[0]
    acc = lambda m, zh=False: (f"{_acc(sp[m]['accs'])}（样本，3 个种子，{sp[m]['steps']:,} 步），{fa[m]['acc_mean']:.2%}"
                               "（Fashion-MNIST，1 个种子）" if zh else f"{_acc(sp[m]['accs'])} (sample, 3 seeds, "
                               f"{sp[m]['steps']:,} steps), {fa[m]['acc_mean']:.2%} (Fashion-MNIST, 1 seed)")
    gap = lambda r, zh=False: (f"{100 * r['verdict'].difference:+.2f} {'个百分点' if zh else 'points'}, "
                               f"{p_text(r['verdict'].p_value)}")
    esc = var["blog-plain"]["escape_steps"]
    esc = f"{min(s for s in esc if s):,}-{max(s for s in esc if s):,}"
    lenet = f"LeNet-5: {LENET5_ACC:.2%}"
    rows = [
        (("The table: epochs 10/20/30, \"训练损失\", \"验证准确率\"", "表格：第 10/20/30 轮，“训练损失”“验证准确率”"), "04 §1",
         ("its code scores the test split; each loss is one mini-batch's, printed every 100 batches; epoch 10: loss 1.2 next to 90%",
          "代码在测试集上评估；损失是每 100 个小批量打印一次的单个小批量损失；第 10 轮：损失 1.2、准确率 90%"),
         ("test accuracies called \"validation\"; losses not epoch means; 1.2 next to 90% is hard to square",
          "所谓“验证”其实是测试；损失不是整轮平均；1.2 与 90% 难以对上")),
        (("The CNN: channel comments and `nn.Linear(256*32*32, 20)`", "CNN：只有通道注释和 `nn.Linear(256*32*32, 20)`"),
         "04 §1", ("that head needs 32×32 maps, 3×32×32 inputs, 20 classes; BlogCNN is the course's reconstruction",
                   "这个输出层要求 32×32 特征图、3×32×32 输入、20 类；BlogCNN 是课程的重建版本"),
         ("cannot run on MNIST as printed", "按原样无法在 MNIST 上运行")),
        (("CNN, epoch 30: loss 0.2, 97%", "CNN 第 30 轮：损失 0.2，准确率 97%"), "04 §2, §6",
         (f"BlogCNN (the course's reconstruction, He init): {acc('blog-cnn')}; {lenet}",
          f"BlogCNN（课程的重建版本，He 初始化）：{acc('blog-cnn', True)}；{lenet}"),
         ("not verified (no run on full MNIST); 97% is low for a small CNN", "未验证（没有完整 MNIST 上的运行）；对小 CNN 来说 97% 偏低")),
        (("ResNet, epoch 30: loss 0.04, 99.5%", "ResNet 第 30 轮：损失 0.04，准确率 99.5%"), "04 §2, §6",
         (f"BlogResNet: {acc('blog-resnet')}", f"BlogResNet：{acc('blog-resnet', True)}"),
         ("not verified (no run on full MNIST)", "未验证（没有完整 MNIST 上的运行）")),
        (("ResNet vs CNN: \"有所提升\" (some improvement)", "ResNet 比 CNN“有所提升”"), "04 §3, §4",
         (f"sample, CNN with He init: {gap(cnn)}; both from PyTorch's default init: {gap(pt)}, the CNN never left ln 10 "
          f"in {var['blog-cnn-pytorch-init']['steps']:,} steps; on Fashion-MNIST that CNN left it by step "
          f"{late['escape_steps'][0]:,} (1 seed)",
          f"样本上，CNN 用 He 初始化：{gap(cnn, True)}；两者都用 PyTorch 默认初始化：{gap(pt, True)}，CNN 在 "
          f"{var['blog-cnn-pytorch-init']['steps']:,} 步内没有离开 ln 10；在 Fashion-MNIST 上它到第 "
          f"{late['escape_steps'][0]:,} 步才离开（1 个种子）"),
         ("not shown: the only real gap is a stall, not the architecture", "未显示：唯一的真实差异来自停滞，不是结构")),
        (("Implied: the skips make the difference", "隐含：差别来自残差连接"), "04 §3, §4",
         (f"BlogResNet vs its plain twin: {gap(plain)}; the twin leaves ln 10 by step "
          f"{esc}"
          f" (He init: {max(var['blog-plain-he-init']['escape_steps'])} at most)",
          f"BlogResNet 对对照普通网络：{gap(plain, True)}；对照普通网络到第 "
          f"{esc}"
          f" 步才离开 ln 10（He 初始化：最多 {max(var['blog-plain-he-init']['escape_steps'])} 步）"),
         ("not shown at the end; the skips shorten the start", "最终差距未显示；残差连接缩短了起步的停滞")),
        (("Degradation: deeper, higher \"训练误差\", \"不是过拟合\"", "退化：更深，“训练误差”反而更高，“不是过拟合”"), "01 §2",
         (f"results/01_degradation_full.json, final training loss after {_depth_losses()}",
          "results/01_degradation_full.json，最终训练损失，" + _depth_losses().replace(" steps", " 步").replace("layers, plain", "层，普通网络").replace(", residual", "，残差网络")),
         ("reproduced in kind on the sample", "在样本上定性地复现")),
        (("\"例如超过30层\" (e.g. over 30 layers)", "“例如超过30层”"), "01 §2",
         ("the same sweep: depths 8, 32, 56 only", "同一组实验：只有 8、32、56 层"),
         ("no threshold measured; 32 layers already degrade there", "没有测出阈值；那里 32 层已经退化")),
        (("Vanishing / exploding gradients", "梯度消失 / 梯度爆炸"), "02 §3",
         ("at init, PyTorch's default init: plain nets' gradient shrinks with depth without BatchNorm, grows with it; "
          "residual nets' changes far less", "初始化时（PyTorch 默认初始化）：普通网络的梯度没有批量归一化时随深度变小，有批量归一化时变大；残差网络变化小得多"),
         ("both seen; which one depends on normalisation", "两者都出现；出现哪一个取决于归一化")),
        (("(He et al.'s, not the blog's) extra layers need only learn the identity", "（He 等人的论证，不是博客的）多出的层只需学成恒等映射"),
         "01 §3", ("the argument, and the identity skip the student writes", "这个论证，以及学生自己写的恒等残差连接"),
         ("not a claim of the blog", "不是博客的说法")),
        (("Basic vs bottleneck block, by whether input and output dimensions match", "基本块与瓶颈块之分，看输入输出维度是否相同"),
         "02, \"The blog's two kinds of block\"", ("blocks of the built ResNets counted by kind and by shortcut",
                                                  "按块的种类和捷径的种类清点已搭好的 ResNet"),
         ("mixed up: shapes decide the shortcut (identity or projection); basic or bottleneck is about cost",
          "混淆了：形状决定捷径（恒等或投影）；基本块还是瓶颈块取决于计算成本")),
    ]
    return [dict(zip(("claim", "where", "measured", "verdict"), (c, (w, w), m, v))) for c, w, m, v in rows]


def claim_table_markdown(lang: str = "en") -> str:
    """:func:`claim_table` as one Markdown table, ``lang`` ``"en"`` or ``"zh"``."""
    i = {"en": 0, "zh": 1}[lang]
    head = (("the blog's claim", "where the course tests it", "what the course measured", "verdict"),
            ("博客的说法", "课程在哪里检验", "课程测得的", "判定"))[i]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row[k][i] for k in ("claim", "where", "measured", "verdict")) + " |" for row in claim_table()]
    return "\n".join(lines)


def blog_claims_page() -> str:
    """docs/blog_claims.md, to the letter: the blog's table, then :func:`claim_table_markdown` in English and Chinese."""
    return "\n".join([
        "# The blog, claim by claim · 博客的结论逐条检验", "",
        "The Chinese blog post this course starts from (the course's files do not record its title) trains a small "
        "ResNet and a \"traditional CNN\" on MNIST. Each row: its claim (its key words quoted), where the course tests "
        "it, what the course measured (from the saved results in `results/`), and the verdict. Generated by "
        "`course_lib.lessons.cnn_vs_resnet.claims.blog_claims_page()`; notebook 04 shows the same table.", "",
        "本课程的出发点是一篇中文博客（课程文件里没有记下它的标题），它在 MNIST 上比较一个小 ResNet 和一个“传统 CNN”。"
        "每行依次是：博客的说法（关键词加引号）、课程在哪里检验、课程测得的结果（来自 `results/` 里保存的结果）、判定。", "",
        "## The blog's table, as it prints it · 博客的表格", "", blog_table_markdown(), "",
        "## English", "", claim_table_markdown("en"), "", "## 中文", "", claim_table_markdown("zh"), ""])
