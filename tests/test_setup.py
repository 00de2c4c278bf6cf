"""Tests for course_lib.setup: the thread count chosen from the free cores, its one printed line, the overrides."""
from __future__ import annotations

import importlib
import os

import pytest
import torch

from course_lib import ConfigError
from course_lib.setup import THREADS_ENV, choose_threads, setup

setup_mod = importlib.import_module("course_lib.setup")  # the module; `course_lib.setup` is also the function


@pytest.fixture
def machine(monkeypatch):
    """A simulated machine: ``machine(cores, load)`` fixes the usable cores and the 1-minute load average."""
    monkeypatch.delenv(THREADS_ENV, raising=False)
    before = torch.get_num_threads()

    def simulate(cores: int, load: float | None):
        monkeypatch.setattr(setup_mod, "_usable_cores", lambda: cores)
        if load is None:
            def no_load():
                raise OSError("getloadavg unavailable")
            monkeypatch.setattr(os, "getloadavg", no_load)
        else:
            monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))

    yield simulate
    torch.set_num_threads(before)


@pytest.mark.parametrize("cores, load, threads", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.4, 1), (2, 7.0, 1),  # never below 1
    (8, 2.6, 5), (8, 0.0, 8), (1, 0.9, 1),
])
def test_threads_follow_the_free_cores(machine, cores, load, threads):
    machine(cores, load)
    choice = choose_threads()
    assert (choice.threads, choice.cores, choice.source) == (threads, cores, "load")


def test_the_printed_line_states_facts_not_the_load(machine):
    machine(2, 1.3)
    assert choose_threads().line == "threads: 1 (of 2 cores); COURSE_THREADS=N sets it"
    machine(2, 0.1)
    assert choose_threads().line == "threads: 2 (of 2 cores); COURSE_THREADS=N sets it"
    machine(8, 3.0)
    assert choose_threads().line == "threads: 5 (of 8 cores); COURSE_THREADS=N sets it"
    machine(4, None)  # Windows: no load average, so every core
    choice = choose_threads()
    assert choice.threads == 4 and choice.line == "threads: 4 (of 4 cores); COURSE_THREADS=N sets it"
    assert "busy" not in choice.line and "load" not in choice.line


def test_overrides_env_then_argument(machine, monkeypatch):
    machine(2, 1.9)  # busy: the guess would be 1
    monkeypatch.setenv(THREADS_ENV, "2")
    assert choose_threads().line == "threads: 2 (of 2 cores), set by COURSE_THREADS=2"
    choice = choose_threads(threads=1)  # the argument wins over the environment
    assert (choice.threads, choice.source) == (1, "argument")
    assert choice.line == "threads: 1 (of 2 cores), set by setup(threads=1)"


@pytest.mark.parametrize("bad", ["0", "two", "-1", "1.5"])
def test_bad_env_value_is_refused_with_a_fix(machine, monkeypatch, bad):
    machine(2, 0.0)
    monkeypatch.setenv(THREADS_ENV, bad)
    with pytest.raises(ConfigError, match=r"COURSE_THREADS.*whole number.*Fix"):
        choose_threads()


@pytest.mark.parametrize("bad", [0, True, 1.5, "x"])
def test_bad_argument_is_refused(machine, bad):
    machine(2, 0.0)
    with pytest.raises(ConfigError, match="threads"):
        choose_threads(threads=bad)


def test_setup_sets_torch_threads_and_denormals_and_prints_one_line(machine, capsys):
    machine(2, 1.2)
    torch.set_flush_denormal(False)
    result = setup(load=False, device="cpu")
    out = capsys.readouterr().out
    assert torch.get_num_threads() == 1 and result.device.type == "cpu"
    assert torch.tensor([1e-40]).item() == 0.0  # setup flushes denormal floats to zero, as fit does
    thread_lines = [line for line in out.splitlines() if "thread" in line]
    assert thread_lines == ["threads: 1 (of 2 cores); COURSE_THREADS=N sets it"]
    setup(load=False, device="cpu", threads=2)
    assert torch.get_num_threads() == 2
    assert "threads: 2 (of 2 cores), set by setup(threads=2)" in capsys.readouterr().out
