"""The paper's masked AlexNet: shapes, forward pass, shared seeded weights, init scale."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mcepl_dist import model as MD


def test_paper_layer_shapes_and_masked_count() -> None:
    shapes = MD.layer_shapes(1.0)
    assert shapes == [(64, 3, 5, 5), (128, 64, 5, 5), (256, 128, 5, 5), (192, 1024), (10, 192)]
    sizes = [math.prod(s) for s in shapes]
    assert sizes == [4800, 204_800, 819_200, 196_608, 1920]
    assert sum(sizes) == 1_227_328
    assert MD.LAYER_NAMES == ("conv1", "conv2", "conv3", "fc1", "fc2")
    assert MD.CONV_LAYERS == 3


def test_build_network_paper_model() -> None:
    net = MD.build_network(0)
    assert net.num_masked == 1_227_328
    assert net.shapes == MD.layer_shapes(1.0)
    assert [tuple(b.shape) for b in net.biases] == [(192,), (10,)]
    assert sum(b.numel() for b in net.biases) == 202
    assert all(w.dtype == torch.float32 for w in net.weights)


def test_eighth_width_shapes() -> None:
    assert MD.layer_shapes(0.125) == [(8, 3, 5, 5), (16, 8, 5, 5), (32, 16, 5, 5), (24, 128),
                                      (10, 24)]


def test_fan_in() -> None:
    assert MD.fan_in((64, 3, 5, 5)) == 75
    assert MD.fan_in((192, 1024)) == 1024


@pytest.mark.parametrize("width", [1.0, 0.125])
def test_forward_output_shape(width: float) -> None:
    net = MD.build_network(1, width=width)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = MD.forward(net, x, list(net.weights))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_forward_intermediate_shapes_match_table() -> None:
    # 32 -conv5 pad1-> 30 -pool3/2-> 14 -conv-> 12 -pool-> 5 -conv-> 3 -pool pad1-> 2
    x = torch.zeros(1, 3, 32, 32)
    h = F.max_pool2d(F.conv2d(x, torch.zeros(64, 3, 5, 5), padding=1), 3, 2, 0)
    assert h.shape == (1, 64, 14, 14)
    h = F.max_pool2d(F.conv2d(h, torch.zeros(128, 64, 5, 5), padding=1), 3, 2, 0)
    assert h.shape == (1, 128, 5, 5)
    h = F.max_pool2d(F.conv2d(h, torch.zeros(256, 128, 5, 5), padding=1), 3, 2, 1)
    assert h.shape == (1, 256, 2, 2)
    assert h.flatten(1).shape[1] == MD.layer_shapes(1.0)[3][1] == 1024


def test_forward_all_zero_weights_gives_fc2_bias() -> None:
    net = MD.build_network(2, width=0.125)
    zeros = [torch.zeros_like(w) for w in net.weights]
    out = MD.forward(net, torch.randn(3, 3, 32, 32), zeros)
    # every hidden unit is ELU(0 + b1); the zero fc2 weights leave only b2
    torch.testing.assert_close(out, net.biases[1].expand(3, 10))


def test_forward_logits_elu_knob() -> None:
    plain = MD.build_network(3, width=0.125)
    elu = MD.build_network(3, width=0.125, logits_elu=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    a = MD.forward(plain, x, list(plain.weights))
    b = MD.forward(elu, x, list(elu.weights))
    torch.testing.assert_close(b, F.elu(a))


def test_forward_gradient_flows_to_effective_weights() -> None:
    net = MD.build_network(4, width=0.125)
    eff = [w.clone().requires_grad_() for w in net.weights]
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    loss = F.cross_entropy(MD.forward(net, x, eff), torch.tensor([0, 1, 2, 3]))
    grads = torch.autograd.grad(loss, eff)
    assert all(g.shape == w.shape and g.abs().sum() > 0 for g, w in zip(grads, eff,
                                                                           strict=True))


def test_build_network_same_seed_identical_different_seed_differs() -> None:
    a = MD.build_network(7, width=0.125)
    b = MD.build_network(7, width=0.125)
    c = MD.build_network(8, width=0.125)
    for wa, wb, wc in zip(a.weights, b.weights, c.weights, strict=True):
        assert torch.equal(wa, wb)
        assert not torch.equal(wa, wc)
    for ba, bb, bc in zip(a.biases, b.biases, c.biases, strict=True):
        assert torch.equal(ba, bb)
        assert not torch.equal(ba, bc)


def test_kaiming_normal_std() -> None:
    net = MD.build_network(0)
    for w in net.weights[1:4]:  # conv2, conv3, fc1: >= 196k samples each
        std = math.sqrt(2.0 / MD.fan_in(tuple(w.shape)))
        assert float(w.std()) == pytest.approx(std, rel=0.01)
        assert abs(float(w.mean())) < 0.01 * std
    w1 = net.weights[0]  # 4800 samples: std sqrt(2/75)
    assert float(w1.std()) == pytest.approx(math.sqrt(2 / 75), rel=0.05)


def test_biases_are_torch_default_uniform() -> None:
    net = MD.build_network(0)
    for b, fan in zip(net.biases, (1024, 192), strict=True):
        bound = 1 / math.sqrt(fan)
        assert float(b.abs().max()) <= bound
        assert float(b.abs().max()) > 0.8 * bound  # spread over the whole interval


def test_other_init_schemes() -> None:
    gen = torch.Generator().manual_seed(0)
    shape = (200, 50)
    std = math.sqrt(2 / 50)
    sc = MD.init_weight(shape, "signed_constant", gen, retention=0.25)
    torch.testing.assert_close(sc.abs(), torch.full(shape, std / 0.5))
    assert 0.4 < float((sc > 0).float().mean()) < 0.6
    u = MD.init_weight(shape, "uniform", gen, retention=1.0)
    assert float(u.min()) >= -1 and float(u.max()) <= 1
    td = MD.init_weight(shape, "torch_default", gen, retention=1.0)
    assert float(td.abs().max()) <= 1 / math.sqrt(50)
    ks = MD.init_weight(shape, "kaiming_scaled", gen, retention=0.25)
    assert float(ks.std()) == pytest.approx(std / 0.5, rel=0.05)
    with pytest.raises(ValueError, match="nope"):
        MD.init_weight(shape, "nope", gen, retention=1.0)


def test_normalize_maps_to_minus_one_one() -> None:
    x = torch.tensor([0, 127, 255], dtype=torch.uint8)
    out = MD.normalize(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([-1.0, 127 / 127.5 - 1, 1.0]))


@pytest.mark.parametrize(("channels", "size", "alpha"), [(64, 4, 2e-5), (16, 4, 1e-4),
                                                         (7, 5, 1e-3), (3, 2, 1e-2)])
def test_fast_local_response_norm_matches_torch(channels: int, size: int, alpha: float) -> None:
    gen = torch.Generator().manual_seed(channels)
    x = (torch.randn(4, channels, 9, 9, generator=gen) * 20).requires_grad_()
    ours = MD.local_response_norm(x, size, alpha, 0.75)
    ref = F.local_response_norm(x, size, alpha=alpha, beta=0.75)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    g_ours, = torch.autograd.grad(ours.square().sum(), x)
    g_ref, = torch.autograd.grad(ref.square().sum(), x)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("logits_elu", [False, True])
def test_forward_and_gradients_match_the_torch_reference(logits_elu: bool) -> None:
    """The channels-last conv stack and the fused LRN change nothing beyond float rounding."""
    net = MD.build_network(3, width=0.25, logits_elu=logits_elu)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(6, 3, 32, 32, generator=gen)
    masks = [(torch.rand(w.shape, generator=gen) < 0.4).float() for w in net.weights]
    ours_w = [(w * m).requires_grad_() for w, m in zip(net.weights, masks)]
    ref_w = [(w * m).requires_grad_() for w, m in zip(net.weights, masks)]
    ours, ref = MD.forward(net, x, ours_w), MD.reference_forward(net, x, ref_w)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    g_ours = torch.autograd.grad(ours.square().sum(), ours_w)
    g_ref = torch.autograd.grad(ref.square().sum(), ref_w)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
