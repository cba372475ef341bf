"""Run outputs: per-rank JSONL metrics, final per-rank vectors, summary.json, mask files."""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mcepl_dist.codec import pack_bits, unpack_bits
from mcepl_dist.model import LAYER_NAMES


def atomic_write(path: Path, text: str) -> None:
    """Write a file via a temporary name and rename, so readers never see half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class MetricsWriter:
    """One JSON object per line, flushed each line so a crash loses at most one record."""

    def __init__(self, path: Path, append: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f: TextIO = path.open("a" if append else "w")

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def truncate_metrics(path: Path, last_iter: int) -> None:
    """Keep only the records up to `last_iter` (a resumed run rewrites what follows)."""
    lines = path.read_text().splitlines() if path.exists() else []
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # the half line a crash can leave at the end
            continue
        if record.get("iter", last_iter + 1) <= last_iter:
            kept.append(line + "\n")
    atomic_write(path, "".join(kept))


@dataclass
class RankResult:
    """What every rank contributes to the summary; gathered as one float vector."""

    test_acc: float
    test_loss: float
    bytes_sent: float
    bytes_recv: float
    msgs_sent: float
    message_bytes: float  # mean frame size of the messages sent (header included)
    paper_bits_sent: float  # the paper's accounting: 32 bits per real value, 1 per mask entry
    mask_ones_sent: float  # the authors' accounting: ones x 1 bit, summed over messages
    median_t_iter: float
    sum_t_iter: float
    sum_t_comm: float
    sum_t_pack: float
    sum_t_compute: float
    peak_rss_mb: float
    peak_gpu_mb: float
    startup_s: float = 0.0  # process start -> first iteration (imports, data, process group)
    wall_s: float = 0.0  # training and evaluation, summed over the segments of a resumed run
    resumes: float = 0.0  # how many times the run was resumed from a checkpoint

    def to_vector(self) -> list[float]:
        return [float(v) for v in asdict(self).values()]

    @classmethod
    def from_vector(cls, vec: list[float]) -> RankResult:
        return cls(*vec[: len(fields(cls))])


def summarize(algorithm: str, iterations: int, results: list[RankResult],
              num_masked: int) -> dict[str, Any]:
    """summary.json: the run's headline figures from every rank's results."""
    accs = [r.test_acc for r in results]
    msgs = sum(r.msgs_sent for r in results)
    comm = sum(r.sum_t_comm + r.sum_t_pack for r in results)
    total = sum(r.sum_t_iter for r in results)
    return {
        "algorithm": algorithm,
        "num_agents": len(results),
        "iterations": iterations,
        "final_mean_test_acc": statistics.fmean(accs),
        "final_std_test_acc": statistics.pstdev(accs),
        "per_agent_test_acc": accs,
        "per_agent_test_loss": [r.test_loss for r in results],
        "bytes_sent_total": int(sum(r.bytes_sent for r in results)),
        "bytes_recv_total": int(sum(r.bytes_recv for r in results)),
        "messages_sent_total": int(msgs),
        "bytes_per_message": int(max(r.message_bytes for r in results)),
        "bytes_sent_per_agent_per_iter": sum(r.bytes_sent for r in results)
        / (len(results) * max(iterations, 1)),
        "paper_bytes_sent_total": int(sum(r.paper_bits_sent for r in results) // 8),
        "paper_bytes_per_message_dense": (num_masked + 7) // 8,
        "paper_mask_ones_bits_total": int(sum(r.mask_ones_sent for r in results)),
        "wall_clock_s": max(r.wall_s for r in results),
        "resumes": int(results[0].resumes),
        "median_t_iter_s": statistics.median(r.median_t_iter for r in results),
        "comm_fraction": comm / total if total > 0 else 0.0,
        "peak_rss_mb_max": max(r.peak_rss_mb for r in results),
        "peak_rss_mb_per_agent": [r.peak_rss_mb for r in results],
        "peak_gpu_mb_max": max(r.peak_gpu_mb for r in results),
        "peak_gpu_mb_per_agent": [r.peak_gpu_mb for r in results],
        "startup_s_median": statistics.median(r.startup_s for r in results),
        "startup_s_max": max(r.startup_s for r in results),
    }


def save_masks(path: Path, masks: list[np.ndarray]) -> None:
    """masks/agent<i>.npz: each layer packed at 1 bit per entry, with its shape."""
    arrays: dict[str, np.ndarray] = {}
    for name, m in zip(LAYER_NAMES, masks, strict=True):
        arrays[f"{name}_packed"] = pack_bits(m)
        arrays[f"{name}_shape"] = np.asarray(m.shape, dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)


def load_masks(path: Path) -> list[np.ndarray]:
    """Inverse of `save_masks` (no pickle: allow_pickle stays False)."""
    with np.load(path, allow_pickle=False) as f:
        out = []
        for name in LAYER_NAMES:
            shape = tuple(int(s) for s in f[f"{name}_shape"])
            out.append(unpack_bits(f[f"{name}_packed"], int(np.prod(shape))).reshape(shape))
        return out


def median(values: list[float]) -> float:
    """Median, 0 for an empty list."""
    return statistics.median(values) if values else 0.0


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Pretty JSON, written atomically."""
    atomic_write(path, json.dumps(data, indent=2) + "\n")
