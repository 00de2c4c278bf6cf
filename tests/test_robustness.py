"""Nothing breaks in class: student errors, any working directory, a killed training process."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_lib import locations as paths
from course_lib.exercises import Report, StudentCodeError, student_call

REPO = Path(__file__).resolve().parent.parent


def test_student_error_names_their_error_and_line():
    src = "def students_forward(x):\n    y = x * 2\n    return y.nonexistent_method()\n"
    namespace = {}
    exec(compile(src, "<ipython-input-7>", "exec"), namespace)
    with pytest.raises(StudentCodeError) as err:
        student_call("running your forward", namespace["students_forward"], 3)
    text = str(err.value)
    assert "AttributeError" in text and "nonexistent_method" in text
    assert "line 3" in text and "your notebook cell" in text and "students_forward" in text
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no course_lib traceback chained


def test_report_passes_only_when_every_check_passes():
    r = Report("demo")
    r.check(True, "shape ok", "shape wrong")
    assert r.passed and "PASS  shape ok" in str(r)
    r.check(False, "params ok", "params: 10 instead of 12")
    assert not r.passed and "FAIL  params: 10 instead of 12" in str(r) and "Not yet" in str(r)


def test_paths_do_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    monkeypatch.delenv(paths.FIGURES_ENV, raising=False)
    assert paths.repo_root() == REPO
    assert paths.data_root() == REPO / "data"
    assert paths.figures_dir() == REPO / "figures"
    monkeypatch.setenv(paths.FIGURES_ENV, str(tmp_path / "my_figs"))
    assert paths.figures_dir() == tmp_path / "my_figs" and (tmp_path / "my_figs").is_dir()
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "d"))
    assert paths.data_root() == tmp_path / "d"


def test_save_figure_writes_into_the_named_folder(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from course_lib.plots import save_figure

    fig = plt.figure()
    path = save_figure(fig, "99_test", folder=tmp_path, verbose=False)
    assert path == tmp_path / "99_test.png" and path.read_bytes()[:4] == b"\x89PNG"
    plt.close(fig)


def test_killed_training_process_resumes_to_the_uninterrupted_result(tmp_path):
    env = {**os.environ, "COURSE_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "course_lib", "train", "--model", "blog-cnn", "--dataset", "sample", "--seed", "0",
            "--train-limit", "256", "--test-limit", "64", "--epochs", "3", "--quiet"]
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(base + ["--out", str(run_dir)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = run_dir / "checkpoint.pt"
    deadline = time.time() + 240
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up, like a crashed kernel
    proc.wait()
    assert checkpoint.exists(), "no checkpoint after the first epoch"
    resumed = subprocess.run(base + ["--out", str(run_dir), "--resume"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run(base + ["--out", str(tmp_path / "straight")], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    load = lambda d: [(r["epoch"], r["train_loss"], r["test_acc"])
                      for r in json.loads((d / "history.json").read_text())["records"]]
    assert load(run_dir) == load(tmp_path / "straight")
