"""PeerTransport between real processes (torch.multiprocessing, spawn) over gloo.

Every child reports its result or its exception to the parent through a multiprocessing
Queue; the parent waits with timeouts and kills whatever is left, so a hung exchange fails
the test instead of hanging pytest.
"""

from __future__ import annotations

import datetime
import hashlib
import queue as queue_mod
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as tmp

from mcepl_dist.codec import HEADER_BYTES, frame_bytes
from mcepl_dist.timing import PhaseTimer
from mcepl_dist.transport import PeerTransport

# 4 nodes, edges 0-1, 0-2, 0-3, 1-2: degrees 3, 2, 2, 1 (rank 3 is a leaf).
EDGES = [(0, 1), (0, 2), (0, 3), (1, 2)]
WORLD = 4
# Payload length per round: none a multiple of 8, and different each round.
ROUND_LENGTHS = (37, 45, 13)
PG_TIMEOUT_S = 30
JOIN_TIMEOUT_S = 120


def neighbours_of(rank: int, edges: list[tuple[int, int]] = EDGES) -> list[int]:
    return sorted({b for a, b in edges if a == rank} | {a for a, b in edges if b == rank})


def payload_for(rank: int, rnd: int) -> np.ndarray:
    """What `rank` sends in round `rnd`: distinct per sender and per round."""
    rng = np.random.default_rng([rank, rnd, 0xC0DE])
    return rng.integers(0, 256, size=ROUND_LENGTHS[rnd], dtype=np.uint8)


# ---------------------------------------------------------------------------------------
# Harness


def _child(target: Callable[..., Any], rank: int, world: int, init: str | None,
           q: Any, args: tuple[Any, ...]) -> None:
    """Run `target(rank, world, *args)` inside a process group; report to the parent."""
    import torch.distributed as dist

    try:
        torch.set_num_threads(1)
        if init is not None:
            dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world,
                                    timeout=datetime.timedelta(seconds=PG_TIMEOUT_S))
        try:
            result = target(rank, world, *args)
        finally:
            if init is not None and dist.is_initialized():
                dist.destroy_process_group()
        q.put(("ok", rank, result))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        q.put(("err", rank, (type(exc).__name__, str(exc), traceback.format_exc())))


def launch(target: Callable[..., Any], world: int, tmp_path: Path, *args: Any,
           use_dist: bool = True) -> dict[int, tuple[str, Any]]:
    """Start `world` spawned ranks running `target`; {rank: ("ok"|"err", payload)}."""
    ctx = tmp.get_context("spawn")
    q = ctx.Queue()
    init = f"file://{tmp_path / 'pg_store'}" if use_dist else None
    procs = [ctx.Process(target=_child, args=(target, r, world, init, q, args), daemon=True)
             for r in range(world)]
    for p in procs:
        p.start()
    results: dict[int, tuple[str, Any]] = {}
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    try:
        while len(results) < world and time.monotonic() < deadline:
            try:
                status, rank, payload = q.get(timeout=1.0)
                results[rank] = (status, payload)
            except queue_mod.Empty:
                # A child that died without reporting (segfault, os._exit) ends the wait.
                if all(not p.is_alive() for p in procs) and q.empty():
                    break
        for p in procs:
            p.join(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    missing = sorted(set(range(world)) - set(results))
    assert not missing, (f"ranks {missing} reported nothing within {JOIN_TIMEOUT_S} s "
                         f"(exit codes {[p.exitcode for p in procs]}); got {results}")
    return results


def expect_ok(results: dict[int, tuple[str, Any]]) -> dict[int, Any]:
    errors = {r: v for r, (s, v) in results.items() if s != "ok"}
    assert not errors, "child ranks failed:\n" + "\n".join(
        f"rank {r}: {v[0]}: {v[1]}\n{v[2]}" for r, v in sorted(errors.items()))
    return {r: v for r, (_, v) in results.items()}


# ---------------------------------------------------------------------------------------
# Workers (module level so spawned children can import them)


def _exchange_worker(rank: int, world: int) -> dict[str, Any]:
    timer = PhaseTimer()
    t = PeerTransport(rank, neighbours_of(rank), timer)
    received: list[dict[int, tuple[str, bytes]]] = []
    phases: list[dict[str, float]] = []
    for rnd in range(len(ROUND_LENGTHS)):
        out = t.exchange(rnd, payload_for(rank, rnd))
        received.append({j: (np.asarray(p).dtype.str, np.asarray(p).tobytes())
                         for j, p in out.items()})
        phases.append(timer.pop())
    return {"neighbors": list(t.neighbors), "received": received,
            "counters": t.counters.snapshot(), "phases": phases}


def _weights_worker(rank: int, world: int) -> str:
    from mcepl_dist.model import build_network

    torch.manual_seed(1000 + rank)  # the global RNG must not matter
    np.random.seed(2000 + rank)
    torch.rand(rank + 1)
    net = build_network(seed=3, width=0.125)
    return network_digest(net)


def network_digest(net: Any) -> str:
    h = hashlib.sha256()
    for tensor in (*net.weights, *net.biases):
        arr = tensor.detach().cpu().contiguous().numpy()
        h.update(str(arr.dtype).encode())
        h.update(repr(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


VICTIM, CULPRIT = 0, 2  # rank 0 receives a corrupted frame from rank 2


def _corrupt_worker(rank: int, world: int, where: str) -> str:
    timer = PhaseTimer()
    t = PeerTransport(rank, neighbours_of(rank), timer)
    if rank == VICTIM:
        original = t._send_recv

        def tampered(rnd: int, send: torch.Tensor, recv: dict[int, torch.Tensor]) -> None:
            original(rnd, send, recv)
            buf = recv[CULPRIT]
            if where == "payload":
                buf[HEADER_BYTES + 5] ^= 0x10  # one bit of the payload
            else:
                buf[8] ^= 0x01  # the low byte of the round field in the header

        t._send_recv = tampered  # type: ignore[method-assign,assignment]
    t.exchange(0, payload_for(rank, 0))
    return "exchanged"


# ---------------------------------------------------------------------------------------
# Tests


def test_irregular_graph_payloads_and_counters(tmp_path: Path) -> None:
    results = expect_ok(launch(_exchange_worker, WORLD, tmp_path))
    rounds = len(ROUND_LENGTHS)
    for rank, res in results.items():
        nbrs = neighbours_of(rank)
        deg = len(nbrs)
        assert res["neighbors"] == nbrs
        for rnd, got in enumerate(res["received"]):
            assert sorted(got) == nbrs, f"rank {rank} round {rnd}: from {sorted(got)}"
            for j, (dtype, raw) in got.items():
                assert np.dtype(dtype) == np.uint8
                assert raw == payload_for(j, rnd).tobytes(), (
                    f"rank {rank} round {rnd}: payload from {j} differs from what {j} sent")
        wire = sum(deg * (HEADER_BYTES + n) for n in ROUND_LENGTHS)
        assert wire == sum(deg * frame_bytes(n) for n in ROUND_LENGTHS)
        c = res["counters"]
        assert c["bytes_sent"] == c["bytes_recv"] == wire
        assert c["msgs_sent"] == c["msgs_recv"] == rounds * deg
        for ph in res["phases"]:
            assert ph["t_comm"] > 0 and ph["t_pack"] > 0
            assert ph["t_compute"] == 0
    # Every byte sent was received somewhere.
    assert (sum(r["counters"]["bytes_sent"] for r in results.values())
            == sum(r["counters"]["bytes_recv"] for r in results.values()))


def test_ranks_regenerate_identical_fixed_weights(tmp_path: Path) -> None:
    from mcepl_dist.model import build_network

    digests = expect_ok(launch(_weights_worker, 3, tmp_path, use_dist=False))
    assert len(set(digests.values())) == 1, digests
    # The parent process draws the same tensors too.
    assert digests[0] == network_digest(build_network(seed=3, width=0.125))
    # And a different seed gives different tensors (the digest is not vacuous).
    assert digests[0] != network_digest(build_network(seed=4, width=0.125))


@pytest.mark.parametrize("where", ["payload", "header"])
def test_corrupted_frame_is_protocol_error_naming_sender(tmp_path: Path, where: str) -> None:
    results = launch(_corrupt_worker, WORLD, tmp_path, where)
    status, info = results[VICTIM]
    assert status == "err", f"rank {VICTIM} accepted a corrupted frame: {info}"
    name, message, tb = info
    assert name == "ProtocolError", tb
    assert f"rank {CULPRIT}" in message, message
    if where == "payload":
        assert "CRC" in message, message
    else:
        assert "round" in message, message
    # The other ranks' frames were intact.
    for rank in range(WORLD):
        if rank != VICTIM:
            assert results[rank] == ("ok", "exchanged"), results[rank]


def test_rank_listing_itself_is_rejected() -> None:
    with pytest.raises(ValueError, match="itself"):
        PeerTransport(1, [0, 1, 2], PhaseTimer())


def test_rank_without_neighbours_sends_nothing() -> None:
    """An isolated rank needs no process group: nothing is posted, nothing is counted."""
    t = PeerTransport(0, [], PhaseTimer())
    assert t.exchange(0, payload_for(0, 0)) == {}
    assert t.counters.snapshot() == {"bytes_sent": 0, "bytes_recv": 0, "msgs_sent": 0,
                                     "msgs_recv": 0}
