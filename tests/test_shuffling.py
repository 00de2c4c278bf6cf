"""Tests for course_lib.lessons.cnn_vs_resnet.shuffling (notebook 04, section 6): orders and the shuffle experiment."""
from __future__ import annotations

import pytest
import torch

from course_lib.lessons.cnn_vs_resnet import shuffling as shf
from course_lib.errors import ConfigError


def test_order_report_and_reorder(tiny):
    ordered = shf.reorder(tiny, "sorted")
    assert bool((ordered.train_y[1:] >= ordered.train_y[:-1]).all())
    # images moved with their labels: the multiset of (image sum, label) pairs is unchanged
    pairs = lambda d: sorted(zip(d.train_x.sum((1, 2, 3)).round(decimals=3).tolist(), d.train_y.tolist()))
    assert pairs(ordered) == pairs(tiny)
    sorted_rep = shf.order_report(ordered.train_y)
    random_rep = shf.order_report(shf.reorder(tiny, "random", seed=3).train_y)
    assert sorted_rep["mean_run"] == pytest.approx(256 / 10, rel=0.3) and sorted_rep["classes_per_batch"] <= 4
    assert random_rep["mean_run"] < 1.5 and random_rep["classes_per_batch"] >= 8
    assert random_rep["single_class_batches"] == 0
    assert shf.order_report(torch.zeros(128, dtype=torch.long))["single_class_batches"] == 1.0
    with pytest.raises(ConfigError):
        shf.reorder(tiny, "backwards")


def test_shuffle_experiment_runs_three_conditions(tiny):
    res = shf.shuffle_experiment(tiny, epochs=1, model="blog-cnn", device="cpu", profile="smoke", verbose=False)
    names = [c["name"] for c in res["conditions"]]
    assert names == list(shf.SHUFFLE_CONDITIONS)
    sorted_cond = res["conditions"][2]
    assert sorted_cond["order"] == "sorted" and sorted_cond["shuffle"] is False
    assert sorted_cond["order_report"]["mean_run"] > 10
    for c in res["conditions"]:
        assert sum(c["predicted_counts"]) == 128 and len(c["history"]) == 1
    text = shf.format_shuffle(res)
    assert "sorted by label" in text and "1 epoch (4 SGD steps)" in text  # 256 images / 64 per batch


def test_shuffle_plot_has_a_legend_in_each_panel(tiny, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    res = shf.shuffle_experiment(tiny.subset(train=64, test=32), epochs=1, model="blog-cnn", device="cpu",
                                 profile="smoke", verbose=False)
    fig = shf.plot_shuffle(res, name="04_test_shuffle")
    for ax in fig.axes[:2]:  # the bars differ by hatch and shade only: the right panel needs its legend too
        assert [t.get_text() for t in ax.get_legend().get_texts()] == list(shf.SHUFFLE_CONDITIONS)
    plt.close("all")
    assert (tmp_path / "04_test_shuffle.png").exists()
