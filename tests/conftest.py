"""Shared test fixtures: small IDX datasets written by the tests themselves, no network."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

import course_lib.data as data_mod
from course_lib.data import load_data
from course_lib.locations import FIGURES_ENV

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (magic 0x0801 for 1-D, 0x0803 for 3-D)."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx_dataset(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = False, seed: int = 0) -> dict:
    """Write the four IDX files of a tiny digit dataset into ``folder``; return the arrays written."""
    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        arrays[split] = (images, labels)
        for name, arr in zip(FILES[split], (images, labels)):
            blob = idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(blob))
            else:
                (folder / name).write_bytes(blob)
    return arrays


@pytest.fixture(scope="session")
def _test_figures(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("figures")


@pytest.fixture(autouse=True)
def _figures_stay_out_of_the_repo(monkeypatch, _test_figures):
    """A figure a test saves goes to a temporary folder, never over the committed ``figures/``
    (a test that wants another folder sets ``COURSE_FIGURES_DIR`` itself)."""
    monkeypatch.setenv(FIGURES_ENV, str(_test_figures))


@pytest.fixture(autouse=True)
def _fresh_data_state(monkeypatch):
    """Each test starts with no remembered download failures or announcements."""
    monkeypatch.setattr(data_mod, "_announced", set())
    monkeypatch.setattr(data_mod, "_download_failed", {})
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)


@pytest.fixture
def no_network(monkeypatch):
    """Simulate a blocked network: torchvision's download raises at once; record the calls."""
    calls = []

    def fail(dataset, root):
        calls.append((dataset, root))
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: network is unreachable")

    monkeypatch.setattr(data_mod, "_download", fail)
    return calls


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    """Pretend Debian's Fashion-MNIST package is not installed."""
    monkeypatch.setattr(data_mod, "DEBIAN_FASHION", tmp_path / "no-debian-fashion")


@pytest.fixture(scope="session")
def tiny():
    """256 train / 128 test real digits from the offline sample (a seeded, unsorted subset)."""
    return load_data("sample").subset(256, 128, seed=1)


@pytest.fixture(scope="session")
def compare_checkpoints(tmp_path_factory):
    """Where :func:`compare_result` keeps its trained weights (``MODEL_seedS.pt``)."""
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="session")
def compare_result(tiny, compare_checkpoints):
    """One small run_compare result (blog-cnn and blog-resnet, seeds 0 and 1, 2 epochs on ``tiny``), trained once."""
    from course_lib.lessons.cnn_vs_resnet.protocol import run_compare

    return run_compare("smoke", data=tiny, seeds=[0, 1], epochs=2, models=["blog-cnn", "blog-resnet"],
                       device="cpu", verbose=False, checkpoint_dir=compare_checkpoints)
