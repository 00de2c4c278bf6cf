"""How long the blog's whole protocol takes on the course's fast path against true fp32 (TF32 off on CUDA):
``python -m course_lib gpu-protocol``. Compile counters per model show a fast path that silently fell back."""
from __future__ import annotations

import contextlib
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, replace

import torch

from ...data import load_data
from ...devices import describe_machine, pick_device
from ...errors import ConfigError
from ...models import build_model
from ...results import make_meta, write_json
from ...stats import accuracy_interval, mean_sd
from ...training import Protocol, SpeedOptions, fast_speed_options, fit, seed_everything
from .recipe import recipe

PATHS = ("fast", "plain")
COMPILE_CHOICES = {"auto": None, "off": False, "on": True, "reduce-overhead": "reduce-overhead"}


@dataclass(frozen=True)
class GpuProtocol:
    """One run of the protocol. ``compile``: None keeps the fast path's choice; False, True or a mode overrides it."""

    dataset: str
    device: str = "cuda"
    epochs: int = 30
    seeds: tuple[int, ...] = (0, 1)
    paths: tuple[str, ...] = PATHS
    models: tuple[str, ...] = ("blog-cnn", "blog-resnet")
    train_limit: int | None = None
    test_limit: int | None = None
    compile: bool | str | None = None
    recipe: str | None = None  # None: the blog's protocol; else notebook 06's recipe (blog or sound)

    def __post_init__(self):
        bad = [p for p in self.paths if p not in PATHS]
        if bad or not self.paths:
            raise ConfigError(f"unknown path(s) {bad or self.paths}; valid: {', '.join(PATHS)}. "
                              f"Fix: --paths fast,plain")
        if not self.seeds or not self.models:
            raise ConfigError("the protocol needs at least one seed and one model. Fix: --seeds 2 --models blog-cnn")


def tf32_settings() -> dict:
    """torch's TF32 switches: matmuls (cuBLAS), convolutions (cuDNN), and the float32 matmul precision."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch prefers its fp32_precision API; these still answer
        return dict(matmul_allow_tf32=bool(torch.backends.cuda.matmul.allow_tf32),
                    cudnn_allow_tf32=bool(torch.backends.cudnn.allow_tf32),
                    float32_matmul_precision=torch.get_float32_matmul_precision())


def _set_tf32(matmul: bool, cudnn: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch prefers its fp32_precision API; these still work
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@contextlib.contextmanager
def tf32(enabled: bool | None):
    """TF32 on or off for matmuls and convolutions inside the block (None: leave torch's settings)."""
    before = tf32_settings()
    if enabled is not None:
        _set_tf32(enabled, enabled)
    try:
        yield
    finally:
        _set_tf32(before["matmul_allow_tf32"], before["cudnn_allow_tf32"])


def compile_counters() -> dict:
    """A snapshot of torch's compile counters: frames dynamo compiled, graph breaks, CUDA-graph skips."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # a torch without dynamo
        return {}
    return dict(frames=counters["frames"]["total"], graph_breaks=sum(counters["graph_break"].values()),
                cudagraph_skips=counters["inductor"]["cudagraph_skips"])


def _counter_delta(before: dict, after: dict, compiled: bool) -> dict:
    delta = {k: after[k] - before.get(k, 0) for k in after}
    if delta:  # a compiled model is one frame; every further frame is a recompile (a new shape, a failed guard)
        delta["recompiles"] = max(0, delta["frames"] - 1) if compiled else delta["frames"]
    return delta


def path_speed(path: str, device: torch.device, compile: bool | str | None = None) -> tuple[SpeedOptions, bool | None]:
    """The speed options of ``path`` on ``device`` and its TF32 switch (None: torch's defaults)."""
    if path == "plain":
        return SpeedOptions(device=device), (False if device.type == "cuda" else None)
    fast = fast_speed_options(device)
    return (fast if compile is None else replace(fast, compile=compile)), None


def train_one(name: str, data, protocol: Protocol, speed: SpeedOptions, model_kwargs: dict | None = None) -> dict:
    """Train model ``name`` once: wall and epoch times, compile+warm-up, final accuracy with its interval, counters."""
    if speed.compile:
        torch.compiler.reset()  # each compiled model starts afresh: its counters and graphs are its own
    before = compile_counters()
    seed_everything(protocol.seed)
    model = build_model(name, **(model_kwargs or {}))
    start = time.perf_counter()
    history = fit(model, data, protocol, speed, progress=False)
    wall = time.perf_counter() - start
    epochs = [r["seconds"] for r in history.records]
    acc = history.test_acc[-1] if history.records else None
    n_test = len(data.test_y)
    return dict(model=name, seed=protocol.seed, status=history.status, message=history.message,
                seconds=round(wall, 2), epoch_seconds=[round(s, 3) for s in epochs],
                compile_warmup_s=round(epochs[0] - statistics.median(epochs[1:]), 2) if len(epochs) > 1 else None,
                final_test_acc=acc, test_acc_interval=accuracy_interval(acc, n_test) if acc is not None else None,
                n_test=n_test, counters=_counter_delta(before, compile_counters(), bool(speed.compile)))


def _summarise(result: dict, config: GpuProtocol) -> None:
    """Per path: seconds per seed (all models completed), final accuracies per model; ``fast_seconds``."""
    for path, block in result["paths"].items():
        runs = block["runs"]
        per_seed = {}
        for seed in config.seeds:
            mine = [r for r in runs if r["seed"] == seed]
            if len(mine) == len(config.models) and all(r["status"] == "completed" for r in mine):
                per_seed[str(seed)] = round(sum(r["seconds"] for r in mine), 2)
        block["seconds_per_seed"] = per_seed
        block["seconds"] = next(iter(per_seed.values()), None)  # the first seed: compilation from a cold start
        block["accuracy"] = {}
        for name in config.models:
            done = [r for r in runs if r["model"] == name and r["status"] == "completed"]
            if done:
                mean, sd = mean_sd([r["final_test_acc"] for r in done])
                block["accuracy"][name] = dict(per_seed=[r["final_test_acc"] for r in done], mean=mean, sd=sd,
                                               intervals=[r["test_acc_interval"] for r in done],
                                               n_test=done[0]["n_test"])
    result["fast_seconds"] = result["paths"].get("fast", {}).get("seconds")


def run_gpu_protocol(config: GpuProtocol, out: str | None = None, verbose: bool = True) -> dict:
    """Run ``config``'s protocol, rewriting ``out`` (JSON) after every model; a missing device fails at once."""
    say = print if verbose else (lambda *a, **k: None)
    dev = pick_device(config.device, verbose=False)  # cuda asked and absent: DeviceError now, not a CPU run
    data = load_data(config.dataset, train_limit=config.train_limit, test_limit=config.test_limit,
                     verbose=verbose).to(dev)  # once, not once per fit
    env = dict(describe_machine(dev), tf32_defaults=tf32_settings())
    settings = recipe(config.recipe) if config.recipe else dict(protocol={}, model={})
    result = dict(meta=make_meta(data.info, dev, None, experiment="gpu-protocol", recipe=config.recipe),
                  environment=env,
                  protocol=dict(asdict(Protocol(epochs=config.epochs, **settings["protocol"])), recipe=config.recipe,
                                model_settings=settings["model"], models=list(config.models),
                                seeds=list(config.seeds), dataset=data.info.as_dict()),
                  paths={}, fast_seconds=None, complete=False)
    say(f"[gpu-protocol] {env.get('device_name', dev)}; torch {env['torch']}, CUDA {env['cuda']}, "
        f"cuDNN {env['cudnn']}; data: {data.info}")
    for seed in config.seeds:
        for path in config.paths:
            speed, tf32_on = path_speed(path, dev, config.compile)
            block = result["paths"].setdefault(path, dict(settings=_plain(asdict(speed)), runs=[]))
            for name in config.models:
                with tf32(tf32_on):
                    block["tf32"] = tf32_settings()
                    try:
                        record = train_one(name, data, Protocol(epochs=config.epochs, seed=seed,
                                                                **settings["protocol"]), speed, settings["model"])
                    except Exception as err:  # noqa: BLE001 - one failed model is a finding; the others still run
                        first_line = (str(err).splitlines() or [""])[0][:300]
                        record = dict(model=name, seed=seed, status="failed",
                                      message=f"{type(err).__name__}: {first_line}")
                block["runs"].append(record)
                _summarise(result, config)
                if out:
                    write_json(out, result)
                say(_run_line(path, record))
    result["complete"] = True
    if out:
        write_json(out, result)
    say(f"[gpu-protocol] fast path: {result['fast_seconds']} s for {', '.join(config.models)} x {config.epochs} "
        f"epochs (first seed, evaluation and compilation included)")
    return result


def _plain(settings: dict) -> dict:
    """Settings as JSON values: a device as its name, everything else as it is."""
    return {k: v if isinstance(v, (bool, int, float, str, type(None))) else str(v) for k, v in settings.items()}


def _run_line(path: str, r: dict) -> str:
    if r["status"] != "completed":
        return f"[gpu-protocol] {path:5s} seed {r['seed']} {r['model']}: {r['status'].upper()}, skipped: {r['message']}"
    lo, hi = r["test_acc_interval"]
    warm = f", compile+warm-up {r['compile_warmup_s']} s" if r["compile_warmup_s"] is not None else ""
    return (f"[gpu-protocol] {path:5s} seed {r['seed']} {r['model']}: {r['seconds']} s{warm}; final test acc "
            f"{r['final_test_acc']:.2%} [{lo:.2%}, {hi:.2%}]; counters {r['counters']}")
