"""course_lib.profiles: one environment variable picks the run size, and every lesson reads its settings one way."""
from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import course_lib.lessons
from course_lib.errors import ConfigError
from course_lib.profiles import ENV_VAR, PROFILES, Profile, get_profile, settings

PACKAGE = Path(course_lib.lessons.__file__).resolve().parent.parent
TABLE = {"smoke": {"epochs": 1}, "cpu": {"epochs": 3}, "full": {"epochs": 30}}


def test_settings_reads_the_row_of_a_profile_given_as_name_profile_or_environment(monkeypatch):
    assert settings(TABLE, "cpu") == {"epochs": 3}
    assert settings(TABLE, PROFILES["full"]) == {"epochs": 30}
    assert settings(TABLE, " SMOKE ") == {"epochs": 1}  # names are forgiving about case and spaces
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert settings(TABLE) == {"epochs": 1}


def test_settings_returns_a_copy_the_caller_may_change():
    row = settings(TABLE, "cpu")
    row["epochs"] = 99
    assert TABLE["cpu"]["epochs"] == 3
    assert settings({"smoke": 1, "cpu": 2, "full": 3}, "cpu") == 2  # a row need not be a dict


def test_a_table_missing_a_profile_is_refused_with_the_missing_names():
    with pytest.raises(ConfigError) as err:
        settings({"smoke": 1, "cpu": 2}, "smoke")  # refused even when the asked-for row exists
    assert "['full']" in str(err.value) and "add one for each" in str(err.value)


def test_an_unknown_profile_names_the_valid_ones_and_where_it_came_from(monkeypatch):
    with pytest.raises(ConfigError, match="smoke, cpu, full") as err:
        settings(TABLE, "laptop")
    assert "'laptop'" in str(err.value) and "argument" in str(err.value)
    monkeypatch.setenv(ENV_VAR, "fastest")
    with pytest.raises(ConfigError, match=ENV_VAR):
        get_profile()


def test_get_profile_passes_a_profile_through_and_looks_up_a_name(monkeypatch):
    custom = Profile("cpu", "a caller's own cpu-sized profile", "sample", 10, 10)
    assert get_profile(custom) is custom and settings(TABLE, custom) == {"epochs": 3}
    assert get_profile("full") is PROFILES["full"]
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert get_profile(None) is PROFILES["smoke"]
    monkeypatch.delenv(ENV_VAR)
    assert get_profile(None).name in ("cpu", "full")  # the default depends on whether a GPU is present


def lesson_modules():
    for info in pkgutil.walk_packages(course_lib.lessons.__path__, "course_lib.lessons."):
        yield importlib.import_module(info.name)


def test_every_lesson_table_is_named_settings_and_covers_every_profile():
    tables = {f"{m.__name__}.{name}": value for m in lesson_modules() for name, value in vars(m).items()
              if isinstance(value, dict) and value and set(value) <= set(PROFILES)}
    assert len(tables) >= 4  # degradation, residual_block, cnn_vs_resnet, why_residuals_work, ...
    for where, table in tables.items():
        assert where.endswith(".SETTINGS"), f"{where}: name a lesson's table of profile rows SETTINGS"
        assert set(table) == set(PROFILES), where


def test_no_lesson_wraps_the_settings_accessor():
    wrappers = [f"{m.__name__}.{name}" for m in lesson_modules() for name in ("settings", "settings_for")
                if callable(getattr(m, name, None)) and getattr(m, name) is not settings]
    assert not wrappers, f"read a lesson's sizes with profiles.settings(SETTINGS, profile), not {wrappers}"


def test_no_module_turns_a_name_into_a_profile_by_hand():
    """``get_profile`` and ``settings`` are the one way: no ``.pick(``, ``isinstance(p, Profile)`` or
    ``hasattr(p, "pick")`` outside profiles.py."""
    copies = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "profiles.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func, args = node.func, node.args
            by_hand = (isinstance(func, ast.Attribute) and func.attr == "pick"
                       or isinstance(func, ast.Name) and func.id == "isinstance" and len(args) == 2
                       and isinstance(args[1], ast.Name) and args[1].id == "Profile"
                       or isinstance(func, ast.Name) and func.id == "hasattr" and len(args) == 2
                       and isinstance(args[1], ast.Constant) and args[1].value == "pick")
            if by_hand:
                copies.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not copies, f"use course_lib.profiles.get_profile / settings instead: {copies}"
