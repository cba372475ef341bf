"""The CUDA-side code paths, exercised on the CPU: the torch bit kernels, top-k selection,
and the device/backend decision. Real-GPU checks are in test_gpu.py (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcepl_dist import dist
from mcepl_dist.algorithms.bits import (
    count_ones,
    count_ones_torch,
    pack_bits_torch,
    unpack_bits_torch,
)
from mcepl_dist.errors import ConfigError
from mcepl_dist.masks import thres, top_indices


@pytest.mark.parametrize("n", [1, 7, 8, 9, 1001, 4800])
def test_torch_pack_matches_numpy_packbits(n: int) -> None:
    bits = torch.rand(n, generator=torch.Generator().manual_seed(n)) < 0.3
    packed = pack_bits_torch(bits)
    assert np.array_equal(packed.numpy(), np.packbits(bits.numpy()))
    assert torch.equal(unpack_bits_torch(packed, n), bits.to(torch.uint8))


def test_topk_and_numpy_selection_agree() -> None:
    x = torch.randn(5000, generator=torch.Generator().manual_seed(1))
    for k in (1, 17, 2500, 4999):
        a = set(top_indices(x, k, use_numpy=True).tolist())
        b = set(top_indices(x, k, use_numpy=False).tolist())
        assert a == b and len(a) == k


def test_thres_keeps_all_at_ratio_one() -> None:
    assert thres(torch.rand(3, 4), 1.0).sum() == 12


def _env(local_world: int) -> dist.DistEnv:
    return dist.DistEnv(rank=0, world_size=local_world, local_rank=0,
                        local_world_size=local_world)


def test_choose_device_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dist.choose_device(_env(4), "auto", "auto") == (torch.device("cpu"), "gloo")
    with pytest.raises(ConfigError, match="no CUDA device"):
        dist.choose_device(_env(4), "cuda", "auto")
    with pytest.raises(ConfigError, match="one GPU per rank"):
        dist.choose_device(_env(4), "cpu", "nccl")


def test_choose_device_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    # One GPU per rank: nccl. More ranks than GPUs: CUDA compute, gloo transport.
    assert dist.choose_device(_env(2), "auto", "auto") == (torch.device("cuda", 0), "nccl")
    assert dist.choose_device(_env(20), "auto", "auto") == (torch.device("cuda", 0), "gloo")
    with pytest.raises(ConfigError, match="one GPU per rank"):
        dist.choose_device(_env(20), "cuda", "nccl")
    assert dist.choose_device(_env(2), "cpu", "auto") == (torch.device("cpu"), "gloo")


@pytest.mark.parametrize(("payloads", "n"), [(1, 9), (3, 1001), (10, 4800)])
def test_count_ones_kernel_matches_numpy(payloads: int, n: int) -> None:
    """The CUDA-side counting of neighbours' ones (run here on the CPU) against numpy."""
    rng = np.random.default_rng(n)
    bits = rng.random((payloads, n)) < 0.4
    packed = np.stack([np.packbits(b) for b in bits])
    expected = bits.sum(axis=0)
    got = count_ones_torch(torch.from_numpy(packed), n, torch.uint8)
    assert got.dtype == torch.uint8
    assert np.array_equal(got.numpy(), expected)
    cpu = count_ones(list(packed), n, torch.device("cpu"))
    assert np.array_equal(cpu.numpy(), expected)
