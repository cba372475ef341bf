"""Write a copy of the CIFAR-10 batches in which every image no given config uses is zeroed
(labels intact), gzipped: what fits a small transfer to a remote GPU machine.

    python bench/sparse_cifar.py OUT_DIR CONFIG [CONFIG ...] [--set KEY=VALUE ...]

The copy loads like the original (`gunzip -k OUT_DIR/*.gz`); runs of the given configs
see exactly the images they would see in the full dataset.
"""

from __future__ import annotations

import argparse
import gzip
import pickle
from pathlib import Path

import numpy as np

from mcepl_dist.config import load_config
from mcepl_dist.data import label_table
from mcepl_dist.data.cifar10 import ROWS_PER_FILE, TEST_FILE, TRAIN_FILES, _read_batch
from mcepl_dist.data.partition import test_indices, train_indices


def needed_rows(configs: list[str], overrides: list[str], root: Path,
                train: bool) -> np.ndarray:
    """Union over configs and agents of the rows each agent loads from this split."""
    labels = np.concatenate([_read_batch(root / n)[1]
                             for n in (TRAIN_FILES if train else (TEST_FILE,))])
    rows: set[int] = set()
    for path in configs:
        cfg = load_config(path, overrides)
        table = label_table(cfg)
        for a in range(cfg.agents.num):
            idx = (train_indices(labels, table, a, cfg.data.train_fraction) if train
                   else test_indices(labels, table[a]))
            rows.update(int(i) for i in idx)
    return np.array(sorted(rows), dtype=np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--root", default=None, help="CIFAR-10 batches (default: the config's)")
    args = ap.parse_args()
    root = Path(args.root or load_config(args.configs[0], args.overrides).data.resolved_root())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for train, names in ((True, TRAIN_FILES), (False, (TEST_FILE,))):
        keep = needed_rows(args.configs, args.overrides, root, train)
        for f, name in enumerate(names):
            data, labels = _read_batch(root / name)
            mine = keep[(keep // ROWS_PER_FILE) == f] % ROWS_PER_FILE
            sparse = np.zeros_like(data)
            sparse[mine] = data[mine]
            batch = {b"data": sparse, b"labels": labels.tolist()}
            with gzip.open(out / f"{name}.gz", "wb", compresslevel=6) as fh:
                pickle.dump(batch, fh, protocol=2)
        print(f"{'train' if train else 'test'}: kept {keep.size} images")


if __name__ == "__main__":
    main()
