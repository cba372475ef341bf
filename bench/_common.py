"""Helpers shared by the bench/ scripts: machine description, torchrun jobs, run-dir reading.

Every script records the machine it ran on (cores, load average before and after, CPU and
GPU model, torch version) in its JSON, since timings on a shared host are noisy.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mcepl_dist.provenance import cpu_model, utc_now

REPO = Path(__file__).resolve().parents[1]


def machine() -> dict[str, Any]:
    """Where and when this ran: cores, load, CPU/GPU model, torch version."""
    cuda = torch.cuda.is_available()
    return {
        "host": socket.gethostname(),
        "utc": utc_now(),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "loadavg": list(os.getloadavg()),
        "cpu": cpu_model(),
        "memory_gib": _mem_gib(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda else [],
    }


def _mem_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return 0.0


def median(values: Sequence[float]) -> float:
    """Median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Pretty JSON (parent directories created), and say where it went."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def set_args(sets: Sequence[str]) -> list[str]:
    """--set KEY=VALUE for each override."""
    return [a for kv in sets for a in ("--set", kv)]


def device_sets(device: str | None, backend: str | None) -> list[str]:
    """Overrides for the compute device and transport backend, when given."""
    out = []
    if device:
        out.append(f"comm.device={device}")
    if backend:
        out.append(f"comm.backend={backend}")
    return out


def torchrun_job(nproc: int, run_args: Sequence[str], out: Path, timeout_s: float,
                 prefix: Sequence[str] = ()) -> dict[str, Any]:
    """Run `torchrun --standalone ... -m mcepl_dist.run` once; its wall-clock, exit and log."""
    cmd = [*prefix, sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", "-m", "mcepl_dist.run", *run_args, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        rc, log = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, log = 124, f"timed out after {timeout_s} s: {exc}"
    wall = time.perf_counter() - start
    if rc != 0:
        print(log[-3000:], file=sys.stderr)
    return {"cmd": cmd, "rc": rc, "job_wall_s": wall, "log_tail": log[-2000:]}


def read_metrics(out: Path, ranks: int) -> list[list[dict[str, Any]]]:
    """Every rank's per-iteration records."""
    return [[json.loads(line) for line in (out / "metrics" / f"rank{r}.jsonl").read_text()
             .splitlines() if line.strip()] for r in range(ranks)]


def read_summary(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "summary.json").read_text()))


def phase_medians(records: list[list[dict[str, Any]]],
                  keys: Sequence[str]) -> dict[str, float]:
    """Median over every rank and training iteration (iteration 0, the initial exchange,
    left out) of each phase's seconds."""
    rows = [rec for rank in records for rec in rank if rec["iter"] > 0]
    return {k: median([float(rec.get(k, 0.0)) for rec in rows]) for k in keys}
