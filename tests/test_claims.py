"""Tests for course_lib.lessons.cnn_vs_resnet.claims (notebook 04): the blog's table, seed spread, diagnosis, verdicts, figures, README."""
from __future__ import annotations

import pytest

from course_lib.lessons.cnn_vs_resnet import claims
from course_lib.lessons.cnn_vs_resnet import protocol as cmp


def _fake(curves: dict[str, list[list[float]]], accs: dict[str, list[list[float]]] | None = None) -> dict:
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
            "meta": {"dataset": "sample", "source": "test", "profile": "smoke", "date": "today"}}


def test_table_epochs_are_the_blogs_fractions():
    assert claims.table_epochs(30) == [10, 20, 30]
    assert claims.table_epochs(9) == [3, 6, 9]
    assert claims.table_epochs(2) == [1, 2]
    assert claims.table_epochs(1) == [1]
    assert claims.table_epochs(0) == []


def test_blog_table_means_spreads_and_claims():
    losses = [[1.0] * 30, [3.0] * 30]
    accs = [[0.90] * 30, [0.96] * 30]
    rows = claims.blog_table(_fake({"BlogResNet": losses}, {"BlogResNet": accs}))
    assert [r["epoch"] for r in rows] == [10, 20, 30]
    last = rows[-1]
    assert last["train_loss"] == pytest.approx(2.0) and last["test_acc"] == pytest.approx(0.93)
    assert (last["acc_min"], last["acc_max"], last["n_seeds"]) == (0.90, 0.96, 2)
    assert (last["blog_train_loss"], last["blog_test_acc"]) == (0.04, 0.995)
    assert rows[0]["blog_test_acc"] is None  # the blog gave no epoch-10 numbers
    short = claims.blog_table(_fake({"BlogResNet": [[1.0] * 9]}))
    assert all(r["blog_test_acc"] is None for r in short)  # no claims next to a 9-epoch run
    text = claims.format_blog_table(_fake({"BlogResNet": losses}, {"BlogResNet": accs}))
    assert "99.5%" in text and "93.00%" in text and "sample" in text


def test_escape_epoch():
    assert claims.escape_epoch([2.31, 2.30, 1.9, 0.5]) == 3
    assert claims.escape_epoch([2.31, 2.30]) is None
    assert claims.escape_epoch([0.5], threshold=0.4) is None


def test_seed_spread():
    spread = claims.seed_spread(_fake({"BlogPlain": [[2.3, 2.3, 1.0], [2.3, 1.5, 0.5]]},
                                   {"BlogPlain": [[0.1, 0.1, 0.8], [0.1, 0.6, 0.9]]}))[0]
    assert spread["acc_mean"] == pytest.approx(0.85) and spread["acc_std"] == pytest.approx(0.0707, abs=1e-3)
    assert spread["escape_epochs"] == [3, 2] and spread["loss_max"] == 1.0


def test_diagnosis_tells_slow_start_from_slower_learning():
    resnet = [1.5, 0.8, 0.4, 0.2, 0.1, 0.05]
    shifted = [2.30, 2.30] + resnet[:4]  # the same curve, two epochs late
    slower = [2.30, 1.9, 1.7, 1.5, 1.3, 1.2]  # starts at once but learns much slower
    d = claims.diagnose_gap(_fake({"BlogPlain": [shifted, slower], "BlogResNet": [resnet, resnet]}))
    assert d[0]["plain_escape"] == 3 and d[0]["shifted_ratio"] == pytest.approx(1.0)
    assert d[0]["reading"].startswith("slow start")
    assert d[1]["shifted_ratio"] > 1.5 and "degradation" in d[1]["reading"]
    never = claims.diagnose_gap(_fake({"BlogPlain": [[2.3] * 6], "BlogResNet": [resnet]}))[0]
    assert never["plain_escape"] is None and "never" in never["reading"]


# --------------------------------------------------------------------------- the verdict and the figures


def _exact(result: dict) -> dict:
    """``result`` relabelled as the blog's exact protocol (full MNIST, 30 epochs)."""
    return dict(result, dataset="mnist", meta=dict(result["meta"], dataset="mnist", full_data=True, n_train=60000,
                                                   blog_protocol_exact=True))


def test_verdicts_judge_only_the_exact_protocol_and_say_the_direction():
    curves = {"BlogCNN": [[0.2] * 30, [0.25] * 30], "BlogResNet": [[0.004] * 30, [0.003] * 30],
              "BlogPlain": [[2.3] * 5 + [0.01] * 25, [2.3] * 9 + [0.01] * 21]}
    accs = {"BlogCNN": [[0.968] * 30, [0.972] * 30], "BlogResNet": [[0.984] * 30, [0.986] * 30],
            "BlogPlain": [[0.985] * 30, [0.992] * 30]}
    rows = {r["claim"]: r["verdict"] for r in claims.claim_verdicts(_exact(_fake(curves, accs)))}
    assert rows["BlogCNN: train loss 0.2"] == "**reproduced**"
    assert rows["BlogCNN: test accuracy 97.0%"] == "**reproduced**"  # 97% lies inside our range over seeds
    assert rows["BlogResNet: train loss 0.04"] == "**not reproduced**: ours is 11x lower"
    assert rows["BlogResNet: test accuracy 99.5%"] == "**not reproduced**: 1.0 points below the claim"
    assert rows["Implied: the ResNet beats the CNN"].startswith("BlogResNet ahead by 1.5 points, beyond seed noise")
    assert "within seed noise" in rows["Implied: the skips are what make it better"]
    on_sample = {r["claim"]: r["verdict"] for r in claims.claim_verdicts(_fake(curves, accs))}
    assert on_sample["BlogResNet: train loss 0.04"].startswith("**not comparable**")
    assert on_sample["BlogCNN: test accuracy 97.0%"].startswith("**not verified**: measured on the MNIST sample")
    one_seed = _fake({"BlogCNN": [[2.303] * 3], "BlogResNet": [[0.1] * 3]}, {"BlogCNN": [[0.1] * 3],
                                                                          "BlogResNet": [[0.9] * 3]})
    text = claims.format_verdicts(one_seed)
    assert "it never left the chance loss" in text and "one seed each" in text
    assert text.splitlines()[2].startswith("| The blog's claim") and text.count("\n| ") == 6


def test_plots_save_pngs(compare_result, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    claims.plot_curves(compare_result, name="04_test_curves")
    claims.plot_claims(compare_result, name="04_test_claims")
    plt.close("all")
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["04_test_claims.png", "04_test_curves.png"]


# --------------------------------------------------------------------------- the README's numbers


def test_readme_verdicts_are_generated_from_the_committed_results():
    """The README's table of verdicts is format_verdicts() of the committed result files, to the letter."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("<!-- verdicts-04 -->")[1].split("<!-- /verdicts-04 -->")[0].strip()
    assert block == claims.readme_verdicts(), (
        "README.md's verdicts are out of date; replace the block between its verdicts-04 markers with the output of: "
        "python -c \"from course_lib import comparison as c; print(c.readme_verdicts())\"")
