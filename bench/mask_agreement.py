"""How much do neighbours' learned masks overlap? Per layer, the mean Jaccard index of the
final masks of graph neighbours, of the other pairs, and of independent masks at the same
densities, for each run directory given (runs that saved masks: MCE-PL, ind-mask).

    python bench/mask_agreement.py runs/cpu/table1/mce-pl-0.5_c3_s0 \
        runs/cpu/table1/ind-mask-0.5_c3_s0

MCE-PL's aggregation pulls an agent's mask towards its neighbours'; ind-mask's masks are
independent except through the shared w and the labels. The gap between the "neighbours"
and "independent" columns is what the exchange left in the masks.
"""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path
from statistics import mean

import numpy as np

from mcepl_dist.config import load_config, resolve_path
from mcepl_dist.masks import independent_jaccard, jaccard
from mcepl_dist.metrics import load_masks
from mcepl_dist.model import LAYER_NAMES
from mcepl_dist.topology import build_graph


def agreement(run: Path) -> list[tuple[str, float, float, float]]:
    """(layer, neighbours, other pairs, independent) mean Jaccard over agent pairs."""
    cfg = load_config(run / "config.yaml")
    topo = cfg.topology
    adj = build_graph(topo.kind, cfg.agents.num, p=topo.p, seed=cfg.seed,
                      max_tries=topo.max_tries,
                      path=resolve_path(cfg, topo.path) if topo.path else None)
    masks = [load_masks(run / "masks" / f"agent{i}.npz") for i in range(cfg.agents.num)]
    rows = []
    for layer, name in enumerate(LAYER_NAMES):
        near: list[float] = []
        far: list[float] = []
        ref: list[float] = []
        for i, j in combinations(range(cfg.agents.num), 2):
            a, b = masks[i][layer], masks[j][layer]
            (near if adj[i, j] else far).append(jaccard(a, b))
            ref.append(independent_jaccard(float(np.mean(a)), float(np.mean(b))))
        rows.append((name, mean(near) if near else float("nan"),
                     mean(far) if far else float("nan"), mean(ref)))
    return rows


def main(runs: list[Path]) -> None:
    print("| run | layer | neighbours | other pairs | independent masks |")
    print("|---|---|---|---|---|")
    for run in runs:
        for name, near, far, ref in agreement(run):
            print(f"| {run.name} | {name} | {near:.3f} | {far:.3f} | {ref:.3f} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python bench/mask_agreement.py RUN_DIR...")
    main([Path(a) for a in sys.argv[1:]])
