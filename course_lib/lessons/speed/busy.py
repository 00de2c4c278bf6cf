"""Threads on a busy machine: how fast one training process runs alone, and next to another one.

:func:`thread_table` is notebook 06's live measurement: BlogResNet training steps (batch 64, one batch in
memory, fp32) for a few seconds at each thread count, one after the other, in this process.

:func:`busy_machine_study` is the saved one: it starts training processes (this module run as a script, the
course's timing loop inside) alone and two at once, at several thread counts, each timed over the same
seconds, and saves ``results/06_busy_machine.json``. Run it on a machine with nothing else running::

    python -m course_lib.lessons.speed.busy --seconds 20
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch

from ...errors import ConfigError
from ...models import build_model
from ...profiles import Profile, as_profile, settings
from ...results import make_meta, save_result
from ...timing import StepTimer
from ...training import seed_everything

MODEL = "blog-resnet"
BATCH = 64

# seconds: how long each thread count is timed in the notebook; threads: which counts (capped at the cores).
SETTINGS = {
    "smoke": dict(seconds=1.0, threads=(2, 1)),
    "cpu": dict(seconds=8.0, threads=(2, 1)),
    "full": dict(seconds=10.0, threads=(2, 1)),
}

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


def timed_rate(timer: StepTimer, seconds: float, chunk: int = 3) -> float:
    """Images/s of ``timer``'s steps, run ``chunk`` steps at a time until ``seconds`` have passed."""
    images, spent = 0, 0.0
    while spent < seconds:
        r = timer.run(chunk)
        images, spent = images + r.images, spent + r.seconds
    return images / spent


def thread_table(profile: Profile | str | None = None, seconds: float | None = None) -> dict:
    """BlogResNet training images/s in this process alone at each thread count of ``profile``'s row
    (capped at the usable cores), each timed for ``seconds`` after a warm-up. The thread count is restored after.

    Returns ``{rows: [{threads, images_per_s}], meta}``.
    """
    from ...setup import choose_threads

    cfg = settings(SETTINGS, profile)
    seconds = cfg["seconds"] if seconds is None else seconds
    cores = choose_threads(threads=1).cores
    counts = sorted({min(n, cores) for n in cfg["threads"]}, reverse=True)
    before = torch.get_num_threads()
    rows = []
    try:
        for n in counts:
            torch.set_num_threads(n)
            timer = _timer()
            timer.warm_up(2)
            rows.append(dict(threads=n, images_per_s=timed_rate(timer, seconds)))
    finally:
        torch.set_num_threads(before)
    meta = make_meta(None, torch.device("cpu"), as_profile(profile), model=MODEL, batch_size=BATCH,
                     seconds_each=seconds, usable_cores=cores)
    return dict(rows=rows, meta=meta)


def format_thread_table(result: dict) -> str:
    """:func:`thread_table` as text: one thread count a line, with its speed relative to the first row."""
    rows = result["rows"]
    lines = [f"{'BlogResNet, batch 64, this process alone':<44}{'img/s':>8}{'vs first':>10}"]
    for r in rows:
        lines.append(f"{r['threads']} thread{'s' * (r['threads'] > 1):<36}   {r['images_per_s']:>8,.0f}"
                     f"{r['images_per_s'] / rows[0]['images_per_s']:>9.2f}x")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the saved study: processes at once


def _child(threads: int, seconds: float, start_at: float) -> None:
    """One training process of the study: warm up, wait for the common start, train ``seconds``, print JSON."""
    torch.set_num_threads(threads)
    timer = _timer()
    timer.warm_up(3)
    time.sleep(max(0.0, start_at - time.time()))
    print(json.dumps(dict(threads=torch.get_num_threads(), images_per_s=timed_rate(timer, seconds))))


def run_scenario(processes: int, threads: int, seconds: float, env: dict | None = None,
                 start_in: float = 15.0) -> list[float]:
    """Start ``processes`` training processes at ``threads`` threads each (``env`` added to their environment);
    they warm up, then train the same ``seconds`` side by side, from ``start_in`` seconds after launch (room for
    each to import torch and warm up first). Returns each one's images/s."""
    start_at = time.time() + start_in
    cmd = [sys.executable, "-m", "course_lib.lessons.speed.busy", "--child", "--threads", str(threads),
           "--seconds", str(seconds), "--start-at", str(start_at)]
    child_env = dict(os.environ, OMP_NUM_THREADS=str(threads), **(env or {}))
    procs = [subprocess.Popen(cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    rates = []
    for p in procs:
        out, err = p.communicate(timeout=seconds + 300)
        if p.returncode != 0:
            raise ConfigError(f"a timing process failed ({p.returncode}): {err.strip().splitlines()[-1:]}. "
                              f"Fix: run `python -m course_lib.lessons.speed.busy --child --threads 1 "
                              f"--seconds 2 --start-at 0` to see the error.")
        rates.append(json.loads(out.strip().splitlines()[-1])["images_per_s"])
    return rates


def busy_machine_study(seconds: float = 20.0, name: str | None = "06_busy_machine", verbose: bool = True) -> dict:
    """Each scenario of :data:`SCENARIOS` timed for ``seconds``; saved as ``results/NAME.json`` (None: not saved).

    Returns ``{meta, rows: [{scenario, processes, threads, env, images_per_s: [per process], total}], load}``;
    ``load`` is the 1-minute load average before and after, so a result taken on a busy machine shows it.
    """
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and 0 < seconds <= 600):
        raise ConfigError(f"seconds must be a number from 0 to 600, got {seconds!r}. Fix: e.g. --seconds 20.")
    load_before = _load()
    rows = []
    for label, processes, threads, env in SCENARIOS:
        rates = run_scenario(processes, threads, seconds, env)
        rows.append(dict(scenario=label, processes=processes, threads=threads, env=env,
                         images_per_s=[round(r, 1) for r in rates], total=round(sum(rates), 1)))
        if verbose:
            print(f"[busy] {label}: {' + '.join(f'{r:,.0f}' for r in rates)} img/s", flush=True)
    meta = make_meta(None, torch.device("cpu"), None, experiment="busy-machine", model=MODEL, batch_size=BATCH,
                     seconds_each=seconds, cpu=_cpu_name(), usable_cores=len(os.sched_getaffinity(0))
                     if hasattr(os, "sched_getaffinity") else os.cpu_count())
    result = dict(meta=meta, rows=rows, load=dict(before=load_before, after=_load()))
    if name:
        save_result(result, name)
    return result


def format_busy(result: dict) -> str:
    """The saved study as text: scenario, each process's images/s, and the total."""
    m = result["meta"]
    lines = [f"measured {m['date']} on a {m['usable_cores']}-core CPU, torch {m['torch']}; BlogResNet, batch 64, "
             f"{m['seconds_each']:.0f} s per scenario",
             f"{'scenario':<66}{'img/s per process':>20}{'total':>8}"]
    for r in result["rows"]:
        each = " + ".join(f"{x:,.0f}" for x in r["images_per_s"])
        lines.append(f"{r['scenario']:<66}{each:>20}{r['total']:>8,.0f}")
    return "\n".join(lines)


def show_saved_busy(name: str = "06_busy_machine") -> dict | None:
    """Print the saved study ``results/NAME.json`` (:func:`format_busy`) and return it; without one, print the
    command that measures it and return None."""
    from ...results import load_result

    result = load_result(name)
    if result is None:
        print("No saved result yet: `python -m course_lib.lessons.speed.busy --seconds 20` measures it on this "
              "machine (about 2.5 minutes; close other programs first).")
        return None
    print(format_busy(result))
    return result


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), platform.machine())
    except OSError:
        return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.lessons.speed.busy [--seconds S]``: run and save the study."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds each scenario trains (default 20)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.threads, args.seconds, args.start_at)
        return 0
    try:
        print(format_busy(busy_machine_study(args.seconds)))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
