"""ind-weipru: SGD on w, then per-layer magnitude pruning to r_i after every iteration.
No communication: each agent trains alone."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from mcepl_dist.algorithms.weights import PrunedWeights


class IndWeiPru(PrunedWeights):
    """w <- Prune_{r_i}(w - lr * g)."""

    name = "ind_weipru"
    wire = "none"

    def local_step(self, x: Tensor, y: Tensor) -> dict[str, float]:
        loss, grads, _ = self.gradients(x, y)
        self.sgd(grads)
        with self.timer.phase("aggregate"):
            self.prune()
        return {"loss": loss}

    def message(self, round: int) -> np.ndarray | None:
        return None

    def receive(self, round: int, payloads: dict[int, np.ndarray]) -> None:
        return None
