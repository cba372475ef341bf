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
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcepl_dist.config import DENSE_ALGORITHMS, load_config
from mcepl_dist.errors import ConfigError, UserError
from mcepl_dist.metrics import atomic_write, load_masks
from mcepl_dist.model import network_for
from mcepl_dist.provenance import git_commit
from mcepl_dist.sweepfile import Figure, Sweep, parse_sweep

GENERATED = "results.md"
# Overrides that change where and how a run executes, not its numbers.
NEUTRAL = ("checkpoint.", "output.", "comm.", "train.log_every=", "train.eval_every=",
           "train.eval_batch_size=", "data.root=", "data.download=")


# --------------------------------------------------------------------------------------
# Reading runs back


@dataclass(frozen=True)
class Run:
    """One finished job of a sweep directory."""

    sweep: str
    job: str
    row: str
    column: Any
    seed: int
    dir: Path
    summary: dict[str, Any]
    extra_set: tuple[str, ...]
    sweep_command: str

    @property
    def acc(self) -> float:
        return float(self.summary["final_mean_test_acc"])

    @property
    def iterations(self) -> int:
        return int(self.summary["iterations"])

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self.summary.get("provenance", {}))

    @property
    def machine(self) -> str:
        """Short machine name: the GPU's model, else "<n>-core CPU"."""
        full = self.provenance.get("machine", "")
        if not full:
            return "unknown machine"
        first = full.split(",")[0]
        if "core" in first:
            return first.split(" ")[0] + " CPU"
        return first.replace("NVIDIA ", "")

    @property
    def settings(self) -> tuple[str, ...]:
        """Overrides beyond the sweep file's that can change a result, other than the
        iteration budget (shown apart)."""
        return tuple(s for s in self.extra_set
                     if not s.startswith(("train.iterations=", *NEUTRAL)))


@dataclass(frozen=True)
class SweepDir:
    """A sweep directory read back: its sweep file and its finished runs."""

    path: Path
    sweep: Sweep
    runs: tuple[Run, ...]
    missing: tuple[str, ...]  # jobs started or planned but without a summary.json


def read_sweep_dir(path: Path) -> SweepDir:
    """Read OUT/sweep.json and every job directory with a summary.json."""
    state_path = path / "sweep.json"
    if not state_path.is_file():
        raise ConfigError(f"{path} is not a sweep directory (no sweep.json)")
    try:
        state = json.loads(state_path.read_text())
        sweep = parse_sweep(state["spec"], Path(state["file"]), find_configs=False)
    except (json.JSONDecodeError, KeyError) as exc:
        raise ConfigError(f"{state_path} is damaged ({exc})") from None
    runs, missing = [], []
    for name, job in sorted(state.get("jobs", {}).items()):
        summary_path = path / name / "summary.json"
        if not summary_path.is_file():
            missing.append(name)
            continue
        summary = json.loads(summary_path.read_text())
        # The command that started this job; sweep.json holds only the directory's latest.
        command = (summary.get("provenance", {}).get("sweep_command")
                   or state.get("sweep_command", ""))
        runs.append(Run(sweep=sweep.name, job=name, row=job["row"], column=job["column"],
                        seed=int(job["seed"]), dir=path / name, summary=summary,
                        extra_set=tuple(state.get("extra_set", [])), sweep_command=command))
    return SweepDir(path, sweep, tuple(runs), tuple(missing))


@dataclass(frozen=True)
class Curve:
    """Accuracy at each evaluation, across agents, with cumulative bytes per agent."""

    iters: np.ndarray
    mean: np.ndarray
    std: np.ndarray  # over agents
    bytes: np.ndarray  # real bytes sent, mean per agent
    paper_bytes: np.ndarray  # the paper's accounting, mean per agent


def _rank_evals(path: Path, collective: bool) -> dict[int, tuple[float, float, float]]:
    """iteration -> (test accuracy, bytes sent so far, paper-style bytes so far) of a rank."""
    out, paper = {}, 0.0
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        # Runs from before paper_bytes_cum existed: rebuild it from the per-message figure.
        paper += rec.get("paper_bits", 0.0) / 8 * (1 if collective else rec.get("msgs_sent", 0))
        if "test_acc" in rec:
            out[int(rec["iter"])] = (float(rec["test_acc"]), float(rec["bytes_sent_cum"]),
                                     float(rec.get("paper_bytes_cum", paper)))
    return out


def read_curve(run: Run) -> Curve:
    """The run's learning curve from every rank's metrics file (read once per report:
    the tables' CSV and the figures both use it)."""
    return _curve_at(run.dir, run.summary["algorithm"] == "fedavg")


@functools.cache
def _curve_at(run_dir: Path, collective: bool) -> Curve:
    files = sorted((run_dir / "metrics").glob("rank*.jsonl"))
    if not files:
        raise ConfigError(f"{run_dir}: no metrics/rank*.jsonl")
    per_rank = [_rank_evals(f, collective) for f in files]
    iters = sorted(set.intersection(*(set(r) for r in per_rank)))
    table = np.array([[r[i] for r in per_rank] for i in iters], dtype=np.float64)
    if table.size == 0:
        table = np.zeros((0, len(files), 3))
    return Curve(iters=np.array(iters), mean=table[:, :, 0].mean(axis=1),
                 std=table[:, :, 0].std(axis=1), bytes=table[:, :, 1].mean(axis=1),
                 paper_bytes=table[:, :, 2].mean(axis=1))


# --------------------------------------------------------------------------------------
# Cells: runs of one (row, column) at one setting, over seeds


@dataclass(frozen=True)
class Cell:
    """The runs of one table cell at one setting (iterations, overrides, machine)."""

    row: str
    column: Any
    paper: float | None
    runs: tuple[Run, ...]  # one per seed
    borrowed: str = ""  # "table2 MCE-PL 4": the cell of another sweep (a row's same_as)

    @property
    def mean(self) -> float:
        return statistics.fmean(r.acc for r in self.runs)

    @property
    def std(self) -> float:
        """Spread over seeds (population standard deviation; 0 for one seed)."""
        return statistics.pstdev(r.acc for r in self.runs)

    @property
    def iterations(self) -> int:
        return self.runs[0].iterations

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.runs)

    @property
    def label(self) -> str:
        """"400 it, 3 seeds, H200" plus any override beyond the sweep file."""
        n = len(self.runs)
        parts = [f"{self.iterations} it", f"{n} seed{'s' if n > 1 else ''}",
                 " / ".join(sorted({r.machine for r in self.runs})), *self.runs[0].settings]
        if self.borrowed:
            parts.append(f"the runs of {self.borrowed}")
        return ", ".join(parts)

    @property
    def full_budget(self) -> bool:
        """Whether the runs have the sweep's own iteration budget (no --set of it)."""
        return not any(s.startswith("train.iterations=") for s in self.runs[0].extra_set)

    @property
    def delta_points(self) -> float | None:
        return None if self.paper is None else 100 * (self.mean - self.paper)


def _setting(run: Run) -> tuple[Any, ...]:
    return (run.iterations, run.settings)


def _when(run: Run) -> str:
    return str(run.provenance.get("finished_utc") or run.provenance.get("started_utc") or "")


def cells(sweep: Sweep, runs: Iterable[Run]) -> dict[tuple[str, str], list[Cell]]:
    """(row, column) -> its cells, one per setting run, the one to show first: most
    iterations, then most seeds. A seed run twice at one setting counts once (the newest)."""
    groups: dict[tuple[str, str, tuple[Any, ...]], dict[int, Run]] = {}
    for run in runs:
        key = (run.row, json.dumps(run.column), _setting(run))
        old = groups.setdefault(key, {}).get(run.seed)
        newer = old is None or _when(run) >= _when(old)
        if newer:
            groups[key][run.seed] = run
    out: dict[tuple[str, str], list[Cell]] = {}
    for (row, column, _), by_seed in groups.items():
        first = next(iter(by_seed.values()))
        cell = Cell(row, first.column, sweep.paper(row, first.column),
                    tuple(by_seed[s] for s in sorted(by_seed)))
        out.setdefault((row, column), []).append(cell)
    for found in out.values():
        found.sort(key=lambda c: (c.iterations, len(c.runs)), reverse=True)
    return out


# --------------------------------------------------------------------------------------
# Markdown and CSV


def _acc(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}".lstrip("0") if x < 1 else f"{x:.4f}"


def table_markdown(sweep: Sweep, found: dict[tuple[str, str], list[Cell]]) -> list[str]:
    """One line per cell: the paper's number, ours (mean ± spread over seeds), the
    difference in points and the cell's label (iterations, seeds, machine)."""
    by_column = sweep.columns.key is not None
    head = ["", *([sweep.columns.label.split("=")[0].strip()] if by_column else []), "paper",
            "ours (mean ± sd over seeds)", "Δ points", "run"]
    lines = ["| " + " | ".join(h for h in head) + " |", "|" + "---|" * len(head)]
    for row in sweep.rows:
        for column in sweep.columns.values:
            shown = found.get((row.label, json.dumps(column)))
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


def retention_markdown(sweep: Sweep, found: dict[tuple[str, str], list[Cell]]) -> list[str]:
    """Per-r_i accuracy of every shown cell whose agents have different ratios (mean over
    the agents with that ratio and over seeds): where node heterogeneity costs accuracy."""
    rows = []
    for row in sweep.rows:
        for column in sweep.columns.values:
            shown = found.get((row.label, json.dumps(column)))
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


def cell_rows(sweep: Sweep, found: dict[tuple[str, str], list[Cell]]) -> list[dict[str, Any]]:
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


# --------------------------------------------------------------------------------------
# Figures


@dataclass
class Plot:
    """What one figure shows, for its caption."""

    path: Path
    caption: str
    shown: list[str] = field(default_factory=list)


def _figure_runs(fig: Figure, found: dict[tuple[str, str], list[Cell]]
                 ) -> list[tuple[str, Cell]]:
    """(row, shown cell) for each of the figure's rows that has runs."""
    out = []
    for row in fig.rows:
        shown = found.get((row, json.dumps(fig.column)))
        if shown:
            out.append((row, shown[0]))
    return out


def _mean_curve(cell: Cell) -> Curve:
    """The curve of a cell: the mean over its seeds of each seed's curve (common evals)."""
    curves = [read_curve(r) for r in cell.runs]
    common = sorted(set.intersection(*(set(c.iters.tolist()) for c in curves)))

    def pick(c: Curve, attr: str) -> np.ndarray:
        index = {int(it): i for i, it in enumerate(c.iters)}
        return np.array([getattr(c, attr)[index[it]] for it in common])

    return Curve(np.array(common), *(np.mean([pick(c, a) for c in curves], axis=0)
                                     for a in ("mean", "std", "bytes", "paper_bytes")))


def _caption_runs(pairs: list[tuple[str, Cell]]) -> str:
    return "; ".join(f"{row}: {cell.label}" for row, cell in pairs)


def plot_acc_vs_iter(fig: Figure, pairs: list[tuple[str, Cell]], path: Path) -> Plot:
    """Mean test accuracy over agents against iterations, shaded ± one sd over agents."""
    import matplotlib.pyplot as plt
    f, ax = plt.subplots(figsize=(7, 4.5))
    for row, cell in pairs:
        c = _mean_curve(cell)
        (line,) = ax.plot(c.iters, c.mean, marker="o", ms=3, label=row)
        ax.fill_between(c.iters, c.mean - c.std, c.mean + c.std, color=line.get_color(),
                        alpha=0.15, lw=0)
    ax.set(xlabel="iteration", ylabel="mean test accuracy over agents", title=fig.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(f, path)
    return Plot(path, f"{fig.title}. Lines: mean over agents (and over seeds where there are "
                      f"several); shading: ± one standard deviation over agents. Runs: "
                      f"{_caption_runs(pairs)}.", [r for r, _ in pairs])


def plot_acc_vs_bytes(fig: Figure, pairs: list[tuple[str, Cell]], path: Path) -> Plot:
    """Mean accuracy against cumulative bytes sent per agent: real bytes (solid) and the
    paper's accounting (dashed)."""
    import matplotlib.pyplot as plt
    f, ax = plt.subplots(figsize=(7, 4.5))
    silent = [row for row, cell in pairs if cell.runs[0].summary["bytes_sent_total"] == 0]
    ratios = []
    for row, cell in pairs:
        if row in silent:
            continue
        c = _mean_curve(cell)
        if len(c.bytes) and c.paper_bytes[-1] > 0:
            ratios.append(f"{row} {c.bytes[-1] / c.paper_bytes[-1]:.4f}")
        keep = c.bytes > 0
        (line,) = ax.plot(c.bytes[keep], c.mean[keep], marker="o", ms=3, label=f"{row} (real)")
        keep = c.paper_bytes > 0
        ax.plot(c.paper_bytes[keep], c.mean[keep], ls="--", color=line.get_color(), lw=1,
                label=f"{row} (paper-style)")
    ax.set_xscale("log")
    ax.set(xlabel="bytes sent per agent (cumulative)", ylabel="mean test accuracy over agents",
           title=fig.title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    _save(f, path)
    return Plot(path, f"{fig.title}. Solid: bytes really handed to the transport (headers "
                      f"included); dashed: the paper's accounting (1 bit per mask entry, 32 "
                      f"per real value); real over paper-style bytes at the end: "
                      f"{', '.join(ratios)} (where near 1 the lines coincide). "
                      f"Runs: {_caption_runs(pairs)}."
                + (f" Not shown (they send nothing): {', '.join(silent)}." if silent else ""),
                [r for r, _ in pairs if r not in silent])


def conv1_panel(weights: np.ndarray, mask: np.ndarray, first: int, count: int) -> np.ndarray:
    """conv1's w * m for filters first..first+count as one image: a row of 5x5 kernels per
    input channel, a column per output filter, NaN gaps between kernels."""
    learned = (weights * mask)[first:first + count]  # (count, in, k, k)
    count, channels, k, _ = learned.shape
    img = np.full((channels * (k + 1) - 1, count * (k + 1) - 1), np.nan)
    for o in range(count):
        for c in range(channels):
            img[c * (k + 1):c * (k + 1) + k, o * (k + 1):o * (k + 1) + k] = learned[o, c]
    return img


def plot_masks(fig: Figure, pairs: list[tuple[str, Cell]], path: Path) -> Plot:
    """Figs. 8/9: conv1's learned model w * m of some agents, as in the paper."""
    import matplotlib.pyplot as plt
    row, cell = pairs[0]
    run = next((r for r in cell.runs if r.seed == fig.seed), cell.runs[0])
    cfg = load_config(run.dir / "config.yaml")
    w = network_for(cfg).weights[0].numpy()
    first, count = fig.filters
    agents = [a for a in fig.agents if a <= cfg.agents.num]
    f, axes = plt.subplots(len(agents), 1, figsize=(9, 1.6 * len(agents) + 0.6),
                           squeeze=False)
    axes = axes[:, 0]
    vmax = float(np.abs(w[first:first + count]).max())
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#d9d9d9")
    for ax, agent in zip(axes, agents):
        mask = load_masks(run.dir / "masks" / f"agent{agent - 1}.npz")[0].astype(np.float64)
        img = conv1_panel(w, mask, first, count)
        ax.imshow(img, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
        shown = mask[first:first + count]
        alive = int((shown.reshape(count, -1).sum(axis=1) > 0).sum())
        ax.set_title(f"agent {agent} (r = {cfg.agents.ratio(agent - 1):g}): "
                     f"{100 * mask.mean():.0f}% of conv1 kept, {alive} of {count} filters "
                     f"shown non-zero", fontsize=9)
        ax.set_yticks([2 + 6 * c for c in range(mask.shape[1])],
                      [f"in {c + 1}" for c in range(mask.shape[1])], fontsize=7)
        ax.set_xticks([2 + 6 * o for o in range(count)],
                      [str(first + o + 1) for o in range(count)], fontsize=6)
    axes[-1].set_xlabel("output filter")
    f.suptitle(fig.title, fontsize=10)
    _save(f, path)
    return Plot(path, f"{fig.title}. Each square is a 5x5 kernel of w * m (white: masked out, "
                      f"red/blue: kept positive/negative weights); rows are the 3 input "
                      f"channels, columns conv1 filters {first + 1}-{first + count}. Run: "
                      f"{run.dir.name} ({cell.label}).", [row])


def _save(f: Any, path: Path) -> None:
    import matplotlib.pyplot as plt
    f.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    f.savefig(tmp, dpi=130)
    plt.close(f)
    tmp.replace(path)


PLOTTERS = {"acc_vs_iter": plot_acc_vs_iter, "acc_vs_bytes": plot_acc_vs_bytes,
            "masks": plot_masks}


def draw(fig: Figure, found: dict[tuple[str, str], list[Cell]], out: Path) -> Plot | None:
    """One figure of a sweep, from the cells shown in its table (None: no run yet)."""
    pairs = _figure_runs(fig, found)
    if fig.kind == "masks":
        pairs = [(r, c) for r, c in pairs
                 if all((run.dir / "masks").is_dir() for run in c.runs[:1])]
    if not pairs:
        return None
    return PLOTTERS[fig.kind](fig, pairs, out / f"{fig.id}.png")


# --------------------------------------------------------------------------------------
# The report


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
    _curve_at.cache_clear()  # run directories may have grown since a previous report
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


if __name__ == "__main__":
    sys.exit(main())
