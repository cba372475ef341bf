"""The GPU-machine scripts, run here on a tiny sweep: bench/device_streams.sh runs a plan's
sweeps side by side and returns the finished jobs as a split tar; bench/sweep_merge.sh
merges sweep directories of one sweep and --set into one, joining their job lists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcepl_dist import sweep as sweep_cli
from mcepl_dist.config import dump_config, load_config, with_resolved_paths

REPO = Path(__file__).resolve().parent.parent
CIFAR = REPO.parent / "shared" / "data" / "cifar-10-batches-py"
TIMEOUT_S = 600  # a hang guard only: the plan's three tiny jobs take seconds


def _env(**extra: str) -> dict[str, str]:
    """This interpreter first on PATH (the scripts call python3), the repo importable."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "PYTHONPATH": str(REPO), **extra}


def _tiny_sweep(path: Path) -> Path:
    spec: dict[str, Any] = {
        "name": "tiny", "title": "tiny", "base": str(REPO / "configs" / "quickstart.yaml"),
        "set": {"data.name": "synthetic", "model.width": 0.125, "agents.num": 2,
                "agents.retention": 0.5, "train.iterations": 2, "train.eval_every": 2},
        "columns": {"key": "data.labels_per_agent", "values": [3, 4], "label": "c_i = {}",
                    "slug": "c{}"},
        "seeds": [0],
        "rows": [{"label": "MCE-PL"},
                 {"label": "ind-mask, tiny", "set": {"algorithm.name": "ind_mask"}}]}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _merge(src: Path, dst: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(REPO / "bench" / "sweep_merge.sh"), str(src), str(dst)],
                          capture_output=True, text=True, env=_env(), timeout=TIMEOUT_S)


def test_device_streams_runs_a_plan_and_the_merge_joins_it(tmp_path: Path) -> None:
    sweep = _tiny_sweep(tmp_path / "tiny.yaml")
    plan = tmp_path / "plan"
    plan.write_text(f"# stream guard sweep name options\n"
                    f"A 0 {sweep} tiny_a --rows MCE-PL --columns 3\n"
                    f"A 0 {sweep} tiny_a2 --rows MCE-PL --columns 4\n"
                    f"B 0 {sweep} tiny_b --rows 'ind-mask, tiny' --columns 3\n"  # shell quoting
                    f"B 100000 {sweep} tiny_never --rows \"ind-mask, tiny\" --columns 4\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "unused").write_text("synthetic data needs none\n")
    out, work = tmp_path / "out", tmp_path / "streams"
    done = subprocess.run(["bash", str(REPO / "bench" / "device_streams.sh"), str(data), "300",
                           str(plan)], cwd=REPO, capture_output=True, text=True,
                          env=_env(OUT=str(out), DEVICE_STREAMS_DIR=str(work)),
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert "stream B: no time for tiny_never" in done.stdout  # its guard exceeds the budget
    parts = sorted(out.glob("runs.tgz.*"))
    assert [p.name for p in parts] == ["runs.tgz.aa"]
    back = tmp_path / "back"
    with tarfile.open(parts[0], "r:gz") as tar:
        tar.extractall(back, filter="data")
    for name, job in (("tiny_a", "mce-pl_c3_s0"), ("tiny_a2", "mce-pl_c4_s0"),
                      ("tiny_b", "ind-mask-tiny_c3_s0")):
        assert (back / name / job / "summary.json").is_file()
    assert not (back / "tiny_never").exists()

    merged = tmp_path / "merged"
    for name in ("tiny_a", "tiny_a2"):  # same sweep, same --set: one directory
        assert _merge(back / name, merged).returncode == 0
    state = json.loads((merged / "sweep.json").read_text())
    assert sorted(state["jobs"]) == ["mce-pl_c3_s0", "mce-pl_c4_s0"]
    assert (merged / "mce-pl_c3_s0" / "summary.json").is_file()
    assert (merged / "mce-pl_c4_s0" / "summary.json").is_file()

    other = json.loads((back / "tiny_b" / "sweep.json").read_text())
    other["extra_set"] = [*other["extra_set"], "algorithm.eta=10"]
    (back / "tiny_b" / "sweep.json").write_text(json.dumps(other))
    refused = _merge(back / "tiny_b", merged)
    assert refused.returncode != 0 and "other --set" in refused.stderr
    (back / "tiny_b" / "sweep.json").write_text(json.dumps({**other, "name": "other"}))
    refused = _merge(back / "tiny_b", merged)
    assert refused.returncode != 0 and "holds sweep 'tiny'" in refused.stderr
    assert sorted(json.loads((merged / "sweep.json").read_text())["jobs"]) == [
        "mce-pl_c3_s0", "mce-pl_c4_s0"]


def _check(plan: Path, *options: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(REPO / "bench" / "device_streams.sh"), "--check",
                          *options, str(plan)], cwd=REPO, capture_output=True, text=True,
                          env=_env(**env), timeout=TIMEOUT_S)


def _job_config(*argv: str) -> str:
    """The config.yaml text of the one job a sweep command line chooses, as its run
    directory would hold it (the sweep's own job expansion, nothing run)."""
    *_, chosen = sweep_cli.choose(sweep_cli.parse_args([*argv, "--out", "unused"]))
    (job,) = chosen
    return dump_config(with_resolved_paths(load_config(job.config, list(job.overrides))))


def test_check_names_every_bad_line_of_a_plan_and_runs_nothing(tmp_path: Path) -> None:
    sweep = _tiny_sweep(tmp_path / "tiny.yaml")
    good = tmp_path / "good"
    good.write_text(f"A 0 {sweep} tiny_a --rows MCE-PL\n"
                    f"B 9 {sweep} tiny_b --rows 'ind-mask, tiny' --seeds 0\n")
    done = _check(good)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "A tiny_a: sweep tiny: 2 jobs" in done.stdout
    bad = tmp_path / "bad"
    bad.write_text(f"A 0 {sweep} tiny_a --rows MCE-PL\n"
                   f"A 0 {sweep} tiny_a --rows MCE-PL\n"      # NAME twice
                   f"B 0 {sweep} tiny_b --rows 'no such row'\n"
                   f"C x {sweep} tiny_c\n")                    # guard not in seconds
    done = _check(bad)
    assert done.returncode == 1
    assert "NAME tiny_a used twice" in done.stdout
    assert "tiny_b: mcepl_dist.sweep: error: --rows: no row 'no such row'" in done.stdout
    assert "tiny_c: GUARD_S 'x' is not seconds" in done.stdout
    assert not any(p.name.startswith("tiny_") for p in tmp_path.iterdir())  # nothing ran


def test_check_names_a_job_that_repeats_one_of_the_plan_or_a_kept_run(tmp_path: Path) -> None:
    """Device time is not spent twice on one configuration: a job the plan has already
    (under another NAME, another evaluation interval) or one the report keeps."""
    sweep = _tiny_sweep(tmp_path / "tiny.yaml")
    kept = tmp_path / "kept" / "tiny_eta10" / "mce-pl_c3_s0"
    kept.mkdir(parents=True)
    kept.joinpath("config.yaml").write_text(_job_config(
        str(sweep), "--rows", "MCE-PL", "--columns", "3", "--set", "train.eval_every=1"))
    plan = tmp_path / "plan"
    plan.write_text(f"A 0 {sweep} tiny_a --rows MCE-PL --columns 3\n"
                    f"B 0 {sweep} tiny_b --columns 4\n"
                    f"C 0 {sweep} tiny_c --rows 'ind-mask, tiny' --set train.eval_every=1\n")
    done = _check(plan, "--kept", str(tmp_path / "kept"))
    assert done.returncode == 1
    assert done.stdout.splitlines()[3:] == [
        f"{plan}:1: tiny_a: job mce-pl_c3_s0 repeats tiny_eta10/mce-pl_c3_s0 (the same "
        "configuration)",
        f"{plan}:3: tiny_c: job ind-mask-tiny_c4_s0 repeats tiny_b/ind-mask-tiny_c4_s0 (the "
        "same configuration)"]
    assert _check(plan, "--kept", str(tmp_path / "none")).stdout.count("repeats") == 1


@pytest.mark.skipif(not (CIFAR / "data_batch_1").is_file(), reason="needs CIFAR-10 batches")
@pytest.mark.parametrize("plan", sorted((REPO / "bench" / "plans").glob("*.streams")),
                         ids=lambda p: p.name)
def test_the_committed_gpu_plans_are_valid(plan: Path) -> None:
    done = _check(plan, MCEPL_DATA=str(CIFAR))
    assert done.returncode == 0, done.stdout + done.stderr
