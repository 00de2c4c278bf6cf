"""Tests for course_lib.comparison (notebook 04): the result format, the readings, the shuffle, the speed helpers."""
from __future__ import annotations

import json
import math

import pytest
import torch

from course_lib import comparison as cmp
from course_lib.data import load_data
from course_lib.errors import ConfigError
from course_lib.exercises import nb04
from course_lib.models import build_model, count_params


@pytest.fixture(scope="module")
def tiny():
    """256 train / 128 test real digits from the offline sample (a seeded, unsorted subset)."""
    return load_data("sample").subset(256, 128, seed=1)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="module")
def result(tiny, checkpoints):
    return cmp.run_compare("smoke", data=tiny, seeds=[0, 1], epochs=2, models=["BlogCNN", "BlogResNet"],
                           device="cpu", verbose=False, checkpoint_dir=checkpoints)


# --------------------------------------------------------------------------- run_compare


def test_result_has_exactly_the_documented_fields(result, tiny):
    assert set(result) == {"dataset", "source", "device", "profile", "protocol", "runs", "meta"}
    assert (result["dataset"], result["source"], result["device"], result["profile"]) == \
        (tiny.info.dataset, tiny.info.source, "cpu", "smoke")
    assert result["protocol"] == {"batch_size": 64, "lr": 0.1, "optimizer": cmp.BLOG_PROTOCOL["optimizer"], "epochs": 2}
    assert [(r["model"], r["seed"]) for r in result["runs"]] == \
        [("BlogCNN", 0), ("BlogResNet", 0), ("BlogCNN", 1), ("BlogResNet", 1)]
    for run in result["runs"]:
        assert set(run) == {"model", "seed", "params", "history"}
        assert run["params"] == count_params(build_model(cmp.MODELS[run["model"]]))
        assert [r["epoch"] for r in run["history"]] == [1, 2]
        for rec in run["history"]:
            assert set(rec) == {"epoch", "train_loss", "test_acc", "seconds"}
            assert 0.0 <= rec["test_acc"] <= 1.0 and math.isfinite(rec["train_loss"]) and rec["seconds"] > 0
    meta = result["meta"]
    assert meta["n_train"] == 256 and meta["n_test"] == 128 and meta["full_data"] is False
    assert meta["seeds"] == [0, 1] and meta["blog_protocol_exact"] is False
    json.dumps(result)  # JSON-able as it is


def test_same_seed_same_history_and_seeds_differ(tiny, result):
    again = cmp.run_compare("smoke", data=tiny, seeds=[1], epochs=2, models=["BlogCNN"], device="cpu", verbose=False)
    first = next(r for r in result["runs"] if r["model"] == "BlogCNN" and r["seed"] == 1)
    seed0 = next(r for r in result["runs"] if r["model"] == "BlogCNN" and r["seed"] == 0)
    losses = [r["train_loss"] for r in again["runs"][0]["history"]]
    assert losses == [r["train_loss"] for r in first["history"]]
    assert losses != [r["train_loss"] for r in seed0["history"]]


def test_checkpoints_hold_the_trained_weights(result, checkpoints, tiny):
    from course_lib.training import evaluate, load_checkpoint

    assert sorted(p.name for p in checkpoints.glob("*.pt")) == \
        ["BlogCNN_seed0.pt", "BlogCNN_seed1.pt", "BlogResNet_seed0.pt", "BlogResNet_seed1.pt"]
    model = load_checkpoint(checkpoints / "BlogResNet_seed1.pt")
    last = next(r for r in result["runs"] if r["model"] == "BlogResNet" and r["seed"] == 1)["history"][-1]
    assert evaluate(model, tiny.test_x, tiny.test_y) == pytest.approx(last["test_acc"])


def test_bad_arguments_are_refused(tiny):
    with pytest.raises(ConfigError, match="unknown model"):
        cmp.run_compare("smoke", data=tiny, models=["VGG"], verbose=False)
    with pytest.raises(ConfigError, match="seeds"):
        cmp.run_compare("smoke", data=tiny, seeds=0, verbose=False)
    with pytest.raises(ConfigError, match="epochs"):
        cmp.run_compare("smoke", data=tiny, epochs=0, verbose=False)
    with pytest.raises(ConfigError, match="profile"):
        cmp.settings_for("laptop")


def test_cli_writes_the_documented_json(tmp_path, monkeypatch):
    from course_lib.__main__ import main

    monkeypatch.setitem(cmp.SETTINGS, "smoke", dict(cmp.SETTINGS["smoke"], train_limit=128, test_limit=64, epochs=1))
    out = tmp_path / "compare.json"
    assert main(["compare", "--profile", "smoke", "--dataset", "sample", "--seeds", "1", "--device", "cpu",
                 "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["dataset"] == "sample" and saved["profile"] == "smoke" and saved["meta"]["n_train"] == 128
    assert sorted(r["model"] for r in saved["runs"]) == ["BlogCNN", "BlogPlain", "BlogResNet"]


def test_every_profile_has_settings():
    for name in ("smoke", "cpu", "full"):
        cfg = cmp.settings_for(name)
        assert cfg["epochs"] >= 1 and cfg["seeds"] >= 1
    assert cmp.settings_for("full")["epochs"] == 30 and cmp.settings_for("full")["train_limit"] is None


# --------------------------------------------------------------------------- reading a result


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
    assert cmp.table_epochs(30) == [10, 20, 30]
    assert cmp.table_epochs(9) == [3, 6, 9]
    assert cmp.table_epochs(2) == [1, 2]
    assert cmp.table_epochs(1) == [1]
    assert cmp.table_epochs(0) == []


def test_blog_table_means_spreads_and_claims():
    losses = [[1.0] * 30, [3.0] * 30]
    accs = [[0.90] * 30, [0.96] * 30]
    rows = cmp.blog_table(_fake({"BlogResNet": losses}, {"BlogResNet": accs}))
    assert [r["epoch"] for r in rows] == [10, 20, 30]
    last = rows[-1]
    assert last["train_loss"] == pytest.approx(2.0) and last["test_acc"] == pytest.approx(0.93)
    assert (last["acc_min"], last["acc_max"], last["n_seeds"]) == (0.90, 0.96, 2)
    assert (last["blog_train_loss"], last["blog_test_acc"]) == (0.04, 0.995)
    assert rows[0]["blog_test_acc"] is None  # the blog gave no epoch-10 numbers
    short = cmp.blog_table(_fake({"BlogResNet": [[1.0] * 9]}))
    assert all(r["blog_test_acc"] is None for r in short)  # no claims next to a 9-epoch run
    text = cmp.format_blog_table(_fake({"BlogResNet": losses}, {"BlogResNet": accs}))
    assert "99.5%" in text and "93.00%" in text and "sample" in text


def test_escape_epoch():
    assert cmp.escape_epoch([2.31, 2.30, 1.9, 0.5]) == 3
    assert cmp.escape_epoch([2.31, 2.30]) is None
    assert cmp.escape_epoch([0.5], threshold=0.4) is None


def test_seed_spread():
    spread = cmp.seed_spread(_fake({"BlogPlain": [[2.3, 2.3, 1.0], [2.3, 1.5, 0.5]]},
                                   {"BlogPlain": [[0.1, 0.1, 0.8], [0.1, 0.6, 0.9]]}))[0]
    assert spread["acc_mean"] == pytest.approx(0.85) and spread["acc_std"] == pytest.approx(0.0707, abs=1e-3)
    assert spread["escape_epochs"] == [3, 2] and spread["loss_max"] == 1.0


def test_diagnosis_tells_slow_start_from_slower_learning():
    resnet = [1.5, 0.8, 0.4, 0.2, 0.1, 0.05]
    shifted = [2.30, 2.30] + resnet[:4]  # the same curve, two epochs late
    slower = [2.30, 1.9, 1.7, 1.5, 1.3, 1.2]  # starts at once but learns much slower
    d = cmp.diagnose_gap(_fake({"BlogPlain": [shifted, slower], "BlogResNet": [resnet, resnet]}))
    assert d[0]["plain_escape"] == 3 and d[0]["shifted_ratio"] == pytest.approx(1.0)
    assert d[0]["reading"].startswith("slow start")
    assert d[1]["shifted_ratio"] > 1.5 and "degradation" in d[1]["reading"]
    never = cmp.diagnose_gap(_fake({"BlogPlain": [[2.3] * 6], "BlogResNet": [resnet]}))[0]
    assert never["plain_escape"] is None and "never" in never["reading"]


def test_signal_at_init_shows_the_plain_stacks_losing_the_input(tiny):
    rows = {r["model"]: r for r in cmp.signal_at_init(tiny, n_images=128)}
    assert rows["BlogCNN"]["layers"] == 11 and rows["BlogResNet"]["layers"] == rows["BlogPlain"]["layers"] == 8
    # the skips keep the output dependent on the input; the plain stacks nearly lose it (seeded, so exact order)
    assert rows["BlogResNet"]["input_dependence"] > 10 * rows["BlogPlain"]["input_dependence"]
    assert rows["BlogPlain"]["input_dependence"] > rows["BlogCNN"]["input_dependence"]
    assert rows["BlogResNet"]["first_grad"] > 10 * rows["BlogPlain"]["first_grad"]
    assert "BlogCNN" in cmp.format_signal(list(rows.values()))


# --------------------------------------------------------------------------- the shuffle


def test_order_report_and_reorder(tiny):
    ordered = cmp.reorder(tiny, "sorted")
    assert bool((ordered.train_y[1:] >= ordered.train_y[:-1]).all())
    # images moved with their labels: the multiset of (image sum, label) pairs is unchanged
    pairs = lambda d: sorted(zip(d.train_x.sum((1, 2, 3)).round(decimals=3).tolist(), d.train_y.tolist()))
    assert pairs(ordered) == pairs(tiny)
    sorted_rep = cmp.order_report(ordered.train_y)
    random_rep = cmp.order_report(cmp.reorder(tiny, "random", seed=3).train_y)
    assert sorted_rep["mean_run"] == pytest.approx(256 / 10, rel=0.3) and sorted_rep["classes_per_batch"] <= 4
    assert random_rep["mean_run"] < 1.5 and random_rep["classes_per_batch"] >= 8
    assert random_rep["single_class_batches"] == 0
    assert cmp.order_report(torch.zeros(128, dtype=torch.long))["single_class_batches"] == 1.0
    with pytest.raises(ConfigError):
        cmp.reorder(tiny, "backwards")


def test_shuffle_experiment_runs_three_conditions(tiny):
    res = cmp.shuffle_experiment(tiny, epochs=1, model="BlogCNN", device="cpu", profile="smoke", verbose=False)
    names = [c["name"] for c in res["conditions"]]
    assert names == list(cmp.SHUFFLE_CONDITIONS)
    sorted_cond = res["conditions"][2]
    assert sorted_cond["order"] == "sorted" and sorted_cond["shuffle"] is False
    assert sorted_cond["order_report"]["mean_run"] > 10
    for c in res["conditions"]:
        assert sum(c["predicted_counts"]) == 128 and len(c["history"]) == 1
    assert "sorted by label" in cmp.format_shuffle(res)


# --------------------------------------------------------------------------- the GPU section on this machine


def test_devices_always_list_the_cpu_first():
    devices = cmp.list_devices()
    assert devices[0]["device"] == "cpu"
    assert len(devices) == 1 + (torch.cuda.device_count() if torch.cuda.is_available() else 0) \
        + int(cmp.mps_available())


def test_speed_ratios_measure_or_skip_with_a_reason(tiny, capsys):
    res = cmp.speed_ratios(tiny, device="cpu", profile="smoke", model="BlogCNN")
    rows = {r["option"]: r for r in res["rows"]}
    assert set(rows) == set(cmp.SPEED_OPTIONS)
    pipe = rows["data on device vs DataLoader"]
    assert pipe["status"] == "measured" and pipe["ratio"] == pytest.approx(pipe["variant_img_s"] / pipe["baseline_img_s"])
    for option in ("AMP (mixed precision)", "cudnn.benchmark"):
        assert rows[option]["status"] == "skipped" and "cpu" in rows[option]["note"]
    assert rows["torch.compile"]["status"] == "skipped"  # the smoke profile does not compile on a CPU
    printed = capsys.readouterr().out
    assert printed.count("[speed]") == len(cmp.SPEED_OPTIONS) and "SKIPPED" in printed


def test_plots_save_pngs(result, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    cmp.plot_curves(result, name="04_test_curves")
    cmp.plot_claims(result, name="04_test_claims")
    speed = {"rows": [{"option": "x", "status": "measured", "ratio": 2.0}, {"option": "y", "status": "skipped",
                                                                           "ratio": None}],
             "meta": {"device": "cpu", "model": "BlogCNN"}}
    cmp.plot_speed(speed, name="04_test_speed")
    plt.close("all")
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["04_test_claims.png", "04_test_curves.png",
                                                             "04_test_speed.png"]


# --------------------------------------------------------------------------- the exercises


def test_exercise_checks_accept_the_solutions_and_catch_mistakes():
    assert nb04.check_gap_beyond_noise(nb04.gap_beyond_noise_solution).passed
    assert not nb04.check_gap_beyond_noise(lambda a, b: max(a) > max(b)).passed
    assert nb04.check_shuffled_batches(nb04.shuffled_batches_solution).passed

    def stored_order(x, y, batch_size, generator):
        return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]

    def labels_lost(x, y, batch_size, generator):
        order = torch.randperm(len(y), generator=generator)
        return [(x[order[i:i + batch_size]], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]

    def stub(x, y, batch_size, generator):
        raise NotImplementedError

    assert not nb04.check_shuffled_batches(stored_order).passed
    report = nb04.check_shuffled_batches(labels_lost)
    assert not report.passed and "separated" in str(report)
    assert "not implemented yet" in str(nb04.check_shuffled_batches(stub))
