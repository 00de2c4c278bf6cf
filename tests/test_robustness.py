"""Nothing breaks in class: student errors, any working directory.

A killed training process: test_training (interrupt, then resume exactly) and test_checkpoints (a save that dies halfway)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import locations as paths
from course_lib.errors import ConfigError
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
    assert paths.figures_dir("cpu") == REPO / "figures"  # the committed profile writes into the repo
    monkeypatch.setenv(paths.FIGURES_ENV, str(tmp_path / "my_figs"))
    assert paths.figures_dir() == tmp_path / "my_figs" and (tmp_path / "my_figs").is_dir()
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "d"))
    assert paths.data_root() == tmp_path / "d"


@pytest.mark.parametrize("env, getter", [(paths.FIGURES_ENV, paths.figures_dir), (paths.RESULTS_ENV, paths.results_dir)])
def test_an_output_folder_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch, env, getter):
    (tmp_path / "taken").write_text("a student's file")
    monkeypatch.setenv(env, str(tmp_path / "taken"))
    with pytest.raises(ConfigError) as err:
        getter()
    text = str(err.value)
    assert "taken exists but is not a folder" in text and env in text and "Fix" in text
    assert (tmp_path / "taken").read_text() == "a student's file"


@pytest.mark.slow
def test_setup_offline_prints_one_short_fact_per_line(tmp_path):
    """The README's promise: setup() with no data and no network prints no line over 200 characters."""
    env = {**os.environ, "COURSE_OFFLINE": "1", "OMP_NUM_THREADS": "1", "COURSE_PROFILE": "cpu",  # cpu: MNIST
           paths.DATA_ENV: str(tmp_path / "no-data")}
    out = subprocess.run([sys.executable, "-c", "from course_lib import setup; setup()"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 200, lines
    fallback = [line for line in lines if "sample" in line and "python -m course_lib data --dataset mnist" in line]
    assert len(fallback) == 1 and len(fallback[0]) <= 120 and "4,000 train / 1,000 test" in fallback[0]
    assert "Error" not in out.stdout and "Traceback" not in out.stdout + out.stderr
    assert [line.split(":")[0].strip() for line in lines if not line.startswith("[")][:2] == ["device", "torch"]


def test_setup_without_network_shows_no_exception_text(tmp_path, monkeypatch, no_network, capsys):
    from course_lib import setup

    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path))
    s = setup(profile="cpu")  # the cpu profile asks for MNIST, so the sample is a fallback
    out = capsys.readouterr().out
    assert len(no_network) == 1 and s.data.info.source == "sample (fallback)"
    assert "RuntimeError" not in out and "Error downloading" not in out
    assert max(len(line) for line in out.splitlines()) <= 200


def test_save_figure_writes_into_the_named_folder(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from course_lib.plots import save_figure

    fig = plt.figure()
    path = save_figure(fig, "99_test", folder=tmp_path, verbose=False)
    assert path == tmp_path / "99_test.png" and path.read_bytes()[:4] == b"\x89PNG"
    plt.close(fig)
