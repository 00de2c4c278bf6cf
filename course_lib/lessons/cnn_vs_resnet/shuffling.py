"""The blog's missing shuffle, measured (notebook 04): its ``DataLoader(train_set, batch_size=64)`` leaves
``shuffle=False``, so every epoch cuts the same batches from the stored order."""
from __future__ import annotations

import math
import statistics
from dataclasses import replace

import torch

from .claims import measured_on
from .protocol import BLOG_PROTOCOL, blog_protocol
from ...data import Data
from ...devices import pick_device
from ...errors import ConfigError
from ...models import build_model
from ...profiles import Profile, get_profile
from ...results import make_meta
from ...training import SpeedOptions, fit, seed_everything


def order_report(labels: torch.Tensor, batch_size: int = 64) -> dict:
    """How sorted the order of ``labels`` (N,) is: ``first_labels`` (20), ``mean_run`` (of equal consecutive labels:
    about 1.1 when random, N/10 when sorted), ``single_class_batches`` (their share) and ``classes_per_batch``."""
    y = labels.cpu()
    changes = int((y[1:] != y[:-1]).sum())
    counts = [len(torch.unique(y[i:i + batch_size])) for i in range(0, len(y), batch_size)]
    return {"first_labels": y[:20].tolist(), "mean_run": len(y) / (changes + 1),
            "single_class_batches": sum(c == 1 for c in counts) / max(len(counts), 1),
            "classes_per_batch": statistics.fmean(counts) if counts else 0.0}


def reorder(data: Data, order: str, seed: int = 0) -> Data:
    """``data`` with its training split in a fixed ``order``: ``random`` (one seeded permutation) or ``sorted`` (by
    label, stable), which ``fit`` with ``Protocol(shuffle=False)`` then sees every epoch."""
    if order == "random":
        idx = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))
    elif order == "sorted":
        idx = torch.sort(data.train_y.cpu(), stable=True).indices
    else:
        raise ConfigError(f"unknown order {order!r}; valid: 'random', 'sorted'")
    idx = idx.to(data.train_y.device)
    return replace(data, train_x=data.train_x[idx], train_y=data.train_y[idx])


# name -> (order of the training split, reshuffle every epoch?)
SHUFFLE_CONDITIONS = {
    "shuffled every epoch (course default)": ("random", True),
    "fixed unsorted order, never shuffled (the blog on MNIST's files)": ("random", False),
    "sorted by label, never shuffled": ("sorted", False),
}


def shuffle_experiment(data: Data, epochs: int, model: str = "blog-resnet", seed: int = 0,
                       device: str | torch.device = "auto", profile: Profile | str | None = None,
                       verbose: bool = True) -> dict:
    """Train ``model`` under each of :data:`SHUFFLE_CONDITIONS` with the blog's protocol: ``{model, conditions: [{name,
    order, shuffle, order_report, history, predicted_counts}], meta}``, counts of test images per predicted class."""
    dev = pick_device(device, verbose=False)
    out = []
    for name, (order, shuffle) in SHUFFLE_CONDITIONS.items():
        ordered = reorder(data, order, seed)
        seed_everything(seed)
        net = build_model(model)
        history = fit(net, ordered, blog_protocol(epochs, seed, shuffle=shuffle), SpeedOptions(device=dev),
                      progress=False)
        with torch.no_grad():
            net.eval()
            preds = torch.cat([net(ordered.test_x[i:i + 1000].to(dev)).argmax(1).cpu()
                               for i in range(0, len(ordered.test_y), 1000)])
        counts = torch.bincount(preds, minlength=10).tolist()
        records = [{k: r[k] for k in ("epoch", "train_loss", "test_acc", "seconds")} for r in history.records]
        out.append({"name": name, "order": order, "shuffle": shuffle, "order_report": order_report(ordered.train_y),
                    "history": records, "predicted_counts": counts})
        if verbose and records:
            print(f"[shuffle] {name}: epoch {records[-1]['epoch']} loss {records[-1]['train_loss']:.4f}, "
                  f"test acc {records[-1]['test_acc']:.2%}")
    meta = make_meta(data.info, dev, get_profile(profile), epochs=epochs, seed=seed)
    return {"model": model, "conditions": out, "meta": meta}


def format_shuffle(result: dict) -> str:
    """The shuffle experiment as text: order statistics, final loss/accuracy, what the model predicts."""
    epochs = result["meta"]["epochs"]
    steps = epochs * math.ceil((result["meta"].get("n_train") or 0) / BLOG_PROTOCOL["batch_size"])
    lines = [f"{result['model']}, {epochs} epoch{'s' * (epochs != 1)} ({steps:,} SGD steps), seed "
             f"{result['meta']['seed']}; measured on: {measured_on(result)}"]
    for c in result["conditions"]:
        rep, last = c["order_report"], c["history"][-1]
        top = max(range(10), key=lambda k: c["predicted_counts"][k])
        share = c["predicted_counts"][top] / max(sum(c["predicted_counts"]), 1)
        lines.append(f"{c['name']}\n   order: mean run of equal labels {rep['mean_run']:.1f}, "
                     f"{rep['single_class_batches']:.0%} of batches hold one class | final loss "
                     f"{last['train_loss']:.4f}, test acc {last['test_acc']:.2%} | {share:.0%} of test images "
                     f"predicted as {top}")
    return "\n".join(lines)


_STYLES = ("-", "--", ":")  # the conditions differ by colour, line and hatch
_HATCHES = ("", "//", "..")


def plot_shuffle(result: dict, name: str | None = "04_shuffle"):
    """Test accuracy per epoch for each shuffle condition, and what each trained model predicts."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from ...plots import COLORS, color_for, finish_figure

    colors = (color_for(result["model"]), COLORS["other"], COLORS["neutral"])  # one colour per order
    fig, (ax_acc, ax_pred) = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / max(len(result["conditions"]), 1)
    for i, c in enumerate(result["conditions"]):
        ax_acc.plot([r["epoch"] for r in c["history"]], [100 * r["test_acc"] for r in c["history"]],
                    marker="o", color=colors[i % 3], ls=_STYLES[i % 3], label=c["name"])
        ax_pred.bar([k + (i - 1) * width for k in range(10)], c["predicted_counts"], width=width, label=c["name"],
                    color=colors[i % 3], alpha=0.6, hatch=_HATCHES[i % 3], edgecolor="black", lw=0.5)
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 100), title=f"{result['model']}: test accuracy")
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_pred.set(xlabel="predicted class", ylabel="test images", xticks=range(10),
                title="what the trained model predicts")
    for ax in (ax_acc, ax_pred):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, handlelength=3.5)  # colour, line style and hatch: each panel says which is which
    fig.suptitle(f"{result['model']}, seed {result['meta']['seed']}: {measured_on(result)}", fontsize=8)
    return finish_figure(fig, name=name)
