"""course_lib.results: load_or_train loads a saved result, trains only when it is missing, and says so."""
from __future__ import annotations

import json

from course_lib.results import load_or_train


def test_load_or_train_trains_once_then_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path))
    calls = []

    def train():
        calls.append(1)
        return {"value": len(calls), "meta": {"dataset": "sample", "profile": "smoke"}}

    first = load_or_train("04_test", train, cost="about 1 second")
    out = capsys.readouterr().out
    assert "is not there: training it now (about 1 second" in out and "saved result" in out
    assert json.loads((tmp_path / "04_test.json").read_text())["value"] == 1
    again = load_or_train("04_test", train, cost="about 1 second")
    assert again == first and len(calls) == 1  # loaded, not trained
    assert "loaded saved result" in capsys.readouterr().out
    assert load_or_train("04_test", train, retrain=True)["value"] == 2  # retrain overwrites
    assert not list(tmp_path.glob("*.partial"))  # written atomically
