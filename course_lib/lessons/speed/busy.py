"""Threads on a busy machine: how fast one training process runs alone, and next to another one
(notebook 06 and ``python -m course_lib busy``)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import torch

from ...devices import describe_machine
from ...errors import ConfigError
from ...models import build_model
from ...locations import display_path
from ...profiles import Profile, get_profile, settings
from ...results import load_result, make_meta, save_result
from ...setup import choose_threads
from ...timing import StepTimer, TimingResult
from ...training import seed_everything
from .bench import load_average, torch_threads

MODEL = "blog-resnet"
BATCH = 64

# The saved study: (label, processes, threads each, extra environment)
SCENARIOS = (
    ("one process alone, 2 threads", 1, 2, {}),
    ("two processes at once, 2 threads each", 2, 2, {}),
    ("two processes at once, 2 threads each, OMP_WAIT_POLICY=PASSIVE", 2, 2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ("two processes at once, 1 thread each", 2, 1, {}),
)


def _timer(seed: int = 0) -> StepTimer:
    seed_everything(seed)
    g = torch.Generator().manual_seed(seed)
    xb, yb = torch.rand(BATCH, 1, 28, 28, generator=g), torch.randint(0, 10, (BATCH,), generator=g)
    return StepTimer(build_model(MODEL), (xb, yb), device="cpu")


def timed_run(timer: StepTimer, seconds: float, chunk: int = 3) -> TimingResult:
    """``timer``'s steps, ``chunk`` at a time, until ``seconds`` of training have passed, summed into one result."""
    steps, images, spent = 0, 0, 0.0
    while spent < seconds:
        r = timer.run(chunk)
        steps, images, spent = steps + r.steps, images + r.images, spent + r.seconds
    return TimingResult(steps, images, spent, timer.warmup_seconds)


def run_child(threads: int, seconds: float, start_at: float) -> None:
    """One training process of the study: warm up, wait until ``start_at``, train ``seconds``, print JSON."""
    torch.set_num_threads(threads)
    timer = _timer()
    timer.warm_up(3)
    time.sleep(max(0.0, start_at - time.time()))
    print(json.dumps(dict(threads=torch.get_num_threads(), **timed_run(timer, seconds).as_dict())))


def run_scenario(processes: int, threads: int, seconds: float, env: dict | None = None,
                 start_in: float = 15.0) -> list[dict]:
    """``processes`` training processes at ``threads`` threads each (``env`` added), side by side for ``seconds``
    from ``start_in`` seconds after launch. Returns each one's ``threads`` and ``TimingResult.as_dict()``."""
    start_at = time.time() + start_in
    cmd = [sys.executable, "-m", "course_lib", "busy", "--child", "--threads", str(threads),
           "--seconds", str(seconds), "--start-at", str(start_at)]
    child_env = dict(os.environ, OMP_NUM_THREADS=str(threads), **(env or {}))
    procs = [subprocess.Popen(cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    records = []
    for p in procs:
        out, err = p.communicate(timeout=seconds + 300)
        if p.returncode != 0:
            raise ConfigError(f"a timing process failed ({p.returncode}): {err.strip().splitlines()[-1:]}. "
                              f"Fix: run `python -m course_lib busy --child --threads 1 --seconds 2` to see the error.")
        records.append(json.loads(out.strip().splitlines()[-1]))
    return records


def busy_machine_study(seconds: float = 20.0, name: str | None = "06_busy_machine", verbose: bool = True) -> dict:
    """Each of :data:`SCENARIOS` timed ``seconds``, saved as ``results/NAME.json``; ``load``: 1-minute, before/after."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and 0 < seconds <= 600):
        raise ConfigError(f"seconds must be a number from 0 to 600, got {seconds!r}. Fix: e.g. --seconds 20.")
    load_before = (load_average() or [None])[0]
    rows = []
    for label, processes, threads, env in SCENARIOS:
        rates = [record["images_per_s"] for record in run_scenario(processes, threads, seconds, env)]
        rows.append(dict(scenario=label, processes=processes, threads=threads, env=env,
                         images_per_s=[round(r, 1) for r in rates], total=round(sum(rates), 1)))
        if verbose:
            print(f"[busy] {label}: {' + '.join(f'{r:,.0f}' for r in rates)} img/s", flush=True)
    meta = make_meta(None, torch.device("cpu"), None, experiment="busy-machine", model=MODEL, batch_size=BATCH,
                     seconds_each=seconds, cpu=describe_machine()["cpu"], usable_cores=choose_threads(1).cores)
    result = dict(meta=meta, rows=rows, load=dict(before=load_before, after=(load_average() or [None])[0]))
    if name:
        print(f"[busy] saved to {display_path(save_result(result, name))}")
    return result


def format_busy(result: dict) -> str:
    """The saved study as text: each scenario's images/s per process, and their total."""
    m = result["meta"]
    lines = [f"measured {m['date']} on a {m['usable_cores']}-core CPU, torch {m['torch']}; {m['model']}, "
             f"batch {m.get('batch_size', BATCH)}, {m['seconds_each']:.0f} s per scenario",
             f"{'scenario':<66}{'img/s per process':>20}{'total':>8}"]
    for r in result["rows"]:
        each = " + ".join(f"{x:,.0f}" for x in r["images_per_s"])
        lines.append(f"{r['scenario']:<66}{each:>20}{r['total']:>8,.0f}")
    return "\n".join(lines)

