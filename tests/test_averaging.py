"""The baselines' pure functions (averaging, proximal term, pruning, regrowth, mixing
weights, sparse payloads) against numpy or hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mcepl_dist import averaging as A
from mcepl_dist.codec import (
    decode_weights,
    encode_weights,
    packed_size,
    paper_bits,
    ring_allreduce_bytes,
    weights_payload_size,
)
from mcepl_dist.errors import ProtocolError, TopologyError
from mcepl_dist.topology import mixing_weights, ring


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape)).float()


def _mask(*shape: int, p: float, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random(shape) < p).float()


# -- averaging ------------------------------------------------------------------------------


def test_weighted_average_matches_numpy() -> None:
    xs = [_rand(4, 5, seed=s) for s in range(3)]
    a = [0.5, 0.3, 0.2]
    got = A.weighted_average(xs, a)
    want = sum(w * x.numpy().astype(np.float64) for w, x in zip(a, xs))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)


def test_partial_average_hand_values() -> None:
    values = [torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([3.0, 0.0, 5.0, 8.0])]
    masks = [torch.tensor([1.0, 1.0, 0.0, 0.0]), torch.tensor([1.0, 0.0, 1.0, 0.0])]
    # entry 0: both keep -> 2; entry 1: only the first -> 2; entry 2: only the second -> 5;
    # entry 3: nobody keeps it -> 0
    assert A.partial_average(values, masks).tolist() == [2.0, 2.0, 5.0, 0.0]


def test_partial_average_matches_numpy() -> None:
    vals = [_rand(50, seed=s) for s in range(4)]
    masks = [_mask(50, p=0.5, seed=10 + s) for s in range(4)]
    v = np.stack([x.numpy() for x in vals]).astype(np.float64)
    m = np.stack([x.numpy() for x in masks]).astype(np.float64)
    count = m.sum(0)
    want = np.divide((v * m).sum(0), count, out=np.zeros(50), where=count > 0)
    np.testing.assert_allclose(A.partial_average(vals, masks).numpy(), want, rtol=1e-5,
                               atol=1e-7)


def test_overlap_average_stays_on_own_support() -> None:
    own = torch.tensor([1.0, 0.0, 1.0])
    values = [torch.tensor([2.0, 0.0, 4.0]), torch.tensor([6.0, 9.0, 0.0])]
    masks = [own, torch.tensor([1.0, 1.0, 0.0])]
    # entry 0: (2 + 6) / 2; entry 1 is off the own mask; entry 2: only self keeps it
    assert A.overlap_average(own, values, masks).tolist() == [4.0, 0.0, 4.0]


# -- FedProx ---------------------------------------------------------------------------------


def test_prox_term_and_gradient() -> None:
    w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    ref = torch.tensor([0.0, 0.0, 1.0])
    term = A.prox_term(w, ref, mu=0.1)
    assert float(term.detach()) == pytest.approx(0.05 * (1 + 4 + 4))
    (auto,) = torch.autograd.grad(term, w)
    assert torch.allclose(A.prox_grad(w.detach(), ref, 0.1), auto)
    assert A.prox_grad(w.detach(), ref, 0.1).tolist() == pytest.approx([0.1, -0.2, 0.2])


# -- pruning ---------------------------------------------------------------------------------


def _numpy_top(x: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-np.abs(x.reshape(-1)), kind="stable")[:k].tolist())


@pytest.mark.parametrize("keep", [0, 1, 7, 99, 100])
def test_magnitude_mask_keeps_exactly_the_largest(keep: int) -> None:
    w = _rand(10, 10, seed=3)
    m = A.magnitude_mask(w, keep)
    assert int(m.sum()) == keep
    assert set(np.flatnonzero(m.numpy()).tolist()) == _numpy_top(w.numpy(), keep)


def test_prune_to_ratio_uses_the_thres_count() -> None:
    w = _rand(64, 3, 5, 5, seed=4)  # conv1: 4,800 entries
    for r, k in ((0.1, 480), (0.3, 1440), (1.0, 4800)):
        assert int(A.prune_to_ratio(w, r).sum()) == k


def test_prune_fraction_drops_the_smallest_kept() -> None:
    w = torch.tensor([5.0, -4.0, 3.0, 0.5, -9.0, 0.1, 0.0, 2.0])
    mask = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0])  # 7 kept; -9 already pruned
    # 20% of 7 kept = floor(1.4) = 1 -> drop the smallest kept |w|: the kept 0.0
    new = A.prune_fraction(w, mask, 0.2, min_keep=2)
    assert new.tolist() == [1, 1, 1, 1, 0, 1, 0, 1]
    # 50%: floor(3.5) = 3 dropped -> keep 4: 5, -4, 3, 2
    assert A.prune_fraction(w, mask, 0.5, min_keep=2).tolist() == [1, 1, 1, 0, 0, 0, 0, 1]
    # never below min_keep
    assert int(A.prune_fraction(w, mask, 0.9, min_keep=5).sum()) == 5
    assert torch.equal(A.prune_fraction(w, mask, 0.5, min_keep=7), mask)


def test_reset_to_initial() -> None:
    w0 = torch.tensor([1.0, 2.0, 3.0])
    assert A.reset_to_initial(w0, torch.tensor([0.0, 1.0, 1.0])).tolist() == [0.0, 2.0, 3.0]


# -- Dis-PFL ---------------------------------------------------------------------------------


def test_cosine_anneal_hand_values() -> None:
    assert A.cosine_anneal(0.5, 0, 100) == pytest.approx(0.5)
    assert A.cosine_anneal(0.5, 50, 100) == pytest.approx(0.25)
    assert A.cosine_anneal(0.5, 25, 100) == pytest.approx(0.25 * (1 + math.cos(math.pi / 4)))
    assert A.cosine_anneal(0.5, 100, 100) == 0.0
    assert A.cosine_anneal(0.5, 3, 0) == 0.0


def test_regrow_count() -> None:
    assert A.regrow_count(kept=40, numel=100, alpha=0.5) == 20
    assert A.regrow_count(kept=90, numel=100, alpha=0.5) == 10  # only 10 inactive entries
    assert A.regrow_count(kept=7, numel=100, alpha=0.1) == 0


def test_prune_and_regrow_hand_values() -> None:
    w = torch.tensor([4.0, -1.0, 3.0, 0.0, 2.0, 0.0, 0.0, 0.0])
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0])  # 4 kept
    grad = torch.tensor([9.0, 9.0, 9.0, 0.1, 9.0, -5.0, 0.3, 2.0])
    # alpha 0.5: swap 2 -> drop -1 and 2 (smallest |w|), grow -5 and 2 (largest inactive |g|)
    assert A.prune_and_regrow(w, mask, grad, 0.5).tolist() == [1, 0, 1, 0, 0, 1, 0, 1]


def test_prune_and_regrow_keeps_density_against_numpy() -> None:
    w, g = _rand(2000, seed=5), _rand(2000, seed=6)
    mask = A.magnitude_mask(_rand(2000, seed=7), 600)
    w = w * mask
    new = A.prune_and_regrow(w, mask, g, 0.3)
    assert int(new.sum()) == 600
    k = A.regrow_count(600, 2000, 0.3)
    kept = np.flatnonzero(mask.numpy())
    inactive = np.flatnonzero(mask.numpy() == 0)
    survivors = set(kept[np.argsort(-np.abs(w.numpy()[kept]))[: 600 - k]].tolist())
    grown = set(inactive[np.argsort(-np.abs(g.numpy()[inactive]))[:k]].tolist())
    assert set(np.flatnonzero(new.numpy()).tolist()) == survivors | grown


# -- mixing weights --------------------------------------------------------------------------


def _path3() -> np.ndarray:
    return np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])


def test_uniform_mixing_hand_values() -> None:
    assert mixing_weights(_path3(), 1, "uniform") == pytest.approx({1: 1 / 3, 0: 1 / 3, 2: 1 / 3})
    assert mixing_weights(_path3(), 0, "uniform") == pytest.approx({0: 0.5, 1: 0.5})


def test_metropolis_mixing_hand_values_and_double_stochasticity() -> None:
    # degrees 1, 2, 1: a_01 = 1 / (1 + max(1, 2)) = 1/3, a_00 = 2/3, a_11 = 1/3
    assert mixing_weights(_path3(), 0, "metropolis") == pytest.approx({0: 2 / 3, 1: 1 / 3})
    assert mixing_weights(_path3(), 1, "metropolis") == pytest.approx(
        {1: 1 / 3, 0: 1 / 3, 2: 1 / 3})
    adj = np.loadtxt(__import__("pathlib").Path(__file__).parents[1] / "configs"
                     / "topology_er20_p05.txt", dtype=int)
    full = np.zeros((20, 20))
    for i in range(20):
        for j, a in mixing_weights(adj, i, "metropolis").items():
            full[i, j] = a
    np.testing.assert_allclose(full.sum(0), 1.0)
    np.testing.assert_allclose(full.sum(1), 1.0)
    np.testing.assert_allclose(full, full.T)


def test_unknown_mixing_scheme() -> None:
    with pytest.raises(TopologyError, match="mixing"):
        mixing_weights(ring(4), 0, "max")


# -- sparse weight payloads ------------------------------------------------------------------


def test_dense_payload_roundtrip() -> None:
    v = np.random.default_rng(0).standard_normal(1001).astype(np.float32)
    payload = encode_weights(v)
    assert payload.size == 4 * 1001
    values, keep = decode_weights(payload, 1001)
    assert np.array_equal(values, v) and keep.all()


@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 0.95, 1.0])
def test_masked_payload_roundtrip_and_size(density: float) -> None:
    rng = np.random.default_rng(1)
    n = 1003
    keep = rng.random(n) < density
    v = np.where(keep, rng.standard_normal(n), 0.0).astype(np.float32)
    payload = encode_weights(v, keep)
    kept = int(keep.sum())
    assert payload.size == weights_payload_size(n, kept) == min(4 * n, packed_size(n) + 4 * kept)
    values, got_keep = decode_weights(payload, n)
    assert np.array_equal(values, v) and np.array_equal(got_keep, keep)


def test_a_kept_zero_forces_the_sparse_form() -> None:
    keep = np.ones(64, dtype=bool)
    v = np.ones(64, dtype=np.float32)
    v[5] = 0.0  # kept, but zero: a dense payload could not say so
    payload = encode_weights(v, keep)
    assert payload.size == packed_size(64) + 4 * 64
    assert decode_weights(payload, 64)[1].all()


def test_sparse_payload_of_the_wrong_length_is_rejected() -> None:
    keep = np.zeros(80, dtype=bool)
    keep[:10] = True
    payload = encode_weights(np.where(keep, 1.5, 0.0).astype(np.float32), keep)
    with pytest.raises(ProtocolError, match="does not match its mask"):
        decode_weights(payload[:-4], 80)


def test_paper_accounting_and_ring_bytes() -> None:
    assert paper_bits(1_227_328, 1_227_328, mask=False) == 32 * 1_227_328
    assert paper_bits(100, 30, mask=True) == 30 * 32 + 100
    assert ring_allreduce_bytes(100, 4) == 2 * 3 * 25
    assert ring_allreduce_bytes(101, 4) == 2 * 3 * 26
    assert ring_allreduce_bytes(100, 1) == 0
