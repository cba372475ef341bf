"""Iteration breakdown of a real job at the paper setting, against the compute bound.

1. The compute bound: one forward+backward of the configured model at the training batch
   size, median of --compute-repeats, on one CPU thread (or on the GPU with --device cuda);
   bound = ranks x that / parallel units (CPU cores, or GPUs when ranks share GPUs).
2. --repeats torchrun jobs of --iterations iterations (default: the paper's 20 agents on
   CIFAR-10), each read back from its run directory: median over ranks and iterations of
   every phase (compute = forward/backward + aggregation + fine-tune, pack, wait), the
   evaluation, start-up (process start to first iteration), bytes per message, the
   communication fraction; then the medians over the jobs.

    python bench/breakdown.py --json bench/results/breakdown_cpu20.json           # ~4 min/job
    python bench/breakdown.py --nproc 4 --iterations 3 --set model.width=0.25 \\
        --set agents.num=4 --set agents.retention=0.5 --set data.label_table=null \\
        --set topology.kind=ring --json /tmp/b4.json                               # quick check
    python bench/breakdown.py --device cuda --iterations 20 --json /tmp/gpu20.json  # shared GPU
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    device_sets,
    machine,
    median,
    phase_medians,
    read_metrics,
    read_summary,
    set_args,
    torchrun_job,
    write_json,
)

from mcepl_dist.config import load_config  # noqa: E402
from mcepl_dist.model import build_network, forward  # noqa: E402

PHASES = ("t_iter", "t_compute", "t_fwd_bwd", "t_aggregate", "t_finetune", "t_pack", "t_comm")
PAPER_PAYLOAD = 153_416


def fwd_bwd_seconds(width: float, batch: int, device: torch.device, repeats: int) -> float:
    """Median forward+backward of the masked model at one batch (one CPU thread)."""
    torch.set_num_threads(1)
    net = build_network(0, width).to(device)
    gen = torch.Generator().manual_seed(0)
    masks = [(torch.rand(w.shape, generator=gen) < 0.3).float().to(device)
             for w in net.weights]
    x = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    sync: Callable[[], None] = ((lambda: torch.cuda.synchronize(device))
                                if device.type == "cuda" else (lambda: None))

    def step() -> None:
        eff = [(w * m).requires_grad_() for w, m in zip(net.weights, masks)]
        torch.autograd.grad(F.cross_entropy(forward(net, x, eff), y), eff)
        sync()

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return median(times)


def job_figures(out: Path, nproc: int, job: dict[str, Any]) -> dict[str, Any]:
    """What one finished job's run directory says."""
    s = read_summary(out)
    records = read_metrics(out, nproc)
    phases = phase_medians(records, PHASES)
    evals = [rec["t_eval"] for rank in records for rec in rank if "t_eval" in rec]
    return {
        "job_wall_s": job["job_wall_s"], "train_wall_s": s["wall_clock_s"],
        "median_t_iter_s": s["median_t_iter_s"], "comm_fraction": s["comm_fraction"],
        "phases_median_s": phases, "t_eval_median_s": median(evals),
        "startup_s_median": s.get("startup_s_median"), "startup_s_max": s.get("startup_s_max"),
        "bytes_per_message": s["bytes_per_message"],
        "payload_bytes_per_message": s["paper_bytes_per_message_dense"],
        "bytes_sent_total": s["bytes_sent_total"],
        "peak_rss_mb_max": s["peak_rss_mb_max"], "peak_gpu_mb_max": s["peak_gpu_mb_max"],
        "peak_gpu_mb_per_agent": s.get("peak_gpu_mb_per_agent"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nproc", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1, help="jobs to run (medians over them)")
    ap.add_argument("--compute-repeats", type=int, default=5)
    ap.add_argument("--config", help="config file (default: the paper's)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--device", choices=["cpu", "cuda"], help="comm.device for the job")
    ap.add_argument("--backend", choices=["gloo", "nccl"], help="comm.backend for the job")
    ap.add_argument("--keep", help="keep the run directories under this folder")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per job")
    ap.add_argument("--json", default="bench/results/breakdown.json")
    args = ap.parse_args()

    sets = [f"train.iterations={args.iterations}", "train.eval_every=0",
            *device_sets(args.device, args.backend), *args.sets]
    run_args = ([*(["--config", args.config] if args.config else []), *set_args(sets)])
    cfg = load_config(args.config, sets)
    before = machine()
    device = torch.device("cuda" if args.device == "cuda" else "cpu")
    one = fwd_bwd_seconds(cfg.model.width, cfg.train.batch_size, device, args.compute_repeats)
    units = (max(1, torch.cuda.device_count()) if device.type == "cuda"
             else int(before["nproc"]))
    bound = args.nproc * one / min(units, args.nproc)
    unit = "GPU" if device.type == "cuda" else "CPU thread"
    print(f"forward+backward {one:.3f} s on one {unit}; bound {args.nproc} x {one:.3f} / "
          f"{min(units, args.nproc)} = {bound:.2f} s/iter", file=sys.stderr)

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mcepl_bd_"))
    jobs = []
    for i in range(args.repeats):
        out = root / f"job{i}-{os.getpid()}"
        job = torchrun_job(args.nproc, run_args, out, args.timeout)
        if job["rc"] != 0:
            sys.exit(f"job {i} failed (exit {job['rc']})")
        jobs.append(job_figures(out, args.nproc, job))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)

    t_iter = median([j["median_t_iter_s"] for j in jobs])
    result = {
        "benchmark": "breakdown", "nproc": args.nproc, "iterations": args.iterations,
        "run_args": run_args, "machine_before": before, "machine_after": machine(),
        "fwd_bwd_one_s": one, "parallel_units": min(units, args.nproc),
        "compute_bound_s": bound,
        "median_t_iter_s": t_iter, "ratio_to_compute_bound": t_iter / bound,
        "comm_fraction": median([j["comm_fraction"] for j in jobs]),
        "phases_median_s": {k: median([j["phases_median_s"][k] for j in jobs])
                            for k in PHASES},
        "t_eval_median_s": median([j["t_eval_median_s"] for j in jobs]),
        "startup_s_median": median([j["startup_s_median"] or math.nan for j in jobs]),
        "job_wall_s": median([j["job_wall_s"] for j in jobs]),
        "bytes_per_message": jobs[0]["bytes_per_message"],
        "payload_bytes_per_message": jobs[0]["payload_bytes_per_message"],
        "jobs": jobs,
    }
    write_json(args.json, result)
    p = result["phases_median_s"]
    print(f"{args.nproc} ranks: {t_iter:.3f} s/iter (median), "
          f"{result['ratio_to_compute_bound']:.2f} x the compute bound {bound:.2f} s; "
          f"comm fraction {result['comm_fraction']:.3f}\n"
          f"  fwd/bwd {p['t_fwd_bwd']:.3f}  aggregate {p['t_aggregate']:.3f}  fine-tune "
          f"{p['t_finetune']:.3f}  pack {p['t_pack']:.3f}  wait {p['t_comm']:.3f} s\n"
          f"  eval {result['t_eval_median_s']:.2f} s, start-up {result['startup_s_median']:.1f} s,"
          f" job {result['job_wall_s']:.0f} s; {result['bytes_per_message']:,} B per message "
          f"({result['payload_bytes_per_message']:,} payload + header)")


if __name__ == "__main__":
    main()
