"""avr-weipru: ind-weipru, then send the pruned model and average plainly with the
neighbours (zeros included, gossip weights); the average is pruned back to r_i."""

from __future__ import annotations

from torch import Tensor

from mcepl_dist.algorithms.ind_weipru import IndWeiPru
from mcepl_dist.algorithms.weights import SparseExchange


class AvrWeiPru(SparseExchange, IndWeiPru):
    """w <- Prune_{r_i}(sum_j a_ij w_j) with w_j the neighbours' pruned models."""

    name = "avr_weipru"

    def aggregate(self, keys: list[int], values: dict[int, Tensor],
                  masks: dict[int, Tensor]) -> list[Tensor]:
        """Plain (gossip-weighted) average of the pruned models."""
        return self.mix(values)

    def after_aggregate(self) -> None:
        self.prune()
