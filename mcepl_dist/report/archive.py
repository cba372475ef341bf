"""What the report keeps of each sweep directory under `<out>/runs/`, so that the report
can be regenerated from there alone once the run directories are gone (a lent machine,
a scratch disk): sweep.json, and for each finished job summary.json, config.yaml, its
learning curve (curve.json) and its agents' conv1 masks (conv1_masks.npz, for Figs. 8/9).
A few KB per job; no metrics files, checkpoints or whole masks.

Kept directories accumulate: a directory archived where one of the same sweep and the same
--set is kept already joins it (their jobs are merged; --set that cannot change a result,
such as the evaluation interval, does not count); one of another setting takes the next
free name, `<name>-2`, `<name>-3`, ... (say `table1` at 60 and at 400 iterations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mcepl_dist.codec import pack_bits
from mcepl_dist.metrics import atomic_write
from mcepl_dist.report.runs import (
    CONV1_FILE,
    CURVE_FILE,
    SweepDir,
    conv1_masks,
    curve_json,
    has_masks,
    read_curve,
    result_settings,
    written_utc,
)

Setting = tuple[str, tuple[str, ...]]  # (sweep name, sorted --set of the sweep command)


def _setting(name: str, extra_set: list[str] | tuple[str, ...]) -> Setting:
    """What decides whether two sweep directories are kept together."""
    return name, tuple(sorted(result_settings(extra_set)))


def _setting_kept(path: Path) -> Setting | None:
    """The setting of the directory kept at `path`, None where nothing is kept."""
    try:
        state = json.loads((path / "sweep.json").read_text())
        return _setting(str(state["name"]), state.get("extra_set", []))
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return None


def targets(dirs: list[SweepDir], root: Path) -> list[Path]:
    """Where each directory is kept under `root`: the first of `<name>`, `<name>-2`, ...
    that is free or keeps the same setting (decided before anything is written)."""
    claimed: dict[Path, Setting] = {}
    out = []
    for d in dirs:
        setting = _setting(d.sweep.name, d.extra_set)
        n = 1
        while True:
            target = root / (d.path.name if n == 1 else f"{d.path.name}-{n}")
            held = claimed.get(target) or _setting_kept(target)
            if held is None or held == setting:
                break
            n += 1
        claimed[target] = setting
        out.append(target)
    return out


def archive(d: SweepDir, into: Path) -> None:
    """Keep `d`'s finished jobs in `into` and merge its sweep.json with the one kept there."""
    for run in d.runs:
        job = into / run.job
        job.mkdir(parents=True, exist_ok=True)
        for name in ("summary.json", "config.yaml"):
            atomic_write(job / name, (run.dir / name).read_text())
        atomic_write(job / CURVE_FILE, curve_json(read_curve(run)))
        if has_masks(run.dir):
            write_conv1(job / CONV1_FILE, conv1_masks(run.dir))
    into.mkdir(parents=True, exist_ok=True)
    state = json.loads((d.path / "sweep.json").read_text())
    atomic_write(into / "sweep.json", json.dumps(merged_state(into / "sweep.json", state),
                                                 indent=1) + "\n")


def merged_state(kept_path: Path, state: dict[str, Any]) -> dict[str, Any]:
    """`state` with the jobs of the sweep.json kept at `kept_path` added (its own win).
    Each job keeps the --set of the sweep command that ran it, which may differ from the
    newer state's in what cannot change a result (say the evaluation interval)."""
    if not kept_path.is_file():
        return state
    kept = json.loads(kept_path.read_text())
    newer, older = ((state, kept) if written_utc(state) >= written_utc(kept)
                    else (kept, state))
    jobs = older.get("jobs", {})
    if older.get("extra_set", []) != newer.get("extra_set", []):
        jobs = {name: {"extra_set": older.get("extra_set", []), **job}
                for name, job in jobs.items()}  # a job's own extra_set, if any, wins
    return {**newer, "jobs": {**jobs, **newer.get("jobs", {})}}


def write_conv1(path: Path, masks: list[np.ndarray]) -> None:
    """conv1's masks of all agents, each packed at 1 bit per entry (read by
    `runs.conv1_masks`)."""
    shape = np.asarray((len(masks), *masks[0].shape), dtype=np.int64)
    packed = np.stack([pack_bits(m) for m in masks])
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, shape=shape, packed=packed)
    tmp.replace(path)
