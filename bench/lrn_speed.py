"""Median forward+backward time of the paper model at batch 128 on one CPU thread: the
runtime's (channels-last conv stack, fused LocalResponseNorm) against plain PyTorch (NCHW,
torch's LocalResponseNorm), and of LRN alone on conv1's activation.

    python bench/lrn_speed.py [--repeats 7] [--json bench/results/lrn_speed.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_json  # noqa: E402

from mcepl_dist import model  # noqa: E402


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
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    before = machine()
    net = model.build_network(0)
    weights = [w.clone().requires_grad_() for w in net.weights]
    x = torch.randn(128, 3, 32, 32)
    act = torch.randn(128, 64, 30, 30, requires_grad=True)
    figures = {
        "fwd_bwd_s": median_seconds(
            lambda: torch.autograd.grad(model.forward(net, x, weights).sum(), weights),
            args.repeats),
        "fwd_bwd_plain_torch_s": median_seconds(
            lambda: torch.autograd.grad(model.reference_forward(net, x, weights).sum(), weights),
            args.repeats),
        "lrn_conv1_fwd_bwd_s": median_seconds(
            lambda: model.local_response_norm(act, 4, 2e-5, 0.75).sum().backward(),
            args.repeats),
        "lrn_conv1_torch_fwd_bwd_s": median_seconds(
            lambda: F.local_response_norm(act, 4, alpha=2e-5, beta=0.75).sum().backward(),
            args.repeats),
    }
    for key, value in figures.items():
        print(f"{key:28s} {value:.4f}")
    if args.json:
        write_json(args.json, {"benchmark": "lrn_speed", "repeats": args.repeats,
                               "machine_before": before, "machine_after": machine(),
                               **figures})


if __name__ == "__main__":
    main()
