"""The baselines as strategies: single-agent behaviour, then 4 real processes on gloo where
every aggregate is checked against a numpy recomputation from the payloads that were sent,
and every byte count against the payload sizes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_transport import EDGES, WORLD, expect_ok, launch, neighbours_of

from mcepl_dist.agent import local_steps
from mcepl_dist.algorithms import REGISTRY, AgentSpec, Strategy, build_strategy
from mcepl_dist.algorithms.dispfl import DisPFL
from mcepl_dist.algorithms.dsgd import DSGD
from mcepl_dist.algorithms.dsgd_prox import DSGDProx
from mcepl_dist.algorithms.lottery_dsgd import LotteryDSGD
from mcepl_dist.codec import (
    HEADER_BYTES,
    decode_weights,
    ring_allreduce_bytes,
    weights_payload_size,
)
from mcepl_dist.config import ALGORITHMS, AlgorithmConfig
from mcepl_dist.data import Sampler
from mcepl_dist.masks import keep_count
from mcepl_dist.model import build_network
from mcepl_dist.timing import PhaseTimer
from mcepl_dist.topology import mixing_weights
from mcepl_dist.transport import PeerTransport

WIDTH = 0.125
NET = build_network(seed=11, width=WIDTH)
NUMEL = NET.num_masked
SIZES = [w.numel() for w in NET.weights]
RETENTION = [0.5, 0.3, 0.2, 0.4]
ITERS = 3
CPU = torch.device("cpu")
ADJ = np.zeros((WORLD, WORLD), dtype=int)
for _a, _b in EDGES:
    ADJ[_a, _b] = ADJ[_b, _a] = 1
# Knobs that make every mechanism fire within a few iterations.
FAST = {"lottery_window": 1, "lottery_threshold": 0.0, "dispfl_every": 1, "lr": 0.05}


def _spec(name: str, agent: int, **knobs: Any) -> AgentSpec:
    algo = dataclasses.replace(AlgorithmConfig(name=name), **{**FAST, **knobs})
    return AgentSpec(agent=agent, seed=11, retention=RETENTION[agent], net=NET, algo=algo,
                     device=CPU, mixing=mixing_weights(ADJ, agent), iterations=ITERS * 4)


def _batch(agent: int, it: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1000 * agent + it)
    return torch.randn(16, 3, 32, 32, generator=gen), torch.randint(0, 10, (16,), generator=gen)


def _flat(tensors: list[torch.Tensor]) -> np.ndarray:
    return torch.cat([t.reshape(-1) for t in tensors]).numpy().copy()


# -- single agent ---------------------------------------------------------------------------


def test_registry_covers_every_configurable_algorithm() -> None:
    assert set(REGISTRY) == set(ALGORITHMS)
    for name in ALGORITHMS:
        assert build_strategy(_spec(name, 0)).name == name


def test_lottery_prunes_with_rewind_down_to_the_target_and_no_further() -> None:
    s = LotteryDSGD(_spec("lottery_dsgd", 1))  # r = 0.3
    targets = [keep_count(n, 0.3) for n in SIZES]
    density = [1.0]
    for it in range(12):
        stats = s.local_step(*_batch(1, it))
        density.append(stats["density"])
    assert density[1] == pytest.approx(0.8, abs=0.01)  # one prune of 20% at the first step
    assert all(b <= a for a, b in zip(density, density[1:]))
    assert [int(m.sum()) for m in s.mask] == targets  # 0.8^k reaches 0.3, then stops
    # after the last prune the kept weights are the initial ones, the rest zero
    s2 = LotteryDSGD(_spec("lottery_dsgd", 1, lottery_window=100))
    s2.mask = [m.clone() for m in s.mask]
    s2.window = [1.0] * 100
    assert s2.maybe_prune() is False  # already at the target: nothing left to prune
    s3 = LotteryDSGD(_spec("lottery_dsgd", 1))
    s3.local_step(*_batch(1, 0))
    for w, w0, m in zip(s3.w, NET.weights, s3.mask):
        assert torch.equal(w, w0 * m)


def test_dispfl_keeps_its_density_while_the_mask_moves() -> None:
    s = DisPFL(_spec("dispfl", 2))  # r = 0.2
    start = [m.clone() for m in s.mask]
    counts = [keep_count(n, 0.2) for n in SIZES]
    assert [int(m.sum()) for m in s.mask] == counts
    for it in range(3):
        stats = s.local_step(*_batch(2, it))
        assert stats["swap_fraction"] > 0
    assert [int(m.sum()) for m in s.mask] == counts
    assert any(not torch.equal(a, b) for a, b in zip(start, s.mask))
    assert all(torch.count_nonzero(w * (1 - m)) == 0 for w, m in zip(s.w, s.mask))


def test_dsgd_prox_gradient_is_pulled_towards_the_reference() -> None:
    s = DSGDProx(_spec("dsgd_prox", 0, prox_mu=0.5))
    s.w = [w + 1.0 for w in s.w]  # 1.0 away from w_ref everywhere
    grads = [torch.zeros_like(w) for w in s.w]
    assert all(torch.allclose(g, torch.full_like(g, 0.5)) for g in s.with_correction(grads))


def test_dsgd_prox_needs_more_than_one_local_step_to_differ_from_dsgd() -> None:
    """Right after an aggregate w = w_ref, so the first step's proximal gradient is zero;
    only the steps after it are pulled towards w_ref."""
    dsgd, prox = DSGD(_spec("dsgd", 0)), DSGDProx(_spec("dsgd_prox", 0, prox_mu=0.5))
    dsgd.local_step(*_batch(0, 0))
    prox.local_step(*_batch(0, 0))
    assert all(torch.equal(a, b) for a, b in zip(dsgd.w, prox.w))
    dsgd.local_step(*_batch(0, 1))
    prox.local_step(*_batch(0, 1))
    assert not all(torch.equal(a, b) for a, b in zip(dsgd.w, prox.w))
    assert prox.local_steps == 1 and DSGDProx(_spec("dsgd_prox", 0, local_steps=4)).local_steps == 4


def test_the_loop_takes_local_steps_minibatches_per_iteration() -> None:
    gen = torch.Generator().manual_seed(5)
    x, y = torch.rand(64, 3, 32, 32, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    three, one = DSGD(_spec("dsgd", 0, local_steps=3)), DSGD(_spec("dsgd", 0))
    sampler, by_hand = Sampler(64, 16, 0, 0), Sampler(64, 16, 0, 0)
    stats = local_steps(three, sampler, x, y)
    losses = [local_steps(one, by_hand, x, y)["loss"] for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(three.w, one.w))
    assert stats["loss"] == pytest.approx(sum(losses) / 3)
    assert sampler.state_dict() == by_hand.state_dict()


def test_state_dict_round_trip_resumes_identically() -> None:
    for name in ("lottery_dsgd", "dispfl", "dsgd_prox", "par_weipru"):
        a = build_strategy(_spec(name, 3))
        a.local_step(*_batch(3, 0))
        b = build_strategy(_spec(name, 3))
        b.load_state_dict({k: _clone(v) for k, v in a.state_dict().items()})
        a.local_step(*_batch(3, 1))
        b.local_step(*_batch(3, 1))
        assert all(torch.equal(x, y) for x, y in zip(a.eval_weights(), b.eval_weights())), name


def _clone(v: object) -> object:
    if isinstance(v, torch.Tensor):
        return v.clone()
    if isinstance(v, list):
        return [_clone(x) for x in v]
    return v


# -- 4 ranks over gloo ----------------------------------------------------------------------

NEIGHBOUR_ALGOS = ["dsgd", "dsgd_prox", "avr_weipru", "par_weipru", "lottery_dsgd", "dispfl"]
SILENT_ALGOS = ["ind_weipru", "ind_mask"]


def _run_rounds(strategy: Strategy, transport: PeerTransport, rank: int) -> list[dict[str, Any]]:
    """ITERS iterations of local step -> exchange -> receive, recording what moved."""
    out = []
    for it in range(1, ITERS + 1):
        strategy.local_step(*_batch(rank, it))
        payload = strategy.message(it)
        sent_before = transport.counters.bytes_sent
        if payload is None:
            received: dict[int, np.ndarray] = {}
        elif strategy.collective:
            received = {-1: transport.all_reduce_mean(it, payload)}
        else:
            received = transport.exchange(it, payload, kind=strategy.message_kind,
                                          sizes_differ=strategy.sizes_differ)
        strategy.receive(it, received)
        masks = strategy.final_masks()
        out.append({"payload": None if payload is None else payload.copy(),
                    "sent": transport.counters.bytes_sent - sent_before,
                    "w": _flat(strategy.eval_weights()),
                    "mask": None if masks is None else np.concatenate([m.reshape(-1)
                                                                       for m in masks])})
    return out


def _baselines_worker(rank: int, world: int, names: list[str]) -> dict[str, Any]:
    torch.manual_seed(rank)
    results = {}
    for name in names:
        transport = PeerTransport(rank, neighbours_of(rank), PhaseTimer())
        results[name] = _run_rounds(build_strategy(_spec(name, rank)), transport, rank)
    return results


@pytest.fixture(scope="module")
def rounds(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    names = [*NEIGHBOUR_ALGOS, "fedavg", *SILENT_ALGOS]
    tmp: Path = tmp_path_factory.mktemp("baselines")
    return expect_ok(launch(_baselines_worker, WORLD, tmp, names))


def _decoded(rec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    values, keep = decode_weights(rec["payload"], NUMEL)
    return values.astype(np.float64), keep.astype(np.float64)


def _group(rounds: dict[int, dict[str, Any]], name: str, it: int,
           rank: int) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    members = sorted([rank, *neighbours_of(rank)])
    vals, masks = zip(*(_decoded(rounds[j][name][it]) for j in members))
    mix = mixing_weights(ADJ, rank)
    return list(vals), list(masks), [mix[j] for j in members]


def _layers(vec: np.ndarray) -> list[np.ndarray]:
    return np.split(vec, np.cumsum(SIZES)[:-1])


def _assert_pruned_from(w: np.ndarray, mask: np.ndarray, avg: np.ndarray, r: float) -> None:
    """w is avg pruned per layer to retention r: the top-|avg| entries, values unchanged."""
    for wl, ml, al in zip(_layers(w), _layers(mask), _layers(avg)):
        k = keep_count(al.size, r)
        assert int(ml.sum()) == k
        np.testing.assert_allclose(wl, al * ml, rtol=1e-5, atol=1e-6)
        kept, dropped = np.abs(al[ml > 0]), np.abs(al[ml == 0])
        assert dropped.size == 0 or kept.min() >= dropped.max() - 1e-6


@pytest.mark.parametrize("name", NEIGHBOUR_ALGOS)
def test_bytes_equal_the_framed_payloads(rounds: dict[int, dict[str, Any]], name: str) -> None:
    for rank in range(WORLD):
        for rec in rounds[rank][name]:
            payload = rec["payload"]
            assert rec["sent"] == (HEADER_BYTES + payload.size) * len(neighbours_of(rank))
            masked = name != "dsgd" and name != "dsgd_prox"
            kept = int(np.count_nonzero(rec["mask"])) if masked else None
            assert payload.size == weights_payload_size(NUMEL, kept)
            if masked and name != "lottery_dsgd":
                assert payload.size < 4 * NUMEL  # retention <= 0.5: the sparse form


@pytest.mark.parametrize("name", ["dsgd", "dsgd_prox"])
def test_dsgd_mixes_what_the_neighbours_sent(rounds: dict[int, dict[str, Any]],
                                             name: str) -> None:
    for it in range(ITERS):
        for rank in range(WORLD):
            vals, _, mix = _group(rounds, name, it, rank)
            want = sum(a * v for a, v in zip(mix, vals))
            np.testing.assert_allclose(rounds[rank][name][it]["w"], want, rtol=1e-5, atol=1e-6)


def test_avr_weipru_prunes_the_plain_average(rounds: dict[int, dict[str, Any]]) -> None:
    for it in range(ITERS):
        for rank in range(WORLD):
            vals, _, mix = _group(rounds, "avr_weipru", it, rank)
            rec = rounds[rank]["avr_weipru"][it]
            _assert_pruned_from(rec["w"], rec["mask"],
                                sum((a * v for a, v in zip(mix, vals)), np.zeros_like(vals[0])),
                                RETENTION[rank])


def _partial(vals: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
    count = sum(masks)
    return np.divide(sum(v * m for v, m in zip(vals, masks)), count,
                     out=np.zeros_like(count), where=count > 0)


def test_par_weipru_prunes_the_partial_average(rounds: dict[int, dict[str, Any]]) -> None:
    for it in range(ITERS):
        for rank in range(WORLD):
            vals, masks, _ = _group(rounds, "par_weipru", it, rank)
            rec = rounds[rank]["par_weipru"][it]
            _assert_pruned_from(rec["w"], rec["mask"], _partial(vals, masks), RETENTION[rank])


@pytest.mark.parametrize("name", ["lottery_dsgd", "dispfl"])
def test_sparse_methods_average_over_keepers_on_their_own_mask(
        rounds: dict[int, dict[str, Any]], name: str) -> None:
    for it in range(ITERS):
        for rank in range(WORLD):
            vals, masks, _ = _group(rounds, name, it, rank)
            own = masks[sorted([rank, *neighbours_of(rank)]).index(rank)]
            rec = rounds[rank][name][it]
            assert np.array_equal(rec["mask"], own > 0)  # aggregation never moves the mask
            np.testing.assert_allclose(rec["w"], _partial(vals, masks) * own, rtol=1e-5,
                                       atol=1e-6)


def test_fedavg_is_the_all_rank_mean(rounds: dict[int, dict[str, Any]]) -> None:
    for it in range(ITERS):
        sent = [np.asarray(rounds[r]["fedavg"][it]["payload"], dtype=np.float64)
                for r in range(WORLD)]
        for rank in range(WORLD):
            rec = rounds[rank]["fedavg"][it]
            np.testing.assert_allclose(rec["w"], np.mean(sent, axis=0), rtol=1e-5, atol=1e-6)
            assert rec["sent"] == ring_allreduce_bytes(4 * NUMEL, WORLD)


@pytest.mark.parametrize("name", SILENT_ALGOS)
def test_independent_methods_send_nothing(rounds: dict[int, dict[str, Any]], name: str) -> None:
    for rank in range(WORLD):
        assert all(rec["payload"] is None and rec["sent"] == 0 for rec in rounds[rank][name])
    masks = rounds[0][name][-1]["mask"]
    assert masks is not None and int(masks.sum()) <= sum(
        keep_count(n, RETENTION[0]) for n in SIZES)
