"""MCE-PL knobs that change the strategy's state rather than one equation: the shared
Bernoulli initial neighbour masks, momentum and weight decay on z, eta_ft, and the
constant of the intermediate aggregation (16a)."""

from __future__ import annotations

import dataclasses

import torch

from mcepl_dist.algorithms import AgentSpec
from mcepl_dist.algorithms.mcepl import MCEPL
from mcepl_dist.config import AlgorithmConfig
from mcepl_dist.model import build_network

NET = build_network(seed=5, width=0.125)


def _agent(agent: int, **algo: object) -> MCEPL:
    cfg = dataclasses.replace(AlgorithmConfig(fil_threshold=0), **algo)  # type: ignore[arg-type]
    return MCEPL(AgentSpec(agent=agent, seed=5, retention=0.3, net=NET, algo=cfg,
                           device=torch.device("cpu")))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 32, 32, generator=gen), torch.randint(0, 10, (8,), generator=gen)


def test_bernoulli_init_is_one_shared_pattern_and_skips_round_zero() -> None:
    knobs = {"neighbor_init": "bernoulli", "bernoulli_p": 0.25}
    a, b = _agent(0, **knobs), _agent(3, **knobs)

    assert a.message(0) is None and b.message(0) is None
    for pa, pb in zip(a.p, b.p, strict=True):
        assert torch.equal(pa, pb)  # the same pattern on every agent, never sent
    ones = sum(float(p.sum()) for p in a.p) / sum(p.numel() for p in a.p)
    assert abs(ones - 0.25) < 0.01
    # the agents' own scores still differ
    assert not torch.equal(a.z[0], b.z[0])


def test_exchange_init_starts_from_zero_and_sends_m0() -> None:
    a = _agent(0)
    assert all(float(p.abs().sum()) == 0 for p in a.p)
    assert a.message(0) is not None


def test_momentum_and_weight_decay_follow_torch_sgd() -> None:
    x, y = _batch()
    plain, heavy = _agent(0), _agent(0, momentum=0.9, weight_decay=0.01)
    z0 = [z.clone() for z in heavy.z]
    opt_params = [z.clone().requires_grad_() for z in z0]
    opt = torch.optim.SGD(opt_params, lr=heavy.spec.algo.eta, momentum=0.9, weight_decay=0.01)

    for _ in range(2):
        for agent in (plain, heavy):
            agent.local_step(x, y)
        for p, g in zip(opt_params, heavy.grad, strict=True):
            p.grad = g.clone()
        opt.step()
        # keep the mask fixed so both follow the same gradients (no receive between steps)

    for z, p in zip(heavy.z, opt_params, strict=True):
        torch.testing.assert_close(z, p.detach(), rtol=1e-6, atol=1e-7)
    assert not torch.equal(plain.z[0], heavy.z[0])


def test_eta_ft_scales_only_the_fine_tune_step() -> None:
    x, y = _batch()
    a, b = _agent(0, eta_ft=0.0), _agent(0, eta_ft=2.0)
    neighbor = _agent(1)
    payload = neighbor.message(0)
    assert payload is not None
    for agent in (a, b):
        agent.receive(0, {1: payload})
        agent.local_step(x, y)
    z_half = [z.clone() for z in a.z]
    for agent in (a, b):
        agent.receive(1, {1: payload})

    for zh, za in zip(z_half, a.z, strict=True):
        assert torch.equal(zh, za)  # eta_ft 0: no fine-tuning
    for zh, zb, g, p in zip(z_half, b.z, b.grad, b.p, strict=True):
        torch.testing.assert_close(zb, zh - 2.0 * g * p)


def test_scale_16a_max_makes_the_intermediate_mask_follow_the_neighbours() -> None:
    """With c = max |z| an entry every neighbour keeps (p = 1) outranks every entry none
    keeps, so with one neighbour at the same r the intermediate mask is its mask. The
    mean (the default) only leans towards it, and step 5 uses the mean either way."""
    x, y = _batch()
    neighbor = _agent(1)
    payload = neighbor.message(0)
    assert payload is not None
    strong, mean = _agent(0, scale_16a="max"), _agent(0)
    for agent in (strong, mean):
        agent.receive(0, {1: payload})
        agent.local_step(x, y)

    for mh, mn in zip(strong.m_half, neighbor.m, strict=True):
        assert torch.equal(mh, mn)
    assert not all(torch.equal(mh, mn) for mh, mn in zip(mean.m_half, neighbor.m, strict=True))

    strong.receive(1, {1: payload})  # step 5: the mean constant, so not the neighbour's mask
    assert not all(torch.equal(m, mn) for m, mn in zip(strong.m, neighbor.m, strict=True))
