"""CIFAR-10 from the standard python batches: locate, optionally download, load, validate.

The batches are pickles (the dataset's own format); they are read with an unpickler that
only admits the numpy array reconstructors, so a tampered file cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcepl_dist.errors import DataError

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
ROWS_PER_FILE = 10_000
PIXELS = 3 * 32 * 32
NUM_CLASSES = 10
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
TARBALL_MD5 = "c58f30108f718f92721af3b95e74349a"

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2; harmless
}


@dataclass(frozen=True)
class Split:
    """Images as uint8 (N, 3, 32, 32) and labels as int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR batch format: numpy arrays and plain containers only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            if module == "numpy.core.multiarray" and hasattr(np, "_core"):
                module = "numpy._core.multiarray"  # numpy 2 moved it; avoid the warning
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (data uint8 (10000, 3072), labels int64), structure validated."""
    try:
        raw = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"CIFAR-10 batch file missing: {path}") from None
    except Exception as exc:  # truncated or foreign file: any unpickling failure
        raise DataError(f"CIFAR-10 batch file {path} is unreadable or truncated "
                        f"({type(exc).__name__})") from None
    if not isinstance(raw, dict) or b"data" not in raw or b"labels" not in raw:
        raise DataError(f"{path} is not a CIFAR-10 python batch (no data/labels)")
    data, labels = raw[b"data"], np.asarray(raw[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape != (
        ROWS_PER_FILE, PIXELS
    ):
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: data must be uint8 of shape ({ROWS_PER_FILE}, {PIXELS}), "
                        f"got {getattr(data, 'dtype', type(data))} {shape}")
    if labels.shape != (ROWS_PER_FILE,) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{path}: labels must be {ROWS_PER_FILE} ints in 0..9")
    return data, labels.astype(np.int64)


def _read_files(root: Path, names: tuple[str, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    parts = [_read_batch(root / n) for n in names]
    return [d for d, _ in parts], np.concatenate([lab for _, lab in parts])


def _check_counts(root: Path, train: bool, labels: np.ndarray) -> None:
    expected = (5000 if train else 1000)
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    if not np.all(counts == expected):
        raise DataError(f"{root}: expected {expected} images per class in the "
                        f"{'training' if train else 'test'} split, got {counts.tolist()}")


def load_labels(root: Path, train: bool) -> np.ndarray:
    """The validated labels of a split (the batch files are read and checked whole)."""
    labels = _read_files(root, TRAIN_FILES if train else (TEST_FILE,))[1]
    _check_counts(root, train, labels)
    return labels


def load_split(root: Path, train: bool,
               select: Callable[[np.ndarray], np.ndarray] | None = None) -> Split:
    """Load and validate the train or test split.

    `select` maps the split's labels to the row indices to keep (default: all); only those
    rows are copied out of the batch files, which keeps a rank's start-up memory small.
    """
    datas, labels = _read_files(root, TRAIN_FILES if train else (TEST_FILE,))
    _check_counts(root, train, labels)
    rows = np.arange(len(labels)) if select is None else np.sort(select(labels))
    file_of = rows // ROWS_PER_FILE
    images = np.concatenate([datas[f][rows[file_of == f] % ROWS_PER_FILE]
                             for f in range(len(datas))])
    return Split(images=images.reshape(-1, 3, 32, 32), labels=labels[rows])


def check_present(root: Path, download: bool) -> None:
    """Fail with where-to-put-it advice if files are missing; download them if allowed."""
    missing = [n for n in (*TRAIN_FILES, TEST_FILE) if not (root / n).is_file()]
    if not missing:
        return
    if not download:
        raise DataError(f"CIFAR-10 not found: {root / missing[0]} is missing. Put the python "
                        f"batches (data_batch_1..5, test_batch) in {root}, or set data.root / "
                        f"$MCEPL_DATA, or set data.download: true")
    download_cifar10(root)


def download_cifar10(root: Path) -> None:
    """Fetch the official tarball, verify its md5, and unpack the batches into `root`."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
        tarball = Path(tmp) / "cifar-10-python.tar.gz"
        try:
            with urllib.request.urlopen(URL, timeout=60) as resp, tarball.open("wb") as out:
                shutil.copyfileobj(resp, out)
        except OSError as exc:
            raise DataError(f"downloading {URL} failed: {exc}") from None
        digest = hashlib.md5(tarball.read_bytes()).hexdigest()
        if digest != TARBALL_MD5:
            raise DataError(f"downloaded tarball md5 {digest} != official {TARBALL_MD5}")
        with tarfile.open(tarball) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and name in (*TRAIN_FILES, TEST_FILE, "batches.meta"):
                    src = tar.extractfile(member)
                    assert src is not None
                    (root / name).write_bytes(src.read())
