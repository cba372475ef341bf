"""Check a GPU plan file (bench/device_streams.sh) here, before device time is spent on it:
every line a valid sweep selection (rows, columns, seeds, --set, configs and the data of
MCEPL_DATA), GUARD_S in seconds, NAMEs distinct. One process for the whole plan, so a
plan of ten lines costs one torch import; nothing runs and nothing is written.

    MCEPL_DATA=../shared/data/cifar-10-batches-py python bench/check_plan.py bench/plans/*.streams
"""

from __future__ import annotations

import contextlib
import io
import shlex
import sys
import tempfile
from pathlib import Path

from mcepl_dist import sweep


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


def check(plan: Path) -> list[str]:
    """What is wrong with the plan's lines (empty: nothing); prints each good line's jobs."""
    errors, names = [], set()
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
            code, line = dry_run([sweep_file, "--out", str(Path(scratch) / name), *opts])
            if code:
                errors.append(f"{where}: {name}: {line}")
            else:
                print(f"{stream} {name}: {line}")
    return errors


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python bench/check_plan.py PLAN_FILE...", file=sys.stderr)
        return 2
    errors = [e for plan in argv for e in check(Path(plan))]
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
