"""Entry point, one process per agent:

    torchrun --nproc_per_node=20 -m mcepl_dist.run                 # the paper's Table II setting
    torchrun --nproc_per_node=4 -m mcepl_dist.run --config configs/quickstart.yaml --out runs/demo
    torchrun --nproc_per_node=4 -m mcepl_dist.run --resume runs/demo     # after a crash

Validates everything (config, world size, graph, data) before the process group forms, so
bad input ends every rank with one line and exit code 2 and leaves no run directory. A
failure at run time ends every rank with one line and exit code 1 (see failure.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcepl_dist import checkpoint, dist
from mcepl_dist.agent import AgentContext, train
from mcepl_dist.algorithms import AgentSpec, build_strategy
from mcepl_dist.config import (
    Config,
    config_difference,
    dump_config,
    load_config,
    with_resolved_paths,
)
from mcepl_dist.data import AgentData, load_agent_data
from mcepl_dist.errors import ConfigError, ElsewhereError, UserError
from mcepl_dist.failure import WATCHDOG_FACTOR, Fault, Watchdog, exit_on_failure
from mcepl_dist.metrics import (
    MetricsWriter,
    RankResult,
    atomic_write,
    save_masks,
    summarize,
    truncate_metrics,
    write_json,
)
from mcepl_dist.model import network_for
from mcepl_dist.plan import check_inputs, describe
from mcepl_dist.provenance import provenance, utc_now
from mcepl_dist.timing import PhaseTimer, process_age_s
from mcepl_dist.topology import mixing_weights, neighbors
from mcepl_dist.transport import PeerTransport

log = logging.getLogger("mcepl_dist")


@dataclass(frozen=True)
class Prepared:
    """What one rank has validated and loaded before joining the process group."""

    cfg: Config
    env: dist.DistEnv
    adjacency: np.ndarray
    data: AgentData
    device: torch.device
    backend: str
    fault: Fault | None = None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m mcepl_dist.run",
        description="Run one agent of an MCE-PL job (start it with torchrun).")
    ap.add_argument("--config", help="YAML config (default: the paper's Table II setting)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. --set train.iterations=50 (repeatable)")
    ap.add_argument("--out", help="run directory (default: runs/<name>-<timestamp>)")
    ap.add_argument("--resume", metavar="RUN_DIR",
                    help="continue RUN_DIR from the newest checkpoint every rank has (uses "
                         "RUN_DIR/config.yaml; --config/--set, if given, must agree with it)")
    ap.add_argument("--check", action="store_true",
                    help="validate config, graph and data and print the run's plan; no training "
                         "(run without torchrun)")
    return ap.parse_args(argv)


def prepare(args: argparse.Namespace) -> Prepared:
    """Everything that can fail on bad input, in order, before any rank talks to another."""
    cfg = run_config(args)
    env = dist.env_from_torchrun()
    if env.world_size != cfg.agents.num:
        raise ConfigError(f"world size {env.world_size} != agents.num {cfg.agents.num}: start "
                          f"torchrun with --nproc_per_node={cfg.agents.num} (or set agents.num)")
    fault = Fault.from_env()
    adjacency, table = check_inputs(cfg)
    if args.resume:
        _check_resume(Path(args.resume), env.rank)
    elif args.out:
        _check_out_dir(Path(args.out), env.rank)
    device, backend = dist.choose_device(env, cfg.comm.device, cfg.comm.backend)
    return Prepared(cfg, env, adjacency, load_agent_data(cfg, env.rank, table), device, backend,
                    fault)


def run_config(args: argparse.Namespace) -> Config:
    """The config of this run: --config/--set, or for --resume the run's own config.yaml
    (then --config/--set, if given, must describe the same run)."""
    if not args.resume:
        return load_config(args.config, args.overrides)
    if args.out:
        raise ConfigError("--resume continues in RUN_DIR; do not give --out with it")
    saved = Path(args.resume) / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"--resume: {saved} not found ({args.resume} is not a run directory)")
    cfg = load_config(saved)
    if args.config or args.overrides:
        given = with_resolved_paths(load_config(args.config or saved, args.overrides))
        diff = config_difference(given, cfg)
        if diff:
            raise ConfigError(f"--resume: config differs from the run's: {diff} (given != "
                              f"{saved})")
    return cfg


def _check_resume(run_dir: Path, rank: int) -> None:
    if not checkpoint.iterations(run_dir, rank):
        raise ConfigError(f"--resume: no checkpoint of rank {rank} in "
                          f"{checkpoint.rank_dir(run_dir, rank)} (checkpoint.every is 0, or "
                          f"the run stopped before its first checkpoint)")
    if not _writable(run_dir):
        raise ConfigError(f"--resume: run directory {run_dir} is not writable")


def _check_out_dir(out: Path, rank: int = 0) -> None:
    """Refuse a non-empty or unwritable --out before any rank creates it.

    Only rank 0 (which creates the directory) checks emptiness: on a shared filesystem a
    rank on another node may look after rank 0 has already made it; the others only check
    that it is writable.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output directory {out} exists and is not a directory")
    if rank == 0 and out.exists() and any(out.iterdir()):
        raise ConfigError(f"output directory {out} exists and is not empty")
    parent = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    if not _writable(parent):
        raise ConfigError(f"output directory {out} is not writable ({parent})")


def _writable(directory: Path) -> bool:
    """Whether a file can be created in `directory` (tried, since root passes os.access)."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def _stop_if_any_failed(error: UserError | None, what: str) -> None:
    """A collective: every rank raises if any rank failed `what` (a problem only some ranks
    can see, such as rank 0 creating the run directory)."""
    if dist.all_reduce_min(0 if error else 1) == 0:
        raise error or ElsewhereError(f"{what} failed on another rank")


def make_run_dir(cfg: Config, out: str | None, rank: int) -> Path:
    """Rank 0 names and creates the run directory; every rank learns the same name (or
    that rank 0 could not create it)."""
    stamp, error = 0, None
    if rank == 0:
        stamp = _fresh_stamp(cfg.name)
        run_dir = _run_dir_name(cfg, out, stamp)
        try:
            (run_dir / "metrics").mkdir(parents=True, exist_ok=True)
            atomic_write(run_dir / "config.yaml", dump_config(with_resolved_paths(cfg)))
        except OSError as exc:
            error = ConfigError(f"cannot create the run directory {run_dir}: "
                                f"{exc.strerror or exc}")
    _stop_if_any_failed(error, "creating the run directory")
    return _run_dir_name(cfg, out, dist.broadcast_int(stamp))


def _run_dir_name(cfg: Config, out: str | None, stamp: int) -> Path:
    """--out, else runs/<name>-<stamp>."""
    return Path(out) if out else _default_run_dir(cfg.name, stamp)


def _default_run_dir(name: str, stamp: int) -> Path:
    return Path("runs") / f"{name}-{stamp}"


def resume_state(run_dir: Path, rank: int) -> dict[str, Any]:
    """Agree on the newest checkpoint every rank has, load this rank's, and cut the rank's
    metrics back to it."""
    it = checkpoint.newest_common(checkpoint.iterations(run_dir, rank), dist.all_reduce_min)
    if it is None:
        raise ConfigError(f"--resume: no iteration has a checkpoint of every rank in "
                          f"{run_dir / 'checkpoints'}")
    state, error = None, None
    try:
        state = checkpoint.load(run_dir, rank, it)
    except UserError as exc:
        error = exc
    _stop_if_any_failed(error, "loading a checkpoint")
    assert state is not None
    truncate_metrics(run_dir / "metrics" / f"rank{rank}.jsonl", it)
    if rank == 0:
        log.info("resuming %s after iteration %d", run_dir, it)
    return state


def _fresh_stamp(name: str) -> int:
    """A YYYYmmddHHMMSS stamp whose default run directory does not exist yet."""
    stamp = int(time.strftime("%Y%m%d%H%M%S"))
    while _default_run_dir(name, stamp).exists():
        stamp += 1  # two runs started within one second: take the next free name
    return stamp


def run(prep: Prepared, args: argparse.Namespace) -> None:
    """Join the process group, train, and write the run directory.

    A failure at run time (a neighbour gone or silent, an exception here) prints one line
    and ends this process at once, so its neighbours learn of it without waiting.
    """
    cfg, env, device, backend = prep.cfg, prep.env, prep.device, prep.backend
    threads = dist.set_cpu_threads(env)
    ctx: AgentContext | None = None
    run_dir: Path | None = None
    try:
        dist.init_process_group(env, backend, device, cfg.comm.timeout_s)
        run_dir = Path(args.resume) if args.resume else make_run_dir(cfg, args.out, env.rank)
        resume = resume_state(run_dir, env.rank) if args.resume else None
        if env.rank == 0:
            log.info("run dir %s | %d agents, %s on %s over %s, %d CPU threads per rank",
                     run_dir, env.world_size, cfg.algorithm.name, device, backend, threads)
        ctx = build_context(prep, run_dir, resume)
        with Watchdog(env.rank, lambda: ctx.iteration if ctx else 0,
                      WATCHDOG_FACTOR * cfg.comm.timeout_s):
            origin = provenance(device) if env.rank == 0 else {}
            startup = process_age_s()
            result = replace(train(ctx), startup_s=startup)
            ctx.writer.close()
            finish(ctx, run_dir, result, origin)
    except UserError:
        dist.destroy_process_group()
        raise
    except Exception as exc:
        exit_on_failure(env.rank, ctx.iteration if ctx else None, exc,
                        run_dir / "errors" if run_dir else None)
    dist.destroy_process_group()


def build_context(prep: Prepared, run_dir: Path, resume: dict[str, Any] | None) -> AgentContext:
    """The model, strategy, transport and metrics writer of this rank."""
    cfg, env, device = prep.cfg, prep.env, prep.device
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    timer = PhaseTimer(sync=sync)
    retention = cfg.agents.ratio(env.rank)
    net = network_for(cfg).to(device)
    spec = AgentSpec(agent=env.rank, seed=cfg.seed, retention=retention, net=net,
                     algo=cfg.algorithm, device=device, timer=timer,
                     mixing=mixing_weights(prep.adjacency, env.rank, cfg.algorithm.mixing),
                     iterations=cfg.train.iterations)
    transport = PeerTransport(env.rank, neighbors(prep.adjacency, env.rank), timer,
                              device if prep.backend == "nccl" else None)
    writer = MetricsWriter(run_dir / "metrics" / f"rank{env.rank}.jsonl",
                           append=resume is not None)
    return AgentContext(cfg=cfg, rank=env.rank, device=device, net=net, data=prep.data,
                        strategy=build_strategy(spec), transport=transport, timer=timer,
                        writer=writer, reduce_progress=dist.all_reduce_sum, run_dir=run_dir,
                        barrier=dist.barrier, resume=resume, fault=prep.fault)


def finish(ctx: AgentContext, run_dir: Path, result: RankResult,
           origin: dict[str, Any]) -> None:
    """Save this rank's masks; rank 0 gathers every rank's figures into summary.json, with
    `origin` (the provenance taken at the start) and the time it ended."""
    masks = ctx.strategy.final_masks()
    if ctx.cfg.output.save_masks and masks is not None:
        save_masks(run_dir / "masks" / f"agent{ctx.rank}.npz", masks)
    vectors = dist.all_gather_floats(result.to_vector())
    if ctx.rank == 0:
        results = [RankResult.from_vector(v) for v in vectors]
        summary = summarize(ctx.cfg.algorithm.name, ctx.cfg.train.iterations, results,
                            ctx.net.num_masked)
        summary["provenance"] = {**origin, "finished_utc": utc_now()}
        write_json(run_dir / "summary.json", summary)
        log.info("done: mean test acc %.4f | %d B per message | %.2f s/iter | comm %.1f%% | %s",
                 summary["final_mean_test_acc"], summary["bytes_per_message"],
                 summary["median_t_iter_s"], 100 * summary["comm_fraction"], run_dir)


def _setup_logging(rank: int) -> None:
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank {rank}] %(message)s", datefmt="%H:%M:%S")


def _single_process_defaults() -> None:
    """Let `python -m mcepl_dist.run` work without torchrun for a one-agent config."""
    if "MASTER_ADDR" not in os.environ:
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])


ERROR_GRACE_S = 3.0


def _report(exc: UserError, env: dist.DistEnv, own: bool = False) -> None:
    """Print one line for a bad input, once per job in the common case.

    Before the process group forms every rank validates the same config, so rank 0 speaks
    at once; another rank speaks only if it is still alive after a grace period, i.e. when
    the problem is its own (a data file on its host, say). torchrun ends the other ranks as
    soon as one exits, so the user sees one line, never none. After the process group has
    formed the ranks agree on who saw a problem: that rank speaks at once (`own`), the others
    wait the grace period and stop silently.
    """
    if isinstance(exc, ElsewhereError):
        time.sleep(ERROR_GRACE_S)
        return
    if env.rank != 0 and not own:
        time.sleep(ERROR_GRACE_S)
    where = "" if env.rank == 0 else f" (rank {env.rank})"
    print(f"mcepl_dist: error{where}: {exc}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = dist.env_from_torchrun()
    _setup_logging(env.rank)
    _single_process_defaults()
    try:
        if args.check:
            print("\n".join(describe(run_config(args))))
            return 0
        prep = prepare(args)
    except UserError as exc:
        _report(exc, env)
        return exc.exit_code
    try:
        run(prep, args)
    except UserError as exc:
        _report(exc, env, own=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
