"""avr-weipru: ind-weipru, then send the pruned model and average plainly with the
neighbours (zeros included, gossip weights); the average is pruned back to r_i."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from mcepl_dist.algorithms.ind_weipru import IndWeiPru


class AvrWeiPru(IndWeiPru):
    """w <- Prune_{r_i}(sum_j a_ij w_j) with w_j the neighbours' pruned models."""

    name = "avr_weipru"
    sizes_differ = True  # sparse payloads: mask + kept values, r_j differs between agents

    def message(self, round: int) -> np.ndarray | None:
        return None if round == 0 else self.encode(self.mask)

    def receive(self, round: int, payloads: dict[int, np.ndarray]) -> None:
        if round == 0:
            return
        keys, values, masks = self.neighbourhood(payloads)
        with self.timer.phase("aggregate"):
            self.w = self.aggregate(keys, values, masks)
            self.prune()

    def aggregate(self, keys: list[int], values: dict[int, Tensor],
                  masks: dict[int, Tensor]) -> list[Tensor]:
        """Plain (gossip-weighted) average of the pruned models."""
        return self.mix(values)
