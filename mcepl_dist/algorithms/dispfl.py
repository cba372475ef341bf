"""Dis-PFL (Dai et al., ICML 2022): personalised sparse masks of fixed density r_i. Each
round an agent sends its sparse w and mask, averages the neighbours' weights on its own
support (each entry over the models keeping it), trains the sparse model, and every
`dispfl_every` iterations evolves its mask: drop the smallest kept weights, regrow as many
inactive entries with the largest gradient, the fraction cosine-annealed over the run."""

from __future__ import annotations

import torch
from torch import Tensor

from mcepl_dist import averaging as A
from mcepl_dist.algorithms.base import AgentSpec
from mcepl_dist.algorithms.weights import SparseExchange
from mcepl_dist.masks import keep_count


class DisPFL(SparseExchange):
    """Sparse training at fixed density with prune-and-regrow and overlap averaging."""

    name = "dispfl"
    state_keys = ("w", "mask", "step")

    def __init__(self, spec: AgentSpec) -> None:
        super().__init__(spec)
        gen = spec.generator(stream=2)
        self.mask = [A.magnitude_mask(torch.rand(w.shape, generator=gen), keep_count(w.numel(), r))
                     .to(w.device) for w, r in zip(self.w, self.ratios)]
        self.w = [w * m for w, m in zip(self.w, self.mask)]
        self.step = 0

    def local_step(self, x: Tensor, y: Tensor) -> dict[str, float]:
        loss, grads, _ = self.gradients(x, y)
        self.sgd(grads, self.mask)
        self.step += 1
        stats = {"loss": loss}
        if self.step % self.spec.algo.dispfl_every == 0:
            with self.timer.phase("aggregate"):
                stats["swap_fraction"] = self.evolve(grads)
        return stats

    def evolve(self, grads: list[Tensor]) -> float:
        """One prune-and-regrow update of every layer's mask; returns the fraction used."""
        alpha = A.cosine_anneal(self.spec.algo.dispfl_alpha, self.step, self.spec.iterations)
        self.mask = [A.prune_and_regrow(w, m, g, alpha)
                     for w, m, g in zip(self.w, self.mask, grads)]
        self.w = [w * m for w, m in zip(self.w, self.mask)]  # regrown entries start at 0
        return alpha
