"""The course's command line: values are checked before work starts; a fixable error is one message, exit 2."""
from __future__ import annotations

import argparse
import math
import sys

from .errors import ConfigError, CourseError


def number(kind: type, low: float, high: float | None = None, hint: str = ""):
    """An argparse ``type``: a finite ``kind`` from ``low`` to ``high`` (None: no limit), else refused with ``hint``."""
    what = "whole number" if kind is int else "number"
    fmt = (lambda v: f"{v:,}") if kind is int else (lambda v: f"{v:g}")
    span = f"from {fmt(low)} to {fmt(high)}" if high is not None else f"of at least {fmt(low)}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: give a {what} {span}"
                                             + (f" ({hint})" if hint else ""))
        return value

    parse.__name__ = what  # argparse names the type in some messages
    parse.kind, parse.low, parse.high = kind, low, high  # for the tests that try every argument
    return parse


EPOCHS = number(int, 1, 1000, "the blog's protocol: 30")
SEED = number(int, 0, 2**31 - 1, "any whole number; runs with the same seed repeat exactly")
SEEDS = number(int, 1, 100, "the number of seeds; at least 3 to call a difference real")
BATCH = number(int, 1, 65536, "the blog's protocol: 64")
LR = number(float, 1e-7, 10.0, "the blog's protocol: 0.1")
LIMIT = number(int, 1, None, "how many images to use")
STEPS = number(int, 1, 1_000_000, "timed training steps")


def _names(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _write_json(result: dict, out: str | None) -> None:
    if out:
        from .locations import display_path
        from .results import write_json

        print(f"wrote {display_path(write_json(out, result))}")


def _check_out_file(out: str | None) -> None:
    if out:
        from .locations import file_target

        file_target(out, "--out file")


def cmd_info(args) -> int:
    import torch
    import torchvision

    from .data import data_source_report
    from .locations import data_root, display_path, figures_dir
    from .devices import pick_device
    from .profiles import get_profile

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
    from .data import dataset_name, load_data
    from .locations import ensure_folder
    from .models import build_model, count_params
    from .devices import pick_device
    from .results import write_json
    from .training import Protocol, SpeedOptions, fit, seed_everything

    device = pick_device(args.device, verbose=False)
    dataset_name(args.dataset)
    seed_everything(args.seed)
    model = build_model(args.model)  # an unknown name fails before the data is loaded
    out = ensure_folder(args.out, "--out folder")
    data = load_data(args.dataset, root=args.root, train_limit=args.train_limit, test_limit=args.test_limit)
    print(f"data: {data.info}")
    print(f"model: {args.model}, {count_params(model):,} parameters")
    protocol = Protocol(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    history = fit(model, data, protocol, SpeedOptions(device=device, amp=args.amp), checkpoint=out / "checkpoint.pt",
                  resume=out / "checkpoint.pt" if args.resume else None, progress=not args.quiet)
    write_json(out / "history.json", history.as_dict())
    for r in history.records:
        print(f"epoch {r['epoch']:3d}  loss {r['train_loss']:.4f}  test acc {r['test_acc']:.2%}  "
              f"{r['seconds']:.1f}s  {r['images_per_s']:.0f} img/s")
    print(f"wrote {out / 'history.json'} and {out / 'checkpoint.pt'} ({history.status})")
    return 0 if history.status == "completed" else 1


def cmd_degradation(args) -> int:
    from .lessons.degradation import print_catch_up, print_summary, print_trained_gradients, print_verdict, run_sweep
    from .profiles import get_profile

    _check_out_file(args.out)
    result = run_sweep(get_profile(args.profile), seeds=args.seeds)
    print_summary(result)
    print_verdict(result)
    print_catch_up(result)
    print_trained_gradients(result)
    _write_json(result, args.out)
    return 0


def cmd_compare(args) -> int:
    from .data import dataset_name
    from .lessons.cnn_vs_resnet.protocol import COMPARED, compared_models, run_compare
    from .locations import ensure_folder
    from .profiles import get_profile

    _check_out_file(args.out)
    profile = get_profile(args.profile)
    if args.dataset:
        dataset_name(args.dataset)
    names = _names(args.models) if args.models else None
    if names == []:
        raise ConfigError(f"--models {args.models!r} names no model. Fix: e.g. --models {','.join(COMPARED)}")
    models = compared_models(names)
    if args.checkpoints:  # created only once every name above is known to be good
        ensure_folder(args.checkpoints, "--checkpoints folder")
    result = run_compare(profile, dataset=args.dataset, seeds=args.seeds, device=args.device,
                         epochs=args.epochs, limits=(args.train_limit, args.test_limit),
                         checkpoint_dir=args.checkpoints, models=models)
    _write_json(result, args.out)
    if args.checkpoints:
        print(f"trained weights in {args.checkpoints}/MODEL_seedS.pt "
              f"(python -m course_lib evaluate --checkpoint FILE --images IDX --labels IDX tests one)")
    return 0


def cmd_evaluate(args) -> int:
    from .data import load_data
    from .idx_files import load_idx_pair
    from .checkpoints import load_checkpoint
    from .devices import pick_device
    from .training import evaluate

    _check_out_file(args.out)
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

    _check_out_file(args.out)
    result = run_bench(args.model, steps=args.steps, device=args.device, batch_size=args.batch_size,
                       dataset=args.dataset, threads=args.threads, compile=args.compile)
    _write_json(result, args.out)
    return 0


def cmd_gpu_protocol(args) -> int:
    from .lessons.speed.gpu_protocol import COMPILE_CHOICES, GpuProtocol, run_gpu_protocol

    _check_out_file(args.out)
    config = GpuProtocol(dataset=args.dataset, device=args.device, epochs=args.epochs, seeds=tuple(range(args.seeds)),
                         paths=tuple(_names(args.paths)), models=tuple(_names(args.models)),
                         train_limit=args.train_limit, test_limit=args.test_limit,
                         compile=COMPILE_CHOICES[args.compile], recipe=args.recipe)
    result = run_gpu_protocol(config, out=args.out)
    return 0 if result["complete"] else 1


def cmd_recipe(args) -> int:
    import tempfile

    from .data import load_data
    from .devices import pick_device
    from .lessons.speed import recipe as rc
    from .results import load_result, result_path, write_json

    _check_out_file(args.out)
    data = load_data(args.dataset, train_limit=args.train_limit, test_limit=args.test_limit, verbose=False)
    if args.job:  # one run, for --parallel
        run = rc.run_job(args.job, data.to(pick_device(args.device, verbose=False)), args.epochs,
                         args.ablation_epochs, args.device)
        write_json(args.out or f"{args.job.replace(':', '_')}.json", dict(job=args.job, run=run))
        print(f"[recipe] {args.job}: {100 * run['test_acc']:.2f}% after {len(run['curve']['test_acc'])} epochs, "
              f"{run['seconds']} s", flush=True)
        return 0
    if args.check:
        saved = load_result(args.out or rc.RESULT, expect=("runs", "meta"))
        if saved is None:
            raise ConfigError(f"no saved result at {args.out or result_path(rc.RESULT + '.json')}; make it first")
        print(rc.check_rerun(saved, args.seed, args.check_epochs, args.device, data))
        return 0
    if args.into:  # the ablation added to a saved result (e.g. one made on a GPU): its own data and device
        saved = load_result(args.into, expect=("runs", "meta"))
        if saved is None:
            raise ConfigError(f"--into {args.into}: no saved result there. Fix: make it first, without --into")
        saved = rc.add_ablation(saved, data, args.ablation_epochs, args.seeds, args.device,
                                "python -m course_lib " + " ".join(sys.argv[1:]))
        write_json(args.into, saved)
        print(rc.format_ablation(saved))
        return 0
    argv = sys.argv[1:]
    command = "python -m course_lib " + " ".join(a for i, a in enumerate(argv) if "--out" not in argv[max(0, i - 1):i + 1])
    if args.parallel:
        passed = ["--dataset", args.dataset, "--epochs", str(args.epochs), "--ablation-epochs",
                  str(args.ablation_epochs), "--device", args.device]
        for flag, value in (("--train-limit", args.train_limit), ("--test-limit", args.test_limit)):
            passed += [flag, str(value)] if value else []
        files = rc.run_parallel(rc.all_jobs(args.seeds, not args.no_ablation), args.parallel, passed,
                                tempfile.mkdtemp(prefix="recipe-jobs-"), args.deadline)
        result = rc.merge_jobs(files, data, args.device, command, note=f"{args.parallel} runs at a time shared the "
                               f"device: each run's seconds are wall-clock time under that sharing")
    else:
        result = rc.run_study(data, args.epochs, args.ablation_epochs, args.seeds, args.device, command,
                              not args.no_ablation)
    write_json(args.out or result_path(rc.RESULT + ".json"), result)
    print(rc.format_summary(result))
    print(rc.format_ablation(result))
    return 0


def cmd_busy(args) -> int:
    from .lessons.speed import busy

    if args.child:  # one of the study's training processes, started by busy.run_scenario
        busy.run_child(args.threads, args.seconds, args.start_at)
    else:
        print(busy.format_busy(busy.busy_machine_study(args.seconds)))
    return 0


def _add_training(sub) -> None:
    """The commands that load data, train and test models."""
    from .lessons.cnn_vs_resnet.protocol import COMPARED
    from .models import BLOG_MODELS, MODEL_NAMES  # the one registry of model names

    p = sub.add_parser("data", help="download or verify a dataset in the data root (for offline classrooms)")
    p.add_argument("--dataset", required=True, choices=["mnist", "fashion"])
    p.add_argument("--root", help="data root (default: $COURSE_DATA_ROOT or data/ at the repo root)")
    p.set_defaults(fn=cmd_data)

    p = sub.add_parser("train", help="train one model; writes OUT/history.json and OUT/checkpoint.pt")
    p.add_argument("--model", required=True, help=", ".join(MODEL_NAMES))
    p.add_argument("--dataset", default="mnist", help="mnist, fashion or sample")
    p.add_argument("--epochs", type=EPOCHS, default=30)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--batch-size", type=BATCH, default=64)
    p.add_argument("--lr", type=LR, default=0.1)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true", help="mixed precision (GPU)")
    p.add_argument("--train-limit", type=LIMIT, help="train on a seeded subset of this many images")
    p.add_argument("--test-limit", type=LIMIT, help="test on a seeded subset of this many images")
    p.add_argument("--root", help="data root")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("degradation", help="the depth sweep of notebook 01: plain vs residual nets, two budgets")
    p.add_argument("--profile", help="smoke, cpu or full (default: $COURSE_PROFILE)")
    p.add_argument("--seeds", type=SEEDS, help="number of seeds (default: the profile's)")
    p.add_argument("--out", help="JSON file to write")
    p.set_defaults(fn=cmd_degradation)

    p = sub.add_parser("compare", help=f"the blog's experiment of notebook 04: {', '.join(COMPARED)}")
    p.add_argument("--profile", help="smoke, cpu or full (default: $COURSE_PROFILE)")
    p.add_argument("--dataset", help="mnist, fashion or sample (default: the profile's)")
    p.add_argument("--seeds", type=SEEDS, help="number of seeds (default: the profile's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=EPOCHS, help="epochs (default: the profile's; full = the blog's 30)")
    p.add_argument("--train-limit", type=LIMIT, help="train on a seeded subset of this many images")
    p.add_argument("--test-limit", type=LIMIT, help="test on a seeded subset of this many images")
    p.add_argument("--models", help=f"comma-separated, of {', '.join(BLOG_MODELS)} (default: {','.join(COMPARED)})")
    p.add_argument("--checkpoints", help="folder to keep each run's trained weights in (MODEL_seedS.pt)")
    p.add_argument("--out", help="JSON file to write")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("evaluate", help="test accuracy of a saved checkpoint on a dataset's test split")
    p.add_argument("--checkpoint", required=True, help="a .pt file written by train, compare --checkpoints or fit")
    p.add_argument("--dataset", default="mnist", help="mnist, fashion or sample (mnist never falls back to the sample)")
    p.add_argument("--root", help="data root holding the dataset's IDX files (torchvision's layout)")
    p.add_argument("--test-limit", type=LIMIT, help="test on a seeded subset of this many images")
    p.add_argument("--images", help="instead of --dataset: an IDX image file (e.g. digits kept aside)")
    p.add_argument("--labels", help="with --images: its IDX label file")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="JSON file to write")
    p.set_defaults(fn=cmd_evaluate)


def _add_speed(sub) -> None:
    """Notebook 06's measurements."""
    p = sub.add_parser("bench", help="images/s of the blog's data pipeline vs the course's, side by side")
    p.add_argument("--model", default="blog-resnet", help="a model name, as for train --model")
    p.add_argument("--steps", type=STEPS, default=150)
    p.add_argument("--batch-size", type=BATCH, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--dataset", default="sample", choices=["sample", "fashion", "mnist"],
                   help="images to time on (default: the offline sample); timing does not depend on which")
    p.add_argument("--threads", type=number(int, 1, 4096, "PyTorch threads"),
                   help="PyTorch threads (default: $COURSE_THREADS, else the free cores)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="time torch.compile variants too (default: on CUDA only)")
    p.add_argument("--out", help="JSON file to write")
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("gpu-protocol", help="the blog's full protocol timed: the fast path vs plain fp32, seeds")
    p.add_argument("--dataset", required=True, choices=["fashion", "mnist", "sample"])
    p.add_argument("--device", default="cuda", help="cuda (default; fails at once without a GPU), cuda:N or cpu")
    p.add_argument("--epochs", type=EPOCHS, default=30)
    p.add_argument("--seeds", type=SEEDS, default=2, help="number of seeds: 0, 1, ... N-1 (default 2)")
    p.add_argument("--paths", default="fast,plain", help="comma-separated: fast, plain")
    p.add_argument("--models", default="blog-cnn,blog-resnet", help="comma-separated build_model names")
    p.add_argument("--compile", default="auto", choices=["auto", "off", "on", "reduce-overhead"],
                   help="the fast path's torch.compile (auto: the fast settings' own choice)")
    p.add_argument("--train-limit", type=LIMIT, help="train on a seeded subset of this many images")
    p.add_argument("--test-limit", type=LIMIT, help="test on a seeded subset of this many images")
    p.add_argument("--recipe", choices=["blog", "sound"], help="notebook 06's recipe instead of the blog's protocol")
    p.add_argument("--out", help="JSON file, rewritten after every model")
    p.set_defaults(fn=cmd_gpu_protocol)

    p = sub.add_parser("recipe", help="notebook 06: ResNet-20, the blog's recipe vs a sound one, and an ablation")
    p.add_argument("--dataset", default="fashion", choices=["fashion", "mnist", "sample"])
    p.add_argument("--epochs", type=EPOCHS, default=30, help="epochs of both recipes (default 30, the blog's)")
    p.add_argument("--ablation-epochs", type=EPOCHS, default=8, help="epochs of each ablation run (default 8)")
    p.add_argument("--seeds", type=SEEDS, default=3)
    p.add_argument("--no-ablation", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--parallel", type=number(int, 1, 64, "runs at a time"), help="runs at a time, each a process")
    p.add_argument("--deadline", type=number(float, 1, None, "seconds"), help="with --parallel: stop after this long")
    p.add_argument("--into", help="run only the ablation and add it to this saved result")
    p.add_argument("--job", help=argparse.SUPPRESS)
    p.add_argument("--check", action="store_true", help="rerun one seed's first epochs against the saved curve")
    p.add_argument("--seed", type=SEED, default=0, help="with --check: the seed to rerun")
    p.add_argument("--check-epochs", type=EPOCHS, default=2, help="with --check: epochs to rerun (default 2)")
    p.add_argument("--train-limit", type=LIMIT, help="train on a seeded subset of this many images")
    p.add_argument("--test-limit", type=LIMIT, help="test on a seeded subset of this many images")
    p.add_argument("--out", help="JSON file (default: results/06_recipe_fashion.json, in the cpu profile)")
    p.set_defaults(fn=cmd_recipe)

    p = sub.add_parser("busy", help="one and two training processes side by side; saves 06_busy_machine.json and says where")
    p.add_argument("--seconds", type=number(float, 0.1, 600, "seconds each scenario trains; the saved study: 20"),
                   default=20.0)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=number(int, 1, 4096, "PyTorch threads"), default=1, help=argparse.SUPPRESS)
    p.add_argument("--start-at", type=number(float, 0, None, "a time.time()"), default=0.0, help=argparse.SUPPRESS)
    p.set_defaults(fn=cmd_busy)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand, each value checked by its type."""
    parser = argparse.ArgumentParser(prog="python -m course_lib", description="The ResNet course's command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, device, profile and the data source of each dataset").set_defaults(fn=cmd_info)
    _add_training(sub)
    _add_speed(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a disk that is full or read-only, a file that vanished: say so, without a traceback
        where = f" ({err.filename})" if err.filename else ""
        print(f"error: {err.strerror or err}{where}. Fix: check that path and that there is room to write.",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
