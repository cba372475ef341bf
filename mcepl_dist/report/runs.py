"""Sweep directories read back and merged: finished runs, their learning curves, and the
table cells they make (the runs of one row and column at one setting, over seeds)."""

from __future__ import annotations

import functools
import json
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcepl_dist.codec import unpack_bits
from mcepl_dist.config import NEUTRAL_KEYS
from mcepl_dist.errors import ConfigError
from mcepl_dist.metrics import load_masks
from mcepl_dist.sweepfile import Sweep, parse_sweep

# Overrides that change where and how a run executes, not its numbers ("key=value" forms
# of config.NEUTRAL_KEYS).
NEUTRAL = tuple(k if k.endswith(".") else f"{k}=" for k in NEUTRAL_KEYS)
# What the report keeps of a run besides summary.json and config.yaml (report/archive.py),
# read here when the run's own metrics/ and masks/ are not at hand.
CURVE_FILE = "curve.json"
CONV1_FILE = "conv1_masks.npz"


def result_settings(extra_set: Iterable[str]) -> tuple[str, ...]:
    """The overrides of `extra_set` that can change a result: the NEUTRAL ones dropped, so
    runs that differ only in how they ran (evaluation interval, checkpoints) share a setting."""
    return tuple(s for s in extra_set if not s.startswith(NEUTRAL))


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
        """Short machine name: the GPU's model, else "<n>-core CPU (<model>)"."""
        return short_machine(self.provenance.get("machine", ""))

    @property
    def label(self) -> str:
        """"60 it, seed 0, 2-core CPU (AMD EPYC)" plus any override beyond the sweep file:
        what one run shown alone (a masks figure) is labelled with."""
        return ", ".join([f"{self.iterations} it", f"seed {self.seed}", self.machine,
                          *self.settings])

    @property
    def settings(self) -> tuple[str, ...]:
        """Overrides beyond the sweep file's that can change a result, other than the
        iteration budget (shown apart)."""
        return tuple(s for s in result_settings(self.extra_set)
                     if not s.startswith("train.iterations="))


@dataclass(frozen=True)
class SweepDir:
    """A sweep directory read back: its sweep file and its finished runs."""

    path: Path
    sweep: Sweep
    runs: tuple[Run, ...]
    missing: tuple[str, ...]  # jobs started or planned but without a summary.json
    written_utc: str = ""  # when the sweep command last wrote its sweep file here
    extra_set: tuple[str, ...] = ()  # the sweep command's --set, shared by its runs


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
    extra_set = tuple(state.get("extra_set", []))  # a merged older job may carry its own
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
                        extra_set=tuple(job.get("extra_set", extra_set)),
                        sweep_command=command))
    return SweepDir(path, sweep, tuple(runs), tuple(missing), written_utc(state), extra_set)


def written_utc(state: dict[str, Any]) -> str:
    """When the sweep command last wrote this sweep.json ("" for files without a stamp)."""
    return str(state.get("updated_utc") or state.get("created_utc") or "")


@dataclass(frozen=True)
class Curve:
    """Accuracy at each evaluation, across agents, with cumulative bytes per agent."""

    iters: np.ndarray
    mean: np.ndarray
    std: np.ndarray  # over agents
    bytes: np.ndarray  # real bytes sent, mean per agent
    paper_bytes: np.ndarray  # the paper's accounting, mean per agent
    per_agent: np.ndarray | None = None  # (evaluations, agents) test accuracy, where known


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


def forget_curves() -> None:
    """Drop the curves read so far (run directories may have grown since)."""
    _curve_at.cache_clear()


def curve_json(c: Curve) -> str:
    """A curve as the report archives it (CURVE_FILE): a few numbers per evaluation."""
    data = {"iters": c.iters.tolist(), "mean": c.mean.tolist(), "std": c.std.tolist(),
            "bytes": c.bytes.tolist(), "paper_bytes": c.paper_bytes.tolist()}
    if c.per_agent is not None:
        data["acc_per_agent"] = np.round(c.per_agent, 6).tolist()
    return json.dumps(data) + "\n"


def _archived_curve(path: Path) -> Curve:
    """Inverse of `curve_json`, checked: every list present and of one length."""
    try:
        data = json.loads(path.read_text())
        cols = [np.asarray(data[k], dtype=np.float64)
                for k in ("iters", "mean", "std", "bytes", "paper_bytes")]
        per_agent = (np.asarray(data["acc_per_agent"], dtype=np.float64)
                     if "acc_per_agent" in data else None)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is damaged ({exc})") from None
    if (len({len(c) for c in cols}) != 1 or any(c.ndim != 1 for c in cols)
            or (per_agent is not None and (per_agent.ndim != 2 or len(per_agent) != len(cols[0])))):
        raise ConfigError(f"{path} is damaged (lists of different lengths)")
    iters, mean, std, sent, paper = cols
    return Curve(iters.astype(np.int64), mean, std, sent, paper, per_agent)


@functools.cache
def _curve_at(run_dir: Path, collective: bool) -> Curve:
    files = sorted((run_dir / "metrics").glob("rank*.jsonl"))
    if not files:
        if (run_dir / CURVE_FILE).is_file():  # a run kept by an earlier report
            return _archived_curve(run_dir / CURVE_FILE)
        raise ConfigError(f"{run_dir}: no metrics/rank*.jsonl (nor the report's {CURVE_FILE})")
    per_rank = [_rank_evals(f, collective) for f in files]
    iters = sorted(set.intersection(*(set(r) for r in per_rank)))
    table = np.array([[r[i] for r in per_rank] for i in iters], dtype=np.float64)
    if table.size == 0:
        table = np.zeros((0, len(files), 3))
    return Curve(iters=np.array(iters), mean=table[:, :, 0].mean(axis=1),
                 std=table[:, :, 0].std(axis=1), bytes=table[:, :, 1].mean(axis=1),
                 paper_bytes=table[:, :, 2].mean(axis=1), per_agent=table[:, :, 0])


def has_masks(run_dir: Path) -> bool:
    """Whether the run's final masks are here: its own masks/ or the report's conv1 copy."""
    return (run_dir / "masks").is_dir() or (run_dir / CONV1_FILE).is_file()


def conv1_masks(run_dir: Path) -> list[np.ndarray]:
    """conv1's final mask of every agent (agent order), from the run's masks/ or, for a run
    kept by the report, from its CONV1_FILE (each agent's mask packed at 1 bit per entry)."""
    own = sorted((run_dir / "masks").glob("agent*.npz"), key=lambda p: int(p.stem[5:]))
    if own:
        return [load_masks(p)[0] for p in own]
    path = run_dir / CONV1_FILE
    try:
        with np.load(path, allow_pickle=False) as f:
            shape = tuple(int(s) for s in f["shape"])
            packed = f["packed"]
            return [unpack_bits(row, int(np.prod(shape[1:]))).reshape(shape[1:])
                    for row in packed[:shape[0]]]
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: no masks to read ({exc})") from None


def short_machine(full: str) -> str:
    """The machine as a table cell names it: "H200" for a GPU run; for a CPU run the core
    count and the CPU's family ("2-core CPU (AMD EPYC)"), since two CPU models need not
    give the same numbers for the same code and seed."""
    if not full:
        return "unknown machine"
    first = full.split(",")[0]
    cores, _, model = first.partition(" ")
    if not cores.endswith("-core"):
        return first.replace("NVIDIA ", "")
    model = re.sub(r"\((?:R|TM)\)|@.*$", "", model, flags=re.IGNORECASE)
    words = [w for w in model.split()
             if w.lower() not in {"cpu", "processor"} and not w.lower().endswith("-core")]
    return f"{cores} CPU ({' '.join(words[:2])})" if words else f"{cores} CPU"


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


# (row, column as JSON) -> the cell at each setting that ran, the one to show first.
CellIndex = dict[tuple[str, str], list[Cell]]


def cell_key(row: str, column: Any) -> tuple[str, str]:
    """A cell's key in a CellIndex: a column may be any YAML value, so it is keyed by its JSON."""
    return (row, json.dumps(column))


def _setting(run: Run) -> tuple[Any, ...]:
    return (run.iterations, run.settings)


def _when(run: Run) -> str:
    return str(run.provenance.get("finished_utc") or run.provenance.get("started_utc") or "")


def cells(sweep: Sweep, runs: Iterable[Run]) -> CellIndex:
    """(row, column) -> its cells, one per setting run, the one to show first: most
    iterations, then most seeds. A seed run twice at one setting counts once (the newest)."""
    groups: dict[tuple[str, str, tuple[Any, ...]], dict[int, Run]] = {}
    for run in runs:
        key = (*cell_key(run.row, run.column), _setting(run))
        old = groups.setdefault(key, {}).get(run.seed)
        newer = old is None or _when(run) >= _when(old)
        if newer:
            groups[key][run.seed] = run
    out: CellIndex = {}
    for (row, column, _), by_seed in groups.items():
        first = next(iter(by_seed.values()))
        cell = Cell(row, first.column, sweep.paper(row, first.column),
                    tuple(by_seed[s] for s in sorted(by_seed)))
        out.setdefault((row, column), []).append(cell)
    for found in out.values():
        found.sort(key=lambda c: (c.iterations, len(c.runs)), reverse=True)
    return out


def borrow(sweep: Sweep, found: CellIndex, found_by_sweep: dict[str, CellIndex]) -> None:
    """Fill the rows with same_as from the other sweep's cells, when its runs are here.
    Shown first is a cell run at a setting this sweep's own runs have (so a knob table's
    "defaults" row is not a cell run with another knob), then the usual order."""
    own = {c.runs[0].settings for cs in found.values() for c in cs if not c.borrowed}
    for row in sweep.rows:
        if row.same_as is None:
            continue
        other_sweep, other_row, other_column = row.same_as
        other = found_by_sweep.get(other_sweep, {}).get(cell_key(other_row, other_column))
        if not other:
            continue
        if own:
            other = sorted(other, key=lambda c: c.runs[0].settings not in own)  # stable
        for column in sweep.columns.values:
            found[cell_key(row.label, column)] = [
                Cell(row.label, column, sweep.paper(row.label, column), c.runs,
                     borrowed=f"{other_sweep} {other_row} {other_column}") for c in other]


def merge(dirs: list[SweepDir]) -> list[tuple[Sweep, list[Run], list[str]]]:
    """Sweep directories grouped by sweep name; the spec written last wins, so rows added
    to a sweep file since an older directory ran are known, whatever the order given."""
    newest: dict[str, SweepDir] = {}
    for d in dirs:
        if d.sweep.name not in newest or d.written_utc > newest[d.sweep.name].written_utc:
            newest[d.sweep.name] = d
    by_name: dict[str, tuple[Sweep, list[Run], list[str]]] = {}
    seen: set[tuple[Any, ...]] = set()
    for d in dirs:  # in the order given, which is the report's order of sections
        _, runs, _ = by_name.setdefault(d.sweep.name, (newest[d.sweep.name].sweep, [], []))
        for run in d.runs:  # a run given twice (its directory and the report's copy) counts once
            key = (run.sweep, run.job, run.extra_set,
                   json.dumps(run.summary.get("provenance", {}), sort_keys=True))
            if key not in seen:
                seen.add(key)
                runs.append(run)
    finished = {(r.sweep, r.job, result_settings(r.extra_set))
                for _, runs, _ in by_name.values() for r in runs}
    for d in dirs:  # unfinished here, unless it finished in another directory of its setting
        setting = result_settings(d.extra_set)
        by_name[d.sweep.name][2].extend(f"{d.path}/{m}" for m in d.missing
                                        if (d.sweep.name, m, setting) not in finished)
    return list(by_name.values())
