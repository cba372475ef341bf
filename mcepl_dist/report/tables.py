"""The report's markdown tables (ours beside the paper's, accuracy by retention ratio) and
its CSV files (cells, runs, curves)."""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any

from mcepl_dist.config import DENSE_ALGORITHMS, load_config
from mcepl_dist.metrics import atomic_write
from mcepl_dist.report.runs import CellIndex, Curve, Run, cell_key
from mcepl_dist.sweepfile import Sweep


def _acc(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}".lstrip("0") if x < 1 else f"{x:.4f}"


def table_markdown(sweep: Sweep, found: CellIndex) -> list[str]:
    """One line per cell: the paper's number, ours (mean ± spread over seeds), the
    difference in points and the cell's label (iterations, seeds, machine)."""
    by_column = sweep.columns.key is not None
    head = ["", *([sweep.columns.label.split("=")[0].strip()] if by_column else []), "paper",
            "ours (mean ± population sd over seeds)", "Δ points", "run"]
    lines = ["| " + " | ".join(h for h in head) + " |", "|" + "---|" * len(head)]
    for row in sweep.rows:
        for column in sweep.columns.values:
            shown = found.get(cell_key(row.label, column))
            paper = sweep.paper(row.label, column)
            col = f"{column} | " if by_column else ""
            if not shown:
                lines.append(f"| {row.label} | {col}{_acc(paper)} | not run yet | | |")
                continue
            c = shown[0]
            ours = _acc(c.mean) + (f" ± {c.std:.4f}".replace("0.", ".") if len(c.runs) > 1
                                   else "")
            delta = "" if c.delta_points is None else f"{c.delta_points:+.1f}"
            if delta and not c.full_budget:
                delta = f"({delta})"
            lines.append(f"| {row.label} | {col}{_acc(paper)} | {ours} | {delta} | {c.label} |")
    return lines


def by_retention(run: Run) -> dict[float, float]:
    """Mean final test accuracy of the agents at each retention ratio r_i of a run (none
    for the dense methods, whose agents' r_i are configured but unused)."""
    cfg = load_config(run.dir / "config.yaml")
    if cfg.algorithm.name in DENSE_ALGORITHMS:
        return {}
    accs = run.summary["per_agent_test_acc"]
    groups: dict[float, list[float]] = {}
    for agent, acc in enumerate(accs):
        groups.setdefault(cfg.agents.ratio(agent), []).append(float(acc))
    return {r: statistics.fmean(v) for r, v in sorted(groups.items())}


def retention_markdown(sweep: Sweep, found: CellIndex) -> list[str]:
    """Per-r_i accuracy of every shown cell whose agents have different ratios (mean over
    the agents with that ratio and over seeds): where node heterogeneity costs accuracy."""
    rows = []
    for row in sweep.rows:
        for column in sweep.columns.values:
            shown = found.get(cell_key(row.label, column))
            if not shown or "per_agent_test_acc" not in shown[0].runs[0].summary:
                continue
            per_seed = [by_retention(r) for r in shown[0].runs]
            if len(per_seed[0]) > 1:  # agents with different r_i
                ratios = sorted(per_seed[0])
                rows.append((row.label, column, {r: statistics.fmean(p[r] for p in per_seed)
                                                 for r in ratios}))
    if not rows:
        return []
    ratios = sorted({r for _, _, accs in rows for r in accs})
    by_column = sweep.columns.key is not None
    col = [sweep.columns.label.split("=")[0].strip()] if by_column else []
    head = ["", *col, *(f"r = {r:g}" for r in ratios)]
    lines = ["Accuracy by retention ratio (mean over the agents with each r_i):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, column, accs in rows:
        cells = [label, *([str(column)] if by_column else []),
                 *(_acc(accs.get(r)) for r in ratios)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


CELL_FIELDS = ["sweep", "row", "column", "paper", "mean", "sd_over_seeds", "seeds",
               "iterations", "settings", "machine", "shown_in_table", "run_dirs"]
RUN_FIELDS = ["sweep", "job", "row", "column", "seed", "iterations", "final_mean_test_acc",
              "final_std_test_acc_over_agents", "bytes_per_message",
              "bytes_sent_per_agent_per_iter", "paper_bytes_sent_total", "median_t_iter_s",
              "comm_fraction", "wall_clock_s", "peak_rss_mb_max", "peak_gpu_mb_max", "machine",
              "git_commit", "git_dirty", "extra_set", "sweep_command", "command"]
CURVE_FIELDS = ["sweep", "job", "row", "column", "seed", "iteration", "mean_acc",
                "sd_acc_over_agents", "bytes_sent_per_agent", "paper_bytes_per_agent"]


def cell_rows(sweep: Sweep, found: CellIndex) -> list[dict[str, Any]]:
    out = []
    for found_cells in found.values():
        for i, c in enumerate(found_cells):
            out.append({"sweep": sweep.name, "row": c.row, "column": c.column,
                        "paper": c.paper, "mean": round(c.mean, 6),
                        "sd_over_seeds": round(c.std, 6),
                        "seeds": " ".join(map(str, c.seeds)), "iterations": c.iterations,
                        "settings": " ".join(c.runs[0].settings),
                        "machine": " / ".join(sorted({r.machine for r in c.runs})),
                        "shown_in_table": i == 0,
                        "run_dirs": " ".join(str(r.dir) for r in c.runs)})
    return out


def run_row(run: Run) -> dict[str, Any]:
    s, p = run.summary, run.provenance
    return {"sweep": run.sweep, "job": run.job, "row": run.row, "column": run.column,
            "seed": run.seed, "iterations": run.iterations,
            "final_mean_test_acc": round(run.acc, 6),
            "final_std_test_acc_over_agents": round(float(s["final_std_test_acc"]), 6),
            "bytes_per_message": s["bytes_per_message"],
            "bytes_sent_per_agent_per_iter": round(float(s["bytes_sent_per_agent_per_iter"]), 1),
            "paper_bytes_sent_total": s.get("paper_bytes_sent_total", ""),
            "median_t_iter_s": round(float(s["median_t_iter_s"]), 4),
            "comm_fraction": round(float(s["comm_fraction"]), 4),
            "wall_clock_s": round(float(s["wall_clock_s"]), 1),
            "peak_rss_mb_max": round(float(s["peak_rss_mb_max"]), 1),
            "peak_gpu_mb_max": round(float(s.get("peak_gpu_mb_max", 0.0)), 1),
            "machine": p.get("machine", "unknown"), "git_commit": p.get("git_commit", "unknown"),
            "git_dirty": p.get("git_dirty", ""), "extra_set": " ".join(run.extra_set),
            "sweep_command": run.sweep_command, "command": p.get("command", "")}


def curve_rows(run: Run, curve: Curve) -> list[dict[str, Any]]:
    return [{"sweep": run.sweep, "job": run.job, "row": run.row, "column": run.column,
             "seed": run.seed, "iteration": int(it), "mean_acc": round(float(m), 6),
             "sd_acc_over_agents": round(float(sd), 6), "bytes_sent_per_agent": int(b),
             "paper_bytes_per_agent": int(pb)}
            for it, m, sd, b, pb in zip(curve.iters, curve.mean, curve.std, curve.bytes,
                                        curve.paper_bytes)]


def write_csv(path: Path, fields: list[str], rows: list[dict[str, Any]]) -> None:
    """A CSV file, written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buf.getvalue())
