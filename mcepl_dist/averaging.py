"""The baselines' equations as small pure functions on one layer's tensors.

Real-valued methods (DSGD, FedProx, LotteryFL, weight pruning, Dis-PFL) average models
and prune weights; the rules differ only in which entries count. Masks are 0/1 floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from mcepl_dist.masks import thres, top_indices, top_k_mask


def weighted_average(tensors: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """sum_j a_j * x_j: DSGD's mixing step with the self-inclusive weights a_j."""
    if len(tensors) != len(weights) or not tensors:
        raise ValueError("need one weight per tensor and at least one tensor")
    out = torch.zeros_like(tensors[0])
    for x, a in zip(tensors, weights):
        out.add_(x, alpha=a)
    return out


def partial_average(values: Sequence[Tensor], masks: Sequence[Tensor]) -> Tensor:
    """Per entry, the mean over only the models that keep it; 0 where none does.

    par-weipru's and LotteryFL's aggregation: sum_j m_j * x_j / sum_j m_j.
    """
    total = torch.zeros_like(values[0])
    count = torch.zeros_like(values[0])
    for x, m in zip(values, masks, strict=True):
        total.add_(x * m)
        count.add_(m)
    return torch.where(count > 0, total / count.clamp_min(1.0), torch.zeros_like(total))


def overlap_average(own_mask: Tensor, values: Sequence[Tensor], masks: Sequence[Tensor]) -> Tensor:
    """Dis-PFL: average on the own support only, each entry over the models keeping it."""
    return partial_average(values, masks) * own_mask


def prox_term(w: Tensor, w_ref: Tensor, mu: float) -> Tensor:
    """FedProx's proximal term mu/2 * ||w - w_ref||^2 for one layer."""
    return 0.5 * mu * (w - w_ref).pow(2).sum()


def prox_grad(w: Tensor, w_ref: Tensor, mu: float) -> Tensor:
    """Gradient of the proximal term: mu * (w - w_ref)."""
    return mu * (w - w_ref)


def magnitude_mask(w: Tensor, keep: int) -> Tensor:
    """0/1 mask keeping exactly the `keep` entries of largest |w| (ties broken arbitrarily)."""
    return top_k_mask(w.detach().abs(), keep)


def prune_to_ratio(w: Tensor, ratio: float) -> Tensor:
    """Per-layer magnitude pruning to retention r (ind-weipru): Thres on |w|."""
    return thres(w.detach().abs(), ratio)


def prune_fraction(w: Tensor, mask: Tensor, fraction: float, min_keep: int) -> Tensor:
    """LotteryFL's step: drop `fraction` of the kept entries, smallest |w| first, never going
    below `min_keep` ones; only entries the mask keeps can survive."""
    kept = int(mask.sum())
    target = max(min_keep, kept - math.floor(fraction * kept))
    if target >= kept:
        return mask.clone()
    # Pruned entries rank below every kept one; +1 keeps zero-valued kept weights above them.
    score = torch.where(mask > 0, w.detach().abs() + 1.0, torch.zeros_like(w))
    return magnitude_mask(score, target)


def reset_to_initial(w0: Tensor, mask: Tensor) -> Tensor:
    """LotteryFL's rewind: the kept weights take their initial values, the rest are zero."""
    return w0 * mask


def cosine_anneal(alpha0: float, step: int, total: int) -> float:
    """Dis-PFL/RigL's update fraction alpha0/2 * (1 + cos(pi * step / total)), 0 past total."""
    if total <= 0 or step >= total:
        return 0.0
    return 0.5 * alpha0 * (1.0 + math.cos(math.pi * step / total))


def regrow_count(kept: int, numel: int, alpha: float) -> int:
    """Entries Dis-PFL swaps in one mask update: floor(alpha * kept), capped by the inactive."""
    return min(math.floor(alpha * kept), numel - kept)


def prune_and_regrow(w: Tensor, mask: Tensor, grad: Tensor, alpha: float) -> Tensor:
    """Dis-PFL's mask evolution at fixed density: drop the k kept entries of smallest |w|,
    grow the k inactive entries of largest |grad| (k = regrow_count); density is unchanged."""
    kept = int(mask.sum())
    k = regrow_count(kept, mask.numel(), alpha)
    if k <= 0:
        return mask.clone()
    flat_mask = mask.reshape(-1)
    inactive = (flat_mask == 0).nonzero().reshape(-1)
    grown = inactive[top_indices(grad.detach().reshape(-1).abs()[inactive], k)]
    score = torch.where(flat_mask > 0, w.detach().reshape(-1).abs() + 1.0,
                        torch.zeros_like(flat_mask))
    new = magnitude_mask(score, kept - k).reshape(-1)
    new[grown] = 1.0
    return new.view_as(mask)
