"""course_lib.lessons.speed: the speed options of notebook 04 (pipelines) and the GPU protocol (gpu_protocol),
both run on this machine's CPU at tiny size, so the GPU run is not the first time the code runs."""
from __future__ import annotations

import json

import pytest
import torch

import course_lib.lessons.speed.gpu_protocol as gp
from course_lib.__main__ import main
from course_lib.lessons.speed import pipelines as speed
from course_lib.stats import accuracy_interval
from course_lib.training import mps_available, native_bf16

TINY_PROTOCOL = ["--dataset", "sample", "--device", "cpu", "--train-limit", "300", "--test-limit", "100"]


def test_devices_always_list_the_cpu_first():
    devices = speed.list_devices()
    assert devices[0]["device"] == "cpu"
    assert len(devices) == 1 + (torch.cuda.device_count() if torch.cuda.is_available() else 0) \
        + int(mps_available())


def test_speed_ratios_measure_or_skip_with_a_reason(tiny, capsys):
    res = speed.speed_ratios(tiny, device="cpu", profile="smoke", model="BlogCNN")
    rows = {r["option"]: r for r in res["rows"]}
    assert set(rows) == set(speed.SPEED_OPTIONS)
    pipe = rows["data on device vs DataLoader"]
    assert pipe["status"] == "measured"
    assert pipe["ratio"] == pytest.approx(pipe["variant_img_s"] / pipe["baseline_img_s"])
    assert rows["cudnn.benchmark"]["status"] == "skipped" and "cpu" in rows["cudnn.benchmark"]["note"]
    amp = rows["AMP (mixed precision)"]  # bf16 autocast runs on a CPU only where bf16 is native
    assert amp["status"] == ("measured" if native_bf16("cpu") else "skipped"), amp
    assert rows["torch.compile"]["status"] == "skipped"  # the smoke profile does not compile on a CPU
    printed = capsys.readouterr().out
    assert printed.count("[speed]") == len(speed.SPEED_OPTIONS) and "SKIPPED" in printed


def test_plot_speed_saves_a_png_with_measured_and_skipped_rows(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    result = {"rows": [{"option": "x", "status": "measured", "ratio": 2.0},
                       {"option": "y", "status": "skipped", "ratio": None}],
              "meta": {"device": "cpu", "model": "BlogCNN"}}
    speed.plot_speed(result, name="04_test_speed")
    plt.close("all")
    assert [p.name for p in tmp_path.glob("*.png")] == ["04_test_speed.png"]


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
