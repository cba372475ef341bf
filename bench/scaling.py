"""Scaling: seconds per iteration and communication fraction against ranks and degree.

For every world size N and topology (ring: degree 2; er: Erdos-Renyi p = 0.5, mean degree
about (N - 1) / 2; complete: N - 1), one torchrun job of --iterations iterations; medians
over --repeats jobs. A tiny model (--width, default 0.125) on synthetic data keeps 32
ranks within minutes on a small host; --width 1 gives the paper's 153,448-byte messages.

    python bench/scaling.py --json bench/results/scaling.json
    python bench/scaling.py --ranks 4,8 --topologies ring --iterations 3 --json /tmp/s.json
    python bench/scaling.py --device cuda --width 1 --json /tmp/gpu_scaling.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def job_row(out: Path, n: int, iterations: int, job: dict[str, Any]) -> dict[str, Any]:
    """s/iteration, communication fraction and mean degree of one finished job."""
    s = read_summary(out)
    records = read_metrics(out, n)
    phases = phase_medians(records, ("t_compute", "t_pack", "t_comm"))
    mean_degree = s["messages_sent_total"] / (n * (iterations + 1))
    return {"median_t_iter_s": s["median_t_iter_s"], "comm_fraction": s["comm_fraction"],
            "mean_degree": mean_degree, "bytes_per_message": s["bytes_per_message"],
            "job_wall_s": job["job_wall_s"], "startup_s_median": s.get("startup_s_median"),
            **{f"{k}_median_s": v for k, v in phases.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ranks", default="4,8,16,20,32")
    ap.add_argument("--topologies", default="ring,er,complete")
    ap.add_argument("--width", type=float, default=0.125)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--device", choices=["cpu", "cuda"])
    ap.add_argument("--backend", choices=["gloo", "nccl"])
    ap.add_argument("--timeout", type=float, default=1200, help="seconds per job")
    ap.add_argument("--json", default="bench/results/scaling.json")
    args = ap.parse_args()

    before = machine()
    root = Path(tempfile.mkdtemp(prefix="mcepl_scale_"))
    rows = []
    for n in (int(r) for r in args.ranks.split(",")):
        for topo in args.topologies.split(","):
            sets = [f"agents.num={n}", "agents.retention=0.5", "data.label_table=null",
                    "data.name=synthetic", f"model.width={args.width}",
                    f"train.iterations={args.iterations}", "train.eval_every=0",
                    f"topology.kind={topo}", "topology.path=null",
                    *device_sets(args.device, args.backend), *args.sets]
            jobs = []
            for i in range(args.repeats):
                out = root / f"n{n}-{topo}-{i}-{os.getpid()}"
                job = torchrun_job(n, set_args(sets), out, args.timeout)
                if job["rc"] != 0:
                    sys.exit(f"N={n} {topo}: job failed (exit {job['rc']})")
                jobs.append(job_row(out, n, args.iterations, job))
                shutil.rmtree(out, ignore_errors=True)
            row = {"ranks": n, "topology": topo, "sets": sets,
                   **{k: median([j[k] for j in jobs]) for k in jobs[0]}, "jobs": jobs}
            rows.append(row)
            print(f"N={n:3d} {topo:8s} degree {row['mean_degree']:5.1f}  "
                  f"{row['median_t_iter_s']:.3f} s/iter  comm fraction "
                  f"{row['comm_fraction']:.3f}  job {row['job_wall_s']:.0f} s", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    write_json(args.json, {"benchmark": "scaling", "width": args.width,
                           "iterations": args.iterations, "repeats": args.repeats,
                           "machine_before": before, "machine_after": machine(),
                           "results": rows})


if __name__ == "__main__":
    main()
