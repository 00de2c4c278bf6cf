"""The speed benchmark and the fast path it times. No timed assertions: speed is shown by
``python -m course_lib bench`` side by side; these tests check structure and correctness."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

import course_lib.lessons.speed.bench as bench
from course_lib import ConfigError, build_model, fit, load_data, seed_everything
from course_lib.lessons.speed.bench import PLAIN, course_settings, format_bench, model_variants, run_bench
from course_lib.devices import native_bf16
from course_lib.training import Protocol, SpeedOptions, evaluate, fast_speed_options

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def sample():
    return load_data("sample", verbose=False)


def _fit(data, speed=SpeedOptions(device="cpu"), seed=0, name="blog-resnet", losses=None, **protocol):
    seed_everything(seed)
    model = build_model(name)
    history = fit(model, data, Protocol(seed=seed, **protocol), speed, progress=False, step_losses=losses)
    assert history.status == "completed", history.message
    return model, history


# --------------------------------------------------------------------------- what is compared


@pytest.mark.parametrize("native", [True, False])
def test_variants_follow_the_cpus_bf16(monkeypatch, native):
    # a CPU that reports bf16 dot products (or not): every caller of native_bf16 sees it
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": native}, raising=False)
    course = course_settings(CPU)
    assert course == dict(amp="bf16" if native else False, channels_last=True, compile=False)
    variants, not_run = model_variants(CPU, compile=False)
    names = [name for name, _ in variants]
    assert names[0] == "fp32, NCHW (the blog's settings)" and variants[0][1] == PLAIN
    assert ("channels_last + bf16 autocast" in names) is native
    assert any("no native bf16" in why for why in not_run) is not native
    assert course in [settings for _, settings in variants]  # the course's settings always have a ceiling row
    with_compile, _ = model_variants(CPU, compile=True)
    assert with_compile[-1][1]["compile"] is True


def test_cuda_variants_include_cuda_graphs():
    cuda = torch.device("cuda")  # a name only: nothing runs
    variants, _ = model_variants(cuda, compile=True)
    settings = [s for _, s in variants]
    assert dict(PLAIN, channels_last=True, amp=True, compile="reduce-overhead") in settings
    assert course_settings(cuda) == dict(amp=True, channels_last=True, compile="reduce-overhead")


# --------------------------------------------------------------------------- same images, same maths


def test_blog_and_course_pipelines_train_identically(sample):
    # the benchmark compares like with like: 200 images (3 full batches + 8), 2 epochs, reshuffled each epoch;
    # the blog's PIL/ToTensor/DataLoader and the in-memory slices give the same steps and the same weights
    data = sample.subset(200, 64)
    loss_blog, loss_memory = [], []
    m_blog, _ = _fit(data, SpeedOptions(device="cpu", pipeline="blog"), epochs=2, losses=loss_blog)
    m_memory, _ = _fit(data, SpeedOptions(device="cpu", pipeline="memory"), epochs=2, losses=loss_memory)
    assert len(loss_blog) == len(loss_memory) == 8
    assert loss_blog == pytest.approx(loss_memory, rel=1e-5)
    for a, b in zip(m_blog.state_dict().values(), m_memory.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5)


def test_channels_last_changes_the_layout_not_the_maths(sample):
    data = sample.subset(320, 64)
    plain, nhwc = [], []
    model, history = _fit(data, epochs=1, losses=plain)
    model_cl, history_cl = _fit(data, SpeedOptions(device="cpu", channels_last=True), epochs=1, losses=nhwc)
    assert len(plain) == len(nhwc) == 5
    assert nhwc == pytest.approx(plain, rel=1e-3)
    conv = model_cl.rblock1.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert history_cl.config["channels_last"] is True


@pytest.mark.slow
def test_fast_path_reaches_the_plain_paths_accuracy(sample):
    """Held-out accuracy of the fast (course) settings vs the plain fp32 settings, 2 seeds each.

    The fast settings are this CPU's: channels_last, and bf16 autocast where the CPU has it natively.
    BlogResNet on 1,000 sample digits (2 epochs at lr 0.02 + 1 at lr 0.002, SGD momentum 0.9, batch 16),
    judged on 2,000 digits it never saw. SGD amplifies rounding like a change of seed, so the check is
    statistical: on the sample the seed alone moves accuracy by about 1.5 points, so the means must agree
    within 1.5 points and each pair within 2.5 (a broken path loses far more)."""
    order = torch.randperm(len(sample.train_y), generator=torch.Generator().manual_seed(0))
    fit_idx, held_idx = order[:1000], order[1000:2000]  # disjoint
    train = replace(sample, train_x=sample.train_x[fit_idx], train_y=sample.train_y[fit_idx],
                    test_x=sample.test_x[:100], test_y=sample.test_y[:100])
    held_x = torch.cat([sample.test_x, sample.train_x[held_idx]])
    held_y = torch.cat([sample.test_y, sample.train_y[held_idx]])
    fast = fast_speed_options(CPU)
    kwargs = {"plain": dict(PLAIN), "fast": dict(amp=fast.amp, channels_last=fast.channels_last, compile=fast.compile)}
    assert (kwargs["fast"]["amp"] == "bf16") is native_bf16(CPU)
    acc = {}
    for name, kw in kwargs.items():
        for seed in (0, 1):
            speed = SpeedOptions(device="cpu", **kw)
            model, _ = _fit(train, speed, seed=seed, epochs=2, batch_size=16, lr=0.02, momentum=0.9)
            fit(model, train, Protocol(epochs=1, batch_size=16, lr=0.002, momentum=0.9, seed=seed + 100), speed,
                progress=False)
            acc[name, seed] = evaluate(model, held_x, held_y)
    assert min(acc.values()) > 0.88, acc  # it learned (chance is 10%)
    for seed in (0, 1):
        assert abs(acc["fast", seed] - acc["plain", seed]) <= 0.025, acc
    mean = {k: (acc[k, 0] + acc[k, 1]) / 2 for k in ("plain", "fast")}
    assert abs(mean["fast"] - mean["plain"]) <= 0.015, acc


# --------------------------------------------------------------------------- the benchmark itself


@pytest.mark.parametrize("bad", [dict(steps=0), dict(batch_size=0), dict(rounds=0), dict(dataset="cifar")])
def test_bench_refuses_bad_settings(bad):
    with pytest.raises(ConfigError, match="Fix"):
        run_bench(**{"steps": 2, "device": "cpu", "verbose": False, **bad})


def test_run_bench_times_every_contender_side_by_side(capsys):
    result = run_bench("blog-cnn", steps=5, device="cpu", batch_size=32, rounds=2, dataset="sample", threads=1)
    out = capsys.readouterr().out
    assert "blog pipeline" in out and "course pipeline" in out and "<- ceiling" in out and "course / blog" in out
    rows = result["pipelines"] + result["variants"]
    assert [r["kind"] for r in result["pipelines"]] == ["pipeline", "pipeline"]
    for row in rows:  # every contender ran the same steps, in the same interleaved rounds
        assert row["images"] == 5 * 32 and len(row["seconds"]) == 2
        assert row["total_images_per_s"] == pytest.approx(row["images"] / sum(row["seconds"]), rel=1e-2)
        per_round = [n * 32 / s for n, s in zip((3, 2), row["seconds"])]  # 5 steps: rounds of 3 and 2
        assert row["images_per_s"] == pytest.approx(sum(per_round) / 2, rel=1e-2)  # the median of two rounds
    best = max(result["variants"], key=lambda r: r["images_per_s"])
    assert result["ceiling"] == best["name"] and result["ceiling_images_per_s"] == best["images_per_s"]
    blog, course = result["blog_images_per_s"], result["course_images_per_s"]
    assert result["ratio"] == pytest.approx(course / blog, rel=1e-2)
    assert result["course_vs_ceiling"] == pytest.approx(course / best["images_per_s"], rel=1e-2)
    assert result["ratio_bound"] == pytest.approx(best["images_per_s"] / blog, rel=1e-2)
    assert result["native_bf16"] is native_bf16(CPU) and result["settings"]["threads"] == 1
    assert result["settings"]["course"] == dict(pipeline="memory", **course_settings(CPU))
    assert result["variants"][0]["vs_blog_settings"] == 1.0
    assert len(result["load_before"]) == 3 and result["seconds_total"] > 0
    assert result["machine"]["device_name"] == "cpu" and result["machine"]["torch_threads"] == 1
    assert format_bench(result).count("\n") >= len(rows) + 2
    assert "load average" in format_bench(result) and "load average" not in format_bench(result, show_load=False)
    json.dumps(result)  # the CLI writes it as JSON


def test_cli_bench_passes_its_options_and_writes_json(tmp_path, monkeypatch):
    from course_lib.__main__ import main

    real = bench.run_bench
    calls = []

    def quick(model, **kw):  # the CLI's arguments, then a quick real run
        calls.append(dict(kw, model=model))
        return real(model, **dict(kw, rounds=1, verbose=False))

    monkeypatch.setattr(bench, "run_bench", quick)
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", "blog-cnn", "--steps", "2", "--device", "cpu", "--dataset", "sample",
                 "--threads", "1", "--out", str(out)]) == 0
    assert calls == [dict(model="blog-cnn", steps=2, device="cpu", batch_size=64, dataset="sample", threads=1,
                          compile=None)]
    saved = json.loads(out.read_text())
    assert (saved["settings"]["model"], saved["settings"]["steps"], saved["settings"]["rounds"]) == ("blog-cnn", 2, 1)
    rows = saved["pipelines"] + saved["variants"]
    assert len(saved["variants"]) >= 2 and all(r["images"] == 2 * 64 and len(r["seconds"]) == 1 for r in rows)
    assert saved["ratio"] == pytest.approx(saved["course_images_per_s"] / saved["blog_images_per_s"], rel=1e-2)
