"""Does bf16 cost accuracy? The study behind :func:`course_lib.training.fast_speed_options` using bf16 where the
CPU has it natively (a test checks that the saved verdict finds no real difference)."""
from __future__ import annotations

import time

import torch

from ...data import load_data
from ...models import build_model
from ...profiles import Profile, get_profile, settings
from ...results import describe, load_or_train, make_meta
from ...stats import ALPHA, accuracy_interval, compare_accuracies, mean_sd
from ...devices import cpu_features, native_bf16
from ...training import Protocol, SpeedOptions, fast_speed_options, fit, seed_everything

MODEL = "blog-resnet"
PRECISIONS = {"fp32": False, "bf16": "bf16"}  # name -> SpeedOptions.amp

# name: the saved result; cost: what training it takes when the file is missing.
_BLOG_PROTOCOL = dict(name="06_bf16_accuracy", train_limit=None, test_limit=None, epochs=30, seeds=(0, 1, 2),
                      cost="about 10 min on a 2-core CPU at 1 thread")
SETTINGS = {
    "smoke": dict(name="06_bf16_accuracy_smoke", train_limit=256, test_limit=200, epochs=1, seeds=(0, 1, 2),
                  cost="about 20 s on a 2-core CPU"),
    "cpu": _BLOG_PROTOCOL,
    "full": _BLOG_PROTOCOL,
}


def _train_one(data, precision: str, seed: int, epochs: int, device: str) -> dict:
    """One BlogResNet run; its final test accuracy (with Wilson interval), final train loss, seconds, curve."""
    seed_everything(seed)
    model = build_model(MODEL)
    speed = SpeedOptions(device=device, amp=PRECISIONS[precision], channels_last=True)
    start = time.perf_counter()
    history = fit(model, data, Protocol(epochs=epochs, seed=seed), speed, progress=False)
    seconds = time.perf_counter() - start
    acc = history.test_acc[-1] if history.records else None
    return dict(precision=precision, seed=seed, status=history.status, message=history.message,
                final_test_acc=acc, final_train_loss=history.train_loss[-1] if history.records else None,
                test_acc_interval=list(accuracy_interval(acc, len(data.test_y))) if acc is not None else None,
                seconds=round(seconds, 2), test_acc_per_epoch=history.test_acc,
                train_loss_per_epoch=history.train_loss)


def run_bf16_study(data, epochs: int = 30, seeds=(0, 1, 2), device: str = "cpu", profile=None,
                   verbose: bool = True) -> dict:
    """BlogResNet in fp32 and in bf16 autocast, both channels_last so precision is the only difference, for each
    seed. Returns ``{meta, protocol, runs, verdict}``."""
    runs = []
    for seed in seeds:
        for precision in PRECISIONS:
            r = _train_one(data, precision, seed, epochs, device)
            runs.append(r)
            if verbose:
                acc = "-" if r["final_test_acc"] is None else f"{r['final_test_acc']:.2%}"
                print(f"[bf16 study] seed {seed} {precision}: {r['status']}, final test acc {acc}, "
                      f"{r['seconds']:.0f} s", flush=True)
    features = cpu_features()
    meta = make_meta(data.info, torch.device(device), get_profile(profile), experiment="bf16-accuracy",
                     model=MODEL, native_bf16=native_bf16(device),
                     bf16_features={k: bool(features.get(k)) for k in ("avx512_bf16", "amx_bf16")})
    result = dict(meta=meta, protocol=dict(epochs=epochs, batch_size=64, lr=0.1, momentum=0.0,
                                           seeds=list(seeds), channels_last=True,
                                           precisions={k: str(v) for k, v in PRECISIONS.items()}),
                  runs=runs)
    result["verdict"] = judge_bf16(result)
    return result


def judge_bf16(result: dict) -> dict:
    """The course's rule on bf16 against fp32; ``neutral``: every run completed and no real difference was found."""
    n_test = result["meta"]["n_test"]
    out = {}
    for precision in PRECISIONS:
        accs = [r["final_test_acc"] for r in result["runs"] if r["precision"] == precision
                and r["status"] == "completed"]
        mean, sd = mean_sd(accs) if accs else (None, None)
        out[precision] = dict(per_seed=accs, mean=mean, sd=sd,
                              intervals=[list(accuracy_interval(a, n_test)) for a in accs])
    complete = all(r["status"] == "completed" for r in result["runs"])
    if not (out["fp32"]["per_seed"] and out["bf16"]["per_seed"]):
        return dict(out, real=None, neutral=False, reason="no completed run to compare")
    verdict = compare_accuracies(out["bf16"]["per_seed"], out["fp32"]["per_seed"], n_test)
    return dict(out, difference=verdict.difference, p_value=verdict.p_value, half_width=verdict.half_width,
                real=verdict.real, reason=verdict.reason, n_test=n_test,
                neutral=complete and not verdict.real and verdict.p_value is not None)


def bf16_accuracy_study(profile: Profile | str | None = None, retrain: bool = False, device: str = "cpu",
                        verbose: bool = True) -> dict:
    """The bf16 accuracy study of ``profile`` (sizes from :data:`SETTINGS`), loaded when saved, else trained."""
    prof = get_profile(profile)
    cfg = settings(SETTINGS, prof)

    def train() -> dict:
        data = load_data("sample", train_limit=cfg["train_limit"], test_limit=cfg["test_limit"], verbose=verbose)
        return run_bf16_study(data, cfg["epochs"], cfg["seeds"], device, prof, verbose)

    return load_or_train(cfg["name"], train, retrain=retrain, verbose=verbose, cost=cfg["cost"])
