"""course_lib.checkpoints: a checkpoint is data, never code; broken or hostile files get one clear message."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import (CheckpointError, ConfigError, Protocol, SpeedOptions, build_model, evaluate, fit,
                        load_checkpoint, load_data, load_into, save_checkpoint, seed_everything)
from course_lib.checkpoints import CHECKPOINT_FORMAT, read_checkpoint

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained():
    """A blog-resnet trained one epoch on 256 real MNIST digits, and its History."""
    data = load_data("sample", train_limit=256, test_limit=100)
    seed_everything(0)
    model = build_model("blog-resnet")
    return model, fit(model, data, Protocol(epochs=1), SpeedOptions(device="cpu"), progress=False), data


@pytest.fixture
def good(trained, tmp_path):
    model, history, _ = trained
    return save_checkpoint(tmp_path / "good.pt", model, history)


def test_round_trip_gives_identical_outputs(trained, good):
    model, history, data = trained
    loaded = load_checkpoint(good)
    assert not loaded.training and loaded.spec == model.spec
    assert loaded.history.train_loss == history.train_loss and loaded.history.config == history.config
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(data.test_x[:50]), model(data.test_x[:50]))


def test_numpy_numbers_in_a_history_are_saved_as_plain_data(trained, tmp_path):
    model, history, _ = trained
    history.config["note"] = np.float64(0.5)  # a lesson may record numpy numbers
    try:
        path = save_checkpoint(tmp_path / "np.pt", model, history)
    finally:
        del history.config["note"]
    assert load_checkpoint(path).history.config["note"] == 0.5


@pytest.mark.parametrize("name", ["05_plain-20_cpu.pt", "05_residual-20_cpu.pt"])
def test_committed_checkpoints_still_load(name):
    model = load_checkpoint(REPO / "results" / name)
    assert model.spec["name"] == name.split("_")[1] and len(model.history) == model.history.config["epochs"]
    digits = load_data("sample", test_limit=300)
    assert evaluate(model, digits.test_x, digits.test_y) > 0.8  # trained weights, not a fresh init


def test_wrong_model_names_both_models(trained, good, tmp_path):
    with pytest.raises(CheckpointError, match="blog-resnet.*blog-cnn"):
        load_into(build_model("blog-cnn"), good)
    with pytest.raises(CheckpointError, match="plain-8.*plain-20"):
        load_into(build_model("plain-20"), save_checkpoint(tmp_path / "p8.pt", build_model("plain-8")))
    with pytest.raises(CheckpointError, match="width"):
        load_into(build_model("plain-8"), save_checkpoint(tmp_path / "w.pt", build_model("plain-8", width=8)))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


class _TouchesAFile:
    """A pickle payload: unpickling it calls Path(marker).touch(), i.e. runs code on load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def _malicious(tmp_path, good) -> tuple[Path, Path]:
    """A checkpoint that looks like the course's, with a payload in ``extra``; and the file it would create."""
    marker = tmp_path / "payload_ran"
    state = torch.load(good, weights_only=True)
    state["extra"] = {"scaler": _TouchesAFile(marker)}
    path = tmp_path / "evil.pt"
    torch.save(state, path)
    return path, marker


def test_a_checkpoint_carrying_code_is_refused_and_its_payload_never_runs(good, tmp_path):
    path, marker = _malicious(tmp_path, good)
    with pytest.raises(CheckpointError, match=r"evil\.pt.*refused.*could run code.*Fix") as err:
        load_checkpoint(path)
    assert "weights_only=False" not in str(err.value)  # never advise the unsafe loader
    with pytest.raises(CheckpointError):
        fit(build_model("blog-resnet"), load_data("sample", train_limit=64, test_limit=64), Protocol(epochs=1),
            SpeedOptions(device="cpu"), progress=False, resume=path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is real: the unsafe loader runs it
    assert marker.exists()


def test_evaluate_command_refuses_a_checkpoint_carrying_code(good, tmp_path):
    path, marker = _malicious(tmp_path, good)
    env = {**os.environ, "COURSE_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "course_lib", "evaluate", "--checkpoint", str(path),
                          "--dataset", "sample", "--test-limit", "10"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "refused" in out.stderr and "Traceback" not in out.stderr
    assert not marker.exists()


def _resave(good, tmp_path, change) -> Path:
    state = torch.load(good, weights_only=True)
    change(state)
    path = tmp_path / "changed.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("change, problem", [
    (lambda s: s.pop("spec"), "'spec' is missing"),
    (lambda s: s.pop("state_dict"), "'state_dict' is missing"),
    (lambda s: s["spec"].pop("name"), "'spec' must be"),
    (lambda s: s["state_dict"].update(extra=[1, 2]), "'state_dict' must map"),
    (lambda s: s.update(history=[1, 2]), "'history' must be"),
    (lambda s: s.update(format="something-else"), "no 'format'"),
])
def test_a_checkpoint_missing_a_field_names_it(good, tmp_path, change, problem):
    path = _resave(good, tmp_path, change)
    with pytest.raises(CheckpointError, match="changed.pt") as err:
        load_checkpoint(path)
    assert problem in str(err.value) and "Fix" in str(err.value)


def test_truncated_empty_and_wrong_files_get_one_clear_message(good, tmp_path, trained):
    whole = good.read_bytes()
    cases = {
        "truncated.pt": (whole[: len(whole) // 2], "truncated or corrupt"),
        "empty.pt": (b"", "empty"),
        "junk.pt": (b"not a checkpoint at all", "truncated or corrupt"),
        "result.pt": (json.dumps({"meta": {"dataset": "sample"}}).encode(), "JSON"),
    }
    for name, (content, problem) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=name) as err:
            load_checkpoint(tmp_path / name)
        assert problem in str(err.value) and "Fix" in str(err.value), name
    torch.save(trained[0].state_dict(), tmp_path / "weights_only.pt")  # a plain state dict
    with pytest.raises(CheckpointError, match="load_state_dict"):
        read_checkpoint(tmp_path / "weights_only.pt")


def test_a_save_that_dies_halfway_leaves_the_previous_checkpoint(trained, good, monkeypatch):
    # what a process killed while saving leaves behind: a partial file, never a half-written checkpoint
    model, _, _ = trained
    before = read_checkpoint(good)

    def dies_halfway(state, path):
        Path(path).write_bytes(good.read_bytes()[:1000])
        raise KeyboardInterrupt

    monkeypatch.setattr("course_lib.checkpoints.torch.save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(good, build_model("blog-resnet"))
    after = read_checkpoint(good)
    assert after["format"] == CHECKPOINT_FORMAT and after["history"] == before["history"]
    assert all(torch.equal(after["state_dict"][k], v) for k, v in before["state_dict"].items())


def test_a_folder_in_the_way_is_a_clear_error(trained, tmp_path):
    (tmp_path / "run.pt").mkdir()
    with pytest.raises(ConfigError, match="run.pt"):
        save_checkpoint(tmp_path / "run.pt", trained[0])
