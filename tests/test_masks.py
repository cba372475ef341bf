"""The per-layer equations of MCE-PL (mcepl_dist/masks.py) and the MCE-PL strategy's steps
2, 4 and 5, checked against values computed independently by hand or with numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mcepl_dist import masks as M
from mcepl_dist.algorithms import AgentSpec, IndMask
from mcepl_dist.algorithms.bits import pack_bits
from mcepl_dist.algorithms.mcepl import MCEPL
from mcepl_dist.config import AlgorithmConfig
from mcepl_dist.model import build_network, forward

# --------------------------------------------------------------------------------------
# numpy reference implementations (written from ALGORITHM.md, not from the package)


def np_keep(numel: int, ratio: float) -> int:
    """k = numel - floor((1 - r) * numel), with the product done in exact decimal."""
    from fractions import Fraction

    dropped = math.floor((1 - Fraction(str(ratio))) * numel)
    return numel - dropped


def np_thres(mag: np.ndarray, ratio: float) -> np.ndarray:
    flat = mag.reshape(-1)
    k = np_keep(flat.size, ratio)
    order = np.argsort(-flat, kind="stable")
    if 0 < k < flat.size:
        # the test is only meaningful when the k-th and (k+1)-th magnitudes differ
        assert flat[order[k - 1]] != flat[order[k]]
    out = np.zeros(flat.size, dtype=np.float32)
    out[order[:k]] = 1.0
    return out.reshape(mag.shape)


def np_fil(mask: np.ndarray, threshold: int) -> np.ndarray:
    out = mask.copy()
    if threshold <= 0:
        return out
    for row in range(mask.shape[0]):
        if mask[row].sum() <= threshold:
            out[row] = 0
    return out


def np_mask_from(y: np.ndarray, ratio: float, threshold: int) -> np.ndarray:
    return np_fil(np_thres(np.abs(y), ratio), threshold)


def np_aggregate(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    return z + np.abs(z).mean(dtype=np.float64).astype(np.float32) * np.sign(z) * p


def np_lasso_grad(z: np.ndarray, lam: float) -> np.ndarray:
    rows = z.reshape(z.shape[0], -1).astype(np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    safe = np.where(norms > 0, norms, 1.0)
    return (lam * np.where(norms > 0, rows / safe, 0.0)).reshape(z.shape)


# --------------------------------------------------------------------------------------
# keep_count


@pytest.mark.parametrize(
    ("numel", "ratio", "expected"),
    [
        (4800, 0.3, 1440),  # conv1 of the paper model at r = 0.3
        (10, 0.7, 7),  # (1 - 0.7) * 10 = 3.0000000000000004 in floating point
        (1920, 0.1, 192),  # fc2 at r = 0.1: 0.9 * 1920 is not exact in binary
        (10, 0.3, 3),  # 0.7 * 10 = 7.000000000000001
        (10, 0.1, 1),
        (100, 1.0, 100),
        (7, 0.5, 4),  # 7 - floor(3.5) = 4
        (1_227_328, 0.3, 1_227_328 - 859_129),  # floor(0.7 * 1227328) = floor(859129.6)
    ],
)
def test_keep_count_hand_values(numel: int, ratio: float, expected: int) -> None:
    assert M.keep_count(numel, ratio) == expected
    assert np_keep(numel, ratio) == expected


def test_keep_count_matches_exact_formula_over_grid() -> None:
    ratios = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    for numel in (1, 3, 10, 30, 75, 240, 600, 1920, 3200, 4800):
        for r in ratios:
            assert M.keep_count(numel, r) == np_keep(numel, r), (numel, r)


# --------------------------------------------------------------------------------------
# thres / fil / mask_from


def test_thres_keeps_exactly_k_largest_per_layer() -> None:
    rng = np.random.default_rng(0)
    mag = rng.random((6, 3, 5, 5)).astype(np.float32)
    out = M.thres(torch.from_numpy(mag), 0.3).numpy()
    k = 450 - math.floor(0.7 * 450)  # 135
    assert k == 135
    assert out.shape == mag.shape
    assert out.sum() == k
    assert set(np.unique(out)) <= {0.0, 1.0}
    expected = np.zeros(mag.size, dtype=np.float32)
    expected[np.argsort(-mag.reshape(-1))[:k]] = 1
    np.testing.assert_array_equal(out, expected.reshape(mag.shape))


def test_thres_small_hand_example() -> None:
    mag = torch.tensor([[0.5, 0.1, 0.9], [0.3, 0.7, 0.2]])
    # r = 0.5 of 6 -> k = 3: 0.9, 0.7, 0.5
    out = M.thres(mag, 0.5)
    assert out.tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_thres_ratio_one_keeps_everything_and_tiny_ratio_keeps_at_least_formula() -> None:
    mag = torch.rand(4, 5, generator=torch.Generator().manual_seed(1))
    assert M.thres(mag, 1.0).sum().item() == 20
    # 0.01 of 20: k = 20 - floor(19.8) = 1
    out = M.thres(mag, 0.01)
    assert out.sum().item() == 1
    assert out.reshape(-1)[mag.reshape(-1).argmax()].item() == 1


@pytest.mark.parametrize("use_numpy", [True, False])
def test_top_indices_numpy_and_torch_paths_agree(use_numpy: bool) -> None:
    if not hasattr(M, "top_indices"):
        pytest.skip("masks.top_indices not present in this version")
    rng = np.random.default_rng(8)
    flat = rng.random(1000).astype(np.float32)
    idx = M.top_indices(torch.from_numpy(flat), 137, use_numpy=use_numpy)
    expected = np.sort(np.argsort(-flat)[:137])
    np.testing.assert_array_equal(np.sort(idx.numpy()), expected)


def test_fil_conv_zeroes_filters_with_at_most_threshold_ones() -> None:
    mask = np.zeros((4, 2, 3, 3), dtype=np.float32)  # 18 entries per filter
    counts = [3, 4, 5, 18]
    for f, c in enumerate(counts):
        mask[f].reshape(-1)[:c] = 1
    out = M.fil(torch.from_numpy(mask), 4).numpy()
    # filters 0 (3 ones) and 1 (4 ones) are zeroed; 2 and 3 are kept untouched
    np.testing.assert_array_equal(out.reshape(4, -1).sum(1), [0, 0, 5, 18])
    np.testing.assert_array_equal(out[2:], mask[2:])
    np.testing.assert_array_equal(out, np_fil(mask, 4))


def test_fil_fc_rows() -> None:
    mask = torch.tensor(
        [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]],
        dtype=torch.float32,
    )
    out = M.fil(mask, 2)
    assert out.tolist() == [[0] * 5, [1, 1, 1, 0, 0], [0] * 5, [1] * 5]


def test_dead_rows_names_the_labels_whose_output_row_is_all_zero() -> None:
    # The c_i = 5 seed 2 failure: rows 3, 4, 6, 9 live, the agent's labels 0, 2, 5, 7, 8 dead.
    w = torch.zeros(10, 6)
    for row in (3, 4, 6, 9):
        w[row, row % 6] = 0.7
    assert M.dead_rows(w, [0, 2, 5, 7, 8]) == [0, 2, 5, 7, 8]
    assert M.dead_rows(w, [9, 3, 1]) == [1]  # in the order given
    assert M.dead_rows(w, []) == []
    conv = torch.ones(4, 2, 3, 3)
    conv[1:3] = 0
    conv[1, 1, 2, 2] = -1e-3  # one nonzero entry keeps a filter live
    assert M.dead_rows(conv, range(4)) == [2]


def test_fil_threshold_zero_is_identity() -> None:
    mask = (torch.rand(5, 7, generator=torch.Generator().manual_seed(2)) > 0.8).float()
    mask[0] = 0
    mask[1] = 0
    mask[1, 3] = 1  # a row with a single one survives when Fil is off
    out = M.fil(mask, 0)
    assert torch.equal(out, mask)


def test_mask_from_is_fil_of_thres_of_abs() -> None:
    rng = np.random.default_rng(3)
    y = rng.standard_normal((8, 30)).astype(np.float32)
    out = M.mask_from(torch.from_numpy(y), 0.3, 8).numpy()
    np.testing.assert_array_equal(out, np_mask_from(y, 0.3, 8))
    # negative entries of large magnitude count: it is |y| that is ranked
    big_neg = np.unravel_index(np.argmin(y), y.shape)
    assert np_thres(np.abs(y), 0.3)[big_neg] == 1


# --------------------------------------------------------------------------------------
# group lasso


def test_group_lasso_value_by_hand() -> None:
    z = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    # row norms 5, 0, 1 -> lam * 6
    assert M.group_lasso(z, 0.5).item() == pytest.approx(3.0)


def test_group_lasso_value_conv_vs_numpy() -> None:
    rng = np.random.default_rng(4)
    z = rng.standard_normal((5, 3, 2, 2)).astype(np.float32)
    expected = 0.001 * np.linalg.norm(z.reshape(5, -1).astype(np.float64), axis=1).sum()
    assert M.group_lasso(torch.from_numpy(z), 0.001).item() == pytest.approx(expected, rel=1e-6)


def test_group_lasso_grad_vs_numpy_and_autograd() -> None:
    rng = np.random.default_rng(5)
    z = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    lam = 0.01
    got = M.group_lasso_grad(torch.from_numpy(z), lam).numpy()
    np.testing.assert_allclose(got, np_lasso_grad(z, lam), rtol=1e-5, atol=1e-9)

    zt = torch.from_numpy(z.copy()).requires_grad_()
    M.group_lasso(zt, lam).backward()
    assert zt.grad is not None
    np.testing.assert_allclose(got, zt.grad.numpy(), rtol=1e-5, atol=1e-9)


def test_group_lasso_grad_zero_row_gives_zero() -> None:
    z = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, -4.0]])
    g = M.group_lasso_grad(z, 2.0)
    assert g[0].tolist() == [0.0, 0.0, 0.0]
    assert g[1].tolist() == pytest.approx([2.0 * 3 / 5, 0.0, 2.0 * -4 / 5])
    assert torch.isfinite(g).all()


# --------------------------------------------------------------------------------------
# straight-through gradient


def test_straight_through_grad_on_tiny_linear_model() -> None:
    rng = np.random.default_rng(6)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    z = rng.standard_normal((3, 4)).astype(np.float32)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = np.array([0, 2, 1, 2, 0])
    m = np_thres(np.abs(z), 0.5)

    # dL/dw_eff through autograd, with w_eff = w * m a leaf
    w_eff = (torch.from_numpy(w) * torch.from_numpy(m)).requires_grad_()
    loss = F.cross_entropy(torch.from_numpy(x) @ w_eff.T, torch.from_numpy(y))
    (g_eff,) = torch.autograd.grad(loss, w_eff)
    got = M.straight_through_grad(g_eff, torch.from_numpy(w), torch.from_numpy(z)).numpy()

    # independent: for a linear layer + mean cross-entropy, dL/dW = (softmax - onehot)^T x / B
    logits = x.astype(np.float64) @ (w * m).T.astype(np.float64)
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    onehot = np.eye(3)[y]
    g_np = (prob - onehot).T @ x / len(y)
    np.testing.assert_allclose(g_eff.numpy(), g_np, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, g_np * w * np.sign(z), rtol=1e-5, atol=1e-6)

    # and the same through the mask: dL/dm = dL/dw_eff * w, then times sign(z)
    mt = torch.from_numpy(m).requires_grad_()
    loss2 = F.cross_entropy(torch.from_numpy(x) @ (torch.from_numpy(w) * mt).T,
                            torch.from_numpy(y))
    (g_m,) = torch.autograd.grad(loss2, mt)
    np.testing.assert_allclose(got, g_m.numpy() * np.sign(z), rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------
# aggregation, fine-tuning, neighbour mean


def test_aggregation_tensor_by_hand() -> None:
    z = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    p = torch.tensor([[0.5, 1.0], [1.0, 0.0]])
    # c = mean |z| = 6 / 4 = 1.5
    # y = z + 1.5 * sign(z) * p = [[1 + .75, -2 - 1.5], [0 + 0, 3 + 0]]
    y = M.aggregation_tensor(z, p)
    assert y.tolist() == [[1.75, -3.5], [0.0, 3.0]]


def test_aggregation_tensor_with_max_by_hand() -> None:
    z = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    p = torch.tensor([[0.5, 1.0], [1.0, 0.0]])
    # c = max |z| = 3 (16a as printed)
    # y = z + 3 * sign(z) * p = [[1 + 1.5, -2 - 3], [0 + 0, 3 + 0]]
    y = M.aggregation_tensor(z, p, scale="max")
    assert y.tolist() == [[2.5, -5.0], [0.0, 3.0]]


def test_max_abs_by_hand_and_constant_for_autograd() -> None:
    assert M.max_abs(torch.tensor([1.0, -3.0, 0.0, 2.0])).item() == 3.0
    z = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    M.aggregation_tensor(z, torch.ones(3), scale="max").sum().backward()
    assert z.grad is not None and z.grad.tolist() == [1.0, 1.0, 1.0]


def test_aggregation_tensor_mean_is_constant_for_autograd() -> None:
    z = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    p = torch.tensor([1.0, 1.0, 1.0])
    M.aggregation_tensor(z, p).sum().backward()
    # c(z) gets no gradient: d/dz of (z + c sign(z) p) = 1 almost everywhere
    assert z.grad is not None and z.grad.tolist() == [1.0, 1.0, 1.0]


def test_fine_tune_by_hand() -> None:
    z = torch.tensor([1.0, 2.0, 3.0, 4.0])
    g = torch.tensor([0.5, -1.0, 2.0, 1.0])
    p = torch.tensor([0.0, 0.5, 1.0, 0.25])
    out = M.fine_tune(z, g, p, eta_ft=2.0)
    # z - 2 * g * p = [1 - 0, 2 + 1, 3 - 4, 4 - 0.5]
    assert out.tolist() == [1.0, 3.0, -1.0, 3.5]


def test_neighbor_mean_by_hand_and_empty() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    c = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    out = M.neighbor_mean([a, b, c], like=a)
    np.testing.assert_allclose(out.numpy(), [[2 / 3, 0.0], [2 / 3, 1 / 3]], rtol=1e-6)
    like = torch.ones(2, 3)
    empty = M.neighbor_mean([], like=like)
    assert empty.shape == (2, 3)
    assert torch.equal(empty, torch.zeros(2, 3))


def test_mean_abs_by_hand() -> None:
    assert M.mean_abs(torch.tensor([1.0, -3.0, 0.0, 4.0])).item() == 2.0


# --------------------------------------------------------------------------------------
# sgd_direction vs torch.optim.SGD


@pytest.mark.parametrize(("weight_decay", "momentum"), [(0.0, 0.0), (5e-4, 0.0), (0.1, 0.9),
                                                         (0.0, 0.5)])
def test_sgd_direction_matches_torch_sgd(weight_decay: float, momentum: float) -> None:
    gen = torch.Generator().manual_seed(7)
    z0 = torch.randn(4, 3, generator=gen)
    grads = [torch.randn(4, 3, generator=gen) for _ in range(3)]
    lr = 0.3

    param = torch.nn.Parameter(z0.clone())
    opt = torch.optim.SGD([param], lr=lr, weight_decay=weight_decay, momentum=momentum)
    z, buf = z0.clone(), None
    for g in grads:
        param.grad = g.clone()
        opt.step()
        d, buf = M.sgd_direction(g, z, buf, weight_decay, momentum)
        z = z - lr * d
        torch.testing.assert_close(z, param.detach(), rtol=1e-6, atol=1e-7)
    if momentum == 0:
        assert buf is None


def test_sgd_direction_by_hand() -> None:
    z = torch.tensor([1.0, -2.0])
    g = torch.tensor([0.5, 0.5])
    d, buf = M.sgd_direction(g, z, None, 0.1, 0.9)
    assert d.tolist() == pytest.approx([0.6, 0.3])  # g + 0.1 z
    d2, _ = M.sgd_direction(g, z, buf, 0.1, 0.9)
    assert d2.tolist() == pytest.approx([0.9 * 0.6 + 0.6, 0.9 * 0.3 + 0.3])


# --------------------------------------------------------------------------------------
# MCE-PL steps 1-5 on the eighth-width model (width 0.125)


CPU = torch.device("cpu")


def _spec(algo: AlgorithmConfig, retention: float = 0.3, seed: int = 3) -> AgentSpec:
    net = build_network(seed, width=0.125)
    return AgentSpec(agent=1, seed=seed, retention=retention, net=net, algo=algo, device=CPU)


def _batch(n: int = 6, seed: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def _neighbour_masks(shapes: list[tuple[int, ...]], seed: int, density: float
                     ) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random(s) < density).astype(np.float32) for s in shapes]


def _payload(masks: list[np.ndarray]) -> np.ndarray:
    return pack_bits(torch.cat([torch.from_numpy(m).reshape(-1) for m in masks]))


def _reference_grad(spec: AgentSpec, z: list[np.ndarray], m: list[np.ndarray],
                    x: torch.Tensor, y: torch.Tensor, lam: float) -> list[np.ndarray]:
    """G = dL/dm * sign(z) + lam * z / ||z_row|| with m as the autograd leaf."""
    w = [t.numpy() for t in spec.net.weights]
    mt = [torch.from_numpy(mi.copy()).requires_grad_() for mi in m]
    eff = [torch.from_numpy(wi) * mi for wi, mi in zip(w, mt, strict=True)]
    loss = F.cross_entropy(forward(spec.net, x, eff), y)
    gm = torch.autograd.grad(loss, mt)
    return [g.numpy() * np.sign(zi) + np_lasso_grad(zi, lam).astype(np.float32)
            for g, zi in zip(gm, z, strict=True)]


def test_mcepl_steps_1_2_4_5_by_hand() -> None:
    eta, eta_ft, lam, fil, r = 10.0, 3.0, 0.001, 5, 0.3
    algo = AlgorithmConfig(eta=eta, eta_ft=eta_ft, lam=lam, fil_threshold=fil)
    spec = _spec(algo, retention=r)
    s = MCEPL(spec)
    shapes = spec.net.shapes

    # initial state: m^0 = Fil[Thres(|z^0|)], z^0 ~ U(+-1/sqrt(fan_in))
    z0 = [t.numpy().copy() for t in s.z]
    for zi, shape in zip(z0, shapes, strict=True):
        bound = 1 / math.sqrt(math.prod(shape[1:]))
        assert np.abs(zi).max() <= bound
    m0 = [np_mask_from(zi, r, fil) for zi in z0]
    for got, exp in zip(s.m, m0, strict=True):
        np.testing.assert_array_equal(got.numpy(), exp)
    assert sum((mi.reshape(mi.shape[0], -1).sum(1) == 0).sum() for mi in m0) > 0  # Fil acts

    # round 0: receive two neighbours' masks -> p = their mean
    nb0 = [_neighbour_masks(shapes, 100, 0.4), _neighbour_masks(shapes, 101, 0.6)]
    s.receive(0, {0: _payload(nb0[0]), 2: _payload(nb0[1])})
    p0 = [(a + b) / 2 for a, b in zip(*nb0, strict=True)]
    for got, exp in zip(s.p, p0, strict=True):
        np.testing.assert_array_equal(got.numpy(), exp)
    # round 0 leaves z and m alone
    for got, exp in zip(s.z, z0, strict=True):
        np.testing.assert_array_equal(got.numpy(), exp)

    # step 1 + 2
    x, y = _batch()
    s.local_step(x, y)
    G = _reference_grad(spec, z0, m0, x, y, lam)
    z_half = [zi - eta * g for zi, g in zip(z0, G, strict=True)]
    for got, exp in zip(s.z, z_half, strict=True):
        np.testing.assert_allclose(got.numpy(), exp, rtol=1e-4, atol=1e-6)
    m_half = [np_mask_from(np_aggregate(zh.numpy(), p), r, fil)
              for zh, p in zip(s.z, p0, strict=True)]
    for got, exp in zip(s.m_half, m_half, strict=True):
        np.testing.assert_array_equal(got.numpy(), exp)
    # the mask used for the forward pass has not changed yet
    for got, exp in zip(s.m, m0, strict=True):
        np.testing.assert_array_equal(got.numpy(), exp)

    # step 3: the message is m^{k-1/2} packed at 1 bit per entry, layers in order
    msg = s.message(1)
    expected_bits = np.packbits(np.concatenate([mh.reshape(-1) for mh in m_half]).astype(bool))
    np.testing.assert_array_equal(msg, expected_bits)

    # steps 4 + 5 with three neighbours' m^{k-1/2}
    z_half_actual = [t.numpy().copy() for t in s.z]
    nb1 = [_neighbour_masks(shapes, 200 + j, 0.3 + 0.2 * j) for j in range(3)]
    s.receive(1, {j: _payload(nb) for j, nb in zip((0, 2, 5), nb1, strict=True)})
    p1 = [(a + b + c) / 3 for a, b, c in zip(*nb1, strict=True)]
    for got, exp in zip(s.p, p1, strict=True):
        np.testing.assert_allclose(got.numpy(), exp, rtol=1e-6)
    z_k = [zh - eta_ft * g * p for zh, g, p in zip(z_half_actual, G, p1, strict=True)]
    for got, exp in zip(s.z, z_k, strict=True):
        np.testing.assert_allclose(got.numpy(), exp, rtol=1e-4, atol=1e-6)
    m_k = [np_mask_from(np_aggregate(zk.numpy(), p), r, fil) for zk, p in zip(s.z, p1,
                                                                             strict=True)]
    for got, exp in zip(s.m, m_k, strict=True):
        np.testing.assert_array_equal(got.numpy(), exp)
    # entries no neighbour keeps do not move in fine-tuning
    zero_p = p1[3] == 0
    np.testing.assert_array_equal(s.z[3].numpy()[zero_p], z_half_actual[3][zero_p])
    # Thres keeps exactly k per layer before Fil
    for mk, shape in zip(m_k, shapes, strict=True):
        assert mk.sum() <= np_keep(math.prod(shape), r)


def test_mcepl_fc_retention_applies_to_fc_layers_only() -> None:
    algo = AlgorithmConfig(fil_threshold=0, fc_retention=0.9)
    s = MCEPL(_spec(algo, retention=0.2))
    assert s.ratios == [0.2, 0.2, 0.2, 0.9, 0.9]
    counts = [int(m.sum()) for m in s.m]
    sizes = [math.prod(sh) for sh in s.spec.net.shapes]
    assert counts == [np_keep(n, r) for n, r in zip(sizes, s.ratios, strict=True)]


def test_ind_mask_never_communicates_and_mask_is_thres_of_abs_z() -> None:
    eta, lam, r = 10.0, 0.001, 0.3
    algo = AlgorithmConfig(name="ind_mask", eta=eta, lam=lam, fil_threshold=0)
    spec = _spec(algo, retention=r)
    s = IndMask(spec)
    z0 = [t.numpy().copy() for t in s.z]
    m0 = [np_thres(np.abs(zi), r) for zi in z0]
    for got, exp in zip(s.m, m0, strict=True):
        np.testing.assert_array_equal(got.numpy(), exp)

    assert s.message(0) is None
    s.receive(0, {})
    x, y = _batch(seed=12)
    s.local_step(x, y)
    assert s.message(1) is None
    s.receive(1, {})
    G = _reference_grad(spec, z0, m0, x, y, lam)
    for got, zi, g in zip(s.z, z0, G, strict=True):  # no fine-tuning: p stays 0
        np.testing.assert_allclose(got.numpy(), zi - eta * g, rtol=1e-4, atol=1e-6)
    for got, zi in zip(s.m, s.z, strict=True):
        np.testing.assert_array_equal(got.numpy(), np_thres(np.abs(zi.numpy()), r))
    for pl in s.p:
        assert not pl.any()


def test_jaccard_hand_values() -> None:
    a = np.array([1, 1, 0, 0, 1])
    b = np.array([1, 0, 1, 0, 1])
    assert M.jaccard(a, b) == pytest.approx(2 / 4)
    assert M.jaccard(a, a) == 1.0
    assert M.jaccard(a, 1 - a) == 0.0
    assert M.jaccard(np.zeros(3), np.zeros(3)) == 1.0


def test_independent_jaccard_matches_random_masks() -> None:
    assert M.independent_jaccard(0.5, 0.5) == pytest.approx(1 / 3)
    assert M.independent_jaccard(0.1, 0.3) == pytest.approx(0.03 / 0.37)
    rng = np.random.default_rng(0)
    a, b = rng.random(200_000) < 0.3, rng.random(200_000) < 0.6
    assert M.jaccard(a, b) == pytest.approx(M.independent_jaccard(0.3, 0.6), abs=0.005)
