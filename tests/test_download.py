"""data.download: the tarball is fetched, its md5 checked, and the batches unpacked.

The official URL is replaced by a file:// URL of a tarball built here (no network)."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mcepl_dist.data import cifar10
from mcepl_dist.errors import DataError


def _fake_batch(label_offset: int) -> bytes:
    labels = [(i + label_offset) % 10 for i in range(cifar10.ROWS_PER_FILE)]
    data = np.zeros((cifar10.ROWS_PER_FILE, cifar10.PIXELS), dtype=np.uint8)
    return pickle.dumps({b"labels": labels, b"data": data}, protocol=2)


def _tarball(path: Path) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name in (*cifar10.TRAIN_FILES, cifar10.TEST_FILE):
            blob = _fake_batch(0)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_checks_md5_and_unpacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = tmp_path / "cifar.tar.gz"
    md5 = _tarball(tarball)
    monkeypatch.setattr(cifar10, "URL", tarball.as_uri())
    monkeypatch.setattr(cifar10, "TARBALL_MD5", md5)
    root = tmp_path / "data" / "cifar-10-batches-py"

    cifar10.check_present(root, download=True)

    assert sorted(p.name for p in root.iterdir()) == sorted((*cifar10.TRAIN_FILES,
                                                             cifar10.TEST_FILE))
    split = cifar10.load_split(root, train=False)
    assert split.images.shape == (10_000, 3, 32, 32)


def test_download_rejects_wrong_md5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = tmp_path / "cifar.tar.gz"
    _tarball(tarball)
    monkeypatch.setattr(cifar10, "URL", tarball.as_uri())
    monkeypatch.setattr(cifar10, "TARBALL_MD5", "0" * 32)
    root = tmp_path / "data" / "cifar-10-batches-py"

    with pytest.raises(DataError, match="md5"):
        cifar10.check_present(root, download=True)
    assert not any(root.iterdir())


def test_missing_data_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Put the python batches"):
        cifar10.check_present(tmp_path / "nowhere", download=False)
