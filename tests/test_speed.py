"""Tests for course_lib.lessons.speed.pipelines (notebook 04, section 7) on this machine: devices, speed ratios, the plot."""
from __future__ import annotations

import pytest
import torch

from course_lib.lessons.speed import pipelines as speed
from course_lib.training import mps_available


def test_devices_always_list_the_cpu_first():
    devices = speed.list_devices()
    assert devices[0]["device"] == "cpu"
    assert len(devices) == 1 + (torch.cuda.device_count() if torch.cuda.is_available() else 0) \
        + int(mps_available())


def test_speed_ratios_measure_or_skip_with_a_reason(tiny, capsys):
    res = speed.speed_ratios(tiny, device="cpu", profile="smoke", model="BlogCNN")
    rows = {r["option"]: r for r in res["rows"]}
    assert set(rows) == set(speed.SPEED_OPTIONS)
    pipe = rows["data on device vs DataLoader"]
    assert pipe["status"] == "measured" and pipe["ratio"] == pytest.approx(pipe["variant_img_s"] / pipe["baseline_img_s"])
    for option in ("AMP (mixed precision)", "cudnn.benchmark"):
        assert rows[option]["status"] == "skipped" and "cpu" in rows[option]["note"]
    assert rows["torch.compile"]["status"] == "skipped"  # the smoke profile does not compile on a CPU
    printed = capsys.readouterr().out
    assert printed.count("[speed]") == len(speed.SPEED_OPTIONS) and "SKIPPED" in printed


def test_plot_speed_saves_a_png_with_measured_and_skipped_rows(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    result = {"rows": [{"option": "x", "status": "measured", "ratio": 2.0},
                       {"option": "y", "status": "skipped", "ratio": None}],
              "meta": {"device": "cpu", "model": "BlogCNN"}}
    speed.plot_speed(result, name="04_test_speed")
    plt.close("all")
    assert [p.name for p in tmp_path.glob("*.png")] == ["04_test_speed.png"]

