"""Why the blog's pipeline is slow: its per-image work (uint8 -> PIL -> ``ToTensor`` -> collate), stage by stage,
next to the course's batch slicing and the model's own training step, in microseconds per image."""
from __future__ import annotations

import time
from typing import Callable

import torch

from ...data import Data, PILDigits
from ...errors import ConfigError
from ...models import build_model
from ...timing import time_training_steps
from ...training import seed_everything


def _per_image(fn: Callable[[], object], images: int) -> float:
    """Microseconds per image of ``fn()``, which handles ``images`` images."""
    start = time.perf_counter()
    fn()
    return 1e6 * (time.perf_counter() - start) / images


def data_work_per_image(data: Data, images: int = 2048, batch_size: int = 64, model: str = "blog-resnet",
                        steps: int = 10) -> list[dict]:
    """Microseconds per training image of each stage of the blog's pipeline, of the course's, and of one fp32
    training step of ``model``, on ``data``'s first ``images`` images. Returns ``[{stage, pipeline, us_per_image}]``."""
    from torch.utils.data import default_collate

    images = min(images, len(data.train_y))
    if images < batch_size:
        raise ConfigError(f"data_work_per_image needs at least one batch of {batch_size} images, got {images}. "
                          f"Fix: pass more data or a smaller batch_size.")
    x, y = data.train_x[:images], data.train_y[:images]
    ds = PILDigits(x, y)
    to_tensor = ds.transform
    from PIL import Image

    pil = [Image.fromarray(a, mode="L") for a in ds.images]  # made once, for the ToTensor row
    tensors = [(to_tensor(p), label) for p, label in zip(pil, ds.labels)]
    batches = [tensors[i:i + batch_size] for i in range(0, images, batch_size)]
    order = torch.randperm(images, generator=torch.Generator().manual_seed(0))

    def slices():
        for i in range(0, images, batch_size):
            idx = order[i:i + batch_size]
            x[idx], y[idx]

    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True)  # the blog's DataLoader
    seed_everything(0)
    net = build_model(model)
    step = time_training_steps(net, (x[:batch_size], y[:batch_size]), steps, warmup=1, device="cpu")
    stages = [("blog", "uint8 array -> PIL image", lambda: [Image.fromarray(a, mode="L") for a in ds.images]),
              ("blog", "PIL image -> float tensor (ToTensor)", lambda: [to_tensor(p) for p in pil]),
              ("blog", f"collate {batch_size} tensors into a batch", lambda: [default_collate(b) for b in batches]),
              ("blog", "the whole DataLoader (all of the above, per image)", lambda: list(loader)),
              ("course", "slice a shuffled batch from one tensor in memory", slices)]
    rows = [dict(stage=stage, pipeline=pipeline, us_per_image=_per_image(fn, images)) for pipeline, stage, fn in stages]
    return rows + [dict(stage=f"one training step of {model} (fp32), per image", pipeline="model",
                        us_per_image=1e6 / step.images_per_s)]


def format_data_work(rows: list[dict]) -> str:
    """:func:`data_work_per_image` as a table, each row also as a share of the blog's step (DataLoader + model)."""
    loader = next(r["us_per_image"] for r in rows if r["stage"].startswith("the whole DataLoader"))
    model = next(r["us_per_image"] for r in rows if r["pipeline"] == "model")
    lines = [f"{'per training image':<58}{'µs':>8}{'share of a blog step':>22}"]
    for r in rows:
        share = r["us_per_image"] / (loader + model)
        lines.append(f"{r['pipeline'] + ': ' + r['stage']:<58}{r['us_per_image']:>8.1f}{share:>21.0%}")
    return "\n".join(lines)
