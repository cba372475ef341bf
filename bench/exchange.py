"""Exchange micro-benchmark: one synchronous neighbour round, by payload type and method.

N ranks (gloo on this host, or nccl with one GPU per rank) on a circulant graph of degree d
(complete when d = N - 1) exchange, in every round, one message with every neighbour:

  packed   the runtime's frame: 32-byte header + ceil(M / 8) bytes (M masked weights)
  uint8    one byte per mask entry (a bool/uint8 tensor)
  fp32     four bytes per entry (a float mask, or a dense model)

with `batch` (dist.batch_isend_irecv, what the runtime uses), `isend` (individual
isend/irecv, then wait) or, for packed only, `runtime` (PeerTransport.exchange: framing,
CRC32 and header checks included). A round's time is the slowest rank's; the script
prints and stores the median over rounds.

    python bench/exchange.py --ranks 4,8,20 --rounds 5 --json bench/results/exchange.json
    python bench/exchange.py --ranks 8 --backend nccl --json /tmp/x.json   # 8 GPUs
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_json  # noqa: E402

from mcepl_dist.codec import HEADER_BYTES, packed_size  # noqa: E402
from mcepl_dist.timing import PhaseTimer  # noqa: E402
from mcepl_dist.transport import PeerTransport  # noqa: E402

PAPER_MASKED = 1_227_328


def circulant(n: int, degree: int, rank: int) -> list[int]:
    """Neighbours of `rank`: +-1 .. +-degree/2 (complete graph when degree = n - 1)."""
    if degree >= n - 1:
        return [j for j in range(n) if j != rank]
    half = degree // 2
    return sorted({(rank + s) % n for s in range(-half, half + 1) if s != 0})


def degrees_for(n: int, wanted: list[int]) -> list[int]:
    """The wanted even degrees that fit below n - 1, plus the complete graph."""
    return sorted({d for d in wanted if d % 2 == 0 and d < n - 1} | {n - 1})


def payload_bytes(kind: str, masked: int) -> int:
    return {"packed": HEADER_BYTES + packed_size(masked), "uint8": masked,
            "fp32": 4 * masked}[kind]


def one_round(method: str, send: torch.Tensor, recv: dict[int, torch.Tensor],
              transport: PeerTransport | None, payload: np.ndarray | None, rnd: int) -> None:
    """One exchange with every neighbour by `method`."""
    if method == "runtime":
        assert transport is not None and payload is not None
        transport.exchange(rnd, payload)
        return
    if method == "batch":
        ops = [dist.P2POp(dist.isend, send, j) for j in recv]
        ops += [dist.P2POp(dist.irecv, buf, j) for j, buf in recv.items()]
        reqs: list[Any] = dist.batch_isend_irecv(ops) if ops else []
    else:
        reqs = [dist.isend(send, j) for j in recv] + [dist.irecv(buf, j)
                                                       for j, buf in recv.items()]
    for req in reqs:
        req.wait()


def worker(rank: int, world: int, port: int, cfg: dict[str, Any], result_path: str) -> None:
    """One rank: run every (degree, payload, method) cell, report per-round maxima."""
    torch.set_num_threads(1)
    backend = cfg["backend"]
    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=600),
                            device_id=device if backend == "nccl" else None)
    rows = []
    for degree in degrees_for(world, cfg["degrees"]):
        nbrs = circulant(world, degree, rank)
        for kind in cfg["payloads"]:
            size = payload_bytes(kind, cfg["masked"])
            send = torch.randint(0, 256, (size,), dtype=torch.uint8, device=device)
            recv = {j: torch.empty(size, dtype=torch.uint8, device=device) for j in nbrs}
            methods = [m for m in cfg["methods"] if m != "runtime" or
                       (kind == "packed" and backend == "gloo")]
            for method in methods:
                transport = payload = None
                if method == "runtime":
                    transport = PeerTransport(rank, nbrs, PhaseTimer())
                    payload = np.random.default_rng(rank).integers(
                        0, 256, packed_size(cfg["masked"]), dtype=np.uint8)
                times = []
                for rnd in range(cfg["warmup"] + cfg["rounds"]):
                    dist.barrier()
                    start = time.perf_counter()
                    one_round(method, send, recv, transport, payload, rnd)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    if rnd >= cfg["warmup"]:
                        times.append(time.perf_counter() - start)
                t = torch.tensor(times, dtype=torch.float64, device=device)
                # a round lasts as long as its slowest rank
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                slowest = t.cpu().tolist()
                med = statistics.median(slowest)
                rows.append({"ranks": world, "degree": degree, "payload": kind,
                             "method": method, "message_bytes": size,
                             "median_round_s": med, "round_s": slowest,
                             "per_rank_MBps": degree * size / med / 1e6})
                if rank == 0:
                    print(f"N={world:3d} d={degree:2d} {kind:6s} {method:7s} "
                          f"{size:>9,d} B  {1e3 * med:9.2f} ms/round  "
                          f"{degree * size / med / 1e6:8.1f} MB/s per rank", flush=True)
    if rank == 0:
        Path(result_path).write_text(json.dumps(rows))
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ranks", default="4,8,20", help="comma-separated world sizes")
    ap.add_argument("--degrees", default="2,4,10", help="even degrees (plus N-1 always)")
    ap.add_argument("--payloads", default="packed,uint8,fp32")
    ap.add_argument("--methods", default="batch,isend,runtime")
    ap.add_argument("--masked", type=int, default=PAPER_MASKED,
                    help="mask entries per message (default: the paper model's)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--backend", default="gloo", choices=["gloo", "nccl"],
                    help="nccl: one GPU per rank (ranks <= GPUs)")
    ap.add_argument("--json", default="bench/results/exchange.json")
    args = ap.parse_args()
    cfg = {"degrees": [int(d) for d in args.degrees.split(",")],
           "payloads": args.payloads.split(","), "methods": args.methods.split(","),
           "masked": args.masked, "rounds": args.rounds, "warmup": args.warmup,
           "backend": args.backend}
    before = machine()
    rows: list[dict[str, Any]] = []
    for n in (int(r) for r in args.ranks.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "rows.json")
            mp.spawn(worker, args=(n, free_port(), cfg, path), nprocs=n, join=True)
            rows += json.loads(Path(path).read_text())
    write_json(args.json, {"benchmark": "exchange", "config": cfg, "machine_before": before,
                           "machine_after": machine(), "results": rows})


if __name__ == "__main__":
    main()
