"""DSGD (Lian et al. 2017): an SGD step on w, then gossip-averaging with the neighbours,
self included (uniform or Metropolis-Hastings weights). Sends dense fp32 w each round."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from mcepl_dist.algorithms.weights import WeightStrategy


class DSGD(WeightStrategy):
    """w <- sum_j a_ij (w_j - lr * g_j)."""

    name = "dsgd"

    def local_step(self, x: Tensor, y: Tensor) -> dict[str, float]:
        loss, grads, _ = self.gradients(x, y)
        self.sgd(self.with_correction(grads))
        return {"loss": loss}

    def with_correction(self, grads: list[Tensor]) -> list[Tensor]:
        """The gradient actually stepped on (DSGDProx adds its proximal term)."""
        return grads

    def message(self, round: int) -> np.ndarray | None:
        return None if round == 0 else self.encode(None)

    def receive(self, round: int, payloads: dict[int, np.ndarray]) -> None:
        if round == 0:
            return
        models = {j: w for j, (w, _) in self.decode(payloads).items()}
        with self.timer.phase("aggregate"):
            self.w = self.mix({self.spec.agent: self.flat(self.w), **models})
