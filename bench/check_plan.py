"""Check a GPU plan file (bench/device_streams.sh) here, before device time is spent on it:
every line a valid sweep selection (rows, columns, seeds, --set, configs and the data of
MCEPL_DATA), GUARD_S in seconds, NAMEs distinct, and no job that repeats another: one
that trains the same configuration (mcepl_dist.config.result_config, so the evaluation
interval does not count) as another job of the plan or as a run kept under
docs/results/runs/ (whatever machine it ran on). One process for the whole plan, so a
plan of ten lines costs one torch import; nothing runs and nothing is written.

    MCEPL_DATA=../shared/data/cifar-10-batches-py python bench/check_plan.py bench/plans/*.streams
    python bench/check_plan.py --kept DIR PLAN   # DIR: kept runs other than docs/results/runs
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import sys
import tempfile
from pathlib import Path

from mcepl_dist import sweep
from mcepl_dist.config import load_config

KEPT = Path(__file__).resolve().parents[1] / "docs" / "results" / "runs"


def dry_run(argv: list[str]) -> tuple[int, str]:
    """`python -m mcepl_dist.sweep ARGV --dry-run` in this process: its exit code, and its
    summary line (how many jobs) or, when it fails, its error line."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = sweep.main([*argv, "--dry-run"])
        except SystemExit as exc:  # argparse: an unknown option
            code = exc.code if isinstance(exc.code, int) else 2
    lines = out.getvalue().strip().splitlines() or [""]
    return code, lines[0] if code == 0 else lines[-1]


def kept_runs(root: Path = KEPT) -> dict[str, str]:
    """The runs kept under `root`: same-run key (sweep.same_run) -> "<sweep dir>/<job>"."""
    return {sweep.same_run(load_config(path)): f"{path.parent.parent.name}/{path.parent.name}"
            for path in sorted(root.glob("*/*/config.yaml"))}


def line_jobs(argv: list[str]) -> list[tuple[str, str]]:
    """(job name, same-run key) of each job a valid sweep command line would run."""
    *_, chosen = sweep.choose(sweep.parse_args(argv))
    return [(j.name, sweep.same_run(load_config(j.config, list(j.overrides)))) for j in chosen]


def check(plan: Path, kept: dict[str, str]) -> list[str]:
    """What is wrong with the plan's lines (empty: nothing); prints each good line's jobs."""
    errors, names = [], set()
    seen: dict[str, str] = {}  # same-run key -> "<NAME>/<job>" of the plan's earlier lines
    with tempfile.TemporaryDirectory() as scratch:
        for n, text in enumerate(plan.read_text().splitlines(), 1):
            words = shlex.split(text, comments=True)
            if not words:
                continue
            where = f"{plan}:{n}"
            if len(words) < 4:
                errors.append(f"{where}: want STREAM GUARD_S SWEEP NAME [options]")
                continue
            stream, guard, sweep_file, name, *opts = words
            if not guard.isdigit():
                errors.append(f"{where}: {name}: GUARD_S {guard!r} is not seconds")
            if name in names:
                errors.append(f"{where}: NAME {name} used twice")
            names.add(name)
            argv = [sweep_file, "--out", str(Path(scratch) / name), *opts]
            code, line = dry_run(argv)
            if code:
                errors.append(f"{where}: {name}: {line}")
                continue
            print(f"{stream} {name}: {line}")
            for job, key in line_jobs(argv):
                twin = seen.get(key) or kept.get(key)
                if twin:
                    errors.append(f"{where}: {name}: job {job} repeats {twin} (the same "
                                  f"configuration)")
                seen.setdefault(key, f"{name}/{job}")
    return errors


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python bench/check_plan.py",
                                 description="Check GPU plan files; run nothing.")
    ap.add_argument("plans", nargs="+", metavar="PLAN_FILE")
    ap.add_argument("--kept", type=Path, default=KEPT,
                    help="the report's kept runs, which no job may repeat (default: %(default)s)")
    args = ap.parse_args(argv)
    kept = kept_runs(args.kept)
    errors = [e for plan in args.plans for e in check(Path(plan), kept)]
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
