"""Markdown tables from the bench JSON files (what docs/benchmarks.md shows).

    python bench/tables.py bench/results/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _machine(d: dict[str, Any]) -> str:
    m, after = d["machine_before"], d.get("machine_after", {})
    load = f"load {m['loadavg'][0]:.1f}"
    if after:
        load += f" -> {after['loadavg'][0]:.1f}"
    gpus = f", {len(m['gpus'])} x {m['gpus'][0]}" if m.get("gpus") else ""
    return (f"_{m['utc']}, {m['host']}: {m['nproc']} cores ({m['cpu']}), "
            f"{m['memory_gib']} GiB{gpus}, torch {m['torch']}, {load} (1-min average)_")


def exchange(d: dict[str, Any]) -> list[str]:
    rows = d["results"]
    cells: dict[tuple[int, int], dict[str, float]] = {}
    for r in rows:
        cells.setdefault((r["ranks"], r["degree"]), {})[f"{r['payload']}/{r['method']}"] = (
            1e3 * r["median_round_s"])
    cols = sorted({k for c in cells.values() for k in c},
                  key=lambda k: (["packed", "uint8", "fp32"].index(k.split("/")[0]), k))
    out = [_machine(d), "", "| ranks | degree | " + " | ".join(cols) + " |",
           "|---|---|" + "---|" * len(cols)]
    for (n, deg), c in sorted(cells.items()):
        out.append(f"| {n} | {deg} | " + " | ".join(
            f"{c[k]:.1f}" if k in c else "" for k in cols) + " |")
    return out


def scaling(d: dict[str, Any]) -> list[str]:
    out = [_machine(d), "", f"width {d['width']}, {d['iterations']} iterations, "
           f"{d['repeats']} job(s) per cell", "",
           "| ranks | topology | mean degree | s/iteration | comm fraction | compute s | "
           "pack s | wait s | job s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in d["results"]:
        out.append(f"| {r['ranks']} | {r['topology']} | {r['mean_degree']:.1f} | "
                   f"{r['median_t_iter_s']:.3f} | {r['comm_fraction']:.3f} | "
                   f"{r['t_compute_median_s']:.3f} | {r['t_pack_median_s']:.4f} | "
                   f"{r['t_comm_median_s']:.3f} | {r['job_wall_s']:.0f} |")
    return out


def breakdown(d: dict[str, Any]) -> list[str]:
    p = d["phases_median_s"]
    gpu = d["jobs"][0].get("peak_gpu_mb_per_agent") or []
    lines = [_machine(d), "", "| figure | value |", "|---|---|",
             f"| ranks, iterations | {d['nproc']}, {d['iterations']} |",
             f"| median s/iteration | {d['median_t_iter_s']:.3f} |",
             f"| compute bound (ranks x fwd+bwd / units) | {d['nproc']} x "
             f"{d['fwd_bwd_one_s']:.3f} / {d['parallel_units']} = {d['compute_bound_s']:.3f} |",
             f"| ratio to the compute bound | {d['ratio_to_compute_bound']:.2f} |",
             f"| communication fraction | {d['comm_fraction']:.3f} |",
             f"| forward/backward | {p['t_fwd_bwd']:.3f} |",
             f"| aggregation (Thres, Fil) | {p['t_aggregate']:.3f} |",
             f"| fine-tune | {p['t_finetune']:.4f} |",
             f"| pack/unpack, frame checks | {p['t_pack']:.4f} |",
             f"| waiting for neighbours | {p['t_comm']:.3f} |",
             f"| evaluation (per rank) | {d['t_eval_median_s']:.2f} |",
             f"| start-up (process start to iteration 1, median) | "
             f"{d['startup_s_median']:.1f} |",
             f"| whole job | {d['job_wall_s']:.0f} |",
             f"| bytes per message | {d['bytes_per_message']:,} = "
             f"{d['payload_bytes_per_message']:,} + "
             f"{d['bytes_per_message'] - d['payload_bytes_per_message']} header |"]
    if gpu and max(gpu) > 0:
        lines.append(f"| GPU memory per rank (peak allocated) | {min(gpu):,.0f}-"
                     f"{max(gpu):,.0f} MiB |")
    return lines


def wire(d: dict[str, Any]) -> list[str]:
    r = d["per_round"]
    lines = [_machine(d), "", "| figure | value |", "|---|---|",
             f"| agents | {d['nproc']} |",
             f"| runtime's bytes per message | {d['jobs'][0]['bytes_per_message']:,} |",
             f"| extra rounds compared | {r['rounds']} |",
             f"| control: the same jobs as ind_mask (no messages) | "
             f"{r.get('control_wire_bytes', 0):,} B in {r.get('control_wire_packets', 0):,} "
             f"packets over the extra rounds (subtracted) |",
             f"| payload bytes (runtime count) | {r['payload_bytes']:,} |",
             f"| loopback bytes (tx counter, control subtracted) | {r['wire_bytes']:,} in "
             f"{r['wire_packets']:,} packets |",
             f"| overhead per message | {r['overhead_bytes_per_message']:,.0f} B, "
             f"{r['packets_per_message']:.1f} packets |",
             f"| TCP/IP + framing overhead | {r['overhead_pct']:.2f}% |"]
    for j, pct in zip(d["jobs"], d["whole_job_overhead_pct"]):
        lines.append(f"| whole job, {j['iterations']} iterations (start-up included) | "
                     f"{j['wire']['tx_bytes']:,} B on the wire for {j['payload_bytes']:,} B "
                     f"payload: +{pct:.1f}% |")
    return lines


def main(paths: list[str]) -> None:
    render = {"exchange": exchange, "scaling": scaling, "breakdown": breakdown,
              "wire_bytes": wire}
    for path in paths:
        d = json.loads(Path(path).read_text())
        print(f"### {d['benchmark']} ({path})\n")
        print("\n".join(render[d["benchmark"]](d)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
