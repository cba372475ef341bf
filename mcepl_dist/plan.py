"""`python -m mcepl_dist.run --check`: validate a run without starting it and print its plan
(graph, partition, message size, traffic per round), so a user sees what 20 processes would
do before launching them on a cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcepl_dist.codec import HEADER_BYTES, frame_bytes, packed_size
from mcepl_dist.config import Config, resolve_path
from mcepl_dist.data import check_data, label_table
from mcepl_dist.data.cifar10 import load_labels
from mcepl_dist.data.partition import test_indices, train_indices
from mcepl_dist.data.synthetic import synthetic_labels
from mcepl_dist.model import layer_shapes
from mcepl_dist.topology import build_graph


def _labels(cfg: Config, train: bool) -> np.ndarray:
    d = cfg.data
    if d.name == "synthetic":
        return synthetic_labels(d.synthetic_train_per_class if train else
                                d.synthetic_test_per_class)
    return load_labels(d.resolved_root(), train=train)


def check_inputs(cfg: Config) -> tuple[np.ndarray, list[list[int]]]:
    """Validate the graph, the label table and the data's presence (what every run checks
    before its ranks talk); return the adjacency matrix and the label table."""
    topo = cfg.topology
    adj = build_graph(topo.kind, cfg.agents.num, p=topo.p, seed=cfg.seed,
                      max_tries=topo.max_tries,
                      path=resolve_path(cfg, topo.path) if topo.path else None)
    table = label_table(cfg)
    check_data(cfg)
    return adj, table


def describe(cfg: Config) -> list[str]:
    """Validate everything a run would check (except the world size) and describe it."""
    topo, n = cfg.topology, cfg.agents.num
    adj, table = check_inputs(cfg)
    tr_labels, te_labels = _labels(cfg, True), _labels(cfg, False)
    degrees = adj.sum(axis=1)
    masked = sum(int(np.prod(s)) for s in layer_shapes(cfg.model.width))
    frame = frame_bytes(packed_size(masked))
    sends = cfg.algorithm.name != "ind_mask"
    where = Path(cfg.data.resolved_root()) if cfg.data.name == "cifar10" else "generated"
    lines = [
        f"config OK: {cfg.algorithm.name}, {n} agents, {cfg.train.iterations} iterations, "
        f"batch {cfg.train.batch_size}, eta {cfg.algorithm.eta}, lambda {cfg.algorithm.lam}, "
        f"Fil {cfg.algorithm.fil_threshold}, seed {cfg.seed}",
        f"graph: {topo.kind}, {int(adj.sum()) // 2} edges, degree min/mean/max "
        f"{degrees.min()}/{degrees.mean():.1f}/{degrees.max()}",
        f"model: width {cfg.model.width}, {masked:,} masked weights, w by {cfg.model.weight_init}",
        f"message: {frame:,} bytes ({packed_size(masked):,} payload + {HEADER_BYTES} header)"
        if sends else "message: none (ind_mask does not communicate)",
        f"traffic per round, all agents: {int(adj.sum()) * frame if sends else 0:,} bytes",
        f"data: {cfg.data.name} ({where}), {cfg.data.labels_per_agent} labels per agent",
        "agent  r     degree  labels          train  test",
    ]
    for a in range(n):
        n_train = len(train_indices(tr_labels, table, a, cfg.data.train_fraction))
        n_test = len(test_indices(te_labels, table[a]))
        lines.append(f"{a:>5}  {cfg.agents.ratio(a):<5} {degrees[a]:>6}  "
                     f"{str(table[a]):<15} {n_train:>5}  {n_test:>5}")
    lines.append(f"launch: torchrun --nproc_per_node={n} -m mcepl_dist.run (same --config/--set)")
    return lines
