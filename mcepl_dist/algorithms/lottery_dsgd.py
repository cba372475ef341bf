"""LotteryDSGD: LotteryFL (Li et al. 2020) in a decentralised network. Train w under a mask;
when the local accuracy passes a threshold, prune a further fraction of the kept weights
by magnitude (never below r_i) and rewind the kept ones to their initial values. Neighbours
average each entry only over the models that keep it. Sends mask + kept fp32 values."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from mcepl_dist import averaging as A
from mcepl_dist.algorithms.base import AgentSpec
from mcepl_dist.algorithms.weights import SparseExchange
from mcepl_dist.masks import keep_count


class LotteryDSGD(SparseExchange):
    """Iterative magnitude pruning with rewind, driven by the local minibatch accuracy."""

    name = "lottery_dsgd"
    starts_dense = True  # keeps every weight until its first prune
    state_keys = ("w", "mask", "window")

    def __init__(self, spec: AgentSpec) -> None:
        super().__init__(spec)
        self.window: list[float] = []  # minibatch accuracies since the last prune
        self.targets = [keep_count(n, r) for n, r in zip(self.sizes, self.ratios)]

    def local_step(self, x: Tensor, y: Tensor) -> dict[str, float]:
        loss, grads, acc = self.gradients(x, y)
        self.sgd(grads, self.mask)
        self.window.append(acc)
        with self.timer.phase("aggregate"):
            pruned = self.maybe_prune()
        kept = sum(int(m.sum()) for m in self.mask)
        return {"loss": loss, "density": kept / self.numel, "pruned": float(pruned)}

    def maybe_prune(self) -> bool:
        """Prune and rewind once `lottery_window` accuracies average above the threshold."""
        cfg = self.spec.algo
        full = len(self.window) >= cfg.lottery_window
        above = full and float(np.mean(self.window[-cfg.lottery_window:])) >= cfg.lottery_threshold
        room = any(int(m.sum()) > t for m, t in zip(self.mask, self.targets))
        if not (above and room):
            return False
        self.mask = [A.prune_fraction(w, m, cfg.lottery_rate, t)
                     for w, m, t in zip(self.w, self.mask, self.targets)]
        self.w = [A.reset_to_initial(w0, m) for w0, m in zip(self.spec.net.weights, self.mask)]
        self.window = []
        return True
