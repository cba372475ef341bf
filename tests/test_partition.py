"""Label-skew partitioning, the per-agent data plumbing, the sampler and the CIFAR-10 reader."""

from __future__ import annotations

import dataclasses
import os
import pickle
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from mcepl_dist.config import Config, DataConfig, packaged_file
from mcepl_dist.data import Sampler, cifar10, label_table, load_agent_data
from mcepl_dist.data.partition import (
    holders,
    load_label_table,
    random_label_table,
    train_indices,
    validate_label_table,
)
from mcepl_dist.data.partition import test_indices as select_test_indices
from mcepl_dist.data.synthetic import synthetic_labels
from mcepl_dist.errors import ConfigError, DataError

CIFAR_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-batches-py"


def _table(c: int) -> list[list[int]]:
    return load_label_table(packaged_file("label_tables.yaml"), 20, c)


# --------------------------------------------------------------------------------------
# the shipped label table


def test_shipped_table_first_rows() -> None:
    assert _table(4)[0] == [6, 9, 4, 1]
    assert _table(3)[19] == [7, 6, 4]
    assert _table(5)[0] == [9, 8, 0, 7, 1]
    for c in (3, 4, 5):
        table = _table(c)
        assert len(table) == 20
        assert all(len(row) == c == len(set(row)) for row in table)


@pytest.mark.parametrize("c", [3, 4, 5])
def test_train_partition_disjoint_covering_balanced(c: int) -> None:
    per_class = 500
    labels = synthetic_labels(per_class)
    table = _table(c)
    parts = [train_indices(labels, table, a) for a in range(20)]

    # pairwise disjoint
    for a, b in combinations(range(20), 2):
        assert np.intersect1d(parts[a], parts[b]).size == 0, (a, b)
    # sorted, and each agent only has its own labels
    for a, idx in enumerate(parts):
        assert np.all(np.diff(idx) > 0)
        assert set(np.unique(labels[idx]).tolist()) == set(table[a])
    # each label's images are covered exactly by its holders, shares differ by <= 1
    for label in range(10):
        owners = [a for a in range(20) if label in table[a]]
        assert holders(table, label) == owners
        shares = [np.flatnonzero(labels[parts[a]] == label).size for a in owners]
        if not owners:
            continue
        assert sum(shares) == per_class
        assert max(shares) - min(shares) <= 1
        covered = np.concatenate([parts[a][labels[parts[a]] == label] for a in owners])
        np.testing.assert_array_equal(np.sort(covered), np.flatnonzero(labels == label))


def test_train_partition_hand_example() -> None:
    # 7 images of label 0 (indices 0..6) shared by agents 0, 1, 2 -> 3, 2, 2 in order
    labels = np.array([0] * 7 + [1] * 4)
    table = [[0, 1], [0], [0]]
    np.testing.assert_array_equal(train_indices(labels, table, 0), [0, 1, 2, 7, 8, 9, 10])
    np.testing.assert_array_equal(train_indices(labels, table, 1), [3, 4])
    np.testing.assert_array_equal(train_indices(labels, table, 2), [5, 6])


def test_train_fraction_takes_first_fraction_of_each_share() -> None:
    labels = synthetic_labels(500)
    table = _table(4)
    agent = 0
    full = train_indices(labels, table, agent)
    part = train_indices(labels, table, agent, fraction=0.2)
    for label in table[agent]:
        share = full[labels[full] == label]
        sub = part[labels[part] == label]
        n = int(round(len(share) * 0.2))
        np.testing.assert_array_equal(sub, share[:n])
    # hand check for label 6 of agent 0: its holders under c = 4
    owners = holders(table, 6)
    assert owners == [0, 1, 2, 4, 6, 8, 9, 11, 12, 16, 18]
    share6 = np.array_split(np.arange(6 * 500, 7 * 500), 11)[0]
    assert share6.size == 46
    np.testing.assert_array_equal(part[labels[part] == 6], share6[:9])  # round(9.2) = 9


def test_agent_with_no_images_raises() -> None:
    labels = np.array([0, 0, 1])
    with pytest.raises(DataError):
        train_indices(labels, [[2]], 0)


def test_test_indices_all_images_of_the_labels() -> None:
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
    np.testing.assert_array_equal(select_test_indices(labels, [1, 3]), [0, 1, 3, 9])
    te = synthetic_labels(100)
    idx = select_test_indices(te, [6, 9, 4, 1])
    assert idx.size == 400
    assert set(te[idx].tolist()) == {1, 4, 6, 9}
    assert all((te[idx] == lab).sum() == 100 for lab in (1, 4, 6, 9))


def test_random_label_table_seeded_and_distinct() -> None:
    a = random_label_table(20, 4, seed=1)
    b = random_label_table(20, 4, seed=1)
    c = random_label_table(20, 4, seed=2)
    assert a == b
    assert a != c
    assert len(a) == 20
    for row in a:
        assert len(row) == 4 == len(set(row))
        assert row == sorted(row)
        assert all(0 <= v < 10 and type(v) is int for v in row)
    assert validate_label_table(a, 20, 4, "random") == a


# --------------------------------------------------------------------------------------
# validation


def test_validate_wrong_row_count() -> None:
    with pytest.raises(ConfigError, match="3 rows, need 4"):
        validate_label_table([[0], [1], [2]], 4, 1, "t")
    with pytest.raises(ConfigError, match="rows"):
        validate_label_table({"a": 1}, 1, 1, "t")


@pytest.mark.parametrize(
    "row", [[0, 10], [-1, 2], [3, 3], [1], [1, 2, 3], ["1", 2], [1.0, 2], None]
)
def test_validate_bad_row(row: object) -> None:
    with pytest.raises(ConfigError, match="row 1"):
        validate_label_table([[0, 1], row], 2, 2, "t")


def test_validate_rejects_booleans_as_labels() -> None:
    # YAML `[true, 2]` is not a label row; config.py rejects bools for ints the same way
    with pytest.raises(ConfigError, match="row 1"):
        validate_label_table([[0, 1], [True, 2]], 2, 2, "t")


def test_load_label_table_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_label_table(tmp_path / "missing.yaml", 20, 4)
    with pytest.raises(ConfigError, match="labels_per_agent=2"):
        load_label_table(packaged_file("label_tables.yaml"), 20, 2)
    with pytest.raises(ConfigError, match="rows"):
        load_label_table(packaged_file("label_tables.yaml"), 19, 4)
    bad = tmp_path / "bad.yaml"
    bad.write_text("4: [[0, 1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_label_table(bad, 1, 2)


def test_label_table_from_config() -> None:
    cfg = Config()
    assert label_table(cfg) == _table(4)
    rnd = dataclasses.replace(cfg, data=DataConfig(label_table=None, labels_per_agent=3))
    assert label_table(rnd) == random_label_table(20, 3, 0)


def test_load_agent_data_synthetic() -> None:
    data = DataConfig(name="synthetic", synthetic_train_per_class=30,
                      synthetic_test_per_class=5, labels_per_agent=4)
    cfg = dataclasses.replace(Config(), data=data)
    table = _table(4)
    ad = load_agent_data(cfg, 0, table)
    assert ad.labels == [6, 9, 4, 1]
    expected_tr = train_indices(synthetic_labels(30), table, 0)
    assert ad.train.images.shape == (expected_tr.size, 3, 32, 32)
    assert ad.train.images.dtype == np.uint8
    np.testing.assert_array_equal(ad.train.labels, synthetic_labels(30)[expected_tr])
    assert ad.test.images.shape == (20, 3, 32, 32)
    assert sorted(set(ad.test.labels.tolist())) == [1, 4, 6, 9]


# --------------------------------------------------------------------------------------
# Sampler


def test_sampler_each_index_once_per_epoch() -> None:
    s = Sampler(12, 4, seed=0, agent=1)
    for _epoch in range(3):
        seen = np.concatenate([s.next() for _ in range(3)])
        assert sorted(seen.tolist()) == list(range(12))


def test_sampler_drop_last_no_repeats_within_epoch() -> None:
    s = Sampler(10, 3, seed=0, agent=0)
    for _epoch in range(4):
        batches = [s.next() for _ in range(3)]
        assert all(b.size == 3 for b in batches)
        seen = np.concatenate(batches)
        assert len(set(seen.tolist())) == 9
        assert seen.max() < 10 and seen.min() >= 0


def test_sampler_seeded_and_per_agent() -> None:
    a = [Sampler(50, 5, seed=3, agent=0).next().tolist() for _ in range(2)]
    assert a[0] == a[1]
    other = Sampler(50, 5, seed=3, agent=1).next().tolist()
    assert other != a[0]


def test_sampler_batch_larger_than_data() -> None:
    s = Sampler(5, 128, seed=0, agent=0)
    assert s.batch_size == 5
    for _ in range(3):
        assert sorted(s.next().tolist()) == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------------------
# CIFAR-10 reader


needs_cifar = pytest.mark.skipif(
    not (CIFAR_DIR / "test_batch").is_file(),
    reason=f"CIFAR-10 python batches not found at {CIFAR_DIR}",
)


@needs_cifar
def test_cifar10_load_split_shapes_and_counts() -> None:
    test = cifar10.load_split(CIFAR_DIR, train=False)
    assert test.images.shape == (10_000, 3, 32, 32)
    assert test.images.dtype == np.uint8
    assert test.labels.dtype == np.int64
    assert np.bincount(test.labels, minlength=10).tolist() == [1000] * 10
    train = cifar10.load_split(CIFAR_DIR, train=True)
    assert train.images.shape == (50_000, 3, 32, 32)
    assert np.bincount(train.labels, minlength=10).tolist() == [5000] * 10


@needs_cifar
def test_cifar10_rows_are_the_raw_pixels() -> None:
    with (CIFAR_DIR / "test_batch").open("rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    test = cifar10.load_split(CIFAR_DIR, train=False)
    np.testing.assert_array_equal(test.images[17].reshape(-1), raw[b"data"][17])
    assert test.labels[:50].tolist() == list(raw[b"labels"][:50])


@needs_cifar
def test_cifar10_truncated_batch_raises(tmp_path: Path) -> None:
    blob = (CIFAR_DIR / "test_batch").read_bytes()
    (tmp_path / "test_batch").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="truncated|unreadable"):
        cifar10.load_split(tmp_path, train=False)


def test_cifar10_disallowed_global_refused(tmp_path: Path) -> None:
    (tmp_path / "test_batch").write_bytes(
        pickle.dumps({b"data": os.system, b"labels": [0]}, protocol=2)
    )
    with pytest.raises(DataError, match="UnpicklingError"):
        cifar10.load_split(tmp_path, train=False)


def test_cifar10_missing_file_and_wrong_structure(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing"):
        cifar10.load_split(tmp_path, train=False)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((3, 3), np.uint8),
                                                        b"labels": [0, 1, 2]}))
    with pytest.raises(DataError, match="shape"):
        cifar10.load_split(tmp_path, train=False)
    with pytest.raises(DataError, match="data_batch_1"):
        cifar10.check_present(tmp_path, download=False)
