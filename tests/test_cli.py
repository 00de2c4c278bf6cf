"""The command line, run as a student or instructor would: in a subprocess, from any folder; and every
value it takes checked before any work starts (in-process, through ``main``, so hundreds of bad values are cheap)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import course_lib.__main__ as cli
from course_lib import load_checkpoint, load_data
from course_lib.devices import pick_device
from conftest import write_idx_dataset

REPO = Path(__file__).resolve().parent.parent


def run(*args, cwd=None, env=None, timeout=300):
    full_env = {**os.environ, "COURSE_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "course_lib", *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def main(capsys, *args) -> tuple[int, str]:
    """Run the CLI in this process; return (exit code, stderr)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as stop:  # argparse refuses a value by exiting with code 2
        code = stop.code
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_info_from_another_folder(tmp_path):
    out = run("info", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"torch {torch.__version__}" in text
    # the same answer as in this process, whatever the machine (CPU, CUDA or MPS)
    assert f"device (auto): {pick_device('auto', verbose=False)}" in text
    assert f"CUDA available: {torch.cuda.is_available()}" in text
    assert "profile:" in text and "mnist:" in text and "fashion:" in text and "sample:" in text
    assert "data root: data" in text  # the repo's data root, whatever the working directory


def test_unknown_profile_in_environment_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fastest")
    code, err = main(capsys, "info")
    assert code == 2 and "fastest" in err and "smoke, cpu, full" in err and "Traceback" not in err


def test_data_verifies_a_local_root(tmp_path, capsys):
    write_idx_dataset(tmp_path / "MNIST" / "raw", n_train=30, n_test=10)
    assert cli.main(["data", "--dataset", "mnist", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "OK: mnist from local root" in out and "30 train / 10 test" in out


def test_data_without_files_or_network_exits_nonzero_with_the_ways(tmp_path, capsys, no_network):
    code, err = main(capsys, "data", "--dataset", "mnist", "--root", tmp_path)
    assert code == 2 and len(no_network) == 1  # tried the download, then said what to do
    assert "MNIST/raw" in err and "python -m course_lib data --dataset mnist" in err and "Traceback" not in err


def test_data_refuses_a_corrupt_file(tmp_path, capsys, no_network):
    folder = tmp_path / "MNIST" / "raw"
    write_idx_dataset(folder, n_train=30, n_test=10)
    (folder / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00")
    code, err = main(capsys, "data", "--dataset", "mnist", "--root", tmp_path)
    assert code == 2 and "train-labels-idx1-ubyte" in err and "Traceback" not in err


@pytest.mark.slow
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


def test_train_rejects_unknown_model_and_bad_lr(tmp_path, capsys):
    code, err = main(capsys, "train", "--model", "resnet-9000", "--dataset", "sample", "--out", tmp_path / "a")
    assert code == 2 and "valid names are" in err and not (tmp_path / "a").exists()
    code, err = main(capsys, "train", "--model", "blog-cnn", "--dataset", "sample", "--lr", "1e6", "--out", tmp_path)
    assert code == 2 and "argument --lr: '1e6' is not allowed" in err and "0.1" in err
    code, err = main(capsys, "train", "--model", "blog-cnn", "--dataset", "mnits", "--out", tmp_path)
    assert code == 2 and "mnist, fashion, sample" in err
    # a device no machine has: refused on a CPU-only machine and on a GPU machine alike
    code, err = main(capsys, "train", "--model", "blog-cnn", "--dataset", "sample", "--device", "cuda:99",
                     "--out", tmp_path)
    assert code == 2 and "cuda:99" in err and "Fix" in err and "Traceback" not in err


def test_train_resume_flag_continues_to_the_uninterrupted_result(tmp_path, capsys):
    """``--resume`` picks up OUT/checkpoint.pt (in-process: the exactness of resuming is test_training's)."""
    args = ["train", "--model", "blog-cnn", "--dataset", "sample", "--seed", "0", "--train-limit", "128",
            "--test-limit", "50", "--quiet"]
    assert cli.main(args + ["--epochs", "1", "--out", str(tmp_path / "a")]) == 0
    assert cli.main(args + ["--epochs", "2", "--resume", "--out", str(tmp_path / "a")]) == 0
    assert cli.main(args + ["--epochs", "2", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    ha = json.loads((tmp_path / "a" / "history.json").read_text())["records"]
    hb = json.loads((tmp_path / "b" / "history.json").read_text())["records"]
    strip = lambda rs: [(r["epoch"], r["train_loss"], r["test_acc"]) for r in rs]
    assert [r[0] for r in strip(ha)] == [1, 2] and strip(ha) == strip(hb)


# --------------------------------------------------------------------------- every value checked before any work


def numeric_arguments() -> list[tuple[str, str, object]]:
    """(subcommand, option, its argparse type) for every option of every subcommand whose values are numbers."""
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    found = []
    for name, sub in commands.items():
        for action in sub._actions:
            numeric_default = isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
            if action.option_strings and (action.type in (int, float) or hasattr(action.type, "low") or numeric_default):
                found.append((name, action.option_strings[-1], action.type))
    return found


def test_every_numeric_argument_has_a_checked_type():
    args = numeric_arguments()
    assert {"--epochs", "--seed", "--seeds", "--batch-size", "--lr", "--steps", "--train-limit"} <= {a for _, a, _ in args}
    unchecked = [f"{c} {a}" for c, a, t in args if not hasattr(t, "low")]
    assert not unchecked, f"use course_lib.__main__.number(...) as the type of {unchecked}"


@pytest.mark.parametrize("command, option, parse", numeric_arguments(), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_nonsense_numbers_are_refused_with_the_range(command, option, parse):
    bad = ["nan", "inf", "-inf", "ten", "", "1O", str(parse.low - 1), "-1e9"]
    if parse.high is not None:
        bad.append(str(parse.high * 10 + 1))
    if parse.kind is int:
        bad += ["2.5", "1e3"]
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError) as err:
            parse(text)
        assert repr(text) in str(err.value) and "give a" in str(err.value)
    assert parse(str(parse.low)) == parse.low  # the edge of the range is allowed


BAD_VALUES = [
    ("train", "--epochs", "0"), ("train", "--epochs", "-3"), ("train", "--seed", "-1"), ("train", "--batch-size", "0"),
    ("train", "--lr", "nan"), ("train", "--lr", "0"), ("train", "--train-limit", "0"), ("train", "--test-limit", "-5"),
    ("compare", "--seeds", "0"), ("compare", "--epochs", "nan"), ("degradation", "--seeds", "-2"),
    ("evaluate", "--test-limit", "0"), ("bench", "--steps", "0"), ("bench", "--batch-size", "-64"),
]
REQUIRED = {"train": ["--model", "blog-cnn", "--dataset", "sample"], "evaluate": ["--checkpoint", "none.pt"]}


@pytest.mark.parametrize("command, option, value", BAD_VALUES)
def test_a_bad_number_stops_the_command_before_any_work(command, option, value, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("course_lib.data.load_data", lambda *a, **k: pytest.fail("work started"))
    out = ["--out", tmp_path / ("run" if command == "train" else "r.json")]
    code, err = main(capsys, command, *REQUIRED.get(command, []), *out, option, value)
    assert code == 2 and f"argument {option}: {value!r} is not allowed" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_out_folder_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("course_lib.data.load_data", lambda *a, **k: pytest.fail("work started"))
    (tmp_path / "taken").write_text("my notes")
    code, err = main(capsys, "train", "--model", "blog-cnn", "--out", tmp_path / "taken")
    assert code == 2 and "taken exists but is not a folder" in err and "Fix" in err
    code, err = main(capsys, "train", "--model", "blog-cnn", "--out", tmp_path / "taken" / "run")
    assert code == 2 and "taken exists but is not a folder" in err
    assert (tmp_path / "taken").read_text() == "my notes"


@pytest.mark.parametrize("command", ["compare", "degradation", "evaluate", "bench"])
def test_an_out_file_that_is_a_folder_is_refused_before_any_work(command, tmp_path, capsys, monkeypatch):
    for target in ("course_lib.lessons.cnn_vs_resnet.protocol.run_compare", "course_lib.lessons.degradation.run_sweep",
                   "course_lib.lessons.speed.bench.run_bench", "course_lib.data.load_data"):
        monkeypatch.setattr(target, lambda *a, **k: pytest.fail("work started"))
    (tmp_path / "result.json").mkdir()
    code, err = main(capsys, command, *REQUIRED.get(command, []), "--out", tmp_path / "result.json")
    assert code == 2 and "result.json is a folder, not a file" in err and "Fix" in err and "Traceback" not in err
    (tmp_path / "file").write_text("x")
    code, err = main(capsys, command, *REQUIRED.get(command, []), "--out", tmp_path / "file" / "r.json")
    assert code == 2 and "file exists but is not a folder" in err


def test_a_checkpoints_folder_that_is_a_file_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("course_lib.lessons.cnn_vs_resnet.protocol.run_compare", lambda *a, **k: pytest.fail("work"))
    (tmp_path / "ckpt").write_text("x")
    code, err = main(capsys, "compare", "--checkpoints", tmp_path / "ckpt")
    assert code == 2 and "--checkpoints folder" in err and "ckpt exists but is not a folder" in err


def test_a_data_root_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "root").write_text("x")
    code, err = main(capsys, "data", "--dataset", "mnist", "--root", tmp_path / "root")
    assert code == 2 and "root is a file, not a folder" in err and "Fix" in err


@pytest.mark.parametrize("args, message", [
    (["compare", "--models", ",", "--checkpoints", "ck"], "names no model"),
    (["compare", "--dataset", "mnits", "--checkpoints", "ck"], "mnist, fashion, sample"),
    (["compare", "--profile", "fastest", "--checkpoints", "ck"], "smoke, cpu, full"),
    (["train", "--model", "blog-cnn", "--dataset", "digits", "--out", "ck"], "mnist, fashion, sample"),
])
def test_bad_names_are_refused_before_any_folder_is_made(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("course_lib.lessons.cnn_vs_resnet.protocol.run_compare", lambda *a, **k: pytest.fail("work"))
    code, err = main(capsys, *args)
    assert code == 2 and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
