"""Notebook 06's recipes: the schedule, the crops, fit with both, ResNet-20, the recipe study and its saved result.
Everything trains on this machine's CPU at tiny size; the saved result is checked against the issue's target."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from course_lib.__main__ import main
from course_lib.data import load_data, random_crops
from course_lib.errors import ConfigError
from course_lib.lessons.speed import recipe as rc
from course_lib.models import build_model, count_params
from course_lib.stats import compare_accuracies
from course_lib.training import Protocol, fit, seed_everything, warmup_cosine

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny():
    return load_data("sample", verbose=False).subset(256, 100)


# --------------------------------------------------------------------------- the schedule and the crops


def test_warmup_cosine_rises_linearly_then_falls_to_zero():
    lrs = [warmup_cosine(s, 100, 10, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)
    assert all(b > a for a, b in zip(lrs[:10], lrs[1:10]))          # rising during the warm-up
    assert all(b <= a for a, b in zip(lrs[10:], lrs[11:]))          # never rising after it
    assert lrs[10] == pytest.approx(0.1) and lrs[55] == pytest.approx(0.05)  # the cosine's middle is half the peak
    assert warmup_cosine(100, 100, 10, 0.1) == pytest.approx(0.0, abs=1e-12)


def test_protocol_lr_at_is_constant_for_the_blog_and_the_schedule_for_cosine():
    assert {Protocol(epochs=3).lr_at(s, 10) for s in range(30)} == {0.1}
    p = Protocol(epochs=3, schedule="cosine", warmup_epochs=1)
    assert [p.lr_at(s, 10) for s in (0, 9, 20)] == [warmup_cosine(s, 30, 10, 0.1) for s in (0, 9, 20)]


@pytest.mark.parametrize("kwargs, message", [
    (dict(schedule="linear"), "unknown schedule 'linear'"),
    (dict(epochs=2, warmup_epochs=3), "warmup_epochs must be a whole number from 0 to 2"),
    (dict(crop_padding=-1), "crop_padding must be a whole number from 0 to 8"),
    (dict(crop_padding=1.5), "crop_padding must be a whole number"),
])
def test_protocol_refuses_bad_recipe_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Protocol(**kwargs)


def test_random_crops_shift_each_image_within_the_padding():
    x = torch.rand(50, 1, 8, 8) + 0.1  # no zero pixel inside an image
    out = random_crops(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    found = set()
    for i in range(50):
        shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                  if torch.equal(out[i], torch.nn.functional.pad(x[i:i + 1], (2,) * 4)[0, :, 2 + dy:10 + dy, 2 + dx:10 + dx])]
        assert len(shifts) == 1, f"image {i} is not one shift of its padded copy"
        found.add(shifts[0])
    assert len(found) > 5  # the shifts vary from image to image
    same = random_crops(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(out, same)  # seeded: the same crops again


def test_fit_with_the_sound_recipe_sets_each_steps_lr_and_is_reproducible(tiny, monkeypatch):
    protocol = Protocol(epochs=2, batch_size=64, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                        warmup_epochs=1, crop_padding=2)
    seen = []
    real_step = torch.optim.SGD.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    runs = []
    for _ in range(2):
        seed_everything(0)
        model = build_model("residual-4")
        runs.append(fit(model, tiny, protocol, progress=False).train_loss)
    assert seen[:8] == pytest.approx([protocol.lr_at(s, 4) for s in range(8)])
    assert runs[0] == runs[1]  # seeded crops and shuffle: the same run twice


def test_crops_change_training_and_the_blog_protocol_is_unchanged(tiny):
    def run(**kw):
        seed_everything(0)
        return fit(build_model("residual-4"), tiny, Protocol(epochs=1, **kw), progress=False).train_loss
    assert run(crop_padding=2) != run()
    assert run() == run(schedule="constant", crop_padding=0)


def test_until_stops_early_on_the_long_schedule(tiny):
    seed_everything(0)
    history = fit(build_model("residual-4"), tiny, Protocol(epochs=5, schedule="cosine", warmup_epochs=1),
                  progress=False, until=2)
    assert len(history) == 2 and history.status == "completed"


# --------------------------------------------------------------------------- ResNet-20 and the recipes


def test_resnet20_is_he_et_als_cifar_net():
    model = build_model("resnet20")
    assert count_params(model) == 272_186  # He et al.: 0.27 M (with 1x1 projections and one input channel)
    assert [len(getattr(model, f"layer{i}")) for i in (1, 2, 3)] == [3, 3, 3]
    assert not hasattr(model, "layer4")
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_recipe_inits_differ_as_named():
    seed_everything(0)
    he = build_model("resnet20", **rc.recipe("sound")["model"])
    seed_everything(0)
    default = build_model("resnet20", **rc.recipe("blog")["model"])
    assert not torch.equal(he.conv1.weight, default.conv1.weight)
    assert all(float(b.bn2.weight.detach().abs().sum()) == 0 for b in he.layer1)  # zero-initialised last BN
    assert all(float(b.bn2.weight.detach().abs().sum()) > 0 for b in default.layer1)


def test_ablation_variants_take_out_one_ingredient_each():
    sound = rc.recipe("sound")
    for variant in rc.ABLATION:
        changed = rc.recipe("sound", variant)
        diff = {k for part in ("protocol", "model") for k in changed[part] if changed[part][k] != sound[part][k]}
        assert (variant == "sound") == (not diff), variant
    with pytest.raises(ConfigError, match="unknown recipe"):
        rc.recipe("sound", "no batchnorm")


@pytest.mark.parametrize("job, parsed", [("sound:0", ("sound", None, 0)), ("blog:2", ("blog", None, 2)),
                                         ("ablation:no crops:1", ("sound", "no crops", 1))])
def test_jobs_parse(job, parsed):
    assert rc.parse_job(job) == parsed


@pytest.mark.parametrize("job", ["sound", "adam:0", "ablation:no crops", "ablation:fast:1", "sound:x"])
def test_bad_jobs_are_refused(job):
    with pytest.raises(ConfigError):
        rc.parse_job(job)


def test_the_cli_runs_one_job_and_the_study_on_cpu(tmp_path, capsys):
    tiny = ["--dataset", "sample", "--device", "cpu", "--train-limit", "128", "--test-limit", "64", "--epochs", "1"]
    assert main(["recipe", "--job", "blog:0", "--out", str(tmp_path / "job.json"), *tiny]) == 0
    run = json.loads((tmp_path / "job.json").read_text())["run"]
    assert (run["recipe"], run["seed"], run["epochs"], run["steps"]) == ("blog", 0, 1, 2)
    assert set(run) >= {"test_acc", "final_train_loss", "seconds", "curve"}
    out = tmp_path / "study.json"
    assert main(["recipe", "--seeds", "1", "--no-ablation", "--out", str(out), *tiny]) == 0
    result = json.loads(out.read_text())
    assert [r["recipe"] for r in result["runs"]] == ["blog", "sound"] and result["ablation"] == []
    assert "--out" not in result["meta"]["command"]
    assert main(["recipe", "--into", str(out), "--seeds", "1", "--ablation-epochs", "1", *tiny]) == 0
    result = json.loads(out.read_text())
    assert [r["variant"] for r in result["ablation"]] == list(rc.ABLATION)
    assert result["ablation_setup"]["train_size"] == 128


# --------------------------------------------------------------------------- the saved result


@pytest.fixture(scope="module")
def saved():
    return json.loads((ROOT / "results" / f"{rc.RESULT}.json").read_text())


def test_saved_result_has_the_required_fields(saved):
    assert saved["dataset"] == "fashion" and (saved["train_size"], saved["test_size"]) == (60_000, 10_000)
    for r in saved["runs"] + saved["ablation"]:
        assert set(r) >= {"recipe", "seed", "epochs", "steps", "test_acc", "final_train_loss", "seconds"}
    assert set(saved["meta"]) >= {"device", "CPU", "threads", "torch", "date", "command"}
    assert sorted((r["recipe"], r["seed"]) for r in saved["runs"]) == [(n, s) for n in ("blog", "sound") for s in range(3)]
    assert sorted(r["seed"] for r in saved["ablation"]) == sorted(list(range(3)) * len(rc.ABLATION))


def test_saved_result_meets_the_target(saved):
    accs = {n: [r["test_acc"] for r in saved["runs"] if r["recipe"] == n] for n in ("blog", "sound")}
    assert sum(accs["sound"]) / 3 >= 0.930
    assert compare_accuracies(accs["sound"], accs["blog"], saved["test_size"]).real


def test_saved_curves_end_at_the_final_numbers(saved):
    for r in saved["runs"]:
        assert len(r["curve"]["test_acc"]) == r["epochs"] == rc.FULL_EPOCHS
        assert r["curve"]["test_acc"][-1] == r["test_acc"] and r["curve"]["train_loss"][-1] == r["final_train_loss"]
        assert r["steps"] == math.ceil(60_000 / rc.recipe(r["recipe"])["protocol"]["batch_size"]) * r["epochs"]


def test_gpu_protocol_runs_a_recipe_and_records_it(tmp_path):
    out = tmp_path / "gpu.json"
    assert main(["gpu-protocol", "--dataset", "sample", "--device", "cpu", "--models", "resnet20", "--recipe", "sound",
                 "--epochs", "1", "--seeds", "1", "--paths", "plain", "--train-limit", "128", "--test-limit", "64",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["protocol"]["recipe"] == "sound" and result["protocol"]["schedule"] == "cosine"
    assert result["protocol"]["model_settings"] == rc.recipe("sound")["model"]
    assert result["paths"]["plain"]["runs"][0]["status"] == "completed"


def test_format_gpu_reads_the_saved_timings():
    text = rc.format_gpu()
    assert text.count("recipe:") == 2 and "fast is" in text


def test_check_rerun_judges_where_the_rerun_ends(saved, monkeypatch, tiny):
    curve = [0.60, 0.84]  # epoch 1 outside the saved band, epoch 2 inside
    monkeypatch.setattr(rc, "train_run", lambda *a, **k: dict(curve=dict(test_acc=curve), seconds=1.0))
    text = rc.check_rerun(saved, epochs=2, data=_fake_data())
    assert "epoch 1: rerun 60.00%" in text and ": outside" in text
    assert text.endswith("after 2 epoch(s) the rerun is inside the saved curve")
    curve[1] = 0.70
    assert rc.check_rerun(saved, epochs=2, data=_fake_data()).endswith("is NOT inside the saved curve")


def _fake_data():
    from types import SimpleNamespace
    return SimpleNamespace(test_y=torch.zeros(10_000))
