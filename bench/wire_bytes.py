"""Wire bytes: a job inside a fresh network namespace, its loopback counters against the
payload bytes the runtime counted. Needs root (`ip netns add`) and iproute2.

In a new namespace the only interface is `lo` and nothing else talks on it, so its
counters hold exactly this job's traffic: the mask frames plus TCP/IP headers, gloo's
framing, ACKs, torchrun's rendezvous and store traffic, and the bookkeeping collectives.
Two jobs that differ only in iterations separate the per-round cost from the fixed cost:

  overhead per round = (wire bytes of the extra rounds - payload bytes of the extra rounds)
                       / payload bytes of the extra rounds

The extra rounds also last longer, and torchrun's agents and store talk on their own
clock; the same two jobs with `algorithm.name=ind_mask` (identical compute, no messages)
measure that traffic, which is subtracted as the control. Loopback counts every packet
once on transmit; its L2 header is 14 bytes, as Ethernet's.

    sudo python bench/wire_bytes.py --json bench/results/wire_bytes.json   # 4 agents, paper model
    sudo python bench/wire_bytes.py --nproc 20 --iterations 1,3 --json /tmp/w20.json   # 20 agents
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_sets, machine, read_summary, set_args, torchrun_job, write_json  # noqa: E402


def ip(*args: str) -> str:
    """Run `ip ARGS`, raising with its message on failure."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def lo_counters(ns: str) -> dict[str, int]:
    """The namespace's loopback counters (bytes and packets, transmit and receive)."""
    [link] = json.loads(ip("-n", ns, "-s", "-j", "link", "show", "dev", "lo"))
    stats = link.get("stats64") or link["stats"]
    return {"tx_bytes": stats["tx"]["bytes"], "tx_packets": stats["tx"]["packets"],
            "rx_bytes": stats["rx"]["bytes"], "rx_packets": stats["rx"]["packets"]}


def measured_job(ns: str, nproc: int, run_args: list[str], out: Path,
                 timeout: float) -> dict[str, Any]:
    """One job in the namespace: counter deltas and the runtime's own byte counts."""
    before = lo_counters(ns)
    job = torchrun_job(nproc, run_args, out, timeout, prefix=["ip", "netns", "exec", ns])
    after = lo_counters(ns)
    if job["rc"] != 0:
        sys.exit(f"job failed (exit {job['rc']}) in namespace {ns}")
    s = read_summary(out)
    wire = {k: after[k] - before[k] for k in before}
    return {"iterations": s["iterations"], "wire": wire,
            "payload_bytes": s["bytes_sent_total"], "messages": s["messages_sent_total"],
            "bytes_per_message": s["bytes_per_message"], "job_wall_s": job["job_wall_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nproc", type=int, default=4)
    ap.add_argument("--iterations", default="2,6", help="the two jobs' iteration counts")
    ap.add_argument("--config", default=None,
                    help="config (default: quickstart, 4 agents on a ring, at --width)")
    ap.add_argument("--width", type=float, default=1.0,
                    help="model.width (1.0: the paper's 153,448-byte messages)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--device", choices=["cpu", "cuda"])
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--json", default="bench/results/wire_bytes.json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/wire_bytes.py needs root: it creates a network namespace")

    config = args.config or str(Path(__file__).resolve().parents[1] / "configs" /
                                "quickstart.yaml")
    if args.nproc != 4 and args.config is None:
        args.sets = [f"agents.num={args.nproc}", "agents.retention=0.5", *args.sets]
    short, long = (int(i) for i in args.iterations.split(","))
    ns = f"mcepl_wire_{os.getpid()}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` drops the namespace
    before = machine()
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        jobs: list[dict[str, Any]] = []
        control: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="mcepl_wire_") as tmp:
            for algo, into in (("mcepl", jobs), ("ind_mask", control)):
                for iters in (short, long):
                    sets = ["data.name=synthetic", f"model.width={args.width}",
                            f"train.iterations={iters}", "train.eval_every=0",
                            *device_sets(args.device, None), *args.sets,
                            f"algorithm.name={algo}"]
                    into.append(measured_job(ns, args.nproc,
                                             ["--config", config, *set_args(sets)],
                                             Path(tmp) / f"{algo}{iters}", args.timeout))
    finally:
        ip("netns", "del", ns)

    a, b = jobs
    ca, cb = control
    d_control = cb["wire"]["tx_bytes"] - ca["wire"]["tx_bytes"]
    d_control_pkts = cb["wire"]["tx_packets"] - ca["wire"]["tx_packets"]
    d_wire = b["wire"]["tx_bytes"] - a["wire"]["tx_bytes"] - d_control
    d_pkts = b["wire"]["tx_packets"] - a["wire"]["tx_packets"] - d_control_pkts
    d_payload = b["payload_bytes"] - a["payload_bytes"]
    d_msgs = b["messages"] - a["messages"]
    result = {
        "benchmark": "wire_bytes", "nproc": args.nproc, "config": config, "sets": args.sets,
        "width": args.width, "machine_before": before, "machine_after": machine(),
        "jobs": jobs, "control_jobs": control,
        "per_round": {
            "control_wire_bytes": d_control, "control_wire_packets": d_control_pkts,
            "rounds": b["iterations"] - a["iterations"], "payload_bytes": d_payload,
            "wire_bytes": d_wire, "wire_packets": d_pkts, "messages": d_msgs,
            "wire_bytes_per_message": d_wire / d_msgs,
            "overhead_pct": 100.0 * (d_wire - d_payload) / d_payload,
            "overhead_bytes_per_message": (d_wire - d_payload) / d_msgs,
            "packets_per_message": d_pkts / d_msgs},
        "whole_job_overhead_pct": [100.0 * (j["wire"]["tx_bytes"] - j["payload_bytes"])
                                   / j["payload_bytes"] for j in jobs],
    }
    write_json(args.json, result)
    r = result["per_round"]
    print(f"{args.nproc} agents, {a['bytes_per_message']:,} B per message (runtime count)\n"
          f"  control (ind_mask, no messages): {d_control:,} B over the extra rounds\n"
          f"  per extra round: payload {d_payload:,} B, loopback {d_wire:,} B in {d_pkts:,} "
          f"packets -> overhead {r['overhead_pct']:.2f}% ({r['overhead_bytes_per_message']:.0f}"
          f" B and {r['packets_per_message']:.1f} packets per message)\n"
          f"  whole jobs ({short} and {long} iterations, start-up included): overhead "
          + ", ".join(f"{x:.1f}%" for x in result["whole_job_overhead_pct"]))


if __name__ == "__main__":
    main()
