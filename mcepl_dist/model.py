"""The paper's masked AlexNet for CIFAR-10 with fixed weights w drawn from a shared seed.

The network is functional: `forward(x, weights)` takes the effective weights w * m of the
five masked layers, so an algorithm can pass masked, dense or sparse weights and read the
gradient with respect to them. w is regenerated on every rank from `seed`; it is never sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mcepl_dist.config import Config

LAYER_NAMES = ("conv1", "conv2", "conv3", "fc1", "fc2")
CONV_LAYERS = 3
# (size, alpha, beta) of the LocalResponseNorm after each conv layer (ALGORITHM.md).
_LRN = ((4, 2e-5, 0.75), (4, 1e-4, 0.75), (4, 1e-4, 0.75))
_POOL_PAD = (0, 0, 1)


def layer_shapes(width: float = 1.0, num_classes: int = 10) -> list[tuple[int, ...]]:
    """Shapes of the five masked weight tensors for a width multiplier."""
    c1, c2, c3, f1 = (max(1, round(n * width)) for n in (64, 128, 256, 192))
    return [(c1, 3, 5, 5), (c2, c1, 5, 5), (c3, c2, 5, 5), (f1, c3 * 4), (num_classes, f1)]


def layer_ratios(retention: float, fc_retention: float | None) -> list[float]:
    """Retention of each masked layer: r_i, or `fc_retention` on the FC layers if set."""
    fc = retention if fc_retention is None else fc_retention
    return [retention if i < CONV_LAYERS else fc for i in range(len(LAYER_NAMES))]


def fan_in(shape: tuple[int, ...]) -> int:
    """Inputs feeding one output unit: in_channels * kernel area, or in_features."""
    return math.prod(shape[1:])


def init_weight(shape: tuple[int, ...], scheme: str, gen: torch.Generator,
                retention: float) -> Tensor:
    """One fixed weight tensor drawn by `scheme` (ALGORITHM.md's weight_init table)."""
    std = math.sqrt(2.0 / fan_in(shape))
    if scheme == "kaiming_normal":
        return torch.randn(shape, generator=gen) * std
    if scheme == "kaiming_scaled":
        return torch.randn(shape, generator=gen) * std / math.sqrt(retention)
    if scheme == "signed_constant":
        signs = torch.randint(0, 2, shape, generator=gen) * 2.0 - 1.0
        return signs * std / math.sqrt(retention)
    if scheme == "torch_default":
        bound = 1.0 / math.sqrt(fan_in(shape))
        return (torch.rand(shape, generator=gen) * 2 - 1) * bound
    if scheme == "uniform":
        return torch.rand(shape, generator=gen) * 2 - 1
    raise ValueError(f"unknown weight_init {scheme!r}")


@dataclass(frozen=True)
class FixedNetwork:
    """The shared random network: fixed masked weights w and fixed fc biases."""

    weights: tuple[Tensor, ...]
    biases: tuple[Tensor, Tensor]
    logits_elu: bool = False

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(w.shape) for w in self.weights]

    @property
    def num_masked(self) -> int:
        return sum(w.numel() for w in self.weights)

    def to(self, device: torch.device) -> FixedNetwork:
        return FixedNetwork(tuple(w.to(device) for w in self.weights),
                            (self.biases[0].to(device), self.biases[1].to(device)),
                            self.logits_elu)


def build_network(seed: int, width: float = 1.0, weight_init: str = "kaiming_normal",
                  logits_elu: bool = False, init_retention: float = 1.0) -> FixedNetwork:
    """Draw w (and the fc biases) on the CPU from `seed`: identical on every rank and device.

    `init_retention` only matters for the schemes scaled by 1/sqrt(r).
    """
    gen = torch.Generator().manual_seed(seed)
    shapes = layer_shapes(width)
    weights = tuple(init_weight(s, weight_init, gen, init_retention) for s in shapes)
    biases = tuple(
        (torch.rand(shapes[i][0], generator=gen) * 2 - 1) / math.sqrt(fan_in(shapes[i]))
        for i in (3, 4)
    )
    return FixedNetwork(weights, (biases[0], biases[1]), logits_elu)


def network_for(cfg: Config) -> FixedNetwork:
    """The run's shared fixed network w, as every rank of a run with `cfg` draws it."""
    mean_r = float(np.mean([cfg.agents.ratio(i) for i in range(cfg.agents.num)]))
    return build_network(cfg.seed, cfg.model.width, cfg.model.weight_init,
                         cfg.model.logits_elu, init_retention=mean_r)


def _window_sum(v: Tensor, before: int, after: int) -> Tensor:
    """out[:, c] = sum of v[:, c - before .. c + after] over channels (zero outside)."""
    out = v.clone()
    channels = v.shape[1]
    for d in range(1, min(after, channels - 1) + 1):
        out[:, : channels - d] += v[:, d:]
    for d in range(1, min(before, channels - 1) + 1):
        out[:, d:] += v[:, : channels - d]
    return out


class _LocalResponseNorm(torch.autograd.Function):
    """y = x * s^-beta, s = k + alpha/size * (window sum of x^2), with a hand-written
    backward: dx = g s^-beta - 2 alpha beta / size * x * W^T(g x s^-beta / s)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, size: int, alpha: float, beta: float,
                k: float) -> Tensor:
        s = _window_sum(x * x, size // 2, (size - 1) // 2)
        s.mul_(alpha / size).add_(k)
        t = s.pow(-beta)
        ctx.save_for_backward(x, s, t)
        ctx.lrn = (size, alpha, beta)
        return x * t

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, s, t = ctx.saved_tensors
        size, alpha, beta = ctx.lrn
        u = grad * x
        u.mul_(t).div_(s)
        # The window's transpose: the same sum with `before` and `after` swapped.
        dx = _window_sum(u, (size - 1) // 2, size // 2)
        dx.mul_(x).mul_(-2.0 * alpha * beta / size).addcmul_(grad, t)
        return dx, None, None, None, None


def local_response_norm(x: Tensor, size: int, alpha: float, beta: float,
                        k: float = 1.0) -> Tensor:
    """torch's LocalResponseNorm across channels, with a fused hand-written backward.

    Same formula as F.local_response_norm (window sum / size, zero padding size//2 before
    and (size-1)//2 after); about 3.5x faster forward+backward on the CPU than torch's,
    where LRN was a third of this model's compute (bench/lrn_speed.py).
    """
    out: Tensor = _LocalResponseNorm.apply(x, size, alpha, beta, k)
    return out


def forward(net: FixedNetwork, x: Tensor, weights: list[Tensor]) -> Tensor:
    """Logits of the masked AlexNet given the effective weights of its five layers.

    On the CPU the conv stack runs in channels-last layout: oneDNN's convolutions and
    max-pooling need no layout reorders then (about 1.3x faster forward+backward).
    """
    h = x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x
    for i in range(CONV_LAYERS):
        h = F.elu(F.conv2d(h, weights[i], stride=1, padding=1))
        size, alpha, beta = _LRN[i]
        h = local_response_norm(h, size, alpha, beta)
        h = F.max_pool2d(h, kernel_size=3, stride=2, padding=_POOL_PAD[i])
    h = F.elu(F.linear(h.flatten(1), weights[3], net.biases[0]))
    logits = F.linear(h, weights[4], net.biases[1])
    return F.elu(logits) if net.logits_elu else logits


def reference_forward(net: FixedNetwork, x: Tensor, weights: list[Tensor]) -> Tensor:
    """`forward` in plain PyTorch (NCHW layout, torch's LocalResponseNorm): the readable
    reference that tests and the LRN benchmark hold the fast path to."""
    h = x
    for i in range(CONV_LAYERS):
        h = F.elu(F.conv2d(h, weights[i], stride=1, padding=1))
        size, alpha, beta = _LRN[i]
        h = F.local_response_norm(h, size, alpha=alpha, beta=beta)
        h = F.max_pool2d(h, kernel_size=3, stride=2, padding=_POOL_PAD[i])
    h = F.elu(F.linear(h.flatten(1), weights[3], net.biases[0]))
    logits = F.linear(h, weights[4], net.biases[1])
    return F.elu(logits) if net.logits_elu else logits


def normalize(images_uint8: Tensor) -> Tensor:
    """uint8 pixels -> float in [-1, 1] (mean 0.5, std 0.5 per channel)."""
    return images_uint8.float().div_(127.5).sub_(1.0)
