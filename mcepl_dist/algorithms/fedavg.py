"""The paper's "FL": every iteration all agents average their weights, i.e. FedAvg with
full participation and one local step, run as one all-reduce (no server process).

On the wire each rank sends and receives what a ring all-reduce does, 2 (N-1)/N of the
model per round; the paper's accounting counts an upload and a download of fp32 w.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mcepl_dist.algorithms.base import ALL
from mcepl_dist.algorithms.dsgd import DSGD
from mcepl_dist.codec import paper_bits


class FedAvg(DSGD):
    """w <- mean over all agents of (w_i - lr * g_i)."""

    name = "fedavg"
    collective = True

    def message(self, round: int) -> np.ndarray | None:
        if round == 0:
            return None
        with self.timer.phase("pack"):
            return self.flat(self.w).cpu().numpy()

    def message_stats(self) -> dict[str, float]:
        return {"paper_bits": 2.0 * paper_bits(self.numel, self.numel, mask=False)}

    def receive(self, round: int, payloads: dict[int, np.ndarray]) -> None:
        if round == 0:
            return
        mean: Tensor = torch.from_numpy(payloads[ALL]).to(self.spec.device)
        self.w = self.layers(mean)
