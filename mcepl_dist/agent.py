"""The per-rank training loop: local step -> exchange -> fine-tune/aggregate -> eval -> log.

    torchrun --nproc_per_node=20 -m mcepl_dist.run
    torchrun --nproc_per_node=4 -m mcepl_dist.run --config configs/quickstart.yaml
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mcepl_dist import checkpoint
from mcepl_dist.algorithms import ALL, Strategy
from mcepl_dist.config import Config
from mcepl_dist.data import AgentData, Sampler, Split
from mcepl_dist.failure import Fault
from mcepl_dist.masks import dead_rows
from mcepl_dist.metrics import MetricsWriter, RankResult, median
from mcepl_dist.model import FixedNetwork, forward, normalize
from mcepl_dist.timing import PhaseTimer
from mcepl_dist.transport import Transport

log = logging.getLogger("mcepl_dist")


@dataclass
class AgentContext:
    """Everything one rank's loop works with."""

    cfg: Config
    rank: int
    device: torch.device
    net: FixedNetwork
    data: AgentData
    strategy: Strategy
    transport: Transport
    timer: PhaseTimer
    writer: MetricsWriter
    # Sum over ranks of [test_acc, bytes_sent]; a collective, called at eval iterations only.
    reduce_progress: Callable[[list[float]], list[float]]
    run_dir: Path
    barrier: Callable[[], None]  # all ranks; after a checkpoint, before pruning older ones
    resume: dict[str, Any] | None = None  # a checkpoint to continue from
    fault: Fault | None = None  # test hook ($MCEPL_FAULT)
    iteration: int = 0  # where the loop is (error messages, the watchdog)
    last_counters: dict[str, int] | None = None


@dataclass
class LoopState:
    """The loop's running totals: what a checkpoint must carry besides the strategy."""

    t_iters: list[float] = field(default_factory=list)
    batch_losses: list[float] = field(default_factory=list)
    paper_bits: float = 0.0
    mask_ones: float = 0.0
    totals: dict[str, float] = field(
        default_factory=lambda: {"t_comm": 0.0, "t_pack": 0.0, "t_compute": 0.0})
    acc: float = 0.0
    loss: float = 0.0
    wall_s: float = 0.0  # training and evaluation time up to the newest checkpoint
    resumes: int = 0  # how many times the run was resumed from a checkpoint


@torch.no_grad()
def evaluate(net: FixedNetwork, weights: list[torch.Tensor], split: Split, batch_size: int,
             device: torch.device) -> tuple[float, float]:
    """Local test accuracy and mean cross-entropy over a whole split."""
    correct, loss_sum = 0, 0.0
    for start in range(0, len(split.labels), batch_size):
        x = normalize(torch.from_numpy(split.images[start : start + batch_size]).to(device))
        y = torch.from_numpy(split.labels[start : start + batch_size]).to(device)
        logits = forward(net, x, weights)
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(dim=1) == y).sum())
    n = len(split.labels)
    return correct / n, loss_sum / n


def exchange(ctx: AgentContext, round: int) -> dict[str, float]:
    """Step 3: send this round's message to every neighbour and hand over what arrives."""
    s = ctx.strategy
    payload = s.message(round)
    if payload is None:
        received = {}
    elif s.collective:
        received = {ALL: ctx.transport.all_reduce_mean(round, payload)}
    else:
        received = ctx.transport.exchange(round, payload, kind=s.message_kind,
                                          sizes_differ=s.sizes_differ)
    s.receive(round, received)
    return s.message_stats() if payload is not None else {}


def local_steps(strategy: Strategy, sampler: Sampler, train_x: torch.Tensor,
                train_y: torch.Tensor) -> dict[str, float]:
    """The strategy's local steps of one iteration, each on the sampler's next minibatch;
    their logged scalars averaged over the steps."""
    steps = []
    for _ in range(strategy.local_steps):
        idx = torch.from_numpy(sampler.next()).to(train_y.device)
        steps.append(strategy.local_step(normalize(train_x[idx]), train_y[idx]))
    return {key: sum(s[key] for s in steps) / len(steps) for key in steps[0]}


def tally(ctx: AgentContext, st: LoopState, stats: dict[str, float]) -> None:
    """Add a round to the paper's accounting (bits) and the authors' (ones): each message's
    figures times the messages sent (one per neighbour; one for a collective)."""
    fanout = 1 if ctx.strategy.collective else len(ctx.transport.neighbors)
    st.paper_bits += stats.get("paper_bits", 0.0) * fanout
    st.mask_ones += stats.get("mask_ones", 0.0) * fanout


def peak_memory_mb(device: torch.device) -> tuple[float, float]:
    """Peak resident set size of this process and peak GPU memory allocated, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    gpu = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0
    return rss, gpu


def train(ctx: AgentContext) -> RankResult:
    """Run the configured iterations on this rank and return its final figures."""
    cfg, tr = ctx.cfg, ctx.cfg.train
    train_x = torch.from_numpy(ctx.data.train.images).to(ctx.device)
    train_y = torch.from_numpy(ctx.data.train.labels).to(ctx.device)
    sampler = Sampler(len(train_y), tr.batch_size, cfg.seed, ctx.rank)
    st = LoopState()
    clock_zero = time.perf_counter()  # moved back by a resumed run's earlier segments

    if ctx.resume is None:
        # Round 0: agree on the neighbours' initial masks (ALGORITHM.md, "Before iteration 1").
        start = time.perf_counter()
        sent = exchange(ctx, 0)
        tally(ctx, st, sent)
        ctx.writer.write({"iter": 0, "rank": ctx.rank, **_traffic(ctx),
                          "paper_bytes_cum": st.paper_bits / 8,
                          "t_iter": time.perf_counter() - start, **ctx.timer.pop(), **sent})
        first = 1
    else:
        first = restore_checkpoint(ctx, ctx.resume, sampler, st) + 1
        st.resumes += 1
        clock_zero -= st.wall_s

    for it in range(first, tr.iterations + 1):
        ctx.iteration = it
        if ctx.fault is not None:
            ctx.fault.fire_if_due(ctx.rank, it)
        start = time.perf_counter()
        # Local step on a minibatch (baselines: local_steps of them): back-prop and
        # intermediate aggregation (steps 1-2).
        stats = local_steps(ctx.strategy, sampler, train_x, train_y)
        # Exchange with neighbours, then fine-tune and aggregate (steps 3-5).
        sent = exchange(ctx, it)
        tally(ctx, st, sent)
        t_iter = time.perf_counter() - start
        st.t_iters.append(t_iter)
        st.batch_losses.append(stats["loss"])
        record = {"iter": it, "rank": ctx.rank, **_traffic(ctx),
                  "paper_bytes_cum": st.paper_bits / 8, "t_iter": t_iter, **ctx.timer.pop(),
                  **stats, **sent}
        for key in st.totals:
            st.totals[key] += record[key]
        # Evaluate every eval_every iterations and at the end.
        if (tr.eval_every and it % tr.eval_every == 0) or it == tr.iterations:
            st.acc, st.loss = _evaluate_and_report(ctx, it, record, st.batch_losses, st.t_iters)
            st.batch_losses = []
        elif ctx.rank == 0 and it % tr.log_every == 0:
            log.info("iter %d/%d  loss %.3f  %.2f s/iter  sent %s (rank 0)", it, tr.iterations,
                     stats["loss"], t_iter, _fmt_bytes(record["bytes_sent_cum"]))
        ctx.writer.write(record)
        # Every checkpoint.every iterations: save this rank's whole state.
        if cfg.checkpoint.every and it % cfg.checkpoint.every == 0:
            st.wall_s = time.perf_counter() - clock_zero
            save_checkpoint(ctx, it, sampler, st)

    st.wall_s = time.perf_counter() - clock_zero
    return _result(ctx, st)


def save_checkpoint(ctx: AgentContext, it: int, sampler: Sampler, st: LoopState) -> None:
    """Write this rank's state after iteration `it`; prune old ones once every rank has it."""
    checkpoint.save(ctx.run_dir, ctx.rank, it, {
        "strategy": ctx.strategy.state_dict(),
        "sampler": sampler.state_dict(),
        "rng": checkpoint.rng_states(ctx.device),
        "counters": ctx.transport.counters.snapshot(),
        "last_counters": ctx.last_counters,
        "loop": asdict(st),
    })
    ctx.barrier()  # no rank prunes an older checkpoint before every rank has this one
    checkpoint.prune(ctx.run_dir, ctx.rank, ctx.cfg.checkpoint.keep)


def restore_checkpoint(ctx: AgentContext, saved: dict[str, Any], sampler: Sampler,
                       st: LoopState) -> int:
    """Put the strategy, sampler, RNGs, counters and totals back; return the iteration."""
    ctx.strategy.load_state_dict(checkpoint.to_device(saved["strategy"], ctx.device))
    sampler.load_state_dict(saved["sampler"])
    checkpoint.set_rng_states(saved["rng"], ctx.device)
    for key, value in saved["counters"].items():
        setattr(ctx.transport.counters, key, value)
    ctx.last_counters = saved["last_counters"]
    for key, value in saved["loop"].items():
        setattr(st, key, value)
    ctx.iteration = int(saved["iteration"])
    return ctx.iteration


def _evaluate_and_report(ctx: AgentContext, it: int, record: dict[str, float],
                         batch_losses: list[float], t_iters: list[float]) -> tuple[float, float]:
    """Evaluate locally, add it to the record, and print the network-wide progress line."""
    start = time.perf_counter()
    weights = ctx.strategy.eval_weights()
    acc, loss = evaluate(ctx.net, weights, ctx.data.test, ctx.cfg.train.eval_batch_size,
                         ctx.device)
    dead = dead_rows(weights[-1], ctx.data.labels)
    record.update(test_acc=acc, test_loss=loss, train_loss=sum(batch_losses) / len(batch_losses),
                  dead_label_rows=len(dead), t_eval=time.perf_counter() - start)
    if dead:
        log.warning("agent %d at iter %d: its mask keeps no weight of the output row of its "
                    "label(s) %s, so it cannot predict them", ctx.rank, it,
                    ", ".join(map(str, dead)))
    acc_sum, bytes_sum = ctx.reduce_progress([acc, float(record["bytes_sent_cum"])])
    if ctx.rank == 0:
        n = ctx.cfg.agents.num
        log.info("iter %d/%d  mean test acc %.4f  sent %s (all agents)  %.2f s/iter (median)",
                 it, ctx.cfg.train.iterations, acc_sum / n, _fmt_bytes(bytes_sum),
                 median(t_iters))
    return acc, loss


def _result(ctx: AgentContext, st: LoopState) -> RankResult:
    """This rank's final figures for the summary."""
    c = ctx.transport.counters
    rss, gpu = peak_memory_mb(ctx.device)
    return RankResult(
        test_acc=st.acc, test_loss=st.loss, bytes_sent=c.bytes_sent, bytes_recv=c.bytes_recv,
        msgs_sent=c.msgs_sent, message_bytes=c.bytes_sent / c.msgs_sent if c.msgs_sent else 0,
        paper_bits_sent=st.paper_bits, mask_ones_sent=st.mask_ones,
        median_t_iter=median(st.t_iters), sum_t_iter=sum(st.t_iters),
        sum_t_comm=st.totals["t_comm"], sum_t_pack=st.totals["t_pack"],
        sum_t_compute=st.totals["t_compute"], peak_rss_mb=rss, peak_gpu_mb=gpu,
        wall_s=st.wall_s, resumes=st.resumes)


def _traffic(ctx: AgentContext) -> dict[str, int]:
    """This iteration's bytes and messages (deltas) plus the running byte totals."""
    now = ctx.transport.counters.snapshot()
    before = ctx.last_counters or {k: 0 for k in now}
    ctx.last_counters = now
    delta = {k: now[k] - before[k] for k in now}
    return {**delta, "bytes_sent_cum": now["bytes_sent"], "bytes_recv_cum": now["bytes_recv"]}


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000.0
    return f"{n:.1f} GB"
