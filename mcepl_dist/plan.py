"""`python -m mcepl_dist.run --check`: validate a run without starting it and print its plan
(graph, partition, message size, traffic per round), so a user sees what 20 processes would
do before launching them on a cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcepl_dist.algorithms import REGISTRY, Strategy
from mcepl_dist.algorithms.weights import WeightStrategy
from mcepl_dist.codec import (
    HEADER_BYTES,
    frame_bytes,
    packed_size,
    ring_allreduce_bytes,
    weights_payload_size,
)
from mcepl_dist.config import Config, resolve_path
from mcepl_dist.data import check_data, label_table
from mcepl_dist.data.cifar10 import load_labels
from mcepl_dist.data.partition import test_indices, train_indices
from mcepl_dist.data.synthetic import synthetic_labels
from mcepl_dist.masks import keep_count
from mcepl_dist.model import layer_ratios, layer_shapes
from mcepl_dist.topology import build_graph


def _labels(cfg: Config, train: bool) -> np.ndarray:
    d = cfg.data
    if d.name == "synthetic":
        return synthetic_labels(d.synthetic_train_per_class if train else
                                d.synthetic_test_per_class)
    return load_labels(d.resolved_root(), train=train)


def graph_for(cfg: Config) -> np.ndarray:
    """The run's communication graph (adjacency matrix), as every rank rebuilds it."""
    topo = cfg.topology
    return build_graph(topo.kind, cfg.agents.num, p=topo.p, seed=cfg.seed,
                       max_tries=topo.max_tries,
                       path=resolve_path(cfg, topo.path) if topo.path else None)


def check_inputs(cfg: Config) -> tuple[np.ndarray, list[list[int]]]:
    """Validate the graph, the label table and the data's presence (what every run checks
    before its ranks talk); return the adjacency matrix and the label table."""
    adj = graph_for(cfg)
    table = label_table(cfg)
    check_data(cfg)
    return adj, table


def _strategy(cfg: Config) -> type[Strategy]:
    return REGISTRY[cfg.algorithm.name]


def payload_bytes(cfg: Config, agent: int, final: bool = False) -> int:
    """Bytes of one message payload of `agent` (0: none). A strategy that starts dense
    (lottery_dsgd) shrinks as it prunes: `final` gives its size once it reaches r_i."""
    cls, shapes = _strategy(cfg), layer_shapes(cfg.model.width)
    numel = sum(int(np.prod(s)) for s in shapes)
    if cls.wire == "none":
        return 0
    if cls.wire == "mask":
        return packed_size(numel)
    if cls.wire == "dense" or (cls.starts_dense and not final):
        return 4 * numel
    ratios = layer_ratios(cfg.agents.ratio(agent), cfg.algorithm.fc_retention)
    kept = sum(keep_count(int(np.prod(s)), r) for s, r in zip(shapes, ratios))
    return weights_payload_size(numel, kept)


def _knobs(cfg: Config) -> str:
    a = cfg.algorithm
    if not issubclass(_strategy(cfg), WeightStrategy):
        return f"eta {a.eta}, lambda {a.lam}, Fil {a.fil_threshold}"
    return f"lr {a.lr if a.lr is not None else WeightStrategy.default_lr}"


def _traffic(cfg: Config, adj: np.ndarray) -> list[str]:
    """What goes on the wire: message size(s) and bytes per round over all agents."""
    name, n, cls = cfg.algorithm.name, cfg.agents.num, _strategy(cfg)
    degrees = adj.sum(axis=1)
    if cls.wire == "none":
        return [f"message: none ({name} does not communicate)",
                "traffic per round, all agents: 0 bytes"]
    if cls.collective:
        per_rank = ring_allreduce_bytes(payload_bytes(cfg, 0), n)
        return [f"message: one all-reduce of {payload_bytes(cfg, 0):,} bytes of fp32 weights "
                f"per round; a ring all-reduce sends {per_rank:,} bytes per rank",
                f"traffic per round, all agents: {n * per_rank:,} bytes"]
    sizes = [payload_bytes(cfg, a) for a in range(n)]
    total = sum(int(degrees[a]) * frame_bytes(sizes[a]) for a in range(n))
    lines = [f"message: {frame_bytes(min(sizes)):,} to {frame_bytes(max(sizes)):,} bytes "
             f"(payload + {HEADER_BYTES} header)" if min(sizes) != max(sizes) else
             f"message: {frame_bytes(sizes[0]):,} bytes ({sizes[0]:,} payload + "
             f"{HEADER_BYTES} header)",
             f"traffic per round, all agents: {total:,} bytes"]
    if cls.starts_dense:
        final = sum(int(degrees[a]) * frame_bytes(payload_bytes(cfg, a, final=True))
                    for a in range(n))
        lines[-1] += f" at first, {final:,} once every agent has pruned to r_i"
    return lines


def describe(cfg: Config) -> list[str]:
    """Validate everything a run would check (except the world size) and describe it."""
    topo, n = cfg.topology, cfg.agents.num
    adj, table = check_inputs(cfg)
    tr_labels, te_labels = _labels(cfg, True), _labels(cfg, False)
    degrees = adj.sum(axis=1)
    masked = sum(int(np.prod(s)) for s in layer_shapes(cfg.model.width))
    where = Path(cfg.data.resolved_root()) if cfg.data.name == "cifar10" else "generated"
    lines = [
        f"config OK: {cfg.algorithm.name}, {n} agents, {cfg.train.iterations} iterations, "
        f"batch {cfg.train.batch_size}, {_knobs(cfg)}, seed {cfg.seed}",
        f"graph: {topo.kind}, {int(adj.sum()) // 2} edges, degree min/mean/max "
        f"{degrees.min()}/{degrees.mean():.1f}/{degrees.max()}",
        f"model: width {cfg.model.width}, {masked:,} masked weights, w by {cfg.model.weight_init}",
        *_traffic(cfg, adj),
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
