"""The CUDA paths on a real GPU: bit kernels, the model, and a job whose ranks share the GPU.

Skipped without CUDA (CI never needs a GPU); on a GPU host: `pytest -q tests/test_gpu.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mcepl_dist import model as MD
from mcepl_dist.algorithms.bits import count_ones, pack_bits, unpack_bits
from mcepl_dist.metrics import load_masks

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

REPO = Path(__file__).resolve().parents[1]
CUDA = torch.device("cuda", 0)


def test_bit_kernels_on_cuda_match_numpy() -> None:
    rng = np.random.default_rng(0)
    bits = rng.random((5, 10_001)) < 0.3
    flat = torch.from_numpy(bits[0]).to(CUDA)
    assert np.array_equal(pack_bits(flat), np.packbits(bits[0]))
    packed = [np.packbits(b) for b in bits]
    assert np.array_equal(unpack_bits(packed[1], 10_001, CUDA).cpu().numpy(), bits[1])
    assert np.array_equal(count_ones(packed, 10_001, CUDA).cpu().numpy(), bits.sum(axis=0))


def test_forward_on_cuda_matches_cpu() -> None:
    net = MD.build_network(0, width=0.25)
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    cpu = MD.forward(net, x, list(net.weights))
    # cuDNN convolutions default to TF32 (10-bit mantissa) on Ampere and later: off here, so
    # the comparison checks the model's math rather than TF32 rounding (measured on an
    # H200 with it on: 4 of 80 logits off by up to 2.3e-3).
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        gpu = MD.forward(net.to(CUDA), x.to(CUDA), [w.to(CUDA) for w in net.weights])
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-3)


def test_ranks_sharing_the_gpu_run_and_save_masks(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node=4", "-m", "mcepl_dist.run",
           "--config", str(REPO / "configs" / "quickstart.yaml"),
           "--set", "data.name=synthetic", "--set", "model.width=0.25",
           "--set", "train.iterations=4", "--set", "comm.device=cuda", "--out", str(out)]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "over gloo" in proc.stderr  # 4 ranks, fewer GPUs: CUDA compute, gloo transport
    for agent in range(4):
        masks = load_masks(out / "masks" / f"agent{agent}.npz")
        assert [m.shape for m in masks] == MD.layer_shapes(0.25)
