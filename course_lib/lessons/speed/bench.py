"""How much faster the course's data pipeline trains than the blog's, and how close both come to the model's own
ceiling (one batch already on the device): ``python -m course_lib bench`` and notebook 06."""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...data import load_data
from ...devices import cpu_features, describe_machine, native_bf16, pick_device
from ...errors import ConfigError
from ...locations import result_files
from ...models import build_model
from ...profiles import Profile, settings
from ...setup import choose_threads
from ...timing import StepTimer, blog_batches, interleaved_rounds, memory_batches
from ...training import fast_speed_options, seed_everything

PLAIN = dict(amp=False, channels_last=False, compile=False)  # the blog's model settings: fp32, NCHW, eager
BENCH_DATASETS = ("sample", "fashion", "mnist")

# Notebook 06's live sizes: bench steps and rounds, and images through data_work.
SETTINGS = {
    "smoke": dict(bench_steps=6, bench_rounds=2, data_images=256),
    "cpu": dict(bench_steps=80, bench_rounds=4, data_images=2048),
    "full": dict(bench_steps=150, bench_rounds=5, data_images=4000),
}


@dataclass
class Contender:
    """One row of the benchmark: a name, its settings, its timer, and its seconds and images per round."""

    name: str
    kind: str  # "pipeline" or "model only"
    settings: dict
    timer: StepTimer
    seconds: list[float] = field(default_factory=list)
    images: list[int] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        """The median over rounds of images/s: one round slowed by a neighbour process does not move it."""
        return statistics.median(self.round_rate(r) for r in range(len(self.seconds)))

    def round_rate(self, r: int) -> float:
        return self.images[r] / self.seconds[r]


def course_settings(device: torch.device) -> dict:
    """The model settings of the course's fast path on ``device``."""
    fast = fast_speed_options(device)
    return dict(amp=fast.amp, channels_last=fast.channels_last, compile=fast.compile)


def model_variants(device: torch.device, compile: bool) -> tuple[list[tuple[str, dict]], list[str]]:
    """The model-only ``[(name, settings)]`` to time on ``device``, the blog's first; and those left out, and why."""
    course = course_settings(device)
    out = [("fp32, NCHW (the blog's settings)", dict(PLAIN)), ("channels_last", dict(PLAIN, channels_last=True))]
    not_run = []
    if device.type == "cpu":
        if native_bf16(device):
            out.append(("channels_last + bf16 autocast", dict(PLAIN, channels_last=True, amp="bf16")))
        else:
            not_run.append("channels_last + bf16 autocast: this CPU has no native bf16 (emulated bf16 is "
                           "slower than fp32)")
        if compile:
            out.append(("channels_last + torch.compile" + (" + bf16" if course["amp"] else ""),
                        dict(course, compile=True)))
    elif device.type == "cuda":
        out.append(("AMP + channels_last", dict(PLAIN, channels_last=True, amp=True)))
        if compile:
            out += [("AMP + channels_last + torch.compile", dict(PLAIN, channels_last=True, amp=True, compile=True)),
                    ("AMP + channels_last + torch.compile(reduce-overhead) (CUDA graphs)",
                     dict(PLAIN, channels_last=True, amp=True, compile="reduce-overhead"))]
    if not compile:
        not_run.append("torch.compile: off (pass --compile; on a 2-core CPU its warm-up alone takes minutes)")
        course = dict(course, compile=False)
    if all(settings != course for _, settings in out):
        out.append(("the course's settings", course))
    return out, not_run


@contextlib.contextmanager
def torch_threads(n: int):
    """PyTorch at ``n`` threads inside the block; the count before is restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the system does not say): other programs' use of the CPU."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _check(steps, batch_size, rounds, dataset) -> None:
    for name, value in (("steps", steps), ("batch_size", batch_size), ("rounds", rounds)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}. Fix: e.g. --steps 150, "
                              f"--batch-size 64 (the blog's).")
    if dataset not in BENCH_DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r} for bench; valid: {', '.join(BENCH_DATASETS)}. Fix: "
                          f"--dataset sample (offline, always here) or --dataset fashion.")


def _contenders(model: str, data, dev: torch.device, batch_size: int, seed: int, compile: bool):
    """The timers: blog pipeline, course pipeline, then each model-only variant; and the variants not run."""
    def fresh():
        seed_everything(seed)
        return build_model(model)

    on_device = data.to(dev)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(data.train_y), generator=g)[:batch_size].to(dev)
    xb, yb = on_device.train_x[pick], on_device.train_y[pick]
    course = course_settings(dev)
    rows = [Contender("blog pipeline (PIL -> ToTensor -> DataLoader), fp32", "pipeline", dict(PLAIN),
                      StepTimer(fresh(), blog_batches(data, batch_size, dev, seed), device=dev, **PLAIN)),
            Contender("course pipeline (batches in memory), fast settings", "pipeline", course,
                      StepTimer(fresh(), memory_batches(on_device.train_x, on_device.train_y, batch_size, seed),
                                device=dev, **course))]
    variants, not_run = model_variants(dev, compile)
    rows += [Contender(name, "model only", settings, StepTimer(fresh(), (xb, yb), device=dev, **settings))
             for name, settings in variants]
    return rows, not_run


def run_bench(model: str = "blog-resnet", steps: int = 150, device: str = "auto", batch_size: int = 64,
              verbose: bool = True, *, rounds: int = 5, dataset: str = "sample", threads: int | None = None,
              compile: bool | None = None, seed: int = 0) -> dict:
    """Time every contender ``steps`` steps in interleaved rounds (rates: medians over rounds); the CLI's JSON.
    ``threads``: default :func:`course_lib.setup.choose_threads`; ``compile``: default on CUDA only."""
    _check(steps, batch_size, rounds, dataset)
    say = print if verbose else (lambda *a, **k: None)
    t_start, load_before = time.perf_counter(), load_average()
    dev = pick_device(device, verbose=verbose)
    choice = choose_threads(threads)
    rounds = min(rounds, steps)
    with torch_threads(choice.threads):
        say(f"[bench] {choice.line}")
        data = load_data(dataset, verbose=verbose)
        with_compile = dev.type == "cuda" if compile is None else compile
        rows, not_run = _contenders(model, data, dev, batch_size, seed, with_compile)
        say(f"[bench] {model} on {dev}, batch {batch_size}, {steps} steps each in {rounds} interleaved rounds; "
            f"data: {data.info}")
        for r, timed in enumerate(interleaved_rounds([row.timer for row in rows], steps, rounds, warmup=3)):
            for row, t in zip(rows, timed):
                row.seconds.append(t.seconds)
                row.images.append(t.images)
            say(f"[bench] round {r + 1}/{rounds}: " + "  ".join(f"{row.round_rate(r):,.0f}" for row in rows) + " img/s")
        machine = describe_machine(dev)
    result = _summary(rows, not_run, dev, dict(model=model, steps=steps, batch_size=batch_size, rounds=rounds,
                                               seed=seed, threads=choice.threads, dataset=data.info.as_dict()))
    result.update(machine=machine, load_before=load_before, load_after=load_average(),
                  date=_dt.datetime.now().isoformat(timespec="seconds"),
                  seconds_total=round(time.perf_counter() - t_start, 1))
    say(format_bench(result))
    return result


def _summary(rows: list[Contender], not_run: list[str], dev: torch.device, settings: dict) -> dict:
    blog, course, variants = rows[0], rows[1], rows[2:]
    best = max(variants, key=lambda row: row.images_per_s)
    base = variants[0].images_per_s
    per_round = [course.round_rate(r) / blog.round_rate(r) for r in range(len(blog.seconds))]
    features = cpu_features() if dev.type == "cpu" else {}
    return dict(
        device=str(dev), torch=torch.__version__,
        native_bf16=native_bf16(dev),
        bf16_features={k: bool(features.get(k)) for k in ("avx512_bf16", "amx_bf16") if k in features},
        blog_images_per_s=round(blog.images_per_s, 1),
        course_images_per_s=round(course.images_per_s, 1),
        ceiling_images_per_s=round(best.images_per_s, 1), ceiling=best.name,
        ratio=round(course.images_per_s / blog.images_per_s, 3),
        course_vs_ceiling=round(course.images_per_s / best.images_per_s, 3),
        ratio_bound=round(best.images_per_s / blog.images_per_s, 3),
        ratio_per_round=[round(x, 3) for x in per_round], ratio_median=round(statistics.median(per_round), 3),
        course_vs_ceiling_median=round(statistics.median(course.round_rate(r) / best.round_rate(r)
                                                         for r in range(len(blog.seconds))), 3),
        pipelines=[_row(row) for row in (blog, course)],
        variants=[dict(_row(row), vs_blog_settings=round(row.images_per_s / base, 3)) for row in variants],
        variants_not_run=not_run,
        settings=dict(settings, blog=dict(pipeline="blog", **blog.settings), course=dict(pipeline="memory",
                                                                                          **course.settings)),
    )


def _row(row: Contender) -> dict:
    settings = {k: str(v) if k == "amp" else v for k, v in row.settings.items()}  # amp: False, True or a name
    return dict(name=row.name, kind=row.kind, settings=settings, images_per_s=round(row.images_per_s, 1),
                total_images_per_s=round(sum(row.images) / sum(row.seconds), 1),
                seconds=[round(s, 6) for s in row.seconds],
                images=sum(row.images), warmup_s=round(row.timer.warmup_seconds, 2))


def format_bench(result: dict, show_load: bool = True) -> str:
    """The benchmark as a table of images/s and ratios to the blog's; ``show_load`` adds the load and time taken."""
    s = result["settings"]
    blog = result["blog_images_per_s"]
    lines = [f"[bench] {s['model']}, batch {s['batch_size']}, {s['steps']} steps each, {result['device']}, "
             f"{s['threads']} thread(s); native bf16: {'yes' if result['native_bf16'] else 'no'}",
             f"  {'images/s: the median over rounds':<72}{'img/s':>9}{'vs blog':>9}"]
    for row in result["pipelines"] + result["variants"]:
        label = ("model only: " if row["kind"] == "model only" else "") + row["name"]
        mark = "  <- ceiling" if row["kind"] == "model only" and row["name"] == result["ceiling"] else ""
        lines.append(f"  {label:<72}{row['images_per_s']:>9,.0f}{row['images_per_s'] / blog:>8.2f}x{mark}")
    lines.append(f"  course / blog = x{result['ratio']:.2f} (median of rounds x{result['ratio_median']:.2f}); "
                 f"course / ceiling = {result['course_vs_ceiling']:.2f} (median of rounds "
                 f"{result['course_vs_ceiling_median']:.2f}); ceiling / blog = x{result['ratio_bound']:.2f}")
    lines += [f"  not run: {why}" for why in result["variants_not_run"]]
    if show_load:
        lines.append(f"  load average before/after: {result['load_before']} / {result['load_after']}; "
                     f"took {result['seconds_total']:.0f} s")
    return "\n".join(lines)


