"""The blog's full protocol on one GPU with the course's fast path, timed; for a GPU session (issue 7).

30 epochs, batch 64, SGD lr 0.1, BlogCNN then BlogResNet, 60k training images (Fashion-MNIST stands in
for MNIST where MNIST cannot be downloaded: same shapes and sizes). Prints the wall time of the whole
protocol (compile warm-up and the per-epoch evaluation on 10k test images included) and each model's
final test accuracy; `--paths fast,plain` also runs the plain fp32 path (no AMP, no channels_last, no compile) for
the accuracy comparison. Goal (issue 7): fast path < 60 s on one H100, at the plain path's accuracy.

    python -m course_lib.lessons.speed.gpu_protocol --dataset fashion --paths fast,plain --out gpu_protocol.json [--epochs 30]

Not yet run on a GPU (issue 7): prepared for the first session that is lent one.
"""
import argparse
import json
import time

import torch

from course_lib import build_model, fit, load_data, pick_device, seed_everything
from course_lib.lessons.speed.bench import BLOG_FIT_KWARGS, fast_fit_kwargs


def run(data, dev, kwargs, epochs, seed):
    out, t0 = {}, time.perf_counter()
    for name in ("blog-cnn", "blog-resnet"):
        seed_everything(seed)
        model = build_model(name)
        t = time.perf_counter()
        h = fit(model, data, epochs=epochs, batch_size=64, lr=0.1, seed=seed, device=dev, progress=False, **kwargs)
        out[name] = dict(status=h.status, seconds=round(time.perf_counter() - t, 1), test_acc=h.test_acc,
                         train_loss=h.train_loss, epoch_seconds=[round(r["seconds"], 2) for r in h.records])
        print(f"  {name}: {out[name]['seconds']} s, final test acc {h.test_acc[-1]:.4f} ({h.status})", flush=True)
    out["total_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="fashion")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--train-limit", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paths", default="fast", help="comma list of fast,plain")
    ap.add_argument("--out")
    a = ap.parse_args()
    dev = pick_device(a.device)
    data = load_data(a.dataset, train_limit=a.train_limit)
    result = dict(device=str(dev), gpu=torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
                  torch=torch.__version__, data=str(data.info), epochs=a.epochs, seed=a.seed)
    table = {"fast": fast_fit_kwargs(dev), "plain": BLOG_FIT_KWARGS}
    for label in a.paths.split(","):
        kwargs = table[label]
        print(f"{label} path {kwargs} on {dev}, {data.info}:", flush=True)
        result[label] = dict(settings=kwargs, **run(data, dev, kwargs, a.epochs, a.seed))
        print(f"{label}: whole protocol {result[label]['total_seconds']} s", flush=True)
        if a.out:
            with open(a.out, "w") as f:
                json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
