"""Training: learning, exact reproducibility, checkpoints, divergence, interruption and resume, devices."""
from __future__ import annotations

import pytest
import torch

from course_lib import (CheckpointError, ConfigError, DeviceError, build_model, fit, load_checkpoint, load_data,
                        load_into, pick_device, save_checkpoint, seed_everything)
from course_lib.profiles import get_profile


@pytest.fixture(scope="module")
def small():
    """Real MNIST digits from the embedded sample, small enough for seconds of training."""
    return load_data("sample", train_limit=640, test_limit=200)


def _train(data, name="blog-resnet", seed=0, **kw):
    seed_everything(seed)
    model = build_model(name)
    kw = {"epochs": 2, "progress": False, "device": "cpu", **kw}
    return model, fit(model, data, seed=seed, **kw)


def test_loss_decreases_on_real_digits(small):
    _, history = _train(small, name="residual-8", epochs=4, recompute_bn=True)
    assert history.status == "completed" and len(history) == 4
    assert history.train_loss[-1] < history.train_loss[0] < 2.4
    assert history.test_acc[-1] > 0.3  # far above the 10% of chance
    rec = history.final
    assert set(rec) == {"epoch", "train_loss", "test_acc", "seconds", "images_per_s"}
    assert rec["images_per_s"] > 0 and rec["seconds"] > 0


def test_seeded_runs_reproduce_exactly_on_cpu(small):
    m1, h1 = _train(small)
    m2, h2 = _train(small)
    assert h1.train_loss == h2.train_loss and h1.test_acc == h2.test_acc
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    _, h3 = _train(small, seed=1)
    assert h3.train_loss != h1.train_loss


def test_blog_pipeline_trains_identically_to_memory_pipeline(small):
    # same shuffle rule, same images: the two pipelines give the same run
    _, fast = _train(small, epochs=1, pipeline="memory")
    _, blog = _train(small, epochs=1, pipeline="blog")
    assert fast.train_loss[0] == pytest.approx(blog.train_loss[0], rel=1e-5)


def test_checkpoint_round_trip_gives_identical_outputs(small, tmp_path):
    model, history = _train(small, epochs=1)
    path = save_checkpoint(tmp_path / "ck.pt", model, history)
    loaded = load_checkpoint(path)
    assert not loaded.training and loaded.spec == model.spec
    assert loaded.history.train_loss == history.train_loss
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(small.test_x[:50]), model(small.test_x[:50]))


def test_wrong_checkpoint_names_both_models(small, tmp_path):
    model, _ = _train(small, epochs=1)
    path = save_checkpoint(tmp_path / "ck.pt", model)
    with pytest.raises(CheckpointError, match="blog-resnet.*blog-cnn"):
        load_into(build_model("blog-cnn"), path)
    with pytest.raises(CheckpointError, match="plain-8.*plain-20"):
        p = save_checkpoint(tmp_path / "p8.pt", build_model("plain-8"))
        load_into(build_model("plain-20"), p)
    with pytest.raises(CheckpointError, match="width"):
        p = save_checkpoint(tmp_path / "w.pt", build_model("plain-8", width=8))
        load_into(build_model("plain-8"), p)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


class _NanAfter(torch.nn.Module):
    """Wraps a model; from its n-th training forward on, the logits are NaN (a blown-up net)."""

    def __init__(self, model, n):
        super().__init__()
        self.model, self.n, self.calls, self.spec = model, n, 0, model.spec

    def forward(self, x):
        out = self.model(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.n:
                out = out * float("nan")
        return out


def test_divergence_stops_at_the_step_and_keeps_history(small, capsys):
    steps_per_epoch = -(-len(small.train_y) // 64)  # 10
    seed_everything(0)
    model = _NanAfter(build_model("plain-8"), steps_per_epoch + 4)
    history = fit(model, small, epochs=3, progress=False, device="cpu")
    assert history.status == "diverged"
    assert len(history) == 1 and history.final["epoch"] == 1  # the completed epoch is kept
    assert "epoch 2, step 4 of 10" in history.message and "smaller lr" in history.message
    assert model.calls == steps_per_epoch + 4  # stopped at that step, not at the end of the epoch
    assert "diverged" in capsys.readouterr().out


def _interrupt_after(model, n):
    """Make the n-th training forward of ``model`` raise KeyboardInterrupt, as Ctrl-C / the stop button does."""
    calls = {"n": 0}

    def hook(module, inputs):
        if module.training:
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt

    model.register_forward_pre_hook(hook)
    return model


def test_interrupt_keeps_history_and_checkpoint_and_resume_is_exact(small, tmp_path):
    steps_per_epoch = -(-len(small.train_y) // 64)
    # uninterrupted reference
    ref_model, ref = _train(small, epochs=3)
    # interrupted in the middle of epoch 2
    seed_everything(0)
    wrapped = _interrupt_after(build_model("blog-resnet"), steps_per_epoch + 3)
    ck = tmp_path / "run.pt"
    history = fit(wrapped, small, epochs=3, seed=0, progress=False, device="cpu", checkpoint=ck)
    assert history.status == "interrupted" and len(history) == 1 and ck.is_file()
    assert "resume" in history.message
    # continue from the checkpoint in a fresh model
    model = build_model("blog-resnet")
    resumed = fit(model, small, epochs=3, seed=0, progress=False, device="cpu", checkpoint=ck, resume=ck)
    assert resumed.status == "completed" and len(resumed) == 3
    assert resumed.train_loss == ref.train_loss and resumed.test_acc == ref.test_acc
    for a, b in zip(model.state_dict().values(), ref_model.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_refuses_another_models_checkpoint(small, tmp_path):
    ck = save_checkpoint(tmp_path / "cnn.pt", build_model("blog-cnn"))
    with pytest.raises(CheckpointError, match="blog-cnn"):
        fit(build_model("blog-resnet"), small, epochs=1, progress=False, device="cpu", resume=ck)


@pytest.mark.parametrize("bad", [dict(lr=1e9), dict(lr=-0.1), dict(lr=float("nan")), dict(lr="0.1"),
                                 dict(epochs=-1), dict(batch_size=0), dict(momentum=2.0), dict(pipeline="fast")])
def test_bad_settings_are_refused_with_a_fix(small, bad):
    with pytest.raises(ConfigError):
        fit(build_model("blog-cnn"), small, progress=False, device="cpu", **bad)


def test_device_selection(capsys, monkeypatch):
    monkeypatch.setattr("course_lib.training._announced_device", set())
    assert pick_device("cpu") == torch.device("cpu")
    auto = pick_device("auto")
    assert "device:" in capsys.readouterr().out  # auto announces what it picked
    if not torch.cuda.is_available():
        assert auto.type in ("cpu", "mps")
        with pytest.raises(DeviceError, match="device='auto'"):
            pick_device("cuda")
        with pytest.raises(DeviceError):
            fit(build_model("blog-cnn"), load_data("sample", train_limit=64, test_limit=64),
                epochs=1, progress=False, device="cuda")
    with pytest.raises(ConfigError, match="auto, cpu, cuda"):
        pick_device("gpu")


def test_autocast_path_runs_on_cpu(small):
    # the GPU's mixed-precision code path, exercised on CPU with bfloat16 autocast
    _, history = _train(small, name="blog-cnn", epochs=1, amp="bf16", channels_last=True)
    assert history.status == "completed" and 0 <= history.final["test_acc"] <= 1


def test_profiles(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert get_profile().name == "smoke"
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ConfigError, match="smoke, cpu, full"):
        get_profile()
    monkeypatch.delenv("COURSE_PROFILE")
    expected = "full" if torch.cuda.is_available() else get_profile().name
    assert get_profile().name == expected
    assert get_profile("CPU").pick({"smoke": 1, "cpu": 2, "full": 3}) == 2
    with pytest.raises(ConfigError, match="full"):
        get_profile("cpu").pick({"smoke": 1, "cpu": 2})
