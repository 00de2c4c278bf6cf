"""course_lib.results: load_or_train loads a saved result, trains only when it is missing, and says so;
write_json writes atomically; a saved file that cannot be read is set aside, never deleted, and trained again."""
from __future__ import annotations

import json

import pytest

from course_lib.errors import ConfigError, ResultError
from course_lib.results import load_or_train, load_result, write_json

GOOD = {"value": 1, "meta": {"dataset": "sample", "profile": "smoke"}}


@pytest.fixture
def results(tmp_path, monkeypatch):
    """An empty results folder for load_or_train."""
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path))
    return tmp_path


def counting_train(calls: list):
    def train():
        calls.append(1)
        return {"value": len(calls), "meta": {"dataset": "sample", "profile": "smoke"}}
    return train


def test_load_or_train_trains_once_then_loads(results, capsys):
    calls = []
    train = counting_train(calls)
    first = load_or_train("04_test", train, cost="about 1 second")
    out = capsys.readouterr().out
    assert "is not there: training it now (about 1 second" in out and "saved result" in out
    assert json.loads((results / "04_test.json").read_text())["value"] == 1
    again = load_or_train("04_test", train, cost="about 1 second")
    assert again == first and len(calls) == 1  # loaded, not trained
    assert "loaded saved result" in capsys.readouterr().out
    assert load_or_train("04_test", train, retrain=True)["value"] == 2  # retrain overwrites
    assert not list(results.glob("*.partial"))  # written atomically


def test_write_json_is_atomic_and_round_trips(tmp_path):
    path = write_json(tmp_path / "deep" / "er" / "out.json", {"a": [1, 2.5], "b": None})
    assert json.loads(path.read_text()) == {"a": [1, 2.5], "b": None}
    assert not list(path.parent.glob("*.partial"))
    with pytest.raises(TypeError):  # what JSON cannot hold fails before the file is touched
        write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": [1, 2.5], "b": None}
    assert not list(path.parent.glob("*.partial"))


def test_write_json_refuses_a_folder_or_a_file_in_the_way(tmp_path):
    (tmp_path / "taken.json").mkdir()
    with pytest.raises(ConfigError, match="is a folder, not a file") as err:
        write_json(tmp_path / "taken.json", GOOD)
    assert "taken.json" in str(err.value) and "Fix" in str(err.value)
    (tmp_path / "plainfile").write_text("x")
    with pytest.raises(ConfigError, match="exists but is not a folder") as err:
        write_json(tmp_path / "plainfile" / "out.json", GOOD)
    assert "plainfile" in str(err.value) and "Fix" in str(err.value)
    assert (tmp_path / "plainfile").read_text() == "x"  # left alone


BROKEN = {
    "truncated": '{"value": 1, "meta": {"dataset": "sam',
    "empty": "",
    "not json": "value = 1\n",
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe",
    "a list": "[1, 2, 3]",
    "a number": "42",
    "no meta": '{"value": 1}',
    "meta not a record": '{"value": 1, "meta": [1, 2]}',
    "nested too deeply": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_unreadable_result_is_kept_aside_and_trained_again(results, capsys, kind):
    bad = results / "05_x.json"
    content = BROKEN[kind]
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    calls = []
    result = load_or_train("05_x", counting_train(calls))
    assert result["value"] == 1 and len(calls) == 1
    out = capsys.readouterr().out
    warning = [line for line in out.splitlines() if "warning" in line]
    assert len(warning) == 1 and len(warning[0].replace(str(results), "results")) < 200, out
    assert "05_x.json" in warning[0] and "05_x.json.corrupt" in warning[0] and "training it again" in warning[0]
    assert "Traceback" not in out and "JSONDecodeError" not in out
    kept = results / "05_x.json.corrupt"
    assert kept.read_bytes() == (content if isinstance(content, bytes) else content.encode())  # the user's file, kept
    assert json.loads(bad.read_text())["value"] == 1  # a good result in its place


@pytest.mark.parametrize("kind", ["truncated", "a list", "no meta"])
def test_load_result_names_the_file_and_the_fix(results, kind):
    (results / "04_y.json").write_text(BROKEN[kind])
    with pytest.raises(ResultError) as err:
        load_result("04_y")
    text = str(err.value)
    assert "04_y.json" in text and "Fix:" in text and "\n" not in text
    assert (results / "04_y.json").read_text() == BROKEN[kind]  # reading never changes the file


def test_a_second_corrupt_file_does_not_overwrite_the_first(results, capsys):
    for expected in ("05_z.json.corrupt", "05_z.json.corrupt-2"):
        (results / "05_z.json").write_text("{broken")
        load_or_train("05_z", counting_train([]))
        assert (results / expected).read_text() == "{broken"
    assert len(list(results.glob("05_z.json.corrupt*"))) == 2


def test_retrain_over_a_corrupt_file_keeps_it_too(results, capsys):
    (results / "05_r.json").write_text("[1]")
    load_or_train("05_r", counting_train([]), retrain=True)
    assert (results / "05_r.json.corrupt").read_text() == "[1]"


def test_a_folder_where_the_result_belongs_stops_before_training(results):
    (results / "05_dir.json").mkdir()
    calls = []
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        load_or_train("05_dir", counting_train(calls))
    assert calls == []  # no work was started


def test_a_result_without_meta_is_refused_and_not_saved(results):
    with pytest.raises(ConfigError, match="meta") as err:
        load_or_train("05_nometa", lambda: {"value": 1})
    assert "Fix" in str(err.value) and not (results / "05_nometa.json").exists()
    with pytest.raises(ConfigError):
        load_or_train("05_list", lambda: [1, 2])
    assert load_or_train("05_free", lambda: {"value": 3}, expect=())["value"] == 3  # a caller may opt out


def test_committed_results_load_under_todays_model_names():
    """Results saved under the old display names (BlogCNN, ...) load with each model's one name."""
    from pathlib import Path

    from course_lib.models import build_model, count_params
    from course_lib.models import OLD_NAMES

    files = sorted((Path(__file__).resolve().parent.parent / "results").glob("*.json"))
    raw = {path.name: path.read_text() for path in files}
    assert any(old in text for text in raw.values() for old in OLD_NAMES), "no committed file uses an old name"
    for path in files:
        result = load_result(path)
        runs = result.get("runs") if isinstance(result.get("runs"), list) else []
        for record in [result, result["meta"], *runs, *result["meta"].get("run_status", [])]:
            if isinstance(record, dict) and isinstance(record.get("model"), str):
                assert record["model"] not in OLD_NAMES, path.name
                if "params" in record:  # the name builds the model that was trained
                    assert count_params(build_model(record["model"])) == record["params"], path.name


def test_old_names_are_renamed_and_odd_shapes_left_alone(results):
    (results / "old.json").write_text(json.dumps({
        "model": "BlogResNet", "runs": [{"model": "BlogPlain (He init)"}, 5, {"model": ["BlogCNN"]}],
        "meta": {"run_status": "BlogCNN"}}))
    result = load_result("old")
    assert result["model"] == "blog-resnet" and result["runs"][0]["model"] == "blog-plain-he-init"
    assert result["runs"][1:] == [5, {"model": ["BlogCNN"]}] and result["meta"]["run_status"] == "BlogCNN"
