"""Tests for course_lib.lessons.cnn_vs_resnet.claims and .figures (notebook 04): the blog's table, stalls in steps,
the spread over seeds with Wilson intervals, learning speed, the rule for a real difference, verdicts, figures,
and the README's verdict tables."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from course_lib.lessons.cnn_vs_resnet import blog_claims, claims, figures
from course_lib.lessons.cnn_vs_resnet import protocol as cmp
from course_lib.errors import ConfigError
from course_lib.stats import wilson_interval

ROOT = Path(__file__).resolve().parent.parent


def _fake(curves: dict[str, list[list[float]]], accs: dict[str, list[list[float]]] | None = None,
          n_train: int = 640, n_test: int = 1000) -> dict:
    runs = []
    for model, per_seed in curves.items():
        for seed, losses in enumerate(per_seed):
            acc = accs[model][seed] if accs else [0.5] * len(losses)
            runs.append({"model": model, "seed": seed, "params": 1,
                         "history": [{"epoch": i + 1, "train_loss": l, "test_acc": a, "seconds": 1.0}
                                     for i, (l, a) in enumerate(zip(losses, acc))]})
    n = len(next(iter(curves.values()))[0])
    return {"dataset": "sample", "source": "test", "device": "cpu", "profile": "smoke",
            "protocol": dict(cmp.BLOG_PROTOCOL, epochs=n), "runs": runs,
            "meta": {"dataset": "sample", "source": "test", "profile": "smoke", "date": "today",
                     "n_train": n_train, "n_test": n_test}}


def test_blog_table_keeps_its_three_rows_and_its_own_column_names():
    text = claims.blog_table_markdown()
    for zh in ("轮次", "传统CNN训练损失", "残差网络训练损失", "传统CNN验证准确率", "残差网络验证准确率"):
        assert f"| {zh}<br>(" in text or f"| {zh}<br>" in text
    for row in ("| 10 | 1.2 | 0.7 | 90% | 95% |", "| 20 | 0.8 | 0.2 | 96% | 98% |", "| 30 | 0.2 | 0.04 | 97% | 99.5% |"):
        assert row in text
    lo, hi = wilson_interval(9950, 10_000)
    assert f"{100 * lo:.1f}-{100 * hi:.1f}%" in text and "LeNet-5" in text and "99.05%" in text


def test_claim_table_covers_every_claim_in_both_languages_and_is_the_sites_page():
    rows = blog_claims.claim_table()
    en = " ".join(r["claim"][0] for r in rows)
    for claim in ("有所提升", "例如超过30层", "Vanishing", "identity", "bottleneck", "Degradation", "epochs 10/20/30",
                  "256·32·32 → 20"):
        assert claim in en, claim
    assert all(len(r[k]) == 2 and all(r[k]) for r in rows for k in ("claim", "where", "measured", "verdict"))
    assert "He et al.'s, not the blog's" in en and "BlogCNN: test accuracy" not in blog_claims.claim_table_markdown()
    page = (ROOT / "docs" / "blog_claims.md").read_text(encoding="utf-8")
    assert page == blog_claims.blog_claims_page(), (
        "docs/blog_claims.md is out of date; rewrite it with: python -c \"from course_lib.lessons.cnn_vs_resnet "
        "import blog_claims; open('docs/blog_claims.md', 'w').write(blog_claims.blog_claims_page())\"")
    assert "(docs/blog_claims.md)" in (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "(docs/blog_claims.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_no_committed_result_says_full_without_full_mnist():
    for path in sorted((ROOT / "results").glob("04_*.json")):
        result = json.loads(path.read_text())
        meta = result["meta"]
        assert meta["protocol"] == "blog" and "profile" not in result, path.name
        assert meta.get("profile") != "full" or (meta["dataset"] == "mnist" and meta["full_data"]), path.name
        assert "full" not in claims.measured_on(result).replace("full MNIST", ""), path.name
        # the saved runs reshuffle every epoch, which the blog's loader never did: their label says so
        assert meta["shuffle"] and "the blog's hyperparameters, reshuffled every epoch" in claims.measured_on(result)
        assert "the blog's protocol" not in claims.measured_on(result), path.name


def test_measured_on_strips_machine_paths():
    result = _fake({"blog-resnet": [[1.0]]})
    result["meta"]["source"] = "Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)"
    label = claims.measured_on(result)
    assert "Debian package dataset-fashion-mnist" in label and "/usr" not in label and "()" not in label


def test_escape_step_and_steps_per_epoch():
    assert claims.escape_step([2.31, 2.30, 1.9, 0.5], per_epoch=10) == 30  # the end of epoch 3
    assert claims.escape_step([2.31, 2.30], per_epoch=10) is None
    assert claims.escape_step([0.5], per_epoch=10, threshold=0.4) is None
    assert claims.steps_per_epoch(_fake({"blog-plain": [[2.3]]}, n_train=4000)) == 63  # 4,000 / 64, rounded up
    assert claims.steps_per_epoch(_fake({"blog-plain": [[2.3]]}, n_train=60000)) == 938


def test_seed_spread_gives_mean_sd_wilson_and_stalls_in_steps():
    result = _fake({"blog-plain": [[2.3, 2.3, 1.0], [2.3, 1.5, 0.5], [2.3, 2.3, 2.3]]},
                   {"blog-plain": [[0.1, 0.1, 0.8], [0.1, 0.6, 0.9], [0.1, 0.1, 0.1]]}, n_train=640, n_test=1000)
    row = claims.seed_spread(result)[0]
    assert row["acc_mean"] == pytest.approx(0.6) and row["acc_sd"] == pytest.approx(0.43589, abs=1e-4)
    assert (row["acc_low"], row["acc_high"]) == pytest.approx(wilson_interval(600, 1000))
    assert row["escape_steps"] == [30, 20, None]  # 640 / 64 = 10 steps an epoch
    assert row["steps"] == 30
    text = claims.format_seed_spread(result)
    assert "60.00% ± 43.59" in text and "30, 20, never in 30" in text and "n=1,000" in text


def test_differences_apply_the_courses_rule():
    three = _fake({"blog-resnet": [[0.1]] * 3, "blog-plain": [[0.1]] * 3, "blog-cnn": [[0.1]] * 3},
                  {"blog-resnet": [[0.970], [0.971], [0.969]], "blog-plain": [[0.950], [0.951], [0.949]],
                   "blog-cnn": [[0.969], [0.972], [0.968]]}, n_test=10_000)
    rows = {r["b"]: r["verdict"] for r in claims.differences(three)}
    assert rows["blog-plain"].real and not rows["blog-cnn"].real
    one = _fake({"blog-resnet": [[0.1]], "blog-plain": [[0.1]]}, {"blog-resnet": [[0.99]], "blog-plain": [[0.10]]})
    verdict = claims.differences(one)[0]["verdict"]
    assert not verdict.real and "not evidence" in verdict.reason  # one seed is never evidence
    assert "± 0.10 (3 seeds)" in claims.format_differences(three)


def test_p_values_are_never_printed_as_zero():
    assert claims.p_text(1e-9) == "p < 0.001" and claims.p_text(0.0004) == "p < 0.001"
    assert claims.p_text(0.0042) == "p = 0.004" and claims.p_text(0.0871) == "p = 0.09"
    stalled = _fake({"blog-resnet": [[0.1]] * 3, "blog-plain": [[2.3]] * 3},
                    {"blog-resnet": [[0.92], [0.94], [0.91]], "blog-plain": [[0.10], [0.10], [0.10]]})
    text = claims.format_differences(stalled, [("blog-resnet", "blog-plain")])
    assert "a real difference (Welch p < 0.001;" in text and "0.000" not in text


def test_welch_interval_matches_scipy_and_the_saved_run():
    from scipy import stats

    resnet, plain = [0.968, 0.960, 0.966], [0.958, 0.958, 0.947]  # the saved sample run's final accuracies
    diff, low, high = claims.welch_interval(resnet, plain)
    ci = stats.ttest_ind(resnet, plain, equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high))
    assert (100 * diff, 100 * low, 100 * high) == pytest.approx((1.03, -0.26, 2.33), abs=0.005)
    assert claims.welch_interval([0.9, 0.92, 0.94], [0.1, 0.1, 0.1], level=0.99)[1] < \
        claims.welch_interval([0.9, 0.92, 0.94], [0.1, 0.1, 0.1])[1]  # a wider interval at 99%
    assert claims.welch_interval([0.5, 0.5], [0.4, 0.4]) == pytest.approx((0.1, 0.1, 0.1))  # no spread at all
    with pytest.raises(ConfigError, match="at least 2"):
        claims.welch_interval([0.9], [0.1, 0.2])


def test_rule_text_says_not_shown_rather_than_equal():
    from course_lib.stats import compare_accuracies

    resnet, plain = [0.968, 0.960, 0.966], [0.958, 0.958, 0.947]
    text = claims.rule_text(compare_accuracies(resnet, plain, 1000))
    assert text == ("not shown to be real (Welch p = 0.09 >= 0.05; 1.03 points is also inside the wider Wilson "
                    "half-width, 1.3 points)")
    tight = claims.rule_text(compare_accuracies([0.965, 0.966, 0.9655], [0.960, 0.961, 0.9605], 1000))
    assert tight == ("too small for the test set: Welch p < 0.001, but 0.50 points is inside the wider Wilson "
                     "half-width, 1.2 points")
    assert claims.rule_text(compare_accuracies([0.9], [0.1], 1000)).startswith("not evidence")
    run = _fake({"blog-resnet": [[0.1]] * 3, "blog-plain": [[0.1]] * 3},
                {"blog-resnet": [[a] for a in resnet], "blog-plain": [[a] for a in plain]})
    assert claims.differences(run)[0]["interval"] == pytest.approx(claims.welch_interval(resnet, plain))
    assert "difference +1.03 points, Welch 95% CI [-0.26, +2.33] -> not shown" in claims.format_differences(run)


def test_family_rate_counts_only_the_comparisons_that_were_tested():
    three = _fake({"blog-resnet": [[0.1]] * 3, "blog-plain": [[0.1]] * 3, "blog-cnn": [[0.1]] * 3},
                  {"blog-resnet": [[0.97], [0.96], [0.95]], "blog-plain": [[0.9], [0.91], [0.92]],
                   "blog-cnn": [[0.95], [0.96], [0.97]]})
    one = _fake({"blog-resnet": [[0.1]], "blog-plain": [[0.1]]}, {"blog-resnet": [[0.9]], "blog-plain": [[0.1]]})
    assert claims.tested_comparisons((three, claims.PAIRS), (one, claims.PAIRS)) == 2  # one seed: never tested
    text = claims.format_family_rate(7)
    assert "1 - 0.95^7 = 30%" in text and "7 x 5% = 35%" in text


def test_skips_lead_names_the_plain_twins_stall():
    short = _fake({"blog-resnet": [[1.0, 0.5]] * 3, "blog-plain": [[2.3, 2.3]] * 3},
                  {"blog-resnet": [[0.8, 0.92], [0.8, 0.94], [0.8, 0.91]], "blog-plain": [[0.1, 0.1]] * 3})
    text = claims.format_skips_lead(("live run", short))
    assert text.startswith("live run (the MNIST sample, 3 seeds), step 20: blog-resnet ahead by 82.33 points")
    assert "a real difference (Welch p < 0.001" in text and "left ln 10 in 0 of 3 seeds by then" in text


def test_combined_results_keep_each_parts_date_and_source():
    first = _fake({"blog-cnn": [[0.5, 0.4]], "blog-resnet": [[0.5, 0.4]]})
    second = _fake({"blog-cnn-pytorch-init": [[2.3, 2.3, 1.0]]})
    second["meta"] = dict(second["meta"], date="the next day")
    both = cmp.combine(first, second)
    lines = claims.measured_on_lines(both)
    assert len(lines) == 3 and lines[0].endswith("today (blog-cnn, blog-resnet)")
    assert lines[1].endswith("the next day (blog-cnn-pytorch-init)")
    # then each model's initialisation
    assert lines[2] == "init: blog-cnn He; blog-resnet PyTorch default; blog-cnn-pytorch-init PyTorch default"
    assert claims.format_seed_spread(both).splitlines()[:3] == lines
    assert cmp.combine(both, _fake({"blog-plain": [[0.3, 0.2]]}))["meta"]["parts"][2]["models"] == ["blog-plain"]


# --------------------------------------------------------------------------- the verdict


def _exact(result: dict) -> dict:
    """``result`` relabelled as the blog's exact protocol (full MNIST, 30 epochs)."""
    return dict(result, dataset="mnist", meta=dict(result["meta"], dataset="mnist", full_data=True, n_train=60000,
                                                   n_test=10000, blog_protocol_exact=True))


def _three_seeds():
    curves = {"blog-cnn": [[0.2] * 30, [0.25] * 30, [0.22] * 30], "blog-resnet": [[0.004] * 30] * 3,
              "blog-plain": [[2.3] * 5 + [0.01] * 25, [2.3] * 9 + [0.01] * 21, [2.3] * 7 + [0.01] * 23]}
    accs = {"blog-cnn": [[0.968] * 30, [0.972] * 30, [0.970] * 30],
            "blog-resnet": [[0.984] * 30, [0.986] * 30, [0.985] * 30],
            "blog-plain": [[0.985] * 30, [0.990] * 30, [0.984] * 30]}
    return _fake(curves, accs)


def test_verdicts_judge_only_the_exact_protocol_with_three_seeds():
    rows = {r["claim"]: r["verdict"] for r in claims.claim_verdicts(_exact(_three_seeds()))}
    assert rows["the blog's CNN: train loss 0.2 (one mini-batch)"] == "**reproduced**"
    # 97% lies inside our seeds' Wilson range
    assert rows["the blog's CNN: \"validation\" accuracy 97% (test split)"] == "**reproduced**"
    assert rows["the blog's ResNet: train loss 0.04 (one mini-batch)"] == "**not reproduced**: ours is 10x lower"
    assert (rows["the blog's ResNet: \"validation\" accuracy 99.5% (test split)"]
            == "**not reproduced**: ours is 1.0 points below the claim")
    assert rows['ResNet (default init) vs CNN (He init): "有所提升" (some improvement)'].startswith(
        "blog-resnet ahead by 1.50 points: **a real difference**")
    assert "not shown to be real (Welch p = " in rows["The course's question, not the blog's: do the skips make it better?"]
    on_sample = {r["claim"]: r["verdict"] for r in claims.claim_verdicts(_three_seeds())}
    assert on_sample["the blog's ResNet: train loss 0.04 (one mini-batch)"].startswith("**not comparable**")
    assert on_sample["the blog's CNN: \"validation\" accuracy 97% (test split)"].startswith(
        "**not verified**: measured on the MNIST sample")
    one_seed = _fake({"blog-cnn": [[2.303] * 3], "blog-resnet": [[0.1] * 3]},
                     {"blog-cnn": [[0.1] * 3], "blog-resnet": [[0.9] * 3]})
    exact_rows = {r["claim"]: r["verdict"] for r in claims.claim_verdicts(_exact(one_seed))}
    assert exact_rows["the blog's ResNet: \"validation\" accuracy 99.5% (test split)"].startswith("**not judged**: 1 seed")
    text = claims.format_verdicts(one_seed)
    assert "it never left the chance loss ln 10 in 30 steps" in text and "not evidence: 1 seed" in text
    assert text.splitlines()[2].startswith("| The blog's claim") and text.count("\n| ") == 6


def test_plots_save_pngs(compare_result, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    figures.plot_curves(compare_result, name="04_test_curves")
    fig = figures.plot_curves(compare_result, name=None, mean_over_seeds=True)
    assert len(fig.axes[1].get_legend().get_texts()) == 3  # one line per model (2) and the chance loss
    tied = _fake({"blog-resnet": [[0.1]] * 3, "blog-plain": [[0.1]] * 3},
                 {"blog-resnet": [[0.968], [0.960], [0.966]], "blog-plain": [[0.958], [0.958], [0.947]]})
    one = _fake({"blog-resnet": [[0.1]], "blog-plain": [[0.1]]}, {"blog-resnet": [[0.90]], "blog-plain": [[0.89]]},
                n_test=10_000)
    fig = figures.plot_claims([("the test data", tied), ("one seed", one)], name="04_test_claims")
    claims_ax, ours_ax, one_ax = fig.axes[:3]
    assert claims_ax.get_yscale() == "linear" and not claims_ax.patches  # dots and error bars, no bars
    low, high = claims_ax.get_ylim()
    assert 95 < low and high < 101  # zoomed on the claims, not 0-100
    spans = [ax.get_ylim()[1] - ax.get_ylim()[0] for ax in fig.axes[:3]]
    assert spans == pytest.approx([spans[0]] * 3)  # the same number of points in every panel
    xs = {round(x, 3) for line in ours_ax.get_lines() if len(line.get_xdata()) == 3 for x in line.get_xdata()}
    assert len(xs) == 6  # each seed its own x, so the plain twin's two tied seeds are two dots, not one
    assert "full MNIST" in claims_ax.get_title() and "the test data" in ours_ax.get_title()
    labels = [t.get_text() for t in one_ax.get_legend().get_texts()]
    assert labels and all("mean" not in t for t in labels) and "one run" in labels[0]  # one seed is not a mean
    assert any("mean" in t.get_text() for t in ours_ax.get_legend().get_texts())
    plt.close("all")
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["04_test_claims.png", "04_test_curves.png"]


# --------------------------------------------------------------------------- the committed results and the README


def test_committed_results_carry_no_machine_path():
    for path in sorted((ROOT / "results").glob("04_*.json")):
        text = path.read_text()
        for bad in ("/usr/share", "/work/", "/tmp/", "/root/", "/home/"):
            assert bad not in text, f"{path.name} holds a machine path ({bad}...)"
        json.loads(text)


def test_readme_verdicts_are_generated_from_the_committed_results():
    """The README's table of verdicts is readme_verdicts() of the committed result files, to the letter."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- verdicts-04 -->")[1].split("<!-- /verdicts-04 -->")[0].strip()
    assert block == claims.readme_verdicts(), (
        "README.md's verdicts are out of date; replace the block between its verdicts-04 markers with the output of: "
        "python -c \"from course_lib.lessons.cnn_vs_resnet import claims; print(claims.readme_verdicts())\"")
    assert "/usr/share" not in block and "5%" in block


def _verdicts_block(name: str) -> str:
    text = (ROOT / name).read_text(encoding="utf-8")
    return text.split("<!-- verdicts-04 -->")[1].split("<!-- /verdicts-04 -->")[0].strip()


def test_chinese_readme_verdicts_are_generated_and_carry_the_english_numbers():
    """README.zh-CN.md's verdicts are readme_verdicts_zh() to the letter, in Chinese, with README.md's numbers."""
    zh = _verdicts_block("README.zh-CN.md")
    assert zh == claims.readme_verdicts_zh(), (
        "README.zh-CN.md's verdicts are out of date; replace the block between its verdicts-04 markers with the output "
        "of: python -c \"from course_lib.lessons.cnn_vs_resnet import claims; print(claims.readme_verdicts_zh())\"")
    number = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?(?:e-?\d+)?%?")
    assert Counter(number.findall(zh)) == Counter(number.findall(_verdicts_block("README.md")))
    english = re.findall(r"\b(?:seeds?|points?|ours|claim|verified|comparable|evidence|steps?|vs|Implied|accuracy|"
                         r"loss)\b", zh)
    assert english == [], f"untranslated words in readme_verdicts_zh(): {english}"


def test_chinese_verdicts_translate_every_verdict_the_rule_can_give():
    """Under the blog's exact protocol (reproduced, not reproduced, not judged, real, too small) nothing stays English."""
    runs = [({"blog-cnn": [[0.2]] * 3, "blog-resnet": [[0.04]] * 3, "blog-plain": [[2.31]] * 3},
             {"blog-cnn": [[.97], [.965], [.975]], "blog-resnet": [[.995], [.994], [.996]], "blog-plain": [[.1]] * 3}),
            ({"blog-cnn": [[0.9]] * 3, "blog-resnet": [[0.001]] * 3, "blog-plain": [[0.001]] * 3},
             {"blog-cnn": [[.9], [.91], [.905]], "blog-resnet": [[.906], [.907], [.908]],
              "blog-plain": [[.902], [.903], [.904]]}),
            ({"blog-cnn": [[0.9]] * 2, "blog-resnet": [[0.9]] * 2},
             {"blog-cnn": [[.9]] * 2, "blog-resnet": [[.95]] * 2})]
    texts = []
    for curves, accs in runs:
        result = _fake(curves, accs, n_test=10_000)
        result["meta"]["blog_protocol_exact"] = True
        texts += [claims._zh(v) for row in claims.claim_verdicts(result) for v in row.values()]
    text = "\n".join(texts)
    for verdict in ("**已复现**", "**未复现**", "**不作判定**", "**真实差异**", "小于测试集的噪声", "未显示出真实差异",
                    "不构成证据"):
        assert verdict in text, verdict
    assert not re.search(r"[A-Za-z]{3,}", re.sub(r"blog-\w+|Blog\w+|Welch|Wilson|ResNet|CNN|MNIST", "", text)), text
