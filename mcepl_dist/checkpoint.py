"""Per-rank checkpoints: RUN_DIR/checkpoints/rank<r>/iter<k>.pt, written atomically.

A checkpoint holds tensors and plain data only (dicts, lists, tuples, numbers, strings,
None) and is read back with `torch.load(weights_only=True)`, so loading one cannot run code.
Each rank owns its directory, writes a temporary file and renames it (a crash never leaves a
half-written checkpoint under a real name), and prunes its own old ones. What goes in a
checkpoint is the caller's business (agent.py); this module knows nothing of algorithms.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcepl_dist.errors import ConfigError

FORMAT = 1
_NAME = re.compile(r"iter(\d+)\.pt")


def rank_dir(run_dir: Path, rank: int) -> Path:
    """Where one rank keeps its checkpoints."""
    return run_dir / "checkpoints" / f"rank{rank}"


def path_for(run_dir: Path, rank: int, iteration: int) -> Path:
    """The checkpoint of `rank` after `iteration`."""
    return rank_dir(run_dir, rank) / f"iter{iteration:07d}.pt"


def iterations(run_dir: Path, rank: int) -> list[int]:
    """Iterations this rank has a complete checkpoint of, oldest first."""
    d = rank_dir(run_dir, rank)
    if not d.is_dir():
        return []
    found = (_NAME.fullmatch(p.name) for p in d.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def save(run_dir: Path, rank: int, iteration: int, state: dict[str, Any]) -> Path:
    """Write `state` as this rank's checkpoint of `iteration` (temporary file, then rename)."""
    path = path_for(run_dir, rank, iteration)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        torch.save({"format": FORMAT, "rank": rank, "iteration": iteration, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def prune(run_dir: Path, rank: int, keep: int) -> None:
    """Delete all but this rank's `keep` newest checkpoints."""
    for it in iterations(run_dir, rank)[:-keep]:
        path_for(run_dir, rank, it).unlink(missing_ok=True)


def load(run_dir: Path, rank: int, iteration: int) -> dict[str, Any]:
    """Read this rank's checkpoint of `iteration` (CPU tensors; no code runs)."""
    path = path_for(run_dir, rank, iteration)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, foreign or tampered: any load failure
        raise ConfigError(f"--resume: checkpoint {path} is unreadable "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    expected = {"format": FORMAT, "rank": rank, "iteration": iteration}
    if not isinstance(state, dict) or any(state.get(k) != v for k, v in expected.items()):
        raise ConfigError(f"--resume: {path} is not rank {rank}'s checkpoint of iteration "
                          f"{iteration} (format {FORMAT})")
    return state


def newest_common(mine: list[int], reduce_min: Callable[[int], int]) -> int | None:
    """The newest iteration every rank has a checkpoint of (None if there is none).

    `reduce_min` is a collective (the minimum over ranks), so ranks on different hosts, each
    seeing only its own files, agree; every rank makes the same sequence of calls.
    """
    have = set(mine)
    candidate = reduce_min(max(mine, default=-1))
    while candidate >= 0:
        if reduce_min(int(candidate in have)) == 1:
            return candidate
        candidate = reduce_min(max((i for i in mine if i < candidate), default=-1))
    return None


def to_device(obj: Any, device: torch.device) -> Any:
    """`obj` with every tensor inside (lists, tuples, dicts) moved to `device`."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, list):
        return [to_device(v, device) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_device(v, device) for v in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def rng_states(device: torch.device) -> dict[str, Any]:
    """The process's torch, numpy and python RNG states (and CUDA's on a GPU), as plain data."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # type: ignore[misc]
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss,
                  gauss),
        "python": random.getstate(),
    }
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def set_rng_states(states: dict[str, Any], device: torch.device) -> None:
    """Inverse of `rng_states`."""
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)
