"""DSGDProx: FedProx's proximal term mu/2 ||w - w_ref||^2 added to DSGD's local loss, with
w_ref the agent's last aggregated model (Li et al. 2020, in a decentralised network)."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from mcepl_dist import averaging as A
from mcepl_dist.algorithms.base import AgentSpec
from mcepl_dist.algorithms.dsgd import DSGD


class DSGDProx(DSGD):
    """DSGD whose local gradient is pulled towards the last aggregate."""

    name = "dsgd_prox"
    state_keys = ("w", "w_ref")

    def __init__(self, spec: AgentSpec) -> None:
        super().__init__(spec)
        self.w_ref = [w.clone() for w in self.w]

    def with_correction(self, grads: list[Tensor]) -> list[Tensor]:
        mu = self.spec.algo.prox_mu
        return [g + A.prox_grad(w, r, mu) for g, w, r in zip(grads, self.w, self.w_ref)]

    def receive(self, round: int, payloads: dict[int, np.ndarray]) -> None:
        super().receive(round, payloads)
        self.w_ref = [w.clone() for w in self.w]
