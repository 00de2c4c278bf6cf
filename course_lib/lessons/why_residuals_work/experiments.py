"""Notebook 05's experiments, sized by the run profile, on twins: a plain and a residual net with the same depth,
layers and initial weights (only the skips differ). Results are plain dicts, saved as ``results/05_*.json``."""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ...checkpoints import load_checkpoint, save_checkpoint
from ...data import Data
from ...devices import pick_device
from .landscape import loss_surface, lowest_point, random_direction, rise_by_distance, summarise_surface
from .lesion import (gradient_by_path_length, lesion_accuracy, mean_by_block, n_blocks, random_block_sets,
                     random_deletions, single_deletions)
from ...models import plain_net, residual_net
from ...locations import display_path, result_path, results_dir
from ...errors import ConfigError
from ...profiles import Profile, get_profile, settings
from ...results import make_meta
from ...stats import accuracy_interval
from ...training import Protocol, SpeedOptions, fit, seed_everything

# depth: the twins; paths_depth: the residual net whose 2^n paths are enumerated; bn_images: images to recompute
# BatchNorm statistics on after a lesion; direction_pairs: the landscape's pairs (seeds 1-2, 3-4, ...).
SETTINGS = {
    "smoke": dict(depth=8, paths_depth=8, width=16, epochs=2, batch_size=128, lr=0.1, momentum=0.9, seed=0,
                  draws=3, bn_images=250, random_bn=True, path_images=64,
                  landscape_images=250, slice_points=11, grid=5, direction_pairs=2),
    "cpu": dict(depth=20, paths_depth=20, width=16, epochs=6, batch_size=128, lr=0.1, momentum=0.9, seed=0,
                draws=8, bn_images=500, random_bn=True, path_images=128,
                landscape_images=500, slice_points=41, grid=21, direction_pairs=3),
    "full": dict(depth=56, paths_depth=20, width=16, epochs=15, batch_size=128, lr=0.1, momentum=0.9, seed=0,
                 draws=20, bn_images=5000, random_bn=True, path_images=256,
                 landscape_images=10000, slice_points=101, grid=51, direction_pairs=2),
}


def trained_net(kind: str, depth: int, data: Data, profile: Profile | str | None = None, device="auto",
                retrain: bool = False, verbose: bool = True) -> nn.Module:
    """A ``plain`` or ``residual`` net of ``depth`` trained with the profile's settings (or loaded from its
    checkpoint ``results/05_{kind}-{depth}_{profile}.pt`` unless ``retrain``), in eval mode, with ``.history``."""
    if kind not in ("plain", "residual"):
        raise ConfigError(f"kind must be 'plain' or 'residual', got {kind!r}")
    prof, s = get_profile(profile), settings(SETTINGS, profile)
    name = f"05_{kind}-{depth}_{prof.name}.pt"
    path = result_path(name)  # read committed checkpoints in any profile; write only where this profile writes
    dev = pick_device(device, verbose=False)
    if path.is_file() and not retrain:
        model = load_checkpoint(path, dev)
        if verbose:
            last = model.history.final if model.history else {}
            print(f"[course_lib] loaded {display_path(path)}: {kind}-{depth}, "
                  f"test accuracy {last.get('test_acc', float('nan')):.1%} after {len(model.history or [])} epochs")
        return model
    seed_everything(s["seed"])  # the same seed for both twins: the same initial weights
    build = plain_net if kind == "plain" else residual_net
    model = build(depth, width=s["width"])
    protocol = Protocol(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], momentum=s["momentum"],
                        seed=s["seed"], recompute_bn=True)
    history = fit(model, data, protocol, SpeedOptions(device=dev), progress=verbose)
    save_checkpoint(results_dir() / name, model, history)
    model.history = history
    return model.eval()


def trained_pair(data: Data, profile: Profile | str | None = None, device="auto", retrain: bool = False,
                 verbose: bool = True, depth: int | None = None) -> dict[str, nn.Module]:
    """``{"plain": net, "residual": net}``: the twins of the profile's ``depth``, trained or loaded."""
    depth = depth or settings(SETTINGS, profile)["depth"]
    return {kind: trained_net(kind, depth, data, profile, device, retrain, verbose) for kind in ("plain", "residual")}


def training_sample(data: Data, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random sample of ``n`` training images and labels (``n x 1 x 28 x 28``, ``n``); not ``train_x[:n]``,
    which gives a few digits only from a split stored sorted by class."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data.train_y), generator=g)[:n].to(data.train_y.device)
    return data.train_x[idx], data.train_y[idx]


def twin_summary(models: dict[str, nn.Module], n_test: int, last_epochs: int = 3) -> str:
    """Two lines per trained twin: its final training loss and test accuracy (95% Wilson interval on ``n_test``
    images), then both over the ``last_epochs`` epochs. One seed each: a description, not a comparison."""
    lines = []
    for kind, model in models.items():
        h = getattr(model, "history", None)
        if not h:
            lines.append(f"{kind:8s} no training history attached")
            continue
        last = h.final
        low, high = accuracy_interval(last["test_acc"], n_test)
        lines.append(f"{kind:8s} after {len(h)} epochs: mean training loss in the last epoch {last['train_loss']:.3f}, "
                     f"test accuracy {last['test_acc']:.1%} (95% interval {low:.1%} to {high:.1%}, {n_test:,} images)")
        tail = h.records[-last_epochs:]
        lines.append(f"{'':8s} last {len(tail)} epochs: training loss "
                     + " -> ".join(f"{r['train_loss']:.3f}" for r in tail) + ", test accuracy "
                     + " -> ".join(f"{r['test_acc']:.1%}" for r in tail))
    return "\n".join(lines)


def figure_title(source, profile: Profile | str | None = None, device: str | None = None) -> str:
    """The data, device and profile of a DataInfo or a result's ``meta``, e.g. "MNIST sample, 4,000 train / 1,000
    test; device cpu; profile cpu"; ``profile`` and ``device`` where the source does not say."""
    meta = source.get("meta", {}) if isinstance(source, dict) else {}
    info = source.get("meta", source) if isinstance(source, dict) else source.as_dict()
    dataset, where = info.get("dataset"), str(info.get("source", ""))
    name = {"mnist": "MNIST", "fashion": "Fashion-MNIST", "sample": "MNIST"}.get(dataset, str(dataset))
    name += " sample" if "sample" in where or dataset == "sample" else f" ({where})"
    device = device or meta.get("device_name") or meta.get("device")
    prof = meta.get("profile") or (get_profile(profile).name if profile is not None else None)
    parts = [f"{name}, {info.get('n_train', 0):,} train / {info.get('n_test', 0):,} test"]
    return "; ".join(parts + ([f"device {device}"] if device else []) + ([f"profile {prof}"] if prof else []))


def run_lesion_study(models: dict[str, nn.Module], data: Data, profile: Profile | str | None = None,
                     device="auto") -> dict:
    """Test accuracy of both nets with each block deleted alone, then k random blocks (``draws`` subsets per k),
    with the stored BatchNorm statistics (as Veit et al.) and recomputed on ``bn_images`` training images."""
    prof, s = get_profile(profile), settings(SETTINGS, profile)
    dev = pick_device(device, verbose=False)
    start = time.perf_counter()
    on_dev = data.to(dev)
    x, y = on_dev.test_x, on_dev.test_y
    bn_x, _ = training_sample(on_dev, s["bn_images"], s["seed"])
    n = n_blocks(next(iter(models.values())))
    block_sets = random_block_sets(n, s["draws"], seed=s["seed"])
    result: dict = {}
    for kind, model in models.items():
        model.to(dev).eval()
        result[kind] = dict(
            intact=lesion_accuracy(model, x, y),
            intact_bn=lesion_accuracy(model, x, y, (), bn_x),
            single=single_deletions(model, x, y),
            single_bn=single_deletions(model, x, y, bn_x),
            random=random_deletions(model, x, y, block_sets),
            random_bn=random_deletions(model, x, y, block_sets, bn_x) if s["random_bn"] else None,
        )
    result.update(block_sets=block_sets, config=s, n_blocks=n, seconds=time.perf_counter() - start,
                  meta=make_meta(data.info, dev, prof, experiment="lesion study", depth=s["depth"]))
    return result


def run_paths(model: nn.Module, data: Data, profile: Profile | str | None = None, device="auto") -> dict:
    """:func:`.lesion.gradient_by_path_length` of a trained residual net on ``path_images`` training images."""
    prof, s = get_profile(profile), settings(SETTINGS, profile)
    dev = pick_device(device, verbose=False)
    start = time.perf_counter()
    model.to(dev)
    x, y = (t.to(dev) for t in training_sample(data, s["path_images"], s["seed"]))
    result = gradient_by_path_length(model, x, y)
    result.update(seconds=time.perf_counter() - start,
                  meta=make_meta(data.info, dev, prof, experiment="gradient by path length",
                                 depth=getattr(model, "depth", None)))
    return result


def run_landscape(models: dict[str, nn.Module], data: Data, profile: Profile | str | None = None,
                  device="auto", progress: bool = True) -> dict:
    """1-D and 2-D loss slices around each net along ``direction_pairs`` pairs of filter-normalised random
    directions (seeds 1-2, 3-4, ...), the same draws for both nets, on ``landscape_images`` training images."""
    prof, s = get_profile(profile), settings(SETTINGS, profile)
    dev = pick_device(device, verbose=False)
    start = time.perf_counter()
    x, y = (t.to(dev) for t in training_sample(data, s["landscape_images"], s["seed"]))
    seeds = [[s["seed"] + 2 * i + 1, s["seed"] + 2 * i + 2] for i in range(s["direction_pairs"])]
    result: dict = {}
    for kind, model in models.items():
        model.to(dev).eval()
        pairs = []
        for seed1, seed2 in seeds:
            d1, d2 = random_direction(model, seed=seed1), random_direction(model, seed=seed2)
            one_d = loss_surface(model, x, y, [d1], np.linspace(-1, 1, s["slice_points"]), progress=progress)
            two_d = loss_surface(model, x, y, [d1, d2], np.linspace(-1, 1, s["grid"]), progress=progress)
            pairs.append(dict(seeds=[seed1, seed2], slice=one_d, surface=two_d, summary=summarise_surface(two_d)))
        result[kind] = dict(pairs=pairs)
    result.update(direction_seeds=seeds, config=s, seconds=time.perf_counter() - start,
                  meta=make_meta(data.info, dev, prof, experiment="loss landscape", depth=s["depth"],
                                 images=len(y)))
    return result


NEAR = (0.1, 0.2, 0.3)  # distances from theta (in units of the filter-normalised directions) that describe the basin


def landscape_table(result: dict, near: tuple[float, ...] = NEAR) -> str:
    """:func:`run_landscape`'s result, one row per net and pair of directions: the loss at theta, its mean rise at
    the distances ``near``, the highest loss, the shares below ln 10 and within 1 nat, the minima inside the grid."""
    rise_head = "rise at " + "/".join(f"{r:g}" for r in rise_by_distance(result["plain"]["pairs"][0]["surface"], near))
    lines = [f"{'net':9s} {'dir. seeds':>10s} {'loss at θ':>9s} {rise_head:>16s} {'highest':>8s} {'< ln 10':>8s} "
             f"{'< θ + 1':>8s}  minima inside the grid"]
    for kind in ("plain", "residual"):
        for pair in result[kind]["pairs"]:
            sm = pair["summary"]
            rises = "/".join(f"{v:.2f}".replace("0.", ".", 1) if v < 1 else f"{v:.1f}"
                             for v in rise_by_distance(pair["surface"], near).values())
            minima = ", ".join("θ" if a == 0 and b == 0 else f"(a={a:.1f}, b={b:.1f}: {loss:.3g})"
                               for a, b, loss in sm["interior_minima"]) or "none"
            lines.append(f"{kind:9s} {'%d,%d' % tuple(pair['seeds']):>10s} {sm['centre_loss']:>9.3f} "
                         f"{rises:>16s} {sm['max_loss']:>8.1f} {sm['below_chance']:>8.1%} {sm['within_1']:>8.1%}  "
                         f"{minima}")
    return "\n".join(lines)


def _span(values: list, among: list | None = None) -> str:
    """``[0.1, 0.2, 0.3]`` -> "0.1 to 0.3" when consecutive in ``among``, else "0.1, 0.3"."""
    values = sorted(values)
    among = sorted(among) if among is not None else values
    if len(values) == 1:
        return f"{values[0]:g}"
    if among.index(values[-1]) - among.index(values[0]) == len(values) - 1:
        return f"{values[0]:g} to {values[-1]:g}"
    return ", ".join(f"{v:g}" for v in values)


def landscape_comparison(result: dict) -> str:
    """Per pair of directions, at which distances the residual net's loss rises less than the plain net's, and
    the 1-D slices' highest losses; in how many pairs each ordering holds; per net, how many slices go below theta."""
    lines, held = [], np.zeros(4, int)
    for plain, res in zip(result["plain"]["pairs"], result["residual"]["pairs"]):
        p_rise, r_rise = rise_by_distance(plain["surface"]), rise_by_distance(res["surface"])
        lower = [r for r in p_rise if r_rise[r] < p_rise[r]]
        higher = [r for r in p_rise if r_rise[r] >= p_rise[r]]
        where = (f"residual rise lower at distance {_span(lower, list(p_rise))}" if lower
                 else "residual rise never lower")
        where += f", higher at {_span(higher, list(p_rise))}" if higher else ", never higher"
        p1, r1 = max(plain["slice"]["loss"]), max(res["slice"]["loss"])
        lines.append(f"direction seeds {plain['seeds'][0]},{plain['seeds'][1]}: {where}; "
                     f"1-D slice highest loss: plain {p1:.1f}, residual {r1:.1f}")
        ps, rs = plain["summary"], res["summary"]
        held += [r_rise[min(p_rise)] < p_rise[min(p_rise)], rs["max_loss"] > ps["max_loss"], r1 > p1,
                 rs["below_chance"] > ps["below_chance"]]
    lines.append(f"residual net, in how many of the {len(lines)} pairs: lower rise at {min(p_rise):.2g} {held[0]}, higher "
                 f"2-D highest loss {held[1]}, higher 1-D highest loss {held[2]}, larger share below ln 10 {held[3]}")
    for kind in ("plain", "residual"):
        pairs = result[kind]["pairs"]
        for key, label in (("surface", "2-D"), ("slice", "1-D")):
            low = [lowest_point(p[key]) for p in pairs]
            off = [lp for lp in low if lp["steps"] > 0]
            detail = (f", {_span(sorted({lp['steps'] for lp in off}))} grid step(s) away, "
                      f"at most {max(lp['drop'] for lp in off):.3f} below loss(θ) = {pairs[0]['summary']['centre_loss']:.3f}"
                      if off else "")
            lines.append(f"{kind:8s} {label} slices whose lowest grid point is not θ: {len(off)} of {len(low)}{detail}")
    return "\n".join(lines)


def random_deletion_table(result: dict, kept_block: int | None = None) -> str:
    """For each k, both nets' mean test accuracy over the random draws (also with BatchNorm recomputed, when
    measured); with ``kept_block``, the residual net's mean over the draws that keep that block."""
    rnd = {kind: {int(k): v for k, v in result[kind]["random"].items()} for kind in ("plain", "residual")}
    with_bn = all(result[kind].get("random_bn") for kind in ("plain", "residual"))
    bn = ({kind: {int(k): v for k, v in result[kind]["random_bn"].items()} for kind in ("plain", "residual")}
          if with_bn else {})
    split = (mean_by_block(result["block_sets"], result["residual"]["random"], kept_block)
             if kept_block is not None else None)
    head = f"{'':3} {'stored BN statistics':^40}" + (f" {'BN recomputed':^19}" if with_bn else "")
    cols = f"{'k':>3} {'plain':>9} {'residual':>9}" + (f" {f'res., block {kept_block} kept':>20}" if split else "")
    cols += f" {'plain':>9} {'residual':>9}" if with_bn else ""
    lines = [head, cols]
    for k in sorted(rnd["plain"]):
        line = f"{k:>3} {np.mean(rnd['plain'][k]):>9.1%} {np.mean(rnd['residual'][k]):>9.1%}"
        if split is not None:
            kept = split[k][1]
            sets = {int(j): v for j, v in result["block_sets"].items()}[k]
            n_kept = sum(kept_block not in blocks for blocks in sets)
            line += (f" {f'{kept:.1%} ({n_kept} of {len(sets)})':>20}" if kept is not None
                     else f" {'(always deleted)':>20}")
        if with_bn:
            line += f" {np.mean(bn['plain'][k]):>9.1%} {np.mean(bn['residual'][k]):>9.1%}"
        lines.append(line)
    return "\n".join(lines)


def lesion_summary(result: dict, close: float = 0.02) -> str:
    """Per net: intact accuracy, and with one block deleted the mean, worst, best and how many stay within
    ``close`` of intact, with stored and recomputed BatchNorm statistics; then the residual net against Veit et al."""
    lines, held = [], {}
    for kind in ("plain", "residual"):
        lines.append(f"{kind} net")
        for key, base, label in (("single", "intact", "stored BN statistics"), ("single_bn", "intact_bn", "BN recomputed")):
            if result[kind].get(key):
                single, intact = np.array(result[kind][key]), result[kind][base]
                held[kind, key] = f"{int((single >= intact - close).sum())} of {len(single)}"
                lines.append(f"  {label:20s} intact {intact:.1%} | one block deleted: mean {single.mean():.1%}, "
                             f"worst {single.min():.1%} (block {int(single.argmin())}), best {single.max():.1%}, "
                             f"{held[kind, key]} within {close * 100:.0f} points of intact")
    return "\n".join(lines + [f"Veit et al.'s test, residual net: {held['residual', 'single']} single deletions hold "
                               f"with the stored statistics (Veit et al. report no re-estimation), "
                               f"{held.get(('residual', 'single_bn'), 'not measured')} with recomputed ones"])


def paths_net(models: dict[str, nn.Module], data: Data, profile: Profile | str | None = None, device="auto",
              retrain: bool = False, verbose: bool = True) -> nn.Module:
    """The residual net whose paths are enumerated: the twin when ``paths_depth == depth``, else one of ``paths_depth``."""
    s = settings(SETTINGS, profile)
    if s["paths_depth"] == s["depth"]:
        return models["residual"]
    return trained_net("residual", s["paths_depth"], data, profile, device, retrain, verbose)
