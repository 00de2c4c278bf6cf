"""The GPU section of notebook 04: which devices are here, and what makes training fast on them.

:func:`list_devices` names every device torch can train on; :func:`device_speeds` times
the same model on each; :func:`speed_ratios` measures each option of
:data:`SPEED_OPTIONS` (data on the device, AMP, channels_last, cudnn.benchmark,
torch.compile) side by side with its baseline, as a ratio, and skips with a reason the
options this device cannot use. Sizes come from the profile's row of
:data:`course_lib.lessons.cnn_vs_resnet.protocol.SETTINGS`. The plot saves to ``figures/04_speed.png``.
For the full benchmark of the two data pipelines against the model's own cost, see
:mod:`course_lib.lessons.speed.bench`.
"""
from __future__ import annotations

import contextlib
import logging
import statistics
import time
from typing import Iterable

import torch

from ..cnn_vs_resnet.protocol import BLOG_PROTOCOL, MODELS, settings_for
from ...data import Data, blog_loader
from ...models import build_model
from ...profiles import Profile, get_profile
from ...results import describe, make_meta
from ...training import mps_available, pick_device, seed_everything, sync_device, train_step


def list_devices() -> list[dict]:
    """Every device torch can train on here: ``[{device, name}]``, the CPU first, then CUDA GPUs, then MPS."""
    import platform

    devices = [{"device": "cpu", "name": f"{platform.processor() or platform.machine()}, "
                                         f"{torch.get_num_threads()} threads"}]
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


class _Trainer:
    """One model, optimizer and batch source, trained ``steps`` steps at a time; for side-by-side timing."""

    def __init__(self, model_name: str, data: Data, dev: torch.device, batch_size: int, pipeline: str = "memory",
                 amp: bool = False, channels_last: bool = False, cudnn_benchmark: bool = False,
                 compile: bool = False, seed: int = 0):
        seed_everything(seed)
        self.dev, self.channels_last, self.cudnn_benchmark = dev, channels_last, cudnn_benchmark
        self.model = build_model(MODELS.get(model_name, model_name)).to(dev)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.step_model = torch.compile(self.model) if compile else self.model
        self.opt = torch.optim.SGD(self.model.parameters(), lr=BLOG_PROTOCOL["lr"])
        self.amp = amp  # bf16 where the device has it, else fp16 with a GradScaler (autocast_for decides)
        fp16 = amp and dev.type == "cuda" and not torch.cuda.is_bf16_supported()
        self.scaler = torch.amp.GradScaler("cuda") if fp16 else None
        self.batch_size, self.pipeline = batch_size, pipeline
        if pipeline == "memory":
            self.x, self.y = data.train_x.to(dev), data.train_y.to(dev)
            self.gen = torch.Generator(device="cpu").manual_seed(seed)
        else:
            self.loader = blog_loader(data, batch_size, shuffle=True, pin_memory=dev.type == "cuda")
            self.it = iter(self.loader)

    def _batch(self):
        if self.pipeline == "memory":
            idx = torch.randint(len(self.y), (self.batch_size,), generator=self.gen).to(self.dev, non_blocking=True)
            return self.x[idx], self.y[idx]
        try:
            xb, yb = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            xb, yb = next(self.it)
        return xb.to(self.dev, non_blocking=True), yb.to(self.dev, non_blocking=True)

    def run(self, steps: int) -> float:
        """Train ``steps`` steps; return images per second (timed between device syncs)."""
        if self.dev.type == "cuda":
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
        sync_device(self.dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            xb, yb = self._batch()
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            train_step(self.step_model, self.opt, xb, yb, self.dev, self.amp, self.scaler)
        sync_device(self.dev)
        return steps * self.batch_size / (time.perf_counter() - t0)


def device_speeds(data: Data, model: str = "BlogResNet", steps: int = 25, batch_size: int = 64,
                  verbose: bool = True) -> list[dict]:
    """Training images/s of the same model on every device present (data kept on the device).

    Returns ``[{device, name, images_per_s}]``; ``data`` is any :class:`Data` (N x 1 x 28 x 28).
    """
    rows = []
    for d in list_devices():
        trainer = _Trainer(model, data, torch.device(d["device"]), batch_size)
        trainer.run(max(2, steps // 5))  # warm-up: allocator, kernels, cuDNN heuristics
        rows.append(dict(d, images_per_s=trainer.run(steps)))
        if verbose:
            print(f"[speed] {model} training on {d['device']} ({d['name']}): {rows[-1]['images_per_s']:,.0f} images/s")
    return rows


# name -> (what it compares, the baseline's options, the variant's options, device types where it applies)
SPEED_OPTIONS = {
    "data on device vs DataLoader": ("batches sliced from device tensors vs the blog's dataset+ToTensor+DataLoader",
                                     {"pipeline": "blog"}, {"pipeline": "memory"}, ("cpu", "cuda", "mps")),
    "AMP (mixed precision)": ("bf16 autocast (fp16 + GradScaler where bf16 is missing) vs float32",
                              {}, {"amp": True}, ("cuda", "mps")),
    "channels_last": ("NHWC memory layout vs NCHW", {}, {"channels_last": True}, ("cpu", "cuda")),
    "cudnn.benchmark": ("cuDNN autotuned convolutions vs its heuristics", {}, {"cudnn_benchmark": True}, ("cuda",)),
    "torch.compile": ("compiled model vs eager (compile time not counted)", {}, {"compile": True}, ("cpu", "cuda")),
}


def _skip_reason(option: str, dev: torch.device, cfg: dict) -> str | None:
    types = SPEED_OPTIONS[option][3]
    if dev.type not in types:
        return f"needs a {' or '.join(t.upper() for t in types if t != 'cpu')} device; this one is {dev.type}"
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
    each (from :data:`course_lib.lessons.cnn_vs_resnet.protocol.SETTINGS`), after a warm-up; the ratio is variant / baseline of the
    median images/s (> 1: the option is faster). Options the device cannot use are
    skipped with a printed line; an option that fails (e.g. no compiler) is reported, never raised.

    Returns ``{rows: [{option, what, status, baseline_img_s, variant_img_s, ratio, note}], meta}``.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = settings_for(prof)
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
                    base = _Trainer(model, data, dev, 64, **base_opts)
                    var = _Trainer(model, data, dev, 64, **var_opts)
                    t0 = time.perf_counter()
                    var.run(3)  # warm-up; for torch.compile this is the compilation
                    warm = time.perf_counter() - t0
                    base.run(3)
                    b_speed, v_speed = [], []
                    for _ in range(rounds):
                        b_speed.append(base.run(steps))
                        v_speed.append(var.run(steps))
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
    meta = make_meta(data.info, dev, prof, model=model, steps=steps, rounds=rounds, batch_size=64)
    return {"rows": rows, "meta": meta}


def _speed_line(row: dict, dev: torch.device) -> str:
    if row["status"] == "measured":
        extra = f"; {row['note']}" if row["note"] else ""
        return (f"[speed] {row['option']:<29} on {dev.type}: x{row['ratio']:.2f} "
                f"({row['variant_img_s']:,.0f} vs {row['baseline_img_s']:,.0f} images/s{extra})")
    return f"[speed] {row['option']:<29} on {dev.type}: {row['status'].upper()} -- {row['note']}"


def plot_speed(result: dict, name: str | None = "04_speed"):
    """Speed-up of each option over its baseline (bars; skipped options are listed as such)."""
    import matplotlib.pyplot as plt

    from ...plots import finish_figure

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.55 * len(rows)))
    for i, r in enumerate(rows):
        if r["status"] == "measured":
            ax.barh(i, r["ratio"], color="tab:green" if r["ratio"] >= 1 else "tab:red", alpha=0.8)
            ax.text(r["ratio"], i, f" x{r['ratio']:.2f}", va="center", fontsize=8)
        else:
            ax.text(1.0, i, f"  {r['status']} on {result['meta']['device']}", va="center", fontsize=8, color="gray")
    ax.axvline(1.0, color="black", lw=1)
    ax.set_yticks(range(len(rows)), [r["option"] for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # top to bottom, room for the rows that have no bar
    measured = [r["ratio"] for r in rows if r["ratio"]]
    ax.set_xlim(0, max(measured + [1.0]) * 1.3)
    ax.set(xlabel="speed of the option / speed of its baseline (training images/s)")
    ax.set_title(f"{result['meta']['model']}, {describe(result)}", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return finish_figure(fig, name=name)
