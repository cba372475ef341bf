"""par-weipru: as avr-weipru, but each entry is averaged only over the agents whose pruned
model keeps it (partial averaging); the result is pruned back to r_i."""

from __future__ import annotations

from torch import Tensor

from mcepl_dist import averaging as A
from mcepl_dist.algorithms.avr_weipru import AvrWeiPru


class ParWeiPru(AvrWeiPru):
    """w <- Prune_{r_i}(sum_j m_j w_j / sum_j m_j)."""

    name = "par_weipru"

    def aggregate(self, keys: list[int], values: dict[int, Tensor],
                  masks: dict[int, Tensor]) -> list[Tensor]:
        """Per entry, the mean over the models keeping it (zero where none does)."""
        return self.layers(A.partial_average([values[j] for j in keys],
                                             [masks[j] for j in keys]))
