"""The speed benchmark and the fast training path. No timed assertions: speed is shown by
``python -m course_lib bench`` side by side; these tests check structure and correctness."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from course_lib import ConfigError, build_model, fit, load_data, seed_everything
from course_lib.lessons.speed.bench import BLOG_FIT_KWARGS, _bench_data, fast_fit_kwargs, model_only_seconds, run_bench
from course_lib.data import BatchIterator, blog_loader, epoch_generator
from course_lib.training import autocast_for, evaluate, mps_available

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def sample():
    return load_data("sample", verbose=False)


def _fit(data, seed=0, name="blog-resnet", losses=None, **kw):
    seed_everything(seed)
    model = build_model(name)
    history = fit(model, data, seed=seed, progress=False, device="cpu", step_losses=losses, **kw)
    assert history.status == "completed", history.message
    return model, history


# --------------------------------------------------------------------------- settings per device


def test_fast_settings_per_device():
    assert fast_fit_kwargs(CPU) == dict(channels_last=True, amp=False, compile=False)
    # the GPU path: whole-dataset device tensor (fit's memory pipeline), AMP, channels_last, CUDA graphs
    assert fast_fit_kwargs(torch.device("cuda")) == dict(channels_last=True, amp=True, compile="reduce-overhead")
    assert fast_fit_kwargs(torch.device("mps")) == BLOG_FIT_KWARGS
    here = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    assert fast_fit_kwargs("auto") == fast_fit_kwargs(torch.device(here))
    with pytest.raises(ConfigError):
        fast_fit_kwargs("tpu")


def test_autocast_picks_bf16_on_cpu_and_fp16_when_asked():
    with autocast_for(CPU, True) as ctx:
        assert torch.is_autocast_enabled("cpu") and ctx.fast_dtype == torch.bfloat16
        out = torch.nn.Linear(4, 3)(torch.randn(2, 4))
        assert out.dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")
    with autocast_for(CPU, "fp16") as ctx:
        assert ctx.fast_dtype == torch.float16
    with pytest.raises(ConfigError):
        autocast_for(CPU, "fp8")


def test_compile_mode_reaches_torch_compile(monkeypatch, sample):
    seen = []

    def fake_compile(model, **kw):  # stands in for inductor: records the mode, runs eagerly
        seen.append(kw.get("mode"))
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    tiny = sample.subset(128, 64)
    _fit(tiny, name="blog-cnn", epochs=1, compile="reduce-overhead")
    _fit(tiny, name="blog-cnn", epochs=1, compile=True)
    _fit(tiny, name="blog-cnn", epochs=1, compile=False)
    assert seen == ["reduce-overhead", None]


def test_channels_last_path_converts_the_model(sample):
    model, history = _fit(sample.subset(128, 64), epochs=1, **fast_fit_kwargs(CPU))
    conv = model.rblock1.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert history.config["channels_last"] is True


# --------------------------------------------------------------------------- same images, same maths


def test_both_pipelines_see_the_same_images_each_epoch(sample):
    data = sample.subset(200, 64)  # 200 = 3 full batches + a partial one
    memory = BatchIterator(data.train_x, data.train_y, 64, seed=7)
    loader = blog_loader(data, 64, shuffle=True)
    for epoch in (1, 2):
        loader.sampler.generator = epoch_generator(7, epoch)  # what fit does for the blog pipeline
        pairs = list(zip(memory.epoch(epoch), loader, strict=True))
        assert [len(yb) for (_, yb), _ in pairs] == [64, 64, 64, 8]
        for (xm, ym), (xb, yb) in pairs:
            assert torch.equal(ym, yb)
            assert torch.allclose(xm, xb, atol=1e-6)  # uint8 -> PIL -> ToTensor gives the same pixels
    orders = [memory.order(e) for e in (1, 2)]
    assert not torch.equal(*orders) and sorted(orders[0].tolist()) == list(range(200))


def test_blog_and_course_pipelines_train_to_the_same_weights(sample):
    # the benchmark compares like with like: same images, same order, same steps, same result
    data = sample.subset(192, 64)
    loss_blog, loss_memory = [], []
    m_blog, _ = _fit(data, epochs=2, pipeline="blog", losses=loss_blog)
    m_memory, _ = _fit(data, epochs=2, pipeline="memory", losses=loss_memory)
    assert len(loss_blog) == len(loss_memory) == 6
    assert loss_blog == pytest.approx(loss_memory, rel=1e-5)
    for a, b in zip(m_blog.state_dict().values(), m_memory.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5)


def test_fast_path_computes_the_same_steps_as_the_plain_path(sample):
    # channels_last changes only the memory layout (and float rounding), not the maths
    data = sample.subset(320, 64)
    plain, fast = [], []
    _fit(data, epochs=1, losses=plain, **BLOG_FIT_KWARGS)
    _fit(data, epochs=1, losses=fast, **fast_fit_kwargs(CPU))
    assert len(plain) == len(fast) == 5
    assert fast == pytest.approx(plain, rel=1e-3)


def test_fast_path_reaches_the_plain_paths_accuracy(sample):
    """Held-out accuracy of the fast (course) settings vs the plain fp32 settings, 2 seeds each.

    BlogResNet on 1,000 sample digits (2 epochs at lr 0.02 + 1 at lr 0.002, SGD momentum
    0.9, batch 16: enough steps to converge in seconds), then judged on 2,000 digits it
    never saw. With the same seed the runs differ only by float rounding, but SGD amplifies
    rounding like it amplifies a change of seed, so the check is statistical: on the sample
    the seed alone moves accuracy by about 1.5 points (0.906 to 0.922 over seeds 0-2), so the
    means must agree within 1.5 points and each pair within 2.5 (a broken path loses far more)."""
    order = torch.randperm(len(sample.train_y), generator=torch.Generator().manual_seed(0))
    fit_idx, held_idx = order[:1000], order[1000:2000]  # disjoint
    train = replace(sample, train_x=sample.train_x[fit_idx], train_y=sample.train_y[fit_idx],
                    test_x=sample.test_x[:100], test_y=sample.test_y[:100])
    held_x = torch.cat([sample.test_x, sample.train_x[held_idx]])
    held_y = torch.cat([sample.test_y, sample.train_y[held_idx]])
    acc = {}
    for name, kw in (("plain", BLOG_FIT_KWARGS), ("fast", fast_fit_kwargs(CPU))):
        for seed in (0, 1):
            model, _ = _fit(train, seed=seed, epochs=2, batch_size=16, lr=0.02, momentum=0.9, **kw)
            fit(model, train, epochs=1, batch_size=16, lr=0.002, momentum=0.9, seed=seed + 100,
                progress=False, device="cpu", **kw)
            acc[name, seed] = evaluate(model, held_x, held_y)
    assert min(acc.values()) > 0.88, acc  # it learned (chance is 10%)
    for seed in (0, 1):
        assert abs(acc["fast", seed] - acc["plain", seed]) <= 0.025, acc
    mean = {k: (acc[k, 0] + acc[k, 1]) / 2 for k in ("plain", "fast")}
    assert abs(mean["fast"] - mean["plain"]) <= 0.015, acc


# --------------------------------------------------------------------------- the benchmark itself


def test_bench_data_slices_and_repeats(sample):
    data = _bench_data(sample.subset(100, 100), 256, seed=3)
    assert data.train_x.shape == (256, 1, 28, 28) and data.train_y.shape == (256,)
    assert len(data.test_y) == 64 and data.info.n_train == 256 and not data.info.full
    assert torch.equal(data.train_x[:100].sum(0), data.train_x[100:200].sum(0))  # whole set, repeated
    with pytest.raises(ConfigError):
        run_bench(steps=0, verbose=False)


def test_model_only_step_trains(sample):
    seed_everything(0)
    model = build_model("blog-resnet")
    xb, yb = sample.train_x[:64], sample.train_y[:64]
    before = model.fc2.weight.detach().clone()
    seconds = model_only_seconds(model, xb, yb, 3, channels_last=True, bookkeeping=True)
    assert seconds > 0 and not torch.equal(before, model.fc2.weight)
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_run_bench_structure(capsys):
    result = run_bench("blog-resnet", steps=5, device="cpu", batch_size=32, rounds=2, dataset="sample",
                       variant_steps=1)
    out = capsys.readouterr().out
    assert "blog pipeline" in out and "course pipeline" in out and "ceiling" in out
    for key in ("device", "torch", "blog_images_per_s", "course_images_per_s", "ceiling_images_per_s", "ratio"):
        assert key in result
    assert result["device"] == "cpu" and result["torch"] == torch.__version__
    rounds = result["rounds"]
    assert [r["steps"] for r in rounds] == [3, 2] and result["images_per_pipeline"] == 5 * 32
    assert sum(r["images"] for r in rounds) == 5 * 32
    blog_s, course_s = sum(r["blog_s"] for r in rounds), sum(r["course_s"] for r in rounds)
    assert result["ratio"] == pytest.approx(blog_s / course_s, rel=1e-2)
    assert result["ratio"] == pytest.approx(result["course_images_per_s"] / result["blog_images_per_s"], rel=1e-2)
    assert result["settings"]["course"]["channels_last"] is True
    assert result["settings"]["blog"]["channels_last"] is False
    names = [v["name"] for v in result["variants"]]
    assert names[0].startswith("fp32, NCHW") and result["variants"][0]["vs_blog_settings"] == 1.0
    assert any("oneDNN disabled" in n for n in names) and any("bf16" in n for n in names)
    assert len(result["load_before"]) == 3 and result["machine"]["cpu_cores"] >= 1
    json.dumps(result)  # the CLI writes it as JSON


def test_cli_bench_writes_json(tmp_path, monkeypatch):
    import course_lib.lessons.speed.bench as bench
    from course_lib.__main__ import main

    real = bench.run_bench
    calls = []

    def quick(model, steps, device, batch_size):  # the CLI's arguments, then a quick real run
        calls.append((model, steps, device, batch_size))
        return real(model, steps=steps, device=device, batch_size=batch_size, verbose=False,
                    rounds=1, dataset="sample", variants=False)

    monkeypatch.setattr(bench, "run_bench", quick)
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", "blog-cnn", "--steps", "2", "--device", "cpu", "--out", str(out)]) == 0
    assert calls == [("blog-cnn", 2, "cpu", 64)]
    saved = json.loads(out.read_text())
    assert saved["settings"]["model"] == "blog-cnn" and saved["ratio"] > 0 and saved["variants"] == []
