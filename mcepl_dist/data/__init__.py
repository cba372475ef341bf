"""Per-agent data: the label table, the agent's train/test images, and a minibatch sampler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mcepl_dist.config import Config, resolve_path
from mcepl_dist.data import cifar10, synthetic
from mcepl_dist.data.cifar10 import Split
from mcepl_dist.data.partition import (
    load_label_table,
    random_label_table,
    test_indices,
    train_indices,
)

__all__ = ["AgentData", "Sampler", "Split", "label_table", "load_agent_data", "check_data"]


@dataclass(frozen=True)
class AgentData:
    """One agent's local training and test sets."""

    train: Split
    test: Split
    labels: list[int]


def label_table(cfg: Config) -> list[list[int]]:
    """Labels held by every agent: from the configured table file, else seeded random."""
    d = cfg.data
    if d.label_table is None:
        return random_label_table(cfg.agents.num, d.labels_per_agent, cfg.seed)
    return load_label_table(resolve_path(cfg, d.label_table), cfg.agents.num, d.labels_per_agent)


def check_data(cfg: Config) -> None:
    """Fail early (before the process group) if the dataset files are absent."""
    if cfg.data.name == "cifar10":
        cifar10.check_present(cfg.data.resolved_root(), cfg.data.download)


def load_agent_data(cfg: Config, agent: int, table: list[list[int]]) -> AgentData:
    """Load only this agent's share: its training split of each label, all test images."""
    d = cfg.data
    if d.name == "synthetic":
        tr_lab = synthetic.synthetic_labels(d.synthetic_train_per_class)
        te_lab = synthetic.synthetic_labels(d.synthetic_test_per_class)
        tr = train_indices(tr_lab, table, agent, d.train_fraction)
        te = test_indices(te_lab, table[agent])
        return AgentData(
            train=synthetic.synthetic_split(cfg.seed, d.synthetic_train_per_class, True, tr),
            test=synthetic.synthetic_split(cfg.seed, d.synthetic_test_per_class, False, te),
            labels=table[agent],
        )
    root = d.resolved_root()
    train = cifar10.load_split(
        root, train=True, select=lambda lab: train_indices(lab, table, agent, d.train_fraction))
    test = cifar10.load_split(root, train=False,
                              select=lambda lab: test_indices(lab, table[agent]))
    return AgentData(train=train, test=test, labels=table[agent])


class Sampler:
    """Minibatches drawn without replacement, reshuffled each epoch, from a seeded RNG."""

    def __init__(self, size: int, batch_size: int, seed: int, agent: int) -> None:
        self.size = size
        self.batch_size = min(batch_size, size)
        self.rng = np.random.default_rng([seed, agent, 0x5A])
        self.order = self.rng.permutation(size)
        self.pos = 0

    def next(self) -> np.ndarray:
        """Indices of the next minibatch."""
        if self.pos + self.batch_size > self.size:
            self.order = self.rng.permutation(self.size)
            self.pos = 0
        idx = self.order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state_dict(self) -> dict[str, Any]:
        """Where the sampler stands, as plain data: RNG state, this epoch's order, position."""
        return {"rng": self.rng.bit_generator.state, "order": self.order.tolist(),
                "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where `state_dict` was taken."""
        self.rng.bit_generator.state = state["rng"]
        self.order = np.asarray(state["order"], dtype=np.int64)
        self.pos = int(state["pos"])
