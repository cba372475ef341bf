"""The equations of MCE-PL as small pure functions on one layer's tensors.

Names follow ALGORITHM.md: z scores, m binary mask (stored as 0/1 floats), p the mean of
the neighbours' masks, G the straight-through gradient, y the aggregation tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor


def keep_count(numel: int, ratio: float) -> int:
    """Ones kept by Thres (eq. 3): numel - floor((1 - r) * numel), robust to float error."""
    dropped = math.floor(round((1.0 - ratio) * numel, 6))
    return numel - dropped


def thres(magnitude: Tensor, ratio: float) -> Tensor:
    """Thres (eq. 3): a 0/1 mask keeping exactly the top-r fraction of entries of one layer."""
    return top_k_mask(magnitude, keep_count(magnitude.numel(), ratio))


def top_k_mask(magnitude: Tensor, k: int) -> Tensor:
    """A 0/1 mask (magnitude's dtype and shape) keeping exactly its k largest entries."""
    flat = magnitude.detach().reshape(-1)
    if 0 < k < flat.numel() and flat.device.type == "cpu":
        # numpy's scatter is ~2x faster than torch's index_put on the CPU
        out = np.zeros(flat.numel(), dtype=np.float32)
        out[top_indices(flat, k).numpy()] = 1.0
        return torch.from_numpy(out).to(magnitude.dtype).view_as(magnitude)
    mask = torch.zeros_like(flat)
    if k >= flat.numel():
        mask.fill_(1.0)
    elif k > 0:
        mask[top_indices(flat, k)] = 1.0
    return mask.view_as(magnitude)


def top_indices(flat: Tensor, k: int, use_numpy: bool | None = None) -> Tensor:
    """Indices of the k largest entries of a 1-D tensor (0 < k < numel), in no order.

    On the CPU numpy's introselect is ~10x faster than torch.topk; elsewhere torch.topk.
    """
    if use_numpy if use_numpy is not None else flat.device.type == "cpu":
        n = flat.numel()
        return torch.from_numpy(np.argpartition(flat.detach().cpu().numpy(), n - k)[n - k :])
    return torch.topk(flat, k, sorted=False).indices


def fil(mask: Tensor, threshold: int) -> Tensor:
    """Fil (eq. 10): zero every output filter/row (dim 0) keeping `threshold` or fewer ones."""
    if threshold <= 0:
        return mask
    counts = mask.reshape(mask.shape[0], -1).sum(dim=1)
    keep = (counts > threshold).to(mask.dtype)
    return mask * keep.view(-1, *([1] * (mask.dim() - 1)))


def dead_rows(weight: Tensor, rows: Sequence[int]) -> list[int]:
    """Those of `rows` whose output filter/row (dim 0) of `weight` is all zero.

    On the output layer these are classes whose logit the model cannot move: an agent that
    holds such a label cannot learn it (Fil can prune every row of a sparse agent's labels).
    """
    live = weight.reshape(weight.shape[0], -1).ne(0).any(dim=1).tolist()
    return [r for r in rows if not live[r]]


def mask_from(y: Tensor, ratio: float, fil_threshold: int) -> Tensor:
    """m = Fil[Thres(|y|)] (eqs. 16b and 19)."""
    return fil(thres(y.abs(), ratio), fil_threshold)


def mean_abs(z: Tensor) -> Tensor:
    """c(z): the mean of |z| over the layer, a constant (no gradient flows through it)."""
    return z.detach().abs().mean()


def max_abs(z: Tensor) -> Tensor:
    """max |z| over the layer, the constant (16a) prints (no gradient flows through it)."""
    return z.detach().abs().max()


Scale = Literal["mean", "max"]
SCALES: dict[str, Callable[[Tensor], Tensor]] = {"mean": mean_abs, "max": max_abs}


def aggregation_tensor(z: Tensor, p: Tensor, scale: Scale = "mean") -> Tensor:
    """y = z + c(z) * sign(z) * p (eqs. 16a and 18). c is the mean |z| of the paper's (11)
    and (18), or with scale "max" the max |z| its (16a) prints."""
    return z + SCALES[scale](z) * torch.sign(z) * p


def straight_through_grad(grad_effective: Tensor, w: Tensor, z: Tensor) -> Tensor:
    """G = (dL/dw_eff) * w * sign(z) (eq. 4/15): the gradient passed straight to the scores."""
    return grad_effective * w * torch.sign(z)


def group_lasso(z: Tensor, lam: float) -> Tensor:
    """R(z) = lam * sum over output filters/rows of ||z_row||_2 (eqs. 5-7) for one layer."""
    return lam * z.reshape(z.shape[0], -1).norm(dim=1).sum()


def group_lasso_grad(z: Tensor, lam: float, eps: float = 1e-12) -> Tensor:
    """dR/dz = lam * z / ||z_row||_2 (zero for an all-zero row)."""
    rows = z.reshape(z.shape[0], -1)
    norms = rows.norm(dim=1, keepdim=True)
    grad = torch.where(norms > eps, rows / norms.clamp_min(eps), torch.zeros_like(rows))
    return (lam * grad).view_as(z)


def fine_tune(z_half: Tensor, grad: Tensor, p: Tensor, eta_ft: float) -> Tensor:
    """z^k = z^{k-1/2} - eta_ft * G * p (eq. 17): only entries the neighbours keep move."""
    return z_half - eta_ft * grad * p


def neighbor_mean(masks: Sequence[Tensor], like: Tensor) -> Tensor:
    """p = (1/|N|) * sum of the neighbours' masks; zeros when there are no neighbours."""
    if not masks:
        return torch.zeros_like(like)
    return torch.stack(list(masks)).mean(dim=0)


def sgd_direction(
    grad: Tensor, z: Tensor, buf: Tensor | None, weight_decay: float, momentum: float
) -> tuple[Tensor, Tensor | None]:
    """The step direction of SGD with L2 and heavy-ball momentum (as torch.optim.SGD)."""
    d = grad + weight_decay * z if weight_decay else grad
    if momentum:
        buf = d.clone() if buf is None else momentum * buf + d
        return buf, buf
    return d, None


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|a and b| / |a or b| of two 0/1 masks: how much two agents' kept entries overlap
    (1.0 for two empty masks)."""
    a, b = a.astype(bool), b.astype(bool)
    union = int(np.count_nonzero(a | b))
    return int(np.count_nonzero(a & b)) / union if union else 1.0


def independent_jaccard(density_a: float, density_b: float) -> float:
    """The expected Jaccard index of two masks drawn independently at these densities,
    d_a d_b / (d_a + d_b - d_a d_b): the no-communication reference for `jaccard`."""
    union = density_a + density_b - density_a * density_b
    return density_a * density_b / union if union else 1.0
