"""The strategy interface the per-rank loop drives, shared by every algorithm.

An iteration is: `local_step` (local computation on one minibatch; `local_steps` calls, on
as many minibatches), `message` (the payload to send every neighbour this round, or None),
the loop's exchange, then `receive` (the aggregation with what arrived). Round 0 is
`message` + `receive` with no local step. Algorithms never touch torch.distributed: they
see payloads as uint8 numpy arrays. A `collective` strategy (FedAvg) instead hands over a
float32 vector and receives the mean over all ranks under the key ALL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from mcepl_dist.codec import KIND_MASK, KIND_WEIGHTS
from mcepl_dist.config import AlgorithmConfig
from mcepl_dist.model import FixedNetwork, layer_ratios
from mcepl_dist.timing import PhaseTimer


@dataclass(frozen=True)
class AgentSpec:
    """What an algorithm needs to know about its agent."""

    agent: int
    seed: int
    retention: float
    net: FixedNetwork
    algo: AlgorithmConfig
    device: torch.device
    timer: PhaseTimer = field(default_factory=PhaseTimer)
    # Self-inclusive gossip weights {rank: a}, the agent's row of the mixing matrix.
    mixing: dict[int, float] = field(default_factory=dict)
    iterations: int = 0  # the run's length, for schedules that anneal over it

    def layer_ratios(self) -> list[float]:
        """Retention per masked layer: r_i, with fc_retention on the FC layers if set."""
        return layer_ratios(self.retention, self.algo.fc_retention)

    def generator(self, stream: int) -> torch.Generator:
        """A CPU generator unique to (seed, agent, stream)."""
        state = np.random.SeedSequence([self.seed, self.agent, stream]).generate_state(1)
        return torch.Generator().manual_seed(int(state[0]))


ALL = -1  # key of the all-rank mean handed to a collective strategy's `receive`


class Strategy(ABC):
    """One algorithm's per-rank state and update rules."""

    name: str = "base"
    # What a message carries: "none" (no communication), "mask" (1 bit per masked weight),
    # "dense" (fp32 weights) or "sparse" (1-bit mask + kept fp32 values; lengths differ
    # between agents). The frame kind and the transport's two-phase mode follow from it.
    wire: str = "none"
    collective: bool = False  # the message is averaged over all ranks, not sent to neighbours
    starts_dense: bool = False  # sparse messages that are dense until the first prune
    # Attributes that hold the strategy's whole evolving state (tensors, lists of tensors,
    # numbers, None): what a checkpoint saves and a resume restores.
    state_keys: tuple[str, ...] = ()
    local_steps: int = 1  # `local_step` calls per iteration, each on its own minibatch

    @property
    def communicates(self) -> bool:
        return self.wire != "none"

    @property
    def message_kind(self) -> int:
        """The frame kind of this strategy's messages (codec.KIND_*)."""
        return KIND_MASK if self.wire == "mask" else KIND_WEIGHTS

    @property
    def sizes_differ(self) -> bool:
        """Whether agents' payload lengths differ (the transport then sends headers first)."""
        return self.wire == "sparse"

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        self.timer = spec.timer

    @abstractmethod
    def local_step(self, x: Tensor, y: Tensor) -> dict[str, float]:
        """Local computation on one minibatch; returns scalars to log (at least `loss`)."""

    @abstractmethod
    def message(self, round: int) -> np.ndarray | None:
        """The uint8 payload for every neighbour this round; None = no communication."""

    @abstractmethod
    def receive(self, round: int, payloads: dict[int, np.ndarray]) -> None:
        """Aggregate the neighbours' payloads of this round (empty when not communicating)."""

    @abstractmethod
    def eval_weights(self) -> list[Tensor]:
        """The effective weights the agent's model uses now (for evaluation)."""

    def state_dict(self) -> dict[str, object]:
        """The evolving state named by `state_keys` (tensors and plain data only)."""
        return {key: getattr(self, key) for key in self.state_keys}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore what `state_dict` returned, so training continues bit for bit."""
        missing = [key for key in self.state_keys if key not in state]
        if missing:
            raise KeyError(f"{self.name} state lacks {', '.join(missing)}")
        for key in self.state_keys:
            setattr(self, key, state[key])

    def final_masks(self) -> list[np.ndarray] | None:
        """Binary masks per layer to save at the end (None if the algorithm has none)."""
        return None

    def message_stats(self) -> dict[str, float]:
        """Paper-style accounting of the last message: `paper_bits` (32 per real value, 1 per
        mask entry) and, for mask methods, `mask_ones` (the authors' accounting)."""
        return {}
