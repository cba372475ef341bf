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

from mcepl_dist.config import load_config
from mcepl_dist.masks import independent_jaccard, jaccard
from mcepl_dist.metrics import load_masks
from mcepl_dist.model import LAYER_NAMES
from mcepl_dist.plan import graph_for


def agreement(run: Path) -> list[tuple[str, float, float, float, float]]:
    """(layer, neighbours, independent at their densities, other pairs, independent at
    theirs): mean Jaccard over agent pairs. The references differ when r_i varies."""
    cfg = load_config(run / "config.yaml")
    adj = graph_for(cfg)
    masks = [load_masks(run / "masks" / f"agent{i}.npz") for i in range(cfg.agents.num)]
    rows = []
    for layer, name in enumerate(LAYER_NAMES):
        density = [float(np.mean(m[layer])) for m in masks]
        pairs: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
        for i, j in combinations(range(cfg.agents.num), 2):
            seen, ref = pairs[bool(adj[i, j])]
            seen.append(jaccard(masks[i][layer], masks[j][layer]))
            ref.append(independent_jaccard(density[i], density[j]))
        (near, near_ref), (far, far_ref) = pairs[True], pairs[False]
        rows.append((name, _mean(near), _mean(near_ref), _mean(far), _mean(far_ref)))
    return rows


def _mean(values: list[float]) -> float:
    return mean(values) if values else float("nan")


def main(runs: list[Path]) -> None:
    print("| run | layer | neighbours | (independent) | other pairs | (independent) |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        for name, *values in agreement(run):
            print(f"| {run.name} | {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python bench/mask_agreement.py RUN_DIR...")
    main([Path(a) for a in sys.argv[1:]])
