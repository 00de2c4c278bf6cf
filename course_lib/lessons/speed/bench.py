"""The speed benchmark: the blog's data pipeline against the course's, and the hardware ceiling.

``python -m course_lib bench --model blog-resnet --steps 200 --out bench.json`` calls
:func:`run_bench`. On one model, one device, the same number of steps and the same
images, it times, interleaved round by round (blog, course, ceiling, blog, course, ...):

* **blog**: ``fit(pipeline="blog")`` -- a torchvision-style dataset (uint8 -> PIL image ->
  ``ToTensor``) + ``DataLoader(batch_size=64)``, a host->device copy per batch, and the
  plain fp32 model, as in the blog;
* **course**: ``fit(pipeline="memory", **fast_fit_kwargs(device))`` -- the whole dataset as
  one tensor on the device, batches sliced from it, and the speed settings that paid on
  this kind of device (see :func:`fast_fit_kwargs`);
* **ceiling**: the course's training step repeated on one batch already resident: the
  model's own cost with no data work at all.

Both pipelines are timed by ``fit`` itself (its per-epoch ``seconds``: loader + forward +
backward + optimizer step), so the benchmark measures exactly what the course runs.
Interleaving puts both pipelines under the same background load; the machine's load
average is recorded before and after. It also measures model-only *variants* (memory
layout, oneDNN, threads, mixed precision, ``torch.compile``) and records what each gains
or loses, so the choices in :func:`fast_fit_kwargs` are backed by numbers.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import statistics
import time
import warnings
from dataclasses import replace

import torch
from torch import nn

from ...data import Data, load_data
from ...errors import ConfigError, CourseError
from ...models import build_model
from ...training import fit, pick_device, seed_everything, sync_device, train_step

BLOG_FIT_KWARGS = dict(channels_last=False, amp=False, compile=False)  # the blog: plain fp32, eager


def fast_fit_kwargs(device: str | torch.device = "auto") -> dict:
    """The ``fit`` speed settings of the course's fast path on ``device``.

    * CPU: ``channels_last`` (oneDNN's convolutions run NHWC without reorders). fp32, no
      compile: bf16 autocast is slower on CPUs without native bf16, and ``torch.compile``
      costs minutes of warm-up on a 2-core laptop (``run_bench(compile=True)`` measures it).
    * CUDA: ``channels_last``, mixed precision (bf16 where supported, else fp16 with a
      GradScaler) and ``torch.compile(mode="reduce-overhead")`` (CUDA graphs: at batch 64
      the GPU waits on kernel launches, which graphs remove). Not yet measured on a GPU.
    * MPS: plain settings (untested).

    Returns a dict for ``fit(model, data, **fast_fit_kwargs(device))``.
    """
    dev = device if isinstance(device, torch.device) else pick_device(device, verbose=False)
    if dev.type == "cuda":
        return dict(channels_last=True, amp=True, compile="reduce-overhead")
    if dev.type == "cpu":
        return dict(channels_last=True, amp=False, compile=False)
    return dict(BLOG_FIT_KWARGS)


# --------------------------------------------------------------------------- helpers


def _bench_data(data: Data, n_images: int, seed: int) -> Data:
    """``n_images`` training images taken in a seeded order (repeated when the set is smaller),
    and 64 test images (``fit`` evaluates after each epoch; that is not timed)."""
    g = torch.Generator().manual_seed(seed)
    n = len(data.train_y)
    idx = torch.randperm(n, generator=g).repeat(-(-n_images // n))[:n_images]
    info = replace(data.info, n_train=n_images, n_test=min(64, len(data.test_y)), full=False,
                   note=f"benchmark slice of {n_images} training images")
    return replace(data, train_x=data.train_x[idx], train_y=data.train_y[idx],
                   test_x=data.test_x[:64], test_y=data.test_y[:64], info=info, _raw={})


def _fresh_model(name: str, seed: int) -> nn.Module:
    seed_everything(seed)
    return build_model(name)


def _fit_seconds(model: nn.Module, data: Data, dev: torch.device, batch_size: int, seed: int,
                 pipeline: str, kwargs: dict) -> float:
    """One epoch of ``fit`` over ``data``; returns fit's own timing of the epoch (seconds)."""
    history = fit(model, data, epochs=1, batch_size=batch_size, lr=0.1, seed=seed, device=dev,
                  pipeline=pipeline, progress=False, **kwargs)
    if history.status != "completed" or not history.records:
        raise CourseError(f"benchmark training stopped ({history.status}): {history.message}")
    return history.records[0]["seconds"]


def model_only_seconds(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, steps: int, *,
                       channels_last: bool = False, amp: bool | str = False, compile: bool | str = False,
                       bookkeeping: bool = False) -> float:
    """Seconds for ``steps`` training steps of ``model`` on one resident batch (no data work).

    ``xb``: ``B x 1 x 28 x 28`` and ``yb``: ``B`` on the model's device. The step is fit's:
    autocast, cross-entropy, ``zero_grad(set_to_none=True)``, backward, SGD step (lr 0.1),
    with a GradScaler for fp16 on CUDA. ``bookkeeping=True`` adds fit's per-step loss
    record and NaN check, to measure what they cost.
    """
    dev = xb.device
    if channels_last:
        model.to(memory_format=torch.channels_last)
        xb = xb.contiguous(memory_format=torch.channels_last)
    mode = compile if isinstance(compile, str) else None
    step_model = torch.compile(model, mode=mode, dynamic=False) if compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    fp16 = dev.type == "cuda" and (amp == "fp16" or (amp is True and not torch.cuda.is_bf16_supported()))
    scaler = torch.amp.GradScaler("cuda") if fp16 else None
    graphs = compile == "reduce-overhead" and dev.type == "cuda"
    losses = torch.zeros(steps, device=dev)
    model.train()
    sync_device(dev)
    t0 = time.perf_counter()
    for step in range(steps):
        loss = train_step(step_model, optimizer, xb, yb, dev, amp, scaler, graphs)
        if bookkeeping:
            losses[step] = loss
            if not bool(torch.isfinite(losses[: step + 1]).all()):
                raise CourseError("benchmark loss became NaN/inf")
    sync_device(dev)
    return time.perf_counter() - t0


@contextlib.contextmanager
def _threads(n: int | None):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def _onednn(enabled: bool):
    """oneDNN (mkldnn) on or off for the block; torch's flags() warns about Intel-GPU TF32, hushed here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=enabled):
            yield


def _variants(dev: torch.device, compile_variant: bool) -> list[dict]:
    """The model-only settings the benchmark compares, the first being the blog's."""
    base = dict(channels_last=False, amp=False, compile=False)
    out = [dict(name="fp32, NCHW, eager (the blog's model settings)", **base)]
    if dev.type == "cpu":
        out += [
            dict(name="channels_last", **{**base, "channels_last": True}),
            dict(name="channels_last, oneDNN disabled", mkldnn=False, **{**base, "channels_last": True}),
            dict(name="NCHW, oneDNN disabled", mkldnn=False, **base),
            dict(name="channels_last + fit's per-step loss record and NaN check", bookkeeping=True,
                 **{**base, "channels_last": True}),
            dict(name="channels_last + bf16 autocast", **{**base, "channels_last": True, "amp": "bf16"}),
        ]
        if torch.get_num_threads() > 1:
            out.insert(2, dict(name="channels_last, 1 thread", threads=1, **{**base, "channels_last": True}))
        if compile_variant:
            out += [dict(name="torch.compile (inductor)", **{**base, "compile": True}),
                    dict(name="channels_last + torch.compile (inductor)",
                         **{**base, "channels_last": True, "compile": True})]
    elif dev.type == "cuda":
        out += [
            dict(name="channels_last", **{**base, "channels_last": True}),
            dict(name="AMP (bf16/fp16)", **{**base, "amp": True}),
            dict(name="AMP + channels_last", **{**base, "amp": True, "channels_last": True}),
            dict(name="fp16 + GradScaler + channels_last", **{**base, "amp": "fp16", "channels_last": True}),
        ]
        if compile_variant:
            out += [
                dict(name="AMP + channels_last + torch.compile", **{**base, "amp": True, "channels_last": True,
                                                                     "compile": True}),
                dict(name="AMP + channels_last + torch.compile(reduce-overhead) (CUDA graphs)",
                     **{**base, "amp": True, "channels_last": True, "compile": "reduce-overhead"}),
            ]
    return out


def _run_variants(name: str, dev: torch.device, xb: torch.Tensor, yb: torch.Tensor, steps: int,
                  rounds: int, compile_variant: bool, seed: int, say) -> list[dict]:
    specs = _variants(dev, compile_variant)
    models = [_fresh_model(name, seed).to(dev) for _ in specs]
    seconds = [[] for _ in specs]

    def one(i: int, n: int) -> float:
        spec = specs[i]
        with _threads(spec.get("threads")), _onednn(spec.get("mkldnn", True)):
            return model_only_seconds(models[i], xb, yb, n, channels_last=spec["channels_last"],
                                      amp=spec["amp"], compile=spec["compile"],
                                      bookkeeping=spec.get("bookkeeping", False))

    for i, spec in enumerate(specs):  # warm-up (and compilation), not timed
        t0 = time.perf_counter()
        one(i, 3)
        spec["warmup_s"] = round(time.perf_counter() - t0, 2)
    for _ in range(rounds):
        for i in range(len(specs)):
            seconds[i].append(one(i, steps))
    base = steps * rounds * xb.shape[0] / sum(seconds[0])
    out = []
    for spec, secs in zip(specs, seconds):
        ips = steps * rounds * xb.shape[0] / sum(secs)
        row = dict(name=spec["name"], images_per_s=round(ips, 1), vs_blog_settings=round(ips / base, 3),
                   warmup_s=spec["warmup_s"],
                   settings={k: spec.get(k) for k in ("channels_last", "amp", "compile", "mkldnn", "threads",
                                                      "bookkeeping") if k in spec})
        out.append(row)
        say(f"  {row['name']:<66s} {ips:8.0f} img/s  x{row['vs_blog_settings']:.2f}"
            + (f"  (warm-up {row['warmup_s']:.0f} s)" if spec["compile"] else ""))
    return out


def _machine(dev: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = dict(cpu=cpu, cpu_cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                platform=platform.platform(terse=True))
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
    return info


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


# --------------------------------------------------------------------------- the benchmark


def run_bench(model: str = "blog-resnet", steps: int = 200, device: str = "auto", batch_size: int = 64,
              verbose: bool = True, *, rounds: int = 4, dataset: str = "mnist", threads: int | None = None,
              variants: bool = True, variant_steps: int | None = None, compile: bool | None = None,
              seed: int = 0) -> dict:
    """Time the blog's pipeline, the course's and the model-only ceiling, interleaved.

    Args:
        model: a :func:`course_lib.models.build_model` name (default the blog's ResNet).
        steps: training steps per pipeline in total, split over ``rounds`` rounds.
        device: ``auto`` | ``cpu`` | ``cuda[:N]`` | ``mps``.
        batch_size: images per step (the blog: 64).
        verbose: print progress and the result table.
        rounds: interleaved rounds (blog, course, ceiling) x ``rounds``.
        dataset: images to train on (``mnist`` falls back to the sample, announced);
            the timing does not depend on which digits they are.
        threads: ``torch.set_num_threads`` for the run (None: torch's default).
        variants: also time model-only variants (layout, oneDNN, threads, AMP, compile).
        variant_steps: steps per variant per round (default ``steps // 8``, at least 5).
        compile: include ``torch.compile`` variants (default: on CUDA only; on a 2-core
            CPU the warm-up alone takes minutes).
        seed: model init and data order.

    Returns:
        A JSON-able dict: ``device``, ``torch``, ``blog_images_per_s``, ``course_images_per_s``,
        ``ceiling_images_per_s``, ``ratio`` (course / blog), ``ratio_per_round`` and its
        median, ``course_vs_ceiling``, ``ratio_bound`` (ceiling / blog: the most any data
        pipeline could gain with these model settings), ``rounds`` (per-round seconds), ``variants``,
        ``settings`` (what each pipeline ran with), ``machine``, ``load_before``/``load_after``
        (1/5/15-min load averages) and ``seconds_total``. Each round also holds process CPU
        seconds (``*_cpu_s``, around each whole ``fit`` call, all threads) and ``ratio_cpu_time``
        is their blog/course ratio: with ``threads=1`` it estimates the quiet-machine ratio
        even while other processes load the machine.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"steps must be a whole number >= 1, got {steps!r}. Fix: try --steps 200.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}. Fix: the blog uses 64.")
    if not isinstance(rounds, int) or rounds < 1:
        raise ConfigError(f"rounds must be a whole number >= 1, got {rounds!r}")
    say = print if verbose else (lambda *a, **k: None)
    t_start = time.perf_counter()
    load_before = _load()
    dev = pick_device(device, verbose=verbose)
    rounds = min(rounds, steps)
    round_steps = [steps // rounds + (i < steps % rounds) for i in range(rounds)]
    compile_variant = dev.type == "cuda" if compile is None else bool(compile)
    course_kwargs = fast_fit_kwargs(dev)

    with _threads(threads):
        base = load_data(dataset, verbose=verbose)
        say(f"[bench] {model} on {dev} ({torch.get_num_threads()} threads), batch {batch_size}, "
            f"{steps} steps per pipeline in {rounds} interleaved rounds; data: {base.info}")
        say(f"[bench] course settings: {course_kwargs}; load average before: {load_before}")
        blog_model = _fresh_model(model, seed)
        course_model = _fresh_model(model, seed)
        ceiling_model = _fresh_model(model, seed).to(dev)
        resident = _bench_data(base, batch_size, seed)
        xb, yb = resident.train_x.to(dev), resident.train_y.to(dev)

        warm = _bench_data(base, batch_size * min(5, steps), seed)
        t0 = time.perf_counter()
        _fit_seconds(blog_model, warm, dev, batch_size, seed, "blog", BLOG_FIT_KWARGS)
        _fit_seconds(course_model, warm, dev, batch_size, seed, "memory", course_kwargs)
        model_only_seconds(ceiling_model, xb, yb, min(5, steps), **course_kwargs)
        say(f"[bench] warm-up {time.perf_counter() - t0:.1f} s (not timed)")

        per_round = []
        for r, n in enumerate(round_steps):
            data = _bench_data(base, n * batch_size, seed + 1 + r)
            row = dict(round=r + 1, steps=n, images=n * batch_size)
            c0 = time.process_time()
            row["blog_s"] = _fit_seconds(blog_model, data, dev, batch_size, seed + 1 + r, "blog", BLOG_FIT_KWARGS)
            c1 = time.process_time()
            row["course_s"] = _fit_seconds(course_model, data, dev, batch_size, seed + 1 + r, "memory",
                                           course_kwargs)
            c2 = time.process_time()
            row["ceiling_s"] = model_only_seconds(ceiling_model, xb, yb, n, **course_kwargs)
            row.update(blog_cpu_s=c1 - c0, course_cpu_s=c2 - c1, ceiling_cpu_s=time.process_time() - c2)
            for k in ("blog", "course", "ceiling"):
                row[f"{k}_images_per_s"] = round(row["images"] / row[f"{k}_s"], 1)
            row["ratio"] = round(row["blog_s"] / row["course_s"], 3)
            per_round.append(row)
            say(f"[bench] round {r + 1}/{rounds}: blog {row['blog_images_per_s']:7.0f}  course "
                f"{row['course_images_per_s']:7.0f}  ceiling {row['ceiling_images_per_s']:7.0f} img/s  "
                f"(course/blog x{row['ratio']:.2f})")

        variant_rows = []
        if variants:
            vsteps = variant_steps or max(5, steps // 8)
            say(f"[bench] model-only variants, {vsteps} steps x {min(rounds, 2)} interleaved rounds each:")
            variant_rows = _run_variants(model, dev, xb, yb, vsteps, min(rounds, 2), compile_variant, seed, say)
        machine = _machine(dev)

    images = steps * batch_size
    totals = {k: sum(r[f"{k}_s"] for r in per_round) for k in ("blog", "course", "ceiling")}
    result = dict(
        device=str(dev),
        torch=torch.__version__,
        blog_images_per_s=round(images / totals["blog"], 1),
        course_images_per_s=round(images / totals["course"], 1),
        ceiling_images_per_s=round(images / totals["ceiling"], 1),
        ratio=round(totals["blog"] / totals["course"], 3),
        ratio_per_round=[r["ratio"] for r in per_round],
        ratio_median=round(statistics.median(r["ratio"] for r in per_round), 3),
        ratio_cpu_time=round(sum(r["blog_cpu_s"] for r in per_round) / sum(r["course_cpu_s"] for r in per_round), 3),
        course_vs_ceiling=round(totals["ceiling"] / totals["course"], 3),
        ratio_bound=round(totals["blog"] / totals["ceiling"], 3),
        images_per_pipeline=images,
        rounds=per_round,
        variants=variant_rows,
        variants_not_run=[] if compile_variant or not variants else [
            "torch.compile variants: pass compile=True (run_bench(..., compile=True)); on a 2-core CPU "
            "inductor's warm-up alone takes 1-2.5 minutes"],
        settings=dict(model=model, steps=steps, batch_size=batch_size, rounds=rounds, seed=seed,
                      blog=dict(pipeline="blog (uint8 -> PIL -> ToTensor -> DataLoader, num_workers=0)",
                                **BLOG_FIT_KWARGS),
                      course=dict(pipeline="memory (batches sliced from one device tensor)", **course_kwargs),
                      ceiling="course settings, one resident batch, no data work",
                      dataset=base.info.as_dict()),
        machine=machine,
        load_before=load_before,
        load_after=_load(),
        date=_dt.datetime.now().isoformat(timespec="seconds"),
        seconds_total=round(time.perf_counter() - t_start, 1),
    )
    say(f"[bench] {model}, batch {batch_size}, {steps} steps each, {dev}:")
    say(f"  blog pipeline    {result['blog_images_per_s']:8.0f} img/s")
    say(f"  course pipeline  {result['course_images_per_s']:8.0f} img/s   course/blog = x{result['ratio']:.2f} "
        f"(median of rounds x{result['ratio_median']:.2f})")
    say(f"  model ceiling    {result['ceiling_images_per_s']:8.0f} img/s   course reaches "
        f"{result['course_vs_ceiling']:.0%} of it; no data pipeline can beat x{result['ratio_bound']:.2f}")
    say(f"  load average before/after: {load_before} / {result['load_after']}; took {result['seconds_total']:.0f} s")
    return result
