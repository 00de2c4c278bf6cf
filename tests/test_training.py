"""course_lib.training: learning, exact reproducibility, the settings, one epoch, divergence, interruption and resume.

Checkpoint files are tested in test_checkpoints.py, devices and mixed precision in test_devices.py."""
from __future__ import annotations

import importlib

import pytest
import torch

import course_lib
from course_lib import CheckpointError, ConfigError, build_model, fit, load_data, save_checkpoint, seed_everything
from course_lib.devices import amp_policy
from course_lib.training import EpochResult, Protocol, SpeedOptions, train_epoch

CPU = SpeedOptions(device="cpu")


@pytest.fixture(scope="module")
def small():
    """Real MNIST digits from the embedded sample, small enough for seconds of training."""
    return load_data("sample", train_limit=640, test_limit=200)


def _train(data, name="blog-resnet", speed=CPU, step_losses=None, **protocol):
    """``name`` trained on ``data`` from ``seed_everything(seed)``; the protocol's fields by keyword (2 epochs)."""
    protocol = Protocol(**{"epochs": 2, **protocol})
    seed_everything(protocol.seed)
    model = build_model(name)
    return model, fit(model, data, protocol, speed, progress=False, step_losses=step_losses)


def test_loss_decreases_on_real_digits(small):
    _, history = _train(small, name="residual-8", epochs=4, recompute_bn=True)
    assert history.status == "completed" and len(history) == 4
    assert history.train_loss[-1] < history.train_loss[0] < 2.4
    assert history.test_acc[-1] > 0.3  # far above the 10% of chance
    rec = history.final
    assert set(rec) == {"epoch", "train_loss", "test_acc", "seconds", "images_per_s"}
    assert list(history.config) == ["epochs", "batch_size", "lr", "momentum", "weight_decay", "seed", "amp",
                                    "channels_last", "compile", "pipeline", "shuffle", "recompute_bn", "schedule",
                                    "warmup_epochs", "crop_padding", "dataset"]
    assert rec["images_per_s"] > 0 and rec["seconds"] > 0


def test_seeded_runs_reproduce_exactly_on_cpu(small):
    m1, h1 = _train(small)
    m2, h2 = _train(small)
    assert h1.train_loss == h2.train_loss and h1.test_acc == h2.test_acc and h1.config == h2.config
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    _, h3 = _train(small, seed=1)
    assert h3.train_loss != h1.train_loss


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
    history = fit(model, small, Protocol(epochs=3), CPU, progress=False)
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
    history = fit(wrapped, small, Protocol(epochs=3), CPU, progress=False, checkpoint=ck)
    assert history.status == "interrupted" and len(history) == 1 and ck.is_file()
    assert "resume" in history.message
    # continue from the checkpoint in a fresh model
    model = build_model("blog-resnet")
    resumed = fit(model, small, Protocol(epochs=3), CPU, progress=False, checkpoint=ck, resume=ck)
    assert resumed.status == "completed" and len(resumed) == 3
    assert resumed.train_loss == ref.train_loss and resumed.test_acc == ref.test_acc
    for a, b in zip(model.state_dict().values(), ref_model.state_dict().values()):
        assert torch.equal(a, b)
    again = fit(build_model("blog-resnet"), small, Protocol(epochs=3), CPU, progress=False, resume=ck)
    assert len(again) == 3 and "already holds 3 epochs" in again.message  # nothing left to train


def test_resume_refuses_another_models_checkpoint_or_protocol(small, tmp_path):
    ck = save_checkpoint(tmp_path / "cnn.pt", build_model("blog-cnn"))
    with pytest.raises(CheckpointError, match="blog-cnn"):
        fit(build_model("blog-resnet"), small, Protocol(epochs=1), CPU, progress=False, resume=ck)
    tiny, run = small.subset(64, 32), tmp_path / "run.pt"
    fit(build_model("blog-cnn"), tiny, Protocol(epochs=1), CPU, progress=False, checkpoint=run)
    with pytest.raises(CheckpointError, match="another protocol.*lr: checkpoint 0.1, now 0.05"):
        fit(build_model("blog-cnn"), tiny, Protocol(epochs=2, lr=0.05), CPU, progress=False, resume=run)


def test_settings_are_two_frozen_dataclasses_and_nothing_else(small):
    assert Protocol() == Protocol(epochs=30, batch_size=64, lr=0.1, momentum=0.0, weight_decay=0.0, seed=0,
                                  shuffle=True)  # the blog's protocol
    with pytest.raises(AttributeError):
        Protocol().lr = 1.0  # frozen: a run's protocol cannot drift
    with pytest.raises(ConfigError, match="must be a Protocol.*Fix"):
        fit(build_model("blog-cnn"), small, {"epochs": 3})
    with pytest.raises(TypeError):
        fit(build_model("blog-cnn"), small, epochs=3)  # one way to configure a run: no keyword overrides


@pytest.mark.parametrize("cls, bad", [
    (Protocol, dict(lr=1e9)), (Protocol, dict(lr=-0.1)), (Protocol, dict(lr=float("nan"))), (Protocol, dict(lr="0.1")),
    (Protocol, dict(epochs=-1)), (Protocol, dict(epochs=1.5)), (Protocol, dict(batch_size=0)),
    (Protocol, dict(momentum=2.0)), (Protocol, dict(seed="0")), (SpeedOptions, dict(pipeline="fast")),
    (SpeedOptions, dict(amp="fp8")), (SpeedOptions, dict(eval_batch_size=0)), (SpeedOptions, dict(check_every=0))])
def test_bad_settings_are_refused(cls, bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        cls(**bad)


def _batches(data, sizes):
    """Consecutive batches of the given sizes from ``data``'s training images."""
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [(data.train_x[s:s + n], data.train_y[s:s + n]) for s, n in zip(starts, sizes)]


def test_train_epoch_averages_the_loss_per_image_not_per_batch(small):
    seed_everything(0)
    model = build_model("blog-cnn")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    cpu = torch.device("cpu")
    result = train_epoch(model, optimizer, _batches(small, [60, 1, 3]), 3, cpu, SpeedOptions(device=cpu),
                         amp_policy(cpu, False))
    assert isinstance(result, EpochResult) and result.diverged_at is None and result.seconds > 0
    a, b, c = result.step_losses.tolist()
    assert result.train_loss == pytest.approx((60 * a + b + 3 * c) / 64, rel=1e-6)
    assert abs(result.train_loss - (a + b + c) / 3) > 1e-4  # the per-batch mean would differ


def test_train_epoch_finds_the_first_bad_step_between_sparse_checks(small):
    seed_everything(0)
    model = _NanAfter(build_model("plain-8"), 6)  # the 6th step's loss is NaN
    cpu = torch.device("cpu")
    result = train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1), _batches(small, [8] * 10), 10, cpu,
                         SpeedOptions(device=cpu, check_every=4), amp_policy(cpu, False))
    assert result.diverged_at == 6 and model.calls == 8  # found at the check after step 8, named exactly


class _Compiled(torch.nn.Module):
    """Stands in for torch.compile's wrapper (the eager model in ``_orig_mod``); records the batch sizes it ran."""

    def __init__(self, model):
        super().__init__()
        self._orig_mod, self.sizes = model, []

    def forward(self, x):
        self.sizes.append(len(x))
        return self._orig_mod(x)


def test_a_compiled_model_never_sees_the_smaller_last_batch(small, monkeypatch):
    wrappers = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: wrappers.append(_Compiled(model)) or wrappers[-1])
    steps = []
    _train(small.subset(100, 32), name="blog-cnn", speed=SpeedOptions(device="cpu", compile=True), step_losses=steps)
    assert wrappers[0].sizes == [64, 64] and len(steps) == 4  # 100 = 64 + 36: the 36 ran eagerly


def test_bf16_autocast_rounds_differently_but_trains_alike(small):
    # the GPU's mixed-precision code path, exercised on CPU with bfloat16 autocast
    _, fp32 = _train(small, name="residual-8", epochs=3, recompute_bn=True)
    bf16_speed = SpeedOptions(device="cpu", amp="bf16", channels_last=True)
    _, bf16 = _train(small, name="residual-8", speed=bf16_speed, epochs=3, recompute_bn=True)
    assert bf16.status == "completed" and bf16.config["amp"] == "bf16"
    assert bf16.train_loss != fp32.train_loss  # autocast ran: bf16 rounds differently
    assert bf16.train_loss == pytest.approx(fp32.train_loss, rel=0.02)  # and learns the same: 2.2 -> 1.7
    assert bf16.test_acc[-1] > 0.3 and fp32.test_acc[-1] > 0.3  # chance is 0.1


def test_importing_course_lib_leaves_torch_alone_and_fit_flushes_denormals(small):
    denormal = lambda: torch.tensor([1e-40]).item()  # below float32's smallest normal number
    torch.set_flush_denormal(False)
    importlib.reload(course_lib)
    assert denormal() != 0.0
    _train(small.subset(64, 32), name="blog-cnn", epochs=1)
    assert denormal() == 0.0
