"""Tables and figures of the paper from sweep directories, ours beside the paper's:

    python -m mcepl_dist.report runs/table1 runs/table2 runs/table3 runs/fig4 --out docs/results

Writes `results.md` (every table, each cell labelled with its iterations, seeds and
machine, and the figures), `<sweep>.csv` (every cell, every setting run), `runs.csv` (one
line per run: figures, commit, machine, command), `<sweep>_curves.csv` (the data behind
the figures), PNG figures, and `runs/<dir>/` (each sweep directory's sweep.json and every
finished job's summary.json and config.yaml). Several directories of one sweep are
merged; where a cell was run at several settings (say 60 iterations on a CPU and 400 on a
GPU), the table shows the longest run and the CSV all of them. Figures need matplotlib
(extra "plot").

`runs` reads sweep directories back into runs, curves and cells; `tables` writes the
markdown and CSV; `figures` draws the PNGs; this module puts the report together.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from mcepl_dist.errors import UserError
from mcepl_dist.metrics import atomic_write
from mcepl_dist.provenance import git_commit
from mcepl_dist.report.figures import draw
from mcepl_dist.report.runs import (
    Cell,
    Run,
    SweepDir,
    cells,
    forget_curves,
    read_curve,
    read_sweep_dir,
)
from mcepl_dist.report.tables import (
    CELL_FIELDS,
    CURVE_FIELDS,
    RUN_FIELDS,
    cell_rows,
    curve_rows,
    retention_markdown,
    run_row,
    table_markdown,
    write_csv,
)
from mcepl_dist.sweepfile import Sweep

GENERATED = "results.md"


def borrow(sweep: Sweep, found: dict[tuple[str, str], list[Cell]],
           found_by_sweep: dict[str, dict[tuple[str, str], list[Cell]]]) -> None:
    """Fill the rows with same_as from the other sweep's cells, when its runs are here."""
    for row in sweep.rows:
        if row.same_as is None:
            continue
        other_sweep, other_row, other_column = row.same_as
        other = found_by_sweep.get(other_sweep, {}).get((other_row, json.dumps(other_column)))
        if not other:
            continue
        for column in sweep.columns.values:
            found[(row.label, json.dumps(column))] = [
                Cell(row.label, column, sweep.paper(row.label, column), c.runs,
                     borrowed=f"{other_sweep} {other_row} {other_column}") for c in other]


def merge(dirs: list[SweepDir]) -> list[tuple[Sweep, list[Run], list[str]]]:
    """Sweep directories grouped by sweep name (the newest file's spec wins)."""
    by_name: dict[str, tuple[Sweep, list[Run], list[str]]] = {}
    for d in dirs:
        _, runs, missing = by_name.setdefault(d.sweep.name, (d.sweep, [], []))
        runs.extend(d.runs)
        missing.extend(f"{d.path}/{m}" for m in d.missing)
    return list(by_name.values())


def sweep_section(sweep: Sweep, runs: list[Run], missing: list[str],
                  found: dict[tuple[str, str], list[Cell]], out: Path, figures: bool
                  ) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """The markdown of one sweep, its cell rows and its curve rows."""
    lines = [f"## {sweep.title}", ""]
    if sweep.note:
        lines += [sweep.note, ""]
    lines += table_markdown(sweep, found) + [""]
    if any(not c[0].full_budget for c in found.values()):
        lines += ["Δ in parentheses: the cell ran fewer iterations than the paper's, so it "
                  "does not measure the gap.", ""]
    lines += retention_markdown(sweep, found)
    if figures:
        for fig in sweep.figures:
            plot = draw(fig, found, out)
            if plot is None:
                lines += [f"*{fig.title}: no run yet.*", ""]
            else:
                lines += [f"![{fig.id}]({plot.path.name})", "", f"*{plot.caption}*", ""]
    commands = sorted({r.sweep_command for r in runs} - {""})
    commits = sorted({(r.provenance.get("git_commit", "unknown")[:10]
                       + ("+dirty" if r.provenance.get("git_dirty") else ""), r.machine)
                      for r in runs})
    if commands:
        lines += ["Commands:", "", *[f"    {c}" for c in commands], ""]
    if commits:
        lines += ["Code and machines: " + "; ".join(f"{c} on {m}" for c, m in commits), ""]
    if missing:
        lines += [f"Not finished: {len(missing)} job(s) ({', '.join(sorted(missing)[:6])}"
                  f"{', ...' if len(missing) > 6 else ''}).", ""]
    curves = [row for r in runs for row in curve_rows(r, read_curve(r))]
    return lines, cell_rows(sweep, found), curves


def write_report(dirs: list[Path], out: Path, figures: bool = True) -> Path:
    """Write the whole report into `out`; return the path of results.md."""
    read = [read_sweep_dir(d) for d in dirs]
    forget_curves()  # run directories may have grown since a previous report
    out.mkdir(parents=True, exist_ok=True)
    commit, dirty = git_commit(ignore=out)  # the report's own files do not count
    lines = ["# Results: ours beside the paper's", "",
             f"Generated by `python -m mcepl_dist.report {' '.join(map(str, dirs))} --out "
             f"{out}` at commit {commit[:10]}{'+dirty' if dirty else ''}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Do not edit: rerun it. "
             "What the differences mean: [README.md](README.md).", "",
             "Accuracy is the final unweighted mean over agents of each agent's local test "
             "accuracy; where a cell has several seeds, the mean and the population standard "
             "deviation over seeds. Each cell names its iterations, seeds and machine.", ""]
    all_runs = []
    merged = merge(read)
    found_by_sweep = {sweep.name: cells(sweep, runs) for sweep, runs, _ in merged}
    for sweep, _, _ in merged:
        borrow(sweep, found_by_sweep[sweep.name], found_by_sweep)
    for sweep, runs, missing in merged:
        section, cell_data, curve_data = sweep_section(sweep, runs, missing,
                                                       found_by_sweep[sweep.name], out, figures)
        lines += section
        write_csv(out / f"{sweep.name}.csv", CELL_FIELDS, cell_data)
        write_csv(out / f"{sweep.name}_curves.csv", CURVE_FIELDS, curve_data)
        all_runs += runs
    write_csv(out / "runs.csv", RUN_FIELDS, [run_row(r) for r in all_runs])
    for d in read:
        archive(d, out / "runs" / d.path.name)
    atomic_write(out / GENERATED, "\n".join(lines).rstrip() + "\n")
    return out / GENERATED


def archive(d: SweepDir, into: Path) -> None:
    """Keep the small files of a sweep directory with the report: sweep.json and each
    finished job's summary.json and config.yaml (a few KB each; no metrics or masks)."""
    for run in d.runs:
        (into / run.job).mkdir(parents=True, exist_ok=True)
        for name in ("summary.json", "config.yaml"):
            atomic_write(into / run.job / name, (run.dir / name).read_text())
    into.mkdir(parents=True, exist_ok=True)
    atomic_write(into / "sweep.json", (d.path / "sweep.json").read_text())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m mcepl_dist.report",
                                 description="Tables and figures from sweep directories.")
    ap.add_argument("dirs", nargs="+", help="sweep directories (python -m mcepl_dist.sweep)")
    ap.add_argument("--out", default="docs/results", help="where to write (docs/results)")
    ap.add_argument("--no-figures", action="store_true", help="tables and CSV only")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = not args.no_figures
    if figures:
        try:
            import matplotlib
            matplotlib.use("Agg")
        except ImportError:
            print("mcepl_dist.report: error: figures need matplotlib (pip install "
                  "'mcepl_dist[plot]'), or give --no-figures", file=sys.stderr)
            return 2
    try:
        path = write_report([Path(d) for d in args.dirs], Path(args.out), figures)
    except UserError as exc:
        print(f"mcepl_dist.report: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {path}")
    return 0
