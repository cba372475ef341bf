"""Checkpoint files, the agreement on which one to resume from, and the pieces of state
they carry (sampler, RNGs, metrics cut back to the checkpoint)."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from mcepl_dist import checkpoint
from mcepl_dist.data import Sampler
from mcepl_dist.errors import ConfigError
from mcepl_dist.metrics import MetricsWriter, truncate_metrics


class FakeCollective:
    """An all-reduce(min) among threads, standing in for the process group."""

    def __init__(self, world: int) -> None:
        self.values = [0] * world
        self.barrier = threading.Barrier(world, timeout=10)

    def reduce_min(self, rank: int, value: int) -> int:
        self.values[rank] = value
        self.barrier.wait()
        out = min(self.values)
        self.barrier.wait()
        return out


def agree(per_rank: list[list[int]]) -> list[int | None]:
    coll = FakeCollective(len(per_rank))
    out: list[int | None] = [None] * len(per_rank)

    def rank_main(rank: int) -> None:
        out[rank] = checkpoint.newest_common(per_rank[rank],
                                             lambda v: coll.reduce_min(rank, v))

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(len(per_rank))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    return out


@pytest.mark.parametrize(("per_rank", "expected"), [
    ([[2, 4, 6], [2, 4, 6], [2, 4, 6]], 6),
    ([[2, 4, 6], [2, 4], [4, 6]], 4),  # rank 1 died before writing 6
    ([[6, 8], [4, 8], [8]], 8),
    ([[4, 8], [6], [4, 6, 8]], None),  # no iteration on every rank
    ([[], [2], [2]], None),
])
def test_newest_checkpoint_every_rank_has(per_rank: list[list[int]],
                                          expected: int | None) -> None:
    assert agree(per_rank) == [expected] * len(per_rank)


def strategy_like_state() -> dict[str, object]:
    return {"z": [torch.randn(3, 4), torch.randn(5)], "buf": [None, torch.ones(2)],
            "grad": [], "m_half": None, "step": 7}


def test_save_load_round_trip_and_layout(tmp_path: Path) -> None:
    state = {"strategy": strategy_like_state(), "sampler": {"pos": 3, "order": [2, 0, 1]},
             "rng": checkpoint.rng_states(torch.device("cpu"))}
    path = checkpoint.save(tmp_path, 1, 40, state)
    assert path == tmp_path / "checkpoints" / "rank1" / "iter0000040.pt"
    assert sorted(p.name for p in path.parent.iterdir()) == ["iter0000040.pt"]  # no temp left
    back = checkpoint.load(tmp_path, 1, 40)
    assert back["iteration"] == 40 and back["rank"] == 1
    z = back["strategy"]["z"]  # type: ignore[index]
    assert all(torch.equal(a, b) for a, b in zip(z, state["strategy"]["z"]))  # type: ignore[index]
    assert back["strategy"]["buf"][0] is None  # type: ignore[index]
    assert back["sampler"] == {"pos": 3, "order": [2, 0, 1]}
    # weights_only: torch.load on its own reads it back too.
    assert torch.load(path, weights_only=True)["strategy"]["step"] == 7


def test_iterations_ignore_temporary_files_and_prune_keeps_newest(tmp_path: Path) -> None:
    for it in (10, 20, 30, 40):
        checkpoint.save(tmp_path, 0, it, {})
    (checkpoint.rank_dir(tmp_path, 0) / ".iter0000050.pt.tmp").write_bytes(b"half")
    assert checkpoint.iterations(tmp_path, 0) == [10, 20, 30, 40]
    checkpoint.prune(tmp_path, 0, keep=2)
    assert checkpoint.iterations(tmp_path, 0) == [30, 40]
    assert checkpoint.iterations(tmp_path, 1) == []


class Gadget:
    """Not plain data: a checkpoint holding it must not load."""


def test_truncated_or_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path, 0, 5, {"x": torch.ones(100)})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ConfigError, match="unreadable"):
        checkpoint.load(tmp_path, 0, 5)
    torch.save({"format": checkpoint.FORMAT, "rank": 0, "iteration": 6, "g": Gadget()},
               checkpoint.path_for(tmp_path, 0, 6))
    with pytest.raises(ConfigError, match="unreadable"):  # weights_only refuses the class
        checkpoint.load(tmp_path, 0, 6)
    checkpoint.save(tmp_path, 1, 7, {})
    checkpoint.path_for(tmp_path, 1, 7).rename(checkpoint.path_for(tmp_path, 0, 7))
    with pytest.raises(ConfigError, match="not rank 0's checkpoint"):
        checkpoint.load(tmp_path, 0, 7)


def test_rng_states_round_trip() -> None:
    dev = torch.device("cpu")
    saved = checkpoint.rng_states(dev)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    checkpoint.set_rng_states(saved, dev)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_sampler_continues_where_it_stopped() -> None:
    a = Sampler(50, 8, seed=1, agent=2)
    for _ in range(9):  # past one epoch: the reshuffle RNG state matters
        a.next()
    state = a.state_dict()
    b = Sampler(50, 8, seed=1, agent=2)
    b.load_state_dict(state)
    for _ in range(20):
        assert np.array_equal(a.next(), b.next())


def test_truncate_metrics_keeps_records_up_to_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "rank0.jsonl"
    w = MetricsWriter(path)
    for it in range(6):
        w.write({"iter": it, "v": it * 1.5})
    w.close()
    with path.open("a") as f:
        f.write('{"iter": 6, "v"')  # the half line a crash leaves
    truncate_metrics(path, 3)
    assert [json.loads(ln)["iter"] for ln in path.read_text().splitlines()] == [0, 1, 2, 3]
    w = MetricsWriter(path, append=True)
    w.write({"iter": 4, "v": 0.0})
    w.close()
    assert [json.loads(ln)["iter"] for ln in path.read_text().splitlines()] == [0, 1, 2, 3, 4]
