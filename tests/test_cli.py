"""The command line, run as a student or instructor would: in a subprocess, from any folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from course_lib import load_checkpoint, load_data
from conftest import write_idx_dataset

REPO = Path(__file__).resolve().parent.parent


def run(*args, cwd=None, env=None, timeout=300):
    full_env = {**os.environ, "COURSE_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "course_lib", *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def test_info_from_another_folder(tmp_path):
    out = run("info", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"torch {torch.__version__}" in text and "device (auto): cpu" in text or "cuda" in text
    assert "profile:" in text and "mnist:" in text and "fashion:" in text and "sample:" in text
    assert "data root: data" in text  # the repo's data root, whatever the working directory


def test_unknown_profile_in_environment_is_a_clear_error(tmp_path):
    out = run("info", env={"COURSE_PROFILE": "fastest"})
    assert out.returncode == 2
    assert "fastest" in out.stderr and "smoke, cpu, full" in out.stderr and "Traceback" not in out.stderr


def test_data_verifies_a_local_root(tmp_path):
    write_idx_dataset(tmp_path / "MNIST" / "raw", n_train=30, n_test=10)
    out = run("data", "--dataset", "mnist", "--root", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "OK: mnist from local root" in out.stdout and "30 train / 10 test" in out.stdout


def test_data_without_files_or_network_exits_nonzero_with_the_ways(tmp_path):
    out = run("data", "--dataset", "mnist", "--root", str(tmp_path))
    assert out.returncode == 2
    assert "MNIST/raw" in out.stderr and "python -m course_lib data --dataset mnist" in out.stderr
    assert "Traceback" not in out.stderr


def test_data_refuses_a_corrupt_file(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    write_idx_dataset(folder, n_train=30, n_test=10)
    (folder / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00")
    out = run("data", "--dataset", "mnist", "--root", str(tmp_path))
    assert out.returncode == 2 and "train-labels-idx1-ubyte" in out.stderr and "Traceback" not in out.stderr


def test_train_writes_history_and_a_loadable_checkpoint(tmp_path):
    out = run("train", "--model", "blog-cnn", "--dataset", "sample", "--epochs", "2", "--seed", "3",
              "--train-limit", "256", "--test-limit", "100", "--out", str(tmp_path / "run"), "--quiet",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["epoch"] for r in history["records"]] == [1, 2] and history["status"] == "completed"
    model = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert model.spec["name"] == "blog-cnn" and not model.training
    data = load_data("sample", train_limit=256, test_limit=100)
    from course_lib import evaluate
    assert evaluate(model, data.test_x, data.test_y) == history["records"][-1]["test_acc"]


def test_train_rejects_unknown_model_and_bad_lr(tmp_path):
    out = run("train", "--model", "resnet-9000", "--dataset", "sample", "--out", str(tmp_path))
    assert out.returncode == 2 and "valid names are" in out.stderr
    out = run("train", "--model", "blog-cnn", "--dataset", "sample", "--lr", "1e6", "--out", str(tmp_path))
    assert out.returncode == 2 and "lr=1000000.0" in out.stderr and "Fix" in out.stderr
    out = run("train", "--model", "blog-cnn", "--dataset", "mnits", "--out", str(tmp_path))
    assert out.returncode == 2 and "mnist, fashion, sample" in out.stderr
    out = run("train", "--model", "blog-cnn", "--dataset", "sample", "--device", "cuda", "--out", str(tmp_path))
    if not torch.cuda.is_available():
        assert out.returncode == 2 and "no usable CUDA GPU" in out.stderr


def test_train_resume_continues_a_killed_run(tmp_path):
    args = ["train", "--model", "blog-cnn", "--dataset", "sample", "--seed", "0", "--train-limit", "128",
            "--test-limit", "50", "--quiet"]
    first = run(*args, "--epochs", "1", "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    resumed = run(*args, "--epochs", "2", "--resume", "--out", str(tmp_path / "a"))
    straight = run(*args, "--epochs", "2", "--out", str(tmp_path / "b"))
    assert resumed.returncode == 0 and straight.returncode == 0, resumed.stderr + straight.stderr
    ha = json.loads((tmp_path / "a" / "history.json").read_text())["records"]
    hb = json.loads((tmp_path / "b" / "history.json").read_text())["records"]
    strip = lambda rs: [(r["epoch"], r["train_loss"], r["test_acc"]) for r in rs]
    assert strip(ha) == strip(hb)
