"""course_lib.timing: the one timing loop. A timed step is fit's step; the batch sources are fit's pipelines;
every timing in the course (bench, notebook 03's table, the speed lessons) goes through it.
No timed assertions: speed depends on the machine; these tests check what is timed."""
from __future__ import annotations

import pytest
import torch

from course_lib import (ConfigError, CourseError, Protocol, SpeedOptions, build_model, fit, load_data,
                        seed_everything)
from course_lib.lessons import building_resnets as A
from course_lib.timing import (StepTimer, TimingResult, blog_batches, interleaved_rounds, memory_batches,
                               time_training_steps)


@pytest.fixture(scope="module")
def digits():
    """200 real digits (3 full batches of 64 and a partial one of 8) and 64 test digits."""
    return load_data("sample", verbose=False).subset(200, 64, seed=3)


def _model(name="blog-cnn", seed=0):
    seed_everything(seed)
    return build_model(name)


def test_timing_result_rates():
    r = TimingResult(steps=4, images=256, seconds=0.5, warmup_seconds=2.0)
    assert r.images_per_s == 512 and r.seconds_per_step == 0.125
    assert r.as_dict() == dict(steps=4, images=256, seconds=0.5, warmup_seconds=2.0, images_per_s=512,
                               seconds_per_step=0.125)


def test_a_timed_epoch_is_fits_epoch_bit_for_bit(digits):
    # the same init, data order and steps: the timing loop trains exactly as fit does (memory pipeline)
    data = digits.subset(192, 64)  # 3 full batches, so drop_last changes nothing
    fitted = _model("blog-resnet")
    history = fit(fitted, data, Protocol(epochs=1, batch_size=64, lr=0.1, seed=7), SpeedOptions(device="cpu"),
                  progress=False)
    assert history.status == "completed"
    timed = _model("blog-resnet")
    timer = StepTimer(timed, memory_batches(data.train_x, data.train_y, 64, seed=7), device="cpu", lr=0.1)
    result = timer.run(3)
    assert (result.steps, result.images) == (3, 192) and result.seconds > 0
    for (name, a), b in zip(fitted.state_dict().items(), timed.state_dict().values()):
        assert torch.equal(a, b), name


def test_sources_are_fits_pipelines_and_run_without_end(digits):
    # blog: uint8 -> PIL -> ToTensor -> DataLoader; memory: slices of one tensor; same images, same order,
    # epoch after epoch, only full batches (200 images: 3 per epoch, the partial 8 left out)
    blog = blog_batches(digits, 64, "cpu", seed=5)
    memory = memory_batches(digits.train_x, digits.train_y, 64, seed=5)
    seen = []
    for _ in range(7):  # into a third epoch
        (xb, yb), (xm, ym) = blog(), memory()
        assert xb.shape == (64, 1, 28, 28) and torch.equal(yb, ym)
        assert torch.allclose(xb, xm, atol=1e-6)
        seen.append(ym)
    first, second = torch.cat(seen[:3]), torch.cat(seen[3:6])
    assert not torch.equal(first, second)  # reshuffled every epoch
    with pytest.raises(ConfigError, match="full batch"):
        memory_batches(digits.train_x[:10], digits.train_y[:10], 64)


def test_timer_options_reach_the_step(digits):
    xb, yb = digits.train_x[:16], digits.train_y[:16]
    model = _model("blog-resnet")
    dtypes = []
    model.fc2.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    timer = StepTimer(model, (xb, yb), device="cpu", amp="bf16", channels_last=True)
    before = model.fc2.weight.detach().clone()
    assert timer.run(2).images == 32
    assert dtypes == [torch.bfloat16] * 2 and not torch.equal(before, model.fc2.weight)  # autocast, and it trains
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert timer.policy.dtype == torch.bfloat16 and timer.scaler is None  # bf16: no GradScaler
    with pytest.raises(ConfigError, match="steps"):
        timer.run(0)


def test_timer_flushes_denormals_as_fit_does(digits):
    torch.set_flush_denormal(False)
    StepTimer(_model(), (digits.train_x[:8], digits.train_y[:8]), device="cpu")
    assert torch.tensor([1e-40]).item() == 0.0  # a timed step runs under fit's float settings


def test_check_finite_stops_on_nan(digits):
    class Blown(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(784, 10)

        def forward(self, x):
            return self.fc(x.flatten(1)) * float("nan")

    timer = StepTimer(Blown(), (digits.train_x[:8], digits.train_y[:8]), check_finite=True)
    with pytest.raises(CourseError, match="nan at timed step 1"):
        timer.run(3)


def test_compile_mode_reaches_torch_compile(monkeypatch, digits):
    seen = []

    def fake_compile(model, **kw):  # stands in for inductor: records the mode, runs eagerly
        seen.append((kw.get("mode"), kw.get("dynamic")))
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    batch = (digits.train_x[:8], digits.train_y[:8])
    result = time_training_steps(_model(), batch, 2, warmup=1, compile="reduce-overhead")
    time_training_steps(_model(), batch, 1, compile=False)
    assert seen == [("reduce-overhead", False)]  # static shapes; CUDA graphs only on a GPU
    assert result.warmup_seconds > 0 and result.steps == 2


def test_interleaved_rounds_take_turns_starting_and_split_the_steps(monkeypatch, digits):
    calls = []
    real_run = StepTimer.run

    def counting_run(self, steps):
        calls.append((names[id(self)], steps))
        return real_run(self, steps)

    monkeypatch.setattr(StepTimer, "run", counting_run)
    timers = [StepTimer(_model(), (digits.train_x[:2], digits.train_y[:2])) for _ in range(3)]
    names = {id(t): name for t, name in zip(timers, "abc")}
    rounds = list(interleaved_rounds(timers, steps=7, rounds=3, warmup=2))
    assert calls[:3] == [("a", 2), ("b", 2), ("c", 2)]  # the warm-up, untimed
    assert calls[3:] == [("a", 3), ("b", 3), ("c", 3), ("b", 2), ("c", 2), ("a", 2), ("c", 2), ("a", 2), ("b", 2)]
    assert [[r.steps for r in timed] for timed in rounds] == [[3, 3, 3], [2, 2, 2], [2, 2, 2]]  # in timers' order
    assert all(r.images == 2 * r.steps for timed in rounds for r in timed)


def test_notebook_03s_table_is_timed_by_the_loop():
    rates = A.measure_throughput({"a": _model("blog-cnn"), "b": _model("blog-resnet")}, batch_size=2, steps=5)
    assert list(rates) == ["a", "b"] and all(len(v) == 2 for v in rates.values())  # 5 steps in 2 rounds
    table = A.format_throughput(rates)
    assert [line.split()[0] for line in table.splitlines()[2:]] == ["a", "b"]
    assert table.splitlines()[2].split()[-1] == "1.0"  # the first model is the reference
    cpu = A.SETTINGS["cpu"]["throughput"]  # the committed table times at least 640 images per model, in >= 3 rounds
    assert cpu["steps"] * cpu["batch_size"] >= 640 and cpu["rounds"] >= 3
