"""Label-skew partitioning (pure): which labels each agent holds and which images it gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from mcepl_dist.errors import ConfigError, DataError

NUM_CLASSES = 10


def load_label_table(path: Path, num_agents: int, labels_per_agent: int) -> list[list[int]]:
    """Read a label table (label_tables.yaml format: c -> one list of labels per agent)."""
    if not path.is_file():
        raise ConfigError(f"label table not found: {path}")
    try:
        tables = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise ConfigError(f"label table {path} is not valid YAML") from None
    if not isinstance(tables, dict) or labels_per_agent not in tables:
        have = sorted(tables) if isinstance(tables, dict) else []
        raise ConfigError(f"label table {path} has no entry for labels_per_agent="
                          f"{labels_per_agent} (has {have})")
    table = tables[labels_per_agent]
    return validate_label_table(table, num_agents, labels_per_agent, str(path))


def validate_label_table(table: object, num_agents: int, labels_per_agent: int,
                         source: str) -> list[list[int]]:
    """Check: one row per agent, each row `labels_per_agent` distinct labels in 0..9."""
    if not isinstance(table, list) or len(table) != num_agents:
        n = len(table) if isinstance(table, list) else "no"
        raise ConfigError(f"{source}: label table has {n} rows, need {num_agents} (one per "
                          f"agent); set data.label_table: null for seeded random labels")
    out = []
    for i, row in enumerate(table):
        ok = (isinstance(row, list) and len(row) == labels_per_agent
              and len(set(row)) == len(row)
              and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < NUM_CLASSES
                      for v in row))
        if not ok:
            raise ConfigError(f"{source}: row {i} must be {labels_per_agent} distinct labels "
                              f"in 0..9, got {row!r}")
        out.append([int(v) for v in row])
    return out


def random_label_table(num_agents: int, labels_per_agent: int, seed: int) -> list[list[int]]:
    """Seeded random choice of c distinct labels per agent."""
    rng = np.random.default_rng([seed, 0x1ABE1])
    return [sorted(int(v) for v in rng.choice(NUM_CLASSES, labels_per_agent, replace=False))
            for _ in range(num_agents)]


def holders(table: list[list[int]], label: int) -> list[int]:
    """Agents holding `label`, in ascending order."""
    return [a for a, row in enumerate(table) if label in row]


def train_indices(labels: np.ndarray, table: list[list[int]], agent: int,
                  fraction: float = 1.0) -> np.ndarray:
    """Indices of `agent`'s training images.

    Each label's images (in dataset order) are split evenly and disjointly among the agents
    holding it; an agent keeps the first `fraction` of each of its shares.
    """
    picked = []
    for label in sorted(table[agent]):
        owners = holders(table, label)
        share = np.array_split(np.flatnonzero(labels == label), len(owners))[owners.index(agent)]
        picked.append(share[: int(round(len(share) * fraction))])
    out = np.sort(np.concatenate(picked))
    if out.size == 0:
        raise DataError(f"agent {agent} received no training images")
    return out


def test_indices(labels: np.ndarray, agent_labels: list[int]) -> np.ndarray:
    """All test images of the agent's labels."""
    return np.flatnonzero(np.isin(labels, agent_labels))
