"""Run every job of a sweep file, one torchrun job after another:

    python -m mcepl_dist.sweep configs/sweeps/table2.yaml --out runs/table2
    python -m mcepl_dist.sweep configs/sweeps/table2.yaml --out runs/table2_short \\
        --set train.iterations=60 --columns 4 --rows MCE-PL,ind-mask

Each job's run directory is OUT/<job>; torchrun's output goes to OUT/logs/<job>.log.
Complete jobs (a summary.json) are skipped, a job stopped after a checkpoint is resumed,
one stopped before its first checkpoint is started again: rerunning the same command
continues an interrupted sweep. Every job is validated (config, graph, data) before the
first one starts. One progress line per job; exit 1 if any job failed.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcepl_dist import checkpoint
from mcepl_dist.config import (
    Config,
    config_difference,
    load_config,
    result_config,
    with_resolved_paths,
)
from mcepl_dist.errors import ConfigError, UserError
from mcepl_dist.metrics import write_json
from mcepl_dist.plan import check_inputs
from mcepl_dist.provenance import git_commit, utc_now
from mcepl_dist.sweepfile import Job, Sweep, load_sweep
from mcepl_dist.sweepfile import jobs as expand_jobs

STATE_FILE = "sweep.json"
LOCK_FILE = "sweep.lock"


@dataclass(frozen=True)
class Planned:
    """A job with its validated config and what has to be done for it."""

    job: Job
    cfg: Config
    action: str  # "skip" (complete), "resume" (has a checkpoint) or "start"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m mcepl_dist.sweep",
                                 description="Run a sweep file's jobs, one after another.")
    ap.add_argument("sweep", help="sweep file (configs/sweeps/*.yaml)")
    ap.add_argument("--out", required=True, help="sweep directory: one run directory per job")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override for every job, after the sweep's own (e.g. a shorter "
                         "budget: --set train.iterations=60); a sweep directory keeps the "
                         "overrides it was started with")
    ap.add_argument("--rows", help="only these rows (comma-separated labels; a label that "
                                   "holds a comma is matched whole)")
    ap.add_argument("--columns", help="only these column values (comma-separated)")
    ap.add_argument("--seeds", help="only these seeds (comma-separated)")
    ap.add_argument("--stop-after", type=float, metavar="SECONDS",
                    help="start no new job after this many seconds (rerun to continue)")
    ap.add_argument("--keep-checkpoints", action="store_true",
                    help="keep a complete job's checkpoints (default: removed once its "
                         "summary.json is written; they are only needed to resume)")
    ap.add_argument("--dry-run", action="store_true",
                    help="validate and list the jobs with what would be done; run nothing")
    return ap.parse_args(argv)


def _pick(text: str | None) -> set[str] | None:
    return None if text is None else {t.strip() for t in text.split(",") if t.strip()}


def pick_labels(text: str | None, labels: set[str]) -> set[str] | None:
    """--rows split at commas, but pieces that join into a known label (one holding a comma,
    such as "Dis-PFL lr 0.01, fixed mask (alpha 0)") are taken whole, longest first."""
    if text is None:
        return None
    pieces, i = text.split(","), 0
    picked: set[str] = set()
    while i < len(pieces):
        j = next((j for j in range(len(pieces), i, -1)
                  if ",".join(pieces[i:j]).strip() in labels), i + 1)
        picked.add(",".join(pieces[i:j]).strip())
        i = j
    return picked - {""}


def select(jobs: list[Job], args: argparse.Namespace, sweep: Sweep) -> list[Job]:
    """The jobs chosen by --rows/--columns/--seeds (an unknown name is an error)."""
    labels = {r.label for r in sweep.rows}
    rows = pick_labels(args.rows, labels)
    columns, seeds = _pick(args.columns), _pick(args.seeds)
    if rows and not rows <= labels:
        raise ConfigError(f"--rows: no row {sorted(rows - labels)[0]!r} in sweep {sweep.name} "
                          f"(rows: {', '.join(r.label for r in sweep.rows)})")
    if columns and not columns <= {str(v) for v in sweep.columns.values}:
        raise ConfigError(f"--columns: sweep {sweep.name} has columns "
                          f"{', '.join(map(str, sweep.columns.values))}")
    known_seeds = {str(s) for r in sweep.rows for s in r.seeds}
    if seeds and not seeds <= known_seeds:
        raise ConfigError(f"--seeds: sweep {sweep.name} has seeds "
                          f"{', '.join(sorted(known_seeds, key=int))}")
    return [j for j in jobs
            if (rows is None or j.row in rows)
            and (columns is None or str(j.column) in columns)
            and (seeds is None or str(j.seed) in seeds)]


def check_state(out: Path, sweep: Sweep, raw: dict[str, Any], extra: list[str]) -> None:
    """A sweep directory belongs to one sweep and one set of --set overrides."""
    state_path = out / STATE_FILE
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    if not state_path.is_file():
        if out.exists() and any(p.name not in ("logs", LOCK_FILE) for p in out.iterdir()):
            raise ConfigError(f"--out {out} is not empty and is not a sweep directory "
                              f"(no {STATE_FILE})")
        return
    try:
        state = json.loads(state_path.read_text())
    except json.JSONDecodeError:
        raise ConfigError(f"{state_path} is not valid JSON") from None
    if state.get("name") != sweep.name:
        raise ConfigError(f"--out {out} holds sweep {state.get('name')!r}, not {sweep.name!r}")
    if state.get("extra_set", []) != extra:
        raise ConfigError(f"--out {out} was started with --set {state.get('extra_set')}; give "
                          f"the same overrides (now {extra}) or another --out")


def plan(jobs: list[Job], out: Path) -> list[Planned]:
    """Validate every job's config, graph and data; decide skip/resume/start for each."""
    planned = []
    for job in jobs:
        try:
            cfg = load_config(job.config, list(job.overrides))
            check_inputs(cfg)
        except UserError as exc:
            raise type(exc)(f"job {job.name}: {exc}") from None
        planned.append(Planned(job, cfg, _action(job, cfg, out / job.name)))
    return planned


def same_run(cfg: Config) -> str:
    """A key equal for exactly the configs that train the same (config.result_config);
    file paths as a run directory's config.yaml holds them, so it compares with those."""
    return json.dumps(result_config(with_resolved_paths(cfg)), sort_keys=True)


def repeats(planned: list[Planned], every: list[Job]) -> list[str]:
    """A note for each planned job that trains the same configuration as another job of
    the sweep (a knob row that restates what another row or the --set gives already):
    it still runs, as its row needs the cell, but its result is that job's run again."""
    keys = {p.job.name: same_run(p.cfg) for p in planned}  # their configs are loaded
    by_key: dict[str, list[str]] = {}
    for job in every:
        if job.name not in keys:
            try:
                keys[job.name] = same_run(load_config(job.config, list(job.overrides)))
            except UserError:  # a job not chosen may not take this --set: it is no twin
                continue
        by_key.setdefault(keys[job.name], []).append(job.name)
    notes = []
    for p in planned:
        twins = [name for name in by_key[keys[p.job.name]] if name != p.job.name]
        if twins:
            notes.append(f"note: {p.job.name} trains the same configuration as "
                         f"{', '.join(twins)} (only the row label differs)")
    return notes


def _action(job: Job, cfg: Config, run_dir: Path) -> str:
    """What to do for a job whose run directory may exist already."""
    saved = run_dir / "config.yaml"
    if saved.is_file():
        diff = config_difference(with_resolved_paths(cfg), load_config(saved))
        if diff:
            raise ConfigError(f"{run_dir} holds a run of another config ({diff}); remove it "
                              f"or use another --out")
    if (run_dir / "summary.json").is_file():
        return "skip"
    if saved.is_file() and all(checkpoint.iterations(run_dir, r)
                               for r in range(cfg.agents.num)):
        return "resume"
    return "start"


def torchrun_command(p: Planned, run_dir: Path) -> list[str]:
    """The torchrun command of one job (standalone: a free port on this host)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={p.cfg.agents.num}", "-m", "mcepl_dist.run"]
    if p.action == "resume":
        return [*cmd, "--resume", str(run_dir)]
    sets = [a for o in p.job.overrides for a in ("--set", o)]
    return [*cmd, "--config", p.job.config, *sets, "--out", str(run_dir)]


def run_job(p: Planned, out: Path, sweep_command: str) -> tuple[int, float]:
    """Run one job to its end, its output in OUT/logs/<job>.log; (exit code, seconds)."""
    run_dir = out / p.job.name
    if p.action == "start" and run_dir.exists():
        shutil.rmtree(run_dir)  # stopped before its first checkpoint: nothing to keep
    log_path = out / "logs" / f"{p.job.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MCEPL_SWEEP_COMMAND": sweep_command}
    start = time.perf_counter()
    with open(log_path, "a") as log:
        log.write(f"$ {shlex.join(torchrun_command(p, run_dir))}\n")
        log.flush()
        proc = subprocess.Popen(torchrun_command(p, run_dir), stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            code = proc.wait()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: end the job's ranks too
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise
    return code, time.perf_counter() - start


def _result_line(run_dir: Path) -> str:
    """The headline figures of a finished job."""
    s = json.loads((run_dir / "summary.json").read_text())
    return (f"acc {s['final_mean_test_acc']:.4f} | {s['bytes_per_message']:,} B/msg | "
            f"{s['median_t_iter_s']:.2f} s/iter")


def _log_tail(path: Path, lines: int = 3) -> str:
    text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return " / ".join(line.strip() for line in text[-lines:])


def write_state(out: Path, sweep_file: Path, raw: dict[str, Any], extra: list[str],
                planned: list[Planned], sweep_command: str) -> None:
    """OUT/sweep.json: the sweep file's content and the --set overrides, so that the report
    needs only the directory, and every job's command."""
    state_path = out / STATE_FILE
    old = json.loads(state_path.read_text()) if state_path.is_file() else {}
    jobs = dict(old.get("jobs", {}))
    for p in planned:
        jobs[p.job.name] = {**p.job.as_dict(),
                            "command": shlex.join(torchrun_command(
                                Planned(p.job, p.cfg, "start"), out / p.job.name))}
    commit, dirty = git_commit()
    now = utc_now()
    write_json(state_path, {
        "name": raw["name"], "file": str(sweep_file), "spec": raw, "extra_set": extra,
        "sweep_command": sweep_command, "created_utc": old.get("created_utc") or now,
        "updated_utc": now,
        "git_commit": commit, "git_dirty": dirty, "jobs": jobs})


def choose(args: argparse.Namespace) -> tuple[Sweep, dict[str, Any], list[Job], list[Job]]:
    """The sweep file read (parsed, raw), all its jobs under the --set, and those chosen
    by --rows/--columns/--seeds (none is an error)."""
    sweep, raw = load_sweep(Path(args.sweep))
    every = expand_jobs(sweep, tuple(args.overrides))
    chosen = select(every, args, sweep)
    if not chosen:
        raise ConfigError("no job matches --rows/--columns/--seeds")
    return sweep, raw, every, chosen


def run_sweep(args: argparse.Namespace, argv: list[str]) -> int:
    """Validate, then run the chosen jobs in order; the number of failed jobs decides exit."""
    sweep_file = Path(args.sweep)
    sweep, raw, every, chosen = choose(args)
    out = Path(args.out)
    check_state(out, sweep, raw, args.overrides)
    planned = plan(chosen, out)
    sweep_command = shlex.join(["python", "-m", "mcepl_dist.sweep", *argv])
    todo = [p for p in planned if p.action != "skip"]
    print(f"sweep {sweep.name}: {len(planned)} jobs, {len(planned) - len(todo)} complete, "
          f"{len(todo)} to run -> {out}", flush=True)
    for note in repeats(planned, every):
        print(note, flush=True)
    if args.dry_run:
        for i, p in enumerate(planned, 1):
            print(f"[{i}/{len(planned)}] {p.job.name}: would {p.action} "
                  f"({p.cfg.agents.num} ranks, {p.cfg.train.iterations} iterations)")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out):
        # Decided again under the lock: a sweep that just ended may have finished some.
        planned = [Planned(p.job, p.cfg, _action(p.job, p.cfg, out / p.job.name))
                   for p in planned]
        write_state(out, sweep_file.resolve(), raw, args.overrides, planned, sweep_command)
        return _run_all(planned, out, sweep_command, args.stop_after, args.keep_checkpoints)


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold OUT/sweep.lock while this sweep runs: two sweeps on one directory would start
    the same jobs into the same run directories."""
    with open(out / LOCK_FILE, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise ConfigError(f"another sweep (pid {holder}) is running in {out}; wait for "
                              f"it or stop it") from None
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


def _run_all(planned: list[Planned], out: Path, sweep_command: str,
             stop_after: float | None, keep_checkpoints: bool) -> int:
    """The job loop with its progress lines."""
    start, failed, n = time.perf_counter(), [], len(planned)
    for i, p in enumerate(planned, 1):
        head = f"[{i}/{n}] {p.job.name}"
        if p.action == "skip":
            print(f"{head}: complete, skipped | {_result_line(out / p.job.name)}", flush=True)
            continue
        if stop_after is not None and time.perf_counter() - start > stop_after:
            left = sum(1 for q in planned[i - 1:] if q.action != "skip")
            print(f"stopping after {stop_after:.0f} s (--stop-after): {left} jobs left; run "
                  f"the same command to continue", flush=True)
            break
        print(f"{head}: {p.action} ({p.cfg.agents.num} ranks, {p.cfg.train.iterations} "
              f"iterations) ...", flush=True)
        code, secs = run_job(p, out, sweep_command)
        log_path = out / "logs" / f"{p.job.name}.log"
        if code == 0 and (out / p.job.name / "summary.json").is_file():
            if not keep_checkpoints:
                shutil.rmtree(out / p.job.name / "checkpoints", ignore_errors=True)
            print(f"{head}: done in {secs:.0f} s | {_result_line(out / p.job.name)}", flush=True)
        else:
            failed.append(p.job.name)
            print(f"{head}: FAILED (exit {code}) after {secs:.0f} s: {_log_tail(log_path)} "
                  f"(log {log_path})", flush=True)
    if failed:
        print(f"sweep: {len(failed)} job(s) failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


def _stop(signum: int, frame: Any) -> None:
    """SIGTERM and SIGINT stop the sweep the same way: the running job is ended with it."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        return run_sweep(args, argv)
    except UserError as exc:
        print(f"mcepl_dist.sweep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mcepl_dist.sweep: interrupted; run the same command to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # SIGINT too: a shell starts background jobs with it ignored.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    sys.exit(main())
