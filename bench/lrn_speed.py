"""Median forward+backward time of the paper model at batch 128 on one CPU thread, with
the runtime's LocalResponseNorm and with torch's, and of LRN alone (conv1's activation).

    python bench/lrn_speed.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from mcepl_dist import model


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = model.build_network(0)
    weights = [w.clone().requires_grad_() for w in net.weights]
    x = torch.randn(128, 3, 32, 32)

    def step() -> None:
        torch.autograd.grad(model.forward(net, x, weights).sum(), weights)

    act = torch.randn(128, 64, 30, 30, requires_grad=True)
    ours = median_seconds(step, args.repeats)
    lrn_ours = median_seconds(
        lambda: model.local_response_norm(act, 4, 2e-5, 0.75).sum().backward(), args.repeats)
    lrn_torch = median_seconds(
        lambda: F.local_response_norm(act, 4, alpha=2e-5, beta=0.75).sum().backward(),
        args.repeats)
    original = model.local_response_norm
    model.local_response_norm = lambda h, s, a, b, k=1.0: F.local_response_norm(  # type: ignore
        h, s, alpha=a, beta=b, k=k)
    try:
        with_torch_lrn = median_seconds(step, args.repeats)
    finally:
        model.local_response_norm = original
    print(json.dumps({"fwd_bwd_s": ours, "fwd_bwd_torch_lrn_s": with_torch_lrn,
                      "lrn_conv1_fwd_bwd_s": lrn_ours, "lrn_conv1_torch_fwd_bwd_s": lrn_torch},
                     indent=1))


if __name__ == "__main__":
    main()
