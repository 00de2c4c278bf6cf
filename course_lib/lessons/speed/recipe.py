"""Notebook 06: one ResNet trained with the blog's recipe and with a sound one, and an ablation of the sound one.

``python -m course_lib recipe`` makes ``results/06_recipe_fashion.json``; a single run (``--job sound:0``) is what the
parallel GPU driver (bench/gpu_recipe.sh) starts, and ``--check`` reruns one seed's first epochs against the saved curve.
"""
from __future__ import annotations

import platform
import statistics
import sys
import time
from dataclasses import replace

import torch

from ...data import load_data
from ...devices import describe_machine, pick_device
from ...errors import ConfigError
from ...models import build_model, count_params
from ...stats import accuracy_interval, compare_accuracies, mean_sd
from ...training import Protocol, SpeedOptions, fit, seed_everything

MODEL = "resnet20"  # He et al.'s CIFAR ResNet-20: small enough for a CPU demo, the standard small-ResNet reference
RECIPES = {
    # the blog's: plain SGD at a constant 0.1, batch 64, no augmentation, PyTorch's default init
    "blog": dict(protocol=dict(batch_size=64, lr=0.1), model=dict(init="pytorch")),
    # the sound one: momentum, weight decay, warm-up + cosine, random crops, He init + zero-init last BN per block
    "sound": dict(protocol=dict(batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                                warmup_epochs=1, crop_padding=2),
                  model=dict(init="he", zero_init_residual=True)),
}
# the ablation: the sound recipe with one ingredient taken out at a time
ABLATION = {
    "sound": {},
    "no momentum": dict(protocol=dict(momentum=0.0)),
    "no weight decay": dict(protocol=dict(weight_decay=0.0)),
    "constant lr": dict(protocol=dict(schedule="constant", warmup_epochs=0)),
    "no crops": dict(protocol=dict(crop_padding=0)),
    "PyTorch init": dict(model=dict(init="pytorch", zero_init_residual=False)),
}
# how the ablation's variants are shown (the saved result keeps the short names)
LABELS = {"PyTorch init": "PyTorch init, no zero-init BN"}
RESULT = "06_recipe_fashion"
PROTOCOL = "notebook 06's two recipes"


def recipe(name: str, variant: str | None = None) -> dict:
    """The protocol and model settings of recipe ``name`` (``blog``/``sound``), with an ablation ``variant``."""
    if name not in RECIPES or (variant is not None and variant not in ABLATION):
        raise ConfigError(f"unknown recipe {name!r} / variant {variant!r}; recipes: {', '.join(RECIPES)}; "
                          f"variants: {', '.join(ABLATION)}")
    change = ABLATION.get(variant or "sound", {})
    return {part: {**RECIPES[name][part], **change.get(part, {})} for part in ("protocol", "model")}


def train_run(data, name: str, seed: int, epochs: int, variant: str | None = None, device: str = "auto",
              until: int | None = None) -> dict:
    """Train :data:`MODEL` once with recipe ``name`` (or the sound recipe's ``variant``); one run's record."""
    settings = recipe(name, variant)
    protocol = Protocol(epochs=epochs, seed=seed, **settings["protocol"])
    seed_everything(seed)
    model = build_model(MODEL, **settings["model"])
    start = time.perf_counter()
    history = fit(model, data, protocol, SpeedOptions(device=device), progress=False, until=until)
    if history.status != "completed":
        raise ConfigError(f"{name} seed {seed}: {history.message}")
    records = history.records
    steps_per_epoch = -(-len(data.train_y) // protocol.batch_size)
    return dict(recipe=name, variant=variant, seed=seed, epochs=epochs, steps=steps_per_epoch * len(records),
                test_acc=records[-1]["test_acc"], final_train_loss=records[-1]["train_loss"],
                seconds=round(time.perf_counter() - start, 1),
                curve=dict(test_acc=[r["test_acc"] for r in records], train_loss=[r["train_loss"] for r in records]))


def make_result(data, runs: list[dict], ablation: list[dict], device, command: str, note: str = "") -> dict:
    """The saved result: the runs, the ablation and what they were measured on."""
    from ...results import make_meta

    dev = pick_device(device, verbose=False)
    return dict(dataset=data.info.dataset, source=data.info.source, train_size=len(data.train_y),
                test_size=len(data.test_y), model=MODEL, params=count_params(build_model(MODEL)),
                recipes=RECIPES, ablation_variants=ABLATION, runs=runs, ablation=ablation,
                meta=make_meta(data.info, dev, protocol=PROTOCOL, CPU=describe_machine(dev).get("cpu"),
                               threads=torch.get_num_threads(), python=platform.python_version(), command=command,
                               note=note))


def summary(result: dict) -> dict:
    """Per recipe and per ablation variant: final accuracies, mean and sd; the verdict sound vs blog."""
    n_test = result["test_size"]

    def group(runs, key):
        out = {}
        for r in runs:
            out.setdefault(r[key] or "sound", []).append(r["test_acc"])
        groups = {}
        for k, v in out.items():
            mean, sd = mean_sd(v)
            groups[k] = dict(accs=v, mean=mean, sd=sd, seeds=len(v))
        return groups

    recipes, ablation = group(result["runs"], "recipe"), group(result["ablation"], "variant")
    verdict = None
    if "sound" in recipes and "blog" in recipes:
        verdict = compare_accuracies(recipes["sound"]["accs"], recipes["blog"]["accs"], n_test)
    return dict(recipes=recipes, ablation=ablation, verdict=verdict, n_test=n_test)


def format_summary(result: dict) -> str:
    """The table the notebook prints under the saved result."""
    s = summary(result)
    m = result["meta"]
    lines = [f"{result['model']} on {result['dataset']} ({result['train_size']:,} train / {result['test_size']:,} test),"
             f" {result['runs'][0]['epochs']} epochs; {m.get('device_name') or m['device']}, torch {m['torch']}, "
             f"{m['date']}"]
    for name, g in s["recipes"].items():
        lo, hi = accuracy_interval(g["mean"], s["n_test"])
        lines.append(f"  {name:6s} recipe: test accuracy {100 * g['mean']:.2f}% ± {100 * g['sd']:.2f} (sd over "
                     f"{g['seeds']} seeds; 95% Wilson [{100 * lo:.2f}, {100 * hi:.2f}])")
    if s["verdict"] is not None:
        lines.append(f"  sound - blog: {100 * s['verdict'].difference:+.2f} points: {s['verdict'].reason}")
    return "\n".join(lines)


def format_ablation(result: dict) -> str:
    """Each ablation variant against the full sound recipe, by the course's rule."""
    s = summary(result)["ablation"]
    if "sound" not in s:
        return "no ablation in this result"
    base = s["sound"]
    lines = [f"ablation: the sound recipe with one ingredient taken out at a time, {base['seeds']} seeds each; "
             f"{ablation_label(result)}"]
    for name, g in s.items():
        if name == "sound":
            lines.append(f"  {'full sound recipe':32s} {100 * g['mean']:.2f}% ± {100 * g['sd']:.2f}")
            continue
        v = compare_accuracies(g["accs"], base["accs"], result["test_size"])
        lines.append(f"  {LABELS.get(name, name):32s} {100 * g['mean']:.2f}% ± {100 * g['sd']:.2f}  ({100 * v.difference:+.2f} "
                     f"points: {v.reason})")
    return "\n".join(lines)


def check_rerun(result: dict, seed: int = 0, epochs: int = 2, device: str = "auto", data=None) -> str:
    """Rerun the sound recipe's ``seed`` for its first ``epochs`` epochs (same schedule) and compare its test accuracy
    at the end with the saved runs' band there (min..max over seeds, widened by the 95% Wilson half-width); every
    epoch is printed, the verdict is the last one's."""
    data = data or load_data(result["dataset"])
    run = train_run(data, "sound", seed, result["runs"][0]["epochs"], device=device, until=epochs)
    saved = [r["curve"]["test_acc"] for r in result["runs"] if r["recipe"] == "sound"]
    lines, n = [], len(data.test_y)
    for e, acc in enumerate(run["curve"]["test_acc"]):
        vals = [c[e] for c in saved]
        low, high = accuracy_interval(min(vals), n)[0], accuracy_interval(max(vals), n)[1]
        inside = low <= acc <= high
        lines.append(f"  epoch {e + 1}: rerun {100 * acc:.2f}%; saved seeds {', '.join(f'{100 * v:.2f}' for v in vals)}"
                     f" -> band [{100 * low:.2f}, {100 * high:.2f}]: {'inside' if inside else 'outside'}")
    head = f"rerun of sound seed {seed}, {epochs} of {result['runs'][0]['epochs']} epochs, {run['seconds']} s:"
    verdict = (f"after {epochs} epoch(s) the rerun is {'inside' if inside else 'NOT inside'} the saved curve")
    return "\n".join([head, *lines, verdict])


def parse_job(text: str) -> tuple[str, str | None, int]:
    """``sound:0`` -> ("sound", None, 0); ``ablation:no crops:2`` -> ("sound", "no crops", 2)."""
    parts = text.split(":")
    if len(parts) in (2, 3) and parts[-1].isdecimal() and (len(parts) == 2 or parts[0] == "ablation"):
        name, variant = ("sound", parts[1]) if len(parts) == 3 else (parts[0], None)
        recipe(name, variant)  # an unknown name or variant stops here
        return name, variant, int(parts[-1])
    raise ConfigError(f"bad job {text!r}; write RECIPE:SEED (sound:0) or ablation:VARIANT:SEED")


def all_jobs(seeds: int = 3, ablation: bool = True, recipes: bool = True) -> list[str]:
    """Every run of the study, longest first: the blog recipe (batch 64), the sound one, then the ablation."""
    return ([f"{name}:{s}" for name in RECIPES for s in range(seeds)] if recipes else []) + (
        [f"ablation:{v}:{s}" for s in range(seeds) for v in ABLATION] if ablation else [])


def run_job(job: str, data, epochs: int, ablation_epochs: int, device: str) -> dict:
    name, variant, seed = parse_job(job)
    return train_run(data, name, seed, ablation_epochs if variant else epochs, variant, device)


def run_study(data, epochs: int, ablation_epochs: int, seeds: int = 3, device: str = "auto",
              command: str = "", ablation: bool = True, only_ablation: bool = False) -> dict:
    """Every run one after the other, in this process (for ``load_or_train``)."""
    jobs = all_jobs(seeds, ablation or only_ablation, recipes=not only_ablation)
    done = []
    for job in jobs:
        done.append(run_job(job, data, epochs, ablation_epochs, device))
        print(f"[recipe] {job}: {100 * done[-1]['test_acc']:.2f}%, {done[-1]['seconds']} s", flush=True)
    return make_result(data, [r for r in done if not r["variant"]], [r for r in done if r["variant"]], device,
                       command)


# the saved result's budgets: both recipes 15 epochs on all of Fashion-MNIST; the ablation 4 epochs on subsets
FULL_EPOCHS, ABLATION_EPOCHS, ABLATION_SIZE = 15, 4, (5000, 5000)


def add_ablation(result: dict, data, epochs: int, seeds: int, device: str, command: str) -> dict:
    """``result`` with the ablation run on ``data`` (its own size, device and command in ``ablation_setup``)."""
    part = run_study(data, epochs, epochs, seeds, device, command, only_ablation=True)
    result = dict(result, ablation=part["ablation"])
    result["ablation_setup"] = dict(train_size=part["train_size"], test_size=part["test_size"], epochs=epochs,
                                    source=part["source"], meta=part["meta"])
    return result


def full_study(device: str = "auto") -> dict:
    """What ``results/06_recipe_fashion.json`` holds, made in this process, one run after another: hours on a
    CPU; the saved one ran its recipe runs 6 at a time on a GPU (``recipe --parallel 6``) and its ablation on a CPU."""
    data = load_data("fashion")
    result = run_study(data, FULL_EPOCHS, ABLATION_EPOCHS, 3, device, "course_lib.lessons.speed.recipe.full_study()",
                       ablation=False)
    return add_ablation(result, data.subset(*ABLATION_SIZE), ABLATION_EPOCHS, 3, device, result["meta"]["command"])


def run_parallel(jobs: list[str], workers: int, args: list[str], folder, deadline_s: float | None = None) -> list:
    """Start each job as its own process (``python -m course_lib recipe --job JOB ARGS``), ``workers`` at a time
    (on a GPU: several small models share it); the job files written, in ``folder``. Past ``deadline_s`` seconds
    the running jobs are stopped and the rest not started, so what finished still comes back."""
    import subprocess
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pending, running, done, start = list(jobs), {}, [], time.time()
    while pending or running:
        while pending and len(running) < workers:
            job = pending.pop(0)
            out = folder / (job.replace(":", "_").replace(" ", "-") + ".json")
            running[subprocess.Popen([sys.executable, "-m", "course_lib", "recipe", "--job", job, "--out", str(out),
                                      *args])] = (job, out)
        for proc in [p for p in running if p.poll() is not None]:
            job, out = running.pop(proc)
            if proc.returncode == 0:
                done.append(out)
            else:
                print(f"[recipe] {job} FAILED (exit {proc.returncode})", flush=True)
        if deadline_s is not None and time.time() - start > deadline_s:
            for proc, (job, _) in running.items():
                proc.kill()
                print(f"[recipe] {job} stopped at the deadline", flush=True)
            print(f"[recipe] not started: {pending}", flush=True)
            break
        time.sleep(0.5)
    return done


def merge_jobs(files: list, data, device: str, command: str, note: str = "") -> dict:
    """The saved result from the job files :func:`run_parallel` collected."""
    import json

    runs, ablation = [], []
    for f in files:
        run = json.loads(open(f).read())["run"]
        (ablation if run["variant"] else runs).append(run)
    runs.sort(key=lambda r: (r["recipe"], r["seed"]))
    ablation.sort(key=lambda r: (list(ABLATION).index(r["variant"]), r["seed"]))
    return make_result(data, runs, ablation, device, command, note)

# --------------------------------------------------------------------------- notebook 06: live, saved, figures

# the live demo's sizes: training images, test images, epochs (each recipe trains once, seed 0)
SETTINGS = {"smoke": dict(train=512, test=500, epochs=2), "cpu": dict(train=2000, test=2000, epochs=3),
            "full": dict(train=10000, test=10000, epochs=5)}


def demo_data(size: dict):
    """Fashion-MNIST (a download, a local copy or Debian's dataset-fashion-mnist), else the MNIST sample, cut to
    ``size``; says which."""
    from ...errors import DataError

    try:
        data = load_data("fashion", verbose=False)
    except DataError:
        data = load_data("sample", verbose=False)
        print("Fashion-MNIST is not on this machine (python -m course_lib data --dataset fashion gets it): "
              "the demo uses the MNIST sample instead")
    data = data.subset(size["train"], size["test"])
    print(f"demo data: {data.info}")
    return data


def live_demo(data, epochs: int) -> dict:
    """Both recipes on ``data`` for ``epochs`` (seed 0): the lr and the loss of every step, accuracy per epoch."""
    out = {}
    for name in RECIPES:
        protocol = Protocol(epochs=epochs, seed=0, **recipe(name)["protocol"])
        seed_everything(0)
        losses: list = []
        start = time.perf_counter()
        history = fit(build_model(MODEL, **recipe(name)["model"]), data, protocol,
                      SpeedOptions(device=pick_device("auto", verbose=False)), progress=False, step_losses=losses)
        steps = -(-len(data.train_y) // protocol.batch_size)
        out[name] = dict(lr=[protocol.lr_at(s, steps) for s in range(len(losses))], loss=losses,
                         test_acc=history.test_acc, seconds=time.perf_counter() - start, steps_per_epoch=steps)
        print(f"{name:5s} recipe: {len(losses)} steps of batch {protocol.batch_size}, test accuracy per epoch "
              f"{', '.join(f'{100 * a:.1f}%' for a in history.test_acc)}; {out[name]['seconds']:.0f} s")
    return out


def _colour(name: str) -> str:
    """The sound recipe in the residual nets' colour, the blog's recipe in its own (black stays the blog's numbers)."""
    from ...plots import COLORS

    return COLORS["blog-recipe"] if name == "blog" else COLORS["residual"]


def plot_demo(demo: dict, data, name: str | None = "06_recipe_live"):
    """The live demo on ``data``: (a) the lr of every step, (b) the training loss of every step (a running mean of
    10 steps, so each curve starts at its 10th step)."""
    import matplotlib.pyplot as plt

    from ...plots import finish_figure

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    for rname, run in demo.items():
        images = [(s + 1) * RECIPES[rname]["protocol"]["batch_size"] for s in range(len(run["loss"]))]
        a.plot(images, run["lr"], color=_colour(rname), label=f"{rname} recipe")
        smooth = torch.tensor(run["loss"]).unfold(0, 10, 1).mean(1) if len(run["loss"]) >= 10 else run["loss"]
        b.plot(images[len(images) - len(smooth):], smooth, color=_colour(rname), label=f"{rname} recipe")
    a.set(title="(a) learning rate of each step", xlabel="training images seen", ylabel="lr")
    b.set(title="(b) training loss (running mean of 10 steps)", xlabel="training images seen", ylabel="loss")
    a.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2)
    b.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2)
    return finish_figure(fig, f"live demo: {MODEL}, seed 0, {len(data.train_y):,} training images of "
                              f"{data.info.dataset}", name)


def plot_crops(data, padding: int = 2, n: int = 6, name: str | None = "06_crops"):
    """``n`` training images and four random crops of each (``padding`` zero pixels around, then cut at random)."""
    import matplotlib.pyplot as plt

    from ...data import random_crops
    from ...plots import finish_figure

    x = data.train_x[:n].cpu()
    gen = torch.Generator().manual_seed(0)
    rows = [x] + [random_crops(x, padding, gen) for _ in range(4)]
    fig, axes = plt.subplots(n, len(rows), figsize=(1.1 * len(rows), 1.1 * n))
    for i in range(n):
        for j, imgs in enumerate(rows):
            axes[i, j].imshow(imgs[i, 0], cmap="gray_r", vmin=0, vmax=1)
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
    axes[0, 0].set_title("image", fontsize=8)
    for j in range(1, len(rows)):
        axes[0, j].set_title(f"crop {j}", fontsize=8)
    return finish_figure(fig, f"{data.info.dataset}: random crops, padding {padding} (shifts of up to {padding} "
                              f"pixels)", name)


def plot_saved(result: dict, name: str | None = "06_recipe_curves"):
    """The saved result: test accuracy and training loss per epoch, each recipe's mean with its seeds' range."""
    import matplotlib.pyplot as plt

    from ...plots import finish_figure

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for rname in RECIPES:
        runs = [r for r in result["runs"] if r["recipe"] == rname]
        if not runs:
            continue
        for ax, key, scale in ((a, "test_acc", 100), (b, "train_loss", 1)):
            curves = torch.tensor([r["curve"][key] for r in runs]) * scale
            epochs = range(1, curves.shape[1] + 1)
            ax.fill_between(epochs, curves.min(0).values, curves.max(0).values, color=_colour(rname), alpha=0.25)
            ax.plot(epochs, curves.mean(0), color=_colour(rname), label=f"{rname} recipe ({len(runs)} seeds)")
    a.set(title="(a) test accuracy (%)", xlabel="epoch", ylim=(40, 96))
    b.set(title="(b) training loss per image (log scale)", xlabel="epoch", yscale="log")
    a.legend(fontsize=8, loc="lower right")
    b.legend(fontsize=8, loc="lower left")
    m = result["meta"]
    return finish_figure(fig, f"{result['model']} on full Fashion-MNIST; line: mean, band: min to max over seeds "
                              f"({m.get('device_name') or m['device']}, {m['date']})", name)


def plot_ablation(result: dict, name: str | None = "06_ablation"):
    """Each ablation variant: every seed's test accuracy with its 95% Wilson interval, and the mean."""
    import matplotlib.pyplot as plt

    from ...plots import COLORS, finish_figure

    s = summary(result)["ablation"]
    if not s:
        print("no ablation in this result")
        return None
    n_test = result.get("ablation_setup", {}).get("test_size", result["test_size"])
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.5 * len(s)))
    for i, (variant, g) in enumerate(s.items()):
        for j, acc in enumerate(g["accs"]):
            lo, hi = accuracy_interval(acc, n_test)
            y = i + (j - 1) * 0.15
            ax.errorbar(100 * acc, y, xerr=[[100 * (acc - lo)], [100 * (hi - acc)]], fmt="o", ms=4,
                        color=COLORS["residual"] if variant == "sound" else COLORS["neutral"], capsize=2)
        ax.plot([100 * g["mean"]] * 2, [i - 0.35, i + 0.35], color="black", lw=1.5)
    ax.set_yticks(range(len(s)), ["full sound recipe" if v == "sound" else f"sound, {LABELS.get(v, v)}" for v in s])
    ax.set_ylim(len(s) - 0.5, -0.5)
    ax.set_xlabel("test accuracy (%): one dot per seed with its 95% Wilson interval; black bar: mean")
    return finish_figure(fig, "ablation: " + ablation_label(result), name)


def ablation_label(result: dict) -> str:
    """What the ablation trained on, for how many steps, on which device."""
    setup = result.get("ablation_setup", {})
    steps = -(-setup.get("train_size", 0) // RECIPES["sound"]["protocol"]["batch_size"]) * setup.get("epochs", 0)
    m = setup.get("meta", {})
    return (f"{setup.get('epochs')} epochs ({steps} steps) on {setup.get('train_size', 0):,} {result['dataset']} "
            f"training images, tested on {setup.get('test_size', 0):,}; {m.get('CPU') or m.get('device')}, "
            f"{m.get('threads')} threads, torch {m.get('torch')}, {m.get('date')}")


def format_gpu(folder=None) -> str:
    """The saved GPU timings of both recipes (results/06_gpu_recipe_*.json): seconds per epoch, plain vs fast."""
    from ...results import load_result

    lines = []
    for rname in RECIPES:
        saved = load_result(f"06_gpu_recipe_{rname}", expect=("paths", "meta"))
        if saved is None:
            continue
        m = saved["meta"]
        if not lines:
            lines.append(f"saved results 06_gpu_recipe_*.json: {m['device_name']}, torch {m['torch']}, {m['date']}; "
                         f"{m['dataset']} ({m['n_train']:,} images an epoch), {saved['protocol']['epochs']} epochs, seed 0")
        rows = {path: block["runs"][0] for path, block in saved["paths"].items() if block["runs"]}
        per_epoch = {p: statistics.median(r["epoch_seconds"][1:]) for p, r in rows.items()}
        text = "; ".join(f"{p} {per_epoch[p]:.1f} s/epoch" + (f" after {r['compile_warmup_s']:.0f} s of compiling"
                                                             if p == "fast" else "") for p, r in rows.items())
        if {"plain", "fast"} <= set(per_epoch):
            text += (f" -> fast is {per_epoch['plain'] / per_epoch['fast']:.1f}x plain per epoch; whole "
                     f"{saved['protocol']['epochs']}-epoch run: plain {rows['plain']['seconds']:.1f} s, fast "
                     f"{rows['fast']['seconds']:.1f} s")
        lines.append(f"  {rname:5s} recipe: {text}")
    if lines:
        lines.append("  plain: fp32, TF32 off; fast: AMP, channels_last, torch.compile (CUDA graphs), TF32 on; "
                     "their separate shares not measured")
    return "\n".join(lines) or "no saved GPU result: GPU times are not yet measured"
