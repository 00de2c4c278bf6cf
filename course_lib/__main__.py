"""The course's command line: ``python -m course_lib COMMAND``.

Thin on purpose: every command calls a ``course_lib`` function and writes what it
returns. Errors the user can fix are printed as one message and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import CourseError


def _write_json(result: dict, out: str | None) -> None:
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, default=float))
        print(f"wrote {path}")


def cmd_info(args) -> int:
    import torch
    import torchvision

    from .data import data_source_report
    from .locations import data_root, display_path, figures_dir
    from .profiles import get_profile
    from .training import pick_device

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    print(f"device (auto): {pick_device('auto', verbose=False)}"
          f" | CUDA available: {torch.cuda.is_available()}")
    print(f"profile: {get_profile()}")
    print(f"data root: {display_path(data_root())} | figures: {display_path(figures_dir())}")
    for name, where in data_source_report().items():
        print(f"  {name}: {where}")
    return 0


def cmd_data(args) -> int:
    from .data import load_data

    data = load_data(args.dataset, root=args.root, fallback=False)
    print(f"OK: {data.info}")
    return 0


def cmd_train(args) -> int:
    from .data import load_data
    from .models import build_model, count_params
    from .training import fit, history_to_json, seed_everything

    data = load_data(args.dataset, root=args.root, train_limit=args.train_limit, test_limit=args.test_limit)
    print(f"data: {data.info}")
    seed_everything(args.seed)
    model = build_model(args.model)
    print(f"model: {args.model}, {count_params(model):,} parameters")
    out = Path(args.out)
    history = fit(model, data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                  device=args.device, amp=args.amp, checkpoint=out / "checkpoint.pt",
                  resume=out / "checkpoint.pt" if args.resume else None, progress=not args.quiet)
    history_to_json(history, out / "history.json")
    for r in history.records:
        print(f"epoch {r['epoch']:3d}  loss {r['train_loss']:.4f}  test acc {r['test_acc']:.2%}  "
              f"{r['seconds']:.1f}s  {r['images_per_s']:.0f} img/s")
    print(f"wrote {out / 'history.json'} and {out / 'checkpoint.pt'} ({history.status})")
    return 0 if history.status == "completed" else 1


def cmd_degradation(args) -> int:
    from .lessons.degradation import run_sweep
    from .profiles import get_profile

    result = run_sweep(get_profile(args.profile), seeds=args.seeds)
    _write_json(result, args.out)
    return 0


def cmd_compare(args) -> int:
    from .lessons.cnn_vs_resnet.protocol import MODELS, run_compare
    from .profiles import get_profile

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else list(MODELS)
    result = run_compare(get_profile(args.profile), dataset=args.dataset, seeds=args.seeds, device=args.device,
                         epochs=args.epochs, train_limit=args.train_limit, test_limit=args.test_limit,
                         checkpoint_dir=args.checkpoints, models=models)
    _write_json(result, args.out)
    if args.checkpoints:
        print(f"trained weights in {args.checkpoints}/MODEL_seedS.pt "
              f"(python -m course_lib evaluate --checkpoint FILE --images IDX --labels IDX tests one)")
    return 0


def cmd_evaluate(args) -> int:
    from .data import load_data, load_idx_pair
    from .errors import ConfigError
    from .training import evaluate, load_checkpoint, pick_device

    device = pick_device(args.device, verbose=False)
    if bool(args.images) != bool(args.labels):
        raise ConfigError("--images and --labels go together: an IDX image file and its label file")
    model = load_checkpoint(args.checkpoint, device=device)
    if args.images:
        x, y = load_idx_pair(args.images, args.labels)
        dataset, source = "IDX files", f"{args.images} + {args.labels}"
    else:
        data = load_data(args.dataset, root=args.root, test_limit=args.test_limit, fallback=False)
        x, y, dataset, source = data.test_x, data.test_y, data.info.dataset, data.info.source
    acc = evaluate(model, x, y)
    n = len(y)
    print(f"{model.spec['name']} from {args.checkpoint}: test accuracy {acc:.2%} "
          f"({round(acc * n):,} of {n:,} images of {dataset}, {source}; device {device})")
    _write_json({"checkpoint": str(args.checkpoint), "model": model.spec["name"], "dataset": dataset,
                 "source": source, "n_test": n, "test_acc": acc, "device": str(device)}, args.out)
    return 0


def cmd_bench(args) -> int:
    from .lessons.speed.bench import run_bench

    result = run_bench(args.model, steps=args.steps, device=args.device, batch_size=args.batch_size)
    _write_json(result, args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_lib", description="The ResNet course's command line.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("info", help="versions, device, profile and the data source of each dataset").set_defaults(fn=cmd_info)

    p = sub.add_parser("data", help="download or verify a dataset in the data root (for offline classrooms)")
    p.add_argument("--dataset", required=True, choices=["mnist", "fashion"])
    p.add_argument("--root", help="data root (default: $COURSE_DATA_ROOT or data/ at the repo root)")
    p.set_defaults(fn=cmd_data)

    p = sub.add_parser("train", help="train one model; writes OUT/history.json and OUT/checkpoint.pt")
    p.add_argument("--model", required=True, help="blog-resnet, blog-cnn, blog-plain, plain-N, residual-N, resnet18..resnet152")
    p.add_argument("--dataset", default="mnist", help="mnist, fashion or sample")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true", help="mixed precision (GPU)")
    p.add_argument("--train-limit", type=int, help="train on a seeded subset of this many images")
    p.add_argument("--test-limit", type=int)
    p.add_argument("--root", help="data root")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("degradation", help="the depth sweep of notebook 01: plain vs residual nets")
    p.add_argument("--profile", help="smoke, cpu or full (default: $COURSE_PROFILE)")
    p.add_argument("--seeds", type=int, help="number of seeds (default: the profile's)")
    p.add_argument("--out", help="JSON file to write")
    p.set_defaults(fn=cmd_degradation)

    p = sub.add_parser("compare", help="the blog's experiment of notebook 04: BlogCNN, BlogPlain, BlogResNet")
    p.add_argument("--profile", help="smoke, cpu or full (default: $COURSE_PROFILE)")
    p.add_argument("--dataset", help="mnist, fashion or sample (default: the profile's)")
    p.add_argument("--seeds", type=int, help="number of seeds (default: the profile's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, help="epochs (default: the profile's; full = the blog's 30)")
    p.add_argument("--train-limit", type=int, help="train on a seeded subset of this many images")
    p.add_argument("--test-limit", type=int, help="test on a seeded subset of this many images")
    p.add_argument("--models", help="comma-separated, default 'BlogCNN,BlogPlain,BlogResNet'; the init variants "
                                    "are 'BlogCNN (PyTorch init)' and 'BlogPlain (He init)'")
    p.add_argument("--checkpoints", help="folder to keep each run's trained weights in (MODEL_seedS.pt)")
    p.add_argument("--out", help="JSON file to write")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("evaluate", help="test accuracy of a saved checkpoint on a dataset's test split")
    p.add_argument("--checkpoint", required=True, help="a .pt file written by train, compare --checkpoints or fit")
    p.add_argument("--dataset", default="mnist", help="mnist, fashion or sample (mnist never falls back to the sample)")
    p.add_argument("--root", help="data root holding the dataset's IDX files (torchvision's layout)")
    p.add_argument("--test-limit", type=int, help="test on a seeded subset of this many images")
    p.add_argument("--images", help="instead of --dataset: an IDX image file (e.g. digits kept aside)")
    p.add_argument("--labels", help="with --images: its IDX label file")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="JSON file to write")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("bench", help="images/s of the blog's data pipeline vs the course's, side by side")
    p.add_argument("--model", default="blog-resnet")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="JSON file to write")
    p.set_defaults(fn=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
