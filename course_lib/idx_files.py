"""MNIST's file format, IDX: read one file, checked, or an image file and its label file as tensors.

An IDX file is a big-endian header (magic number ``0x0803`` for images, ``0x0801`` for labels, then one
32-bit size per dimension) followed by the raw uint8 values. Every check here names the file and the fix,
so a truncated download or a swapped pair of files never turns into a confusing tensor error later.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from .errors import DataError
from .locations import display_path

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801


def read_idx(path: Path | str, expect_magic: int | None = None, expect_count: int | None = None) -> np.ndarray:
    """Read and check one IDX file (plain or .gz). Returns a uint8 array.

    Raises :class:`DataError` naming the file and the fix on a bad gzip stream, a
    wrong magic number, a wrong item count or a size that does not match the header.
    """
    path = Path(path)
    fix = "delete this file and run `python -m course_lib data` again, or use dataset='sample'"
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"{display_path(path)} is not a readable gzip/IDX file ({err}). Fix: {fix}.") from None
    if len(raw) < 8:
        raise DataError(f"{display_path(path)} is truncated ({len(raw)} bytes, no IDX header). Fix: {fix}.")
    magic = struct.unpack(">I", raw[:4])[0]
    if (magic & 0xFFFFFF00) != 0x00000800 or magic & 0xFF not in (1, 3):
        raise DataError(f"{display_path(path)} has wrong magic number 0x{magic:08x}: not an IDX byte file. Fix: {fix}.")
    if expect_magic is not None and magic != expect_magic:
        raise DataError(
            f"{display_path(path)} has magic number 0x{magic:08x}, expected 0x{expect_magic:08x} "
            f"(images and labels swapped, or a foreign file). Fix: {fix}."
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{display_path(path)} is truncated inside its header. Fix: {fix}.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if ndim == 3 and dims[1:] != (28, 28):
        raise DataError(f"{display_path(path)} holds {dims[1]}x{dims[2]} images, expected 28x28. Fix: {fix}.")
    if expect_count is not None and dims[0] != expect_count:
        raise DataError(f"{display_path(path)} says it holds {dims[0]} items, expected {expect_count}. Fix: {fix}.")
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(
            f"{display_path(path)} holds {len(raw) - header} bytes of data but its header promises {expected} "
            f"(truncated or padded download). Fix: {fix}."
        )
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    if ndim == 1 and arr.size and arr.max() > 9:
        raise DataError(f"{display_path(path)} has label {int(arr.max())}; digit labels are 0..9. Fix: {fix}.")
    return arr


def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``N x 28 x 28`` images and ``N`` labels as ``N x 1 x 28 x 28`` float32 in [0, 1] and int64."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).float().div_(255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def load_idx_pair(images: Path | str, labels: Path | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one IDX image file and its label file (gzipped or not), checked, as tensors.

    For digits kept aside in MNIST's format (``python -m course_lib evaluate --images ... --labels ...``).
    Returns ``x``: ``N x 1 x 28 x 28`` float32 in [0, 1] and ``y``: ``N`` int64. A wrong magic number,
    a truncated file or a label count that differs from the image count raises :class:`DataError`.
    """
    x = read_idx(images, IMAGES_MAGIC)
    y = read_idx(labels, LABELS_MAGIC, expect_count=len(x))
    if x.shape[1:] != (28, 28):
        raise DataError(f"{display_path(Path(images))} holds {x.shape[1]}x{x.shape[2]} images; the course's models "
                        f"take 28x28 digits. Fix: resize them to 28x28 first.")
    if y.size and int(y.max()) > 9:
        raise DataError(f"{display_path(Path(labels))} holds label {int(y.max())}; the models have 10 classes (0-9).")
    return to_tensors(x, y)
