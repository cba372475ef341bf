"""What the real-valued baselines share: plain SGD on the agent's own copy of w (starting
from the shared fixed network), and the fp32 payload codec on flat vectors."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mcepl_dist import averaging as A
from mcepl_dist.algorithms.base import AgentSpec, Strategy
from mcepl_dist.codec import decode_weights, encode_weights, paper_bits
from mcepl_dist.model import forward


class WeightStrategy(Strategy):
    """SGD on w (batch gradient, constant rate, no momentum, as the paper's baselines)."""

    default_lr = 0.01  # the paper's rate for real-valued methods in Table I
    wire = "dense"
    state_keys: tuple[str, ...] = ("w",)

    def __init__(self, spec: AgentSpec) -> None:
        super().__init__(spec)
        self.w = [w.clone() for w in spec.net.weights]
        self.lr = spec.algo.lr if spec.algo.lr is not None else self.default_lr
        self.local_steps = spec.algo.local_steps
        self.ratios = spec.layer_ratios()
        self.sizes = [w.numel() for w in self.w]
        self.numel = sum(self.sizes)
        self.last_paper_bits = 0.0

    def gradients(self, x: Tensor, y: Tensor) -> tuple[float, list[Tensor], float]:
        """Loss, dL/dw at the current w (dense: also where w is pruned to 0), batch accuracy."""
        with self.timer.phase("fwd_bwd"):
            eff = [w.detach().requires_grad_() for w in self.w]
            logits = forward(self.spec.net, x, eff)
            loss = F.cross_entropy(logits, y)
            grads = list(torch.autograd.grad(loss, eff))
            acc = float((logits.argmax(dim=1) == y).float().mean())
        return float(loss.detach()), grads, acc

    def sgd(self, grads: list[Tensor], masks: list[Tensor] | None = None) -> None:
        """w <- w - lr * g, then zero what the masks prune (sparse training)."""
        self.w = [w - self.lr * g for w, g in zip(self.w, grads)]
        if masks is not None:
            self.w = [w * m for w, m in zip(self.w, masks)]

    def flat(self, tensors: list[Tensor]) -> Tensor:
        """All layers as one vector, in layer order."""
        return torch.cat([t.reshape(-1) for t in tensors])

    def layers(self, vec: Tensor) -> list[Tensor]:
        """Inverse of `flat`."""
        return [t.view(w.shape) for t, w in zip(torch.split(vec, self.sizes), self.w)]

    def encode(self, masks: list[Tensor] | None) -> np.ndarray:
        """This agent's w as a payload: dense fp32, or mask + kept values when smaller."""
        with self.timer.phase("pack"):
            values = self.flat(self.w).cpu().numpy()
            keep = None if masks is None else self.flat(masks).cpu().numpy() > 0
            payload = encode_weights(values, keep)
        sparse = payload.size < 4 * self.numel
        reals = int(keep.sum()) if sparse and keep is not None else self.numel
        self.last_paper_bits = float(paper_bits(self.numel, reals, mask=sparse))
        return payload

    def decode(self, payloads: dict[int, np.ndarray]) -> dict[int, tuple[Tensor, Tensor]]:
        """Each neighbour's (w, mask) as flat tensors on this agent's device."""
        dev = self.spec.device
        with self.timer.phase("pack"):
            out = {}
            for j, payload in payloads.items():
                values, keep = decode_weights(payload, self.numel)
                out[j] = (torch.from_numpy(values).to(dev),
                          torch.from_numpy(keep).to(dev, torch.float32))
        return out

    def mix(self, models: dict[int, Tensor]) -> list[Tensor]:
        """DSGD's averaging: sum_j a_j w_j over self and neighbours (the mixing row)."""
        mixing = self.spec.mixing or {j: 1.0 / len(models) for j in models}
        keys = sorted(models)
        return self.layers(A.weighted_average([models[j] for j in keys],
                                              [mixing[j] for j in keys]))

    def message_stats(self) -> dict[str, float]:
        return {"paper_bits": self.last_paper_bits}

    def eval_weights(self) -> list[Tensor]:
        return self.w


class PrunedWeights(WeightStrategy):
    """A weight strategy whose model keeps a per-layer mask (zeros where pruned)."""

    state_keys: tuple[str, ...] = ("w", "mask")

    def __init__(self, spec: AgentSpec) -> None:
        super().__init__(spec)
        self.mask = [torch.ones_like(w) for w in self.w]

    def prune(self) -> None:
        """Per-layer magnitude pruning of w to the agent's retention r_i."""
        self.mask = [A.prune_to_ratio(w, r) for w, r in zip(self.w, self.ratios)]
        self.w = [w * m for w, m in zip(self.w, self.mask)]

    def neighbourhood(self, payloads: dict[int, np.ndarray]) -> tuple[list[int], dict[int, Tensor],
                                                                     dict[int, Tensor]]:
        """Self and neighbours: sorted ranks, flat weights and flat masks."""
        models = {self.spec.agent: (self.flat(self.w), self.flat(self.mask)),
                  **self.decode(payloads)}
        keys = sorted(models)
        return keys, {j: models[j][0] for j in keys}, {j: models[j][1] for j in keys}

    def final_masks(self) -> list[np.ndarray]:
        return [m.bool().cpu().numpy() for m in self.mask]


class SparseExchange(PrunedWeights):
    """Sends the pruned model (mask + kept values) and aggregates what the neighbours send.

    The default aggregation averages each entry over the models keeping it, on the own
    support only (LotteryFL's and Dis-PFL's rule)."""

    wire = "sparse"  # r_j differs between agents, and so do the payloads

    def message(self, round: int) -> np.ndarray | None:
        return None if round == 0 else self.encode(self.mask)

    def receive(self, round: int, payloads: dict[int, np.ndarray]) -> None:
        if round == 0:
            return
        keys, values, masks = self.neighbourhood(payloads)
        with self.timer.phase("aggregate"):
            self.w = self.aggregate(keys, values, masks)
            self.after_aggregate()

    def aggregate(self, keys: list[int], values: dict[int, Tensor],
                  masks: dict[int, Tensor]) -> list[Tensor]:
        """The new w from the flat models of self and neighbours (sorted ranks `keys`)."""
        own = masks[self.spec.agent]
        return self.layers(A.overlap_average(own, [values[j] for j in keys],
                                             [masks[j] for j in keys]))

    def after_aggregate(self) -> None:
        """Hook run after the aggregation (weight pruning re-prunes to r_i)."""
