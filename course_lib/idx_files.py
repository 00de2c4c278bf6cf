"""MNIST's file format, IDX, read and checked, so that a truncated download or a swapped pair of files is
refused with its path and the fix instead of turning into a confusing tensor error later."""
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
_FIX = "delete this file and run `python -m course_lib data` again, or use dataset='sample'"


def read_idx(path: Path | str, expect_magic: int | None = None) -> np.ndarray:
    """The uint8 array in one IDX file, plain or .gz: a big-endian header (magic ``0x0803`` images, ``0x0801``
    labels, one 32-bit size per dimension), then the values. Anything wrong raises a DataError naming the file."""
    path = Path(path)
    where = display_path(path)
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"{where} is not a readable gzip/IDX file ({err}). Fix: {_FIX}.") from None
    if len(raw) < 8:
        raise DataError(f"{where} is truncated ({len(raw)} bytes, no IDX header). Fix: {_FIX}.")
    magic = struct.unpack(">I", raw[:4])[0]
    if (magic & 0xFFFFFF00) != 0x00000800 or magic & 0xFF not in (1, 3):
        raise DataError(f"{where} has wrong magic number 0x{magic:08x}: not an IDX byte file. Fix: {_FIX}.")
    if expect_magic is not None and magic != expect_magic:
        raise DataError(f"{where} has magic number 0x{magic:08x}, expected 0x{expect_magic:08x} "
                        f"(images and labels swapped, or a foreign file). Fix: {_FIX}.")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{where} is truncated inside its header. Fix: {_FIX}.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if ndim == 3 and dims[1:] != (28, 28):
        raise DataError(f"{where} holds {dims[1]}x{dims[2]} images; the course's models take 28x28 digits. "
                        f"Fix: {_FIX}, or resize them to 28x28.")
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(f"{where} holds {len(raw) - header} bytes of data but its header promises {expected} "
                        f"(truncated or padded download). Fix: {_FIX}.")
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    if ndim == 1 and arr.size and arr.max() > 9:
        raise DataError(f"{where} has label {int(arr.max())}; digit labels are 0..9. Fix: {_FIX}.")
    return arr


def read_idx_pair(images: Path | str, labels: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """An image file (``N x 28 x 28``) and its label file (``N``), checked to belong together."""
    x, y = read_idx(images, IMAGES_MAGIC), read_idx(labels, LABELS_MAGIC)
    if len(y) != len(x):
        raise DataError(f"{display_path(Path(labels))} says it holds {len(y)} items, expected {len(x)}: "
                        f"{display_path(Path(images))} holds {len(x)} images, so the two files do not belong "
                        f"together. Fix: {_FIX}.")
    return x, y


def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``N x 28 x 28`` images and ``N`` labels as ``N x 1 x 28 x 28`` float32 in [0, 1] and int64."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).float().div_(255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def load_idx_pair(images: Path | str, labels: Path | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits kept aside in MNIST's format (``evaluate --images --labels``) as tensors, checked."""
    return to_tensors(*read_idx_pair(images, labels))
