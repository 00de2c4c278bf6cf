"""Notebook 06's measurements: which devices are here, and what makes training fast on them.

:func:`list_devices` names every device torch can train on; :func:`device_speeds` times the same model on each;
:func:`speed_ratios` measures each option of :data:`SPEED_OPTIONS` (data on the device, AMP, channels_last,
cudnn.benchmark, torch.compile) side by side with its baseline, as a ratio, and skips with a reason the options
this device cannot use. :func:`epoch_times` turns measured images/s into seconds per epoch, and
:func:`gpu_result` finds the committed GPU measurement for a machine without a GPU. Every timing goes through
the course's one timing loop (:class:`course_lib.timing.StepTimer`); sizes come from :data:`SETTINGS`. For the
benchmark of the two data pipelines against the model's own cost, see :mod:`course_lib.lessons.speed.bench`.
"""
from __future__ import annotations

import contextlib
import logging
import statistics
import time
from typing import Callable, Iterable

import torch

from ..cnn_vs_resnet.protocol import BLOG_PROTOCOL, MODELS
from ...data import Data
from ...models import build_model
from ...profiles import Profile, as_profile, settings
from ...results import describe, make_meta
from ...timing import StepTimer, blog_batches, memory_batches
from ...training import mps_available, native_bf16, pick_device, seed_everything

# Sizes of notebook 06's live measurements. speed_*: speed_ratios' steps per round and rounds; bench_*: the
# side-by-side benchmark's steps per contender and rounds; data_images: images timed through each stage of the
# blog's pipeline; gpu_steps: the benchmark's steps when a GPU is present. compile_on_cpu: whether torch.compile
# is timed on a CPU (minutes of C++ code generation).
SETTINGS = {
    "smoke": dict(speed_steps=5, speed_rounds=1, bench_steps=6, bench_rounds=2, data_images=256, gpu_steps=40,
                  compile_on_cpu=False),
    "cpu": dict(speed_steps=25, speed_rounds=3, bench_steps=80, bench_rounds=4, data_images=2048, gpu_steps=400,
                compile_on_cpu=False),
    "full": dict(speed_steps=100, speed_rounds=3, bench_steps=150, bench_rounds=5, data_images=4000, gpu_steps=400,
                 compile_on_cpu=True),
}


def settings_for(profile: Profile | str | None = None) -> dict:
    """Notebook 06's row of :data:`SETTINGS` for ``profile`` (a Profile, a name, or None = $COURSE_PROFILE)."""
    return settings(SETTINGS, profile)


def list_devices() -> list[dict]:
    """Every device torch can train on here: ``[{device, name}]``, the CPU first, then CUDA GPUs, then MPS.
    (How many CPU threads training uses is ``setup()``'s one ``threads:`` line.)"""
    import os
    import platform

    cores = os.cpu_count() or 1
    cpu = f"{platform.processor() or platform.machine()}, {cores} core{'s' * (cores > 1)}"
    devices = [{"device": "cpu", "name": cpu}]
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        devices.append({"device": f"cuda:{i}", "name": torch.cuda.get_device_name(i)})
    if mps_available():
        devices.append({"device": "mps", "name": "Apple GPU (MPS)"})
    return devices


@contextlib.contextmanager
def _quiet_compiler_logs():
    # On a CPU-only machine inductor logs a line with a local path about CUDA_HOME; it is noise here.
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _trainer(model_name: str, data: Data, dev: torch.device, batch_size: int, options: dict,
             seed: int = 0) -> Callable[[int], float]:
    """A function ``steps -> images/s`` that trains one model with ``options`` on ``dev``, timed by the
    course's timing loop. ``options``: ``pipeline`` (``memory`` or ``blog``), ``cudnn_benchmark``, and
    :class:`course_lib.timing.StepTimer`'s ``amp``, ``channels_last`` and ``compile``."""
    opts = dict(options)
    pipeline, cudnn_benchmark = opts.pop("pipeline", "memory"), opts.pop("cudnn_benchmark", False)
    seed_everything(seed)
    model = build_model(MODELS.get(model_name, model_name))
    if pipeline == "memory":
        batches = memory_batches(data.train_x.to(dev), data.train_y.to(dev), batch_size, seed)
    else:
        batches = blog_batches(data, batch_size, dev, seed)
    timer = StepTimer(model, batches, device=dev, lr=BLOG_PROTOCOL["lr"], **opts)

    def run(steps: int) -> float:
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = cudnn_benchmark
        return timer.run(steps).images_per_s

    return run


def device_speeds(data: Data, model: str = "BlogResNet", steps: int = 25, batch_size: int = 64,
                  verbose: bool = True) -> list[dict]:
    """Training images/s of the same model on every device present (data kept on the device).

    Returns ``[{device, name, images_per_s}]``; ``data`` is any :class:`Data` (N x 1 x 28 x 28).
    """
    rows = []
    for d in list_devices():
        run = _trainer(model, data, torch.device(d["device"]), batch_size, {})
        run(max(2, steps // 5))  # warm-up: allocator, kernels, cuDNN heuristics
        rows.append(dict(d, images_per_s=run(steps)))
        if verbose:
            print(f"[speed] {model} training on {d['device']} ({d['name']}): {rows[-1]['images_per_s']:,.0f} images/s")
    return rows


# name -> (what it compares, the baseline's options, the variant's options, device types where it applies)
SPEED_OPTIONS = {
    "data on device vs DataLoader": ("batches sliced from device tensors vs the blog's dataset+ToTensor+DataLoader",
                                     {"pipeline": "blog"}, {"pipeline": "memory"}, ("cpu", "cuda", "mps")),
    "AMP (mixed precision)": ("bf16 autocast (fp16 + GradScaler where bf16 is not native) vs float32",
                              {}, {"amp": True}, ("cpu", "cuda", "mps")),
    "channels_last": ("NHWC memory layout vs NCHW", {}, {"channels_last": True}, ("cpu", "cuda")),
    "cudnn.benchmark": ("cuDNN autotuned convolutions vs its heuristics", {}, {"cudnn_benchmark": True}, ("cuda",)),
    "torch.compile": ("compiled model vs eager (compile time not counted)", {}, {"compile": True}, ("cpu", "cuda")),
}


def _skip_reason(option: str, dev: torch.device, cfg: dict) -> str | None:
    types = SPEED_OPTIONS[option][3]
    if dev.type not in types:
        return f"needs a {' or '.join(t.upper() for t in types if t != 'cpu')} device; this one is {dev.type}"
    if option == "AMP (mixed precision)" and dev.type == "cpu" and not native_bf16(dev):
        return "this CPU has no native bf16 (emulated bf16 is slower than fp32 on a cpu)"
    if option == "torch.compile" and dev.type == "cpu":
        import shutil

        if not cfg.get("compile_on_cpu"):
            return ("on a CPU, compiling takes minutes of C++ code generation, more than this profile's "
                    "budget (run the full profile, or a GPU, to measure it)")
        if not (shutil.which("g++") or shutil.which("clang++")):
            return "on a CPU, torch.compile needs a C++ compiler (g++ or clang++), and none was found"
    return None


def speed_ratios(data: Data, device: str | torch.device = "auto", profile: Profile | str | None = None,
                 model: str = "BlogResNet", options: Iterable[str] = tuple(SPEED_OPTIONS),
                 verbose: bool = True) -> dict:
    """Each speed option measured side by side with its baseline on ``device``, as a ratio.

    Baseline and variant are trained alternately, ``speed_rounds`` x ``speed_steps`` steps
    each (from :data:`SETTINGS`), after a warm-up; the ratio
    is variant / baseline of the median images/s (> 1: the option is faster). Options the device cannot
    use are skipped with a printed line; an option that fails (e.g. no compiler) is reported, never raised.

    Returns ``{rows: [{option, what, status, baseline_img_s, variant_img_s, ratio, note}], meta}``.
    """
    cfg = settings(SETTINGS, profile)
    dev = pick_device(device, verbose=False)
    steps, rounds = cfg["speed_steps"], cfg["speed_rounds"]
    rows = []
    for option in options:
        what, base_opts, var_opts, _ = SPEED_OPTIONS[option]
        row = {"option": option, "what": what, "status": "skipped", "baseline_img_s": None,
               "variant_img_s": None, "ratio": None, "note": _skip_reason(option, dev, cfg) or ""}
        if not row["note"]:
            try:
                with _quiet_compiler_logs():
                    base = _trainer(model, data, dev, 64, base_opts)
                    var = _trainer(model, data, dev, 64, var_opts)
                    t0 = time.perf_counter()
                    var(3)  # warm-up; for torch.compile this is the compilation
                    warm = time.perf_counter() - t0
                    base(3)
                    b_speed, v_speed = [], []
                    for _ in range(rounds):
                        b_speed.append(base(steps))
                        v_speed.append(var(steps))
                b, v = statistics.median(b_speed), statistics.median(v_speed)
                row.update(status="measured", baseline_img_s=b, variant_img_s=v, ratio=v / b,
                           note=f"first steps took {warm:.1f} s" if option == "torch.compile" else "")
            except Exception as err:  # noqa: BLE001 - a speed option that fails here is a finding, not a crash
                row.update(status="failed", note=f"{type(err).__name__}: {str(err).splitlines()[0][:160]}")
            finally:
                if dev.type == "cuda":
                    torch.backends.cudnn.benchmark = False
        if verbose:
            print(_speed_line(row, dev))
        rows.append(row)
    meta = make_meta(data.info, dev, as_profile(profile), model=model, steps=steps, rounds=rounds, batch_size=64)
    return {"rows": rows, "meta": meta}


def _speed_line(row: dict, dev: torch.device) -> str:
    if row["status"] == "measured":
        extra = f"; {row['note']}" if row["note"] else ""
        return (f"[speed] {row['option']:<29} on {dev.type}: x{row['ratio']:.2f} "
                f"({row['variant_img_s']:,.0f} vs {row['baseline_img_s']:,.0f} images/s{extra})")
    return f"[speed] {row['option']:<29} on {dev.type}: {row['status'].upper()} -- {row['note']}"


def plot_speed(result: dict, name: str | None = "06_speed"):
    """Speed-up of each measured option over its baseline (one bar each). Options that were skipped or failed
    get no bar: they are named under the axes with the reason, so every bar is a measurement."""
    import matplotlib.pyplot as plt

    from ...plots import COLORS, color_for, finish_figure

    rows = [r for r in result["rows"] if r["status"] == "measured"]
    others = [r for r in result["rows"] if r["status"] != "measured"]
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.55 * max(len(rows), 1)))
    for i, r in enumerate(rows):
        # the model's course colour; a slower option is hatched (its bar also ends left of the line at 1)
        ax.barh(i, r["ratio"], color=color_for(result["meta"]["model"]), alpha=0.8,
                hatch=None if r["ratio"] >= 1 else "//")
        ax.text(r["ratio"], i, f" x{r['ratio']:.2f}", va="center", fontsize=8)
    ax.axvline(1.0, color=COLORS["neutral"], lw=1)
    ax.set_yticks(range(len(rows)), [r["option"] for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, max([r["ratio"] for r in rows] + [1.0]) * 1.3)
    note = "; ".join(f"{r['option']}: {r['status']}" for r in others)
    ax.set(xlabel="speed of the option / speed of its baseline (training images/s)"
           + (f"\nnot measured on {result['meta']['device']}: {note}" if note else ""))
    ax.set_title(f"{result['meta']['model']}, {describe(result)}", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return finish_figure(fig, name=name)


# --------------------------------------------------------------------------- epochs, and a GPU not here

EPOCH_SIZES = {"60,000 images (MNIST or Fashion-MNIST)": 60_000, "4,000 images (the sample)": 4_000}


def epoch_times(bench_result: dict, sizes: dict[str, int] | None = None) -> list[dict]:
    """Seconds of training steps per epoch for each contender of a :func:`course_lib.lessons.speed.bench.run_bench`
    result: ``images / images_per_s`` (evaluation and data loading outside the timed steps are not included).

    Returns ``[{name, kind, images_per_s, <size label>: seconds, ...}]`` in the benchmark's order.
    """
    sizes = EPOCH_SIZES if sizes is None else sizes
    rows = []
    for row in bench_result["pipelines"] + bench_result["variants"]:
        rate = row["images_per_s"]
        rows.append(dict(name=row["name"], kind=row["kind"], images_per_s=rate,
                         **{label: n / rate for label, n in sizes.items()}))
    return rows


def format_epoch_times(rows: list[dict]) -> str:
    """:func:`epoch_times` as a text table: one contender a line, one column per epoch size."""
    labels = [k for k in rows[0] if k not in ("name", "kind", "images_per_s")]
    head = f"{'':<62}{'img/s':>8}" + "".join(f"{label.split(' (')[0]:>16}" for label in labels)
    lines = [head]
    for r in rows:
        name = ("model only: " if r["kind"] == "model only" else "") + r["name"]
        lines.append(f"{name[:61]:<62}{r['images_per_s']:>8,.0f}" + "".join(f"{r[k]:>15.1f}s" for k in labels))
    return "\n".join(lines)


def gpu_result(folder=None) -> dict | None:
    """The newest committed GPU measurement, ``results/*gpu*.json`` (a ``bench`` or ``gpu-protocol`` result
    measured on CUDA), as ``{file, device_name, date, result}``; None when there is none."""
    import json
    from pathlib import Path

    from ...locations import results_dir

    found = []
    for path in sorted(Path(folder or results_dir()).glob("*gpu*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        env = result.get("environment") or result.get("machine") or {}
        meta = result.get("meta") or {}
        device_name = env.get("device_name") or env.get("gpu") or meta.get("device_name")
        if device_name:
            found.append(dict(file=path.name, device_name=device_name,
                              date=meta.get("date") or result.get("date"), result=result))
    return max(found, key=lambda f: str(f["date"])) if found else None


def format_gpu_result(saved: dict) -> str:
    """A saved GPU result from :func:`gpu_result`, labelled with its device and date: a ``bench`` table, or the
    ``gpu-protocol``'s seconds and final accuracies per path."""
    from .bench import format_bench

    result = saved["result"]
    head = f"saved result {saved['file']}, measured on {saved['device_name']}, {saved['date']}:"
    if "pipelines" in result:
        return f"{head}\n{format_bench(result, show_load=False)}"
    lines = [head]
    for path, block in result.get("paths", {}).items():
        accs = "; ".join(f"{model} {100 * a['mean']:.2f}% (mean of {len(a['per_seed'])} seed(s))"
                         for model, a in block.get("accuracy", {}).items())
        lines.append(f"  {path:5s} path: {block.get('seconds')} s for the whole protocol (first seed); {accs}")
    return "\n".join(lines)


def gpu_measurement(profile: Profile | str | None = None, verbose: bool = True) -> dict | None:
    """Notebook 06's GPU cell: on a CUDA GPU, run the side-by-side benchmark there (``gpu_steps`` steps);
    without one, print the committed GPU result if there is one, else one line saying what would be measured.
    Returns the benchmark result, the saved result, or None."""
    say = print if verbose else (lambda *a, **k: None)
    if torch.cuda.is_available():
        from .bench import format_bench, run_bench

        result = run_bench("blog-resnet", steps=settings_for(profile)["gpu_steps"], device="cuda",
                           dataset="sample", verbose=False)
        say(format_bench(result, show_load=False))
        return result
    saved = gpu_result()
    if saved:
        say(format_gpu_result(saved))
        return saved
    say("No CUDA GPU here and no saved GPU result: on a GPU this cell times the blog's pipeline, the course's "
        "(data on the device, AMP, channels_last, CUDA graphs) and the model alone.")
    return None


def cpu_bf16_report() -> str:
    """Whether this CPU computes bf16 natively, the features torch reports for it, and what the course's fast
    settings (:func:`course_lib.training.fast_speed_options`) therefore choose here."""
    from ...training import cpu_features, fast_speed_options

    features = cpu_features()
    shown = ", ".join(f"{k}: {'yes' if features.get(k) else 'no'}" for k in ("avx512_bf16", "amx_bf16"))
    fast = fast_speed_options("cpu")
    return (f"native bf16 on this CPU: {'yes' if native_bf16('cpu') else 'no'} (torch reports {shown or 'nothing'}; "
            f"oneDNN: {'yes' if torch.backends.mkldnn.is_available() else 'no'})\n"
            f"fast settings here: channels_last={fast.channels_last}, amp={fast.amp!r}, compile={fast.compile}")
