"""`python -m mcepl_dist.sweep` end to end on a tiny sweep (2 agents, 4 iterations).

Every torchrun job costs seconds, so the jobs are few and shared by module-scoped fixtures:
`done` runs the 4-job sweep in two invocations (then a third that must skip everything);
`faulted` kills rank 1 of two jobs mid-run and reruns the sweep, which must resume one and
restart the other. Bad input is checked in-process (or as a subprocess where its exit code
and single line are the point), with --dry-run or before any job starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcepl_dist.sweep import main, pick_labels

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"
SWEEP_TIMEOUT_S = 600  # a hang guard only: the 4-job sweep takes well under a minute
TINY = {"data.name": "synthetic", "model.width": 0.125, "agents.num": 2,
        "agents.retention": 0.5, "train.iterations": 4, "train.eval_every": 2,
        "checkpoint.every": 2}
JOBS = ["mce-pl_c3_s0", "mce-pl_c4_s0", "ind-mask_c3_s0", "ind-mask_c4_s0"]
FAULT = "kill@rank=1,iter=3"  # after the checkpoint of iteration 2, before iteration 4's


def spec(**row_sets: dict[str, Any]) -> dict[str, Any]:
    """The tiny sweep: rows MCE-PL and ind-mask, columns c_i = 3, 4, one seed."""
    return {"name": "tiny", "title": "tiny sweep", "base": str(QUICKSTART), "set": dict(TINY),
            "columns": {"key": "data.labels_per_agent", "values": [3, 4],
                        "label": "c_i = {}", "slug": "c{}"},
            "seeds": [0],
            "rows": [{"label": "MCE-PL", "paper": [0.5, None], "set": row_sets.get("mcepl", {})},
                     {"label": "ind-mask",
                      "set": {"algorithm.name": "ind_mask", **row_sets.get("ind", {})}}]}


def write_sweep(directory: Path, **row_sets: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec(**row_sets), sort_keys=False))
    return path


def sweep(args: list[str], fault: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the sweep command as a subprocess (PYTHONPATH inherited); never raises."""
    env = {k: v for k, v in os.environ.items() if k != "MCEPL_FAULT"}
    env["OMP_NUM_THREADS"] = "1"
    if fault:
        env["MCEPL_FAULT"] = fault
    cmd = [sys.executable, "-m", "mcepl_dist.sweep", *args]
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=SWEEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"sweep did not finish within {SWEEP_TIMEOUT_S} s: {' '.join(cmd)}")


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def summary(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return data


def log_text(out: Path, job: str) -> str:
    return (out / "logs" / f"{job}.log").read_text()


@dataclass
class Done:
    """The tiny sweep run to completion: first MCE-PL only, then the rest, then again."""

    file: Path
    out: Path
    first: subprocess.CompletedProcess[str]  # --rows MCE-PL --keep-checkpoints --stop-after 1
    second: subprocess.CompletedProcess[str]  # everything
    third: subprocess.CompletedProcess[str]  # everything again: nothing to run
    logs_before_third: dict[str, str]


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Done:
    root = tmp_path_factory.mktemp("sweep")
    file, out = write_sweep(root), root / "out"
    first = sweep([str(file), "--out", str(out), "--rows", "MCE-PL", "--keep-checkpoints",
                   "--stop-after", "1"])
    assert first.returncode == 0, explain(first)
    second = sweep([str(file), "--out", str(out)])
    assert second.returncode == 0, explain(second)
    logs = {job: log_text(out, job) for job in JOBS}
    third = sweep([str(file), "--out", str(out)])
    return Done(file, out, first, second, third, logs)


def test_stop_after_runs_one_job_then_stops(done: Done) -> None:
    lines = done.first.stdout.splitlines()
    assert lines[0] == f"sweep tiny: 2 jobs, 0 complete, 2 to run -> {done.out}"
    assert lines[1] == "[1/2] mce-pl_c3_s0: start (2 ranks, 4 iterations) ..."
    assert re.fullmatch(r"\[1/2\] mce-pl_c3_s0: done in \d+ s \| acc \d\.\d{4} \| [\d,]+ B/msg "
                        r"\| \d+\.\d\d s/iter", lines[2]), lines[2]
    assert lines[3].startswith("stopping after 1 s (--stop-after): 1 jobs left; run the same")
    assert len(lines) == 4


def test_every_job_ran_with_one_progress_line_each(done: Done) -> None:
    lines = done.second.stdout.splitlines()
    assert lines[0] == f"sweep tiny: 4 jobs, 1 complete, 3 to run -> {done.out}"
    assert re.fullmatch(r"\[1/4\] mce-pl_c3_s0: complete, skipped \| acc .*", lines[1])
    for i, job in enumerate(JOBS[1:], 2):
        assert f"[{i}/4] {job}: start (2 ranks, 4 iterations) ..." in lines
        assert any(re.fullmatch(rf"\[{i}/4\] {job}: done in \d+ s \| acc .*", x) for x in lines)
    assert len(lines) == 1 + 1 + 2 * 3 and done.second.stderr.count("error") == 0
    for job in JOBS:
        s = summary(done.out / job)
        assert s["iterations"] == 4 and s["num_agents"] == 2
        assert 0.0 <= s["final_mean_test_acc"] <= 1.0
        log = log_text(done.out, job)
        assert log.startswith("$ ") and "--nproc_per_node=2" in log and "--resume" not in log
    assert summary(done.out / "ind-mask_c3_s0")["algorithm"] == "ind_mask"
    assert summary(done.out / "mce-pl_c4_s0")["algorithm"] == "mcepl"


def test_run_dirs_hold_their_configs(done: Done) -> None:
    cfg = yaml.safe_load((done.out / "ind-mask_c4_s0" / "config.yaml").read_text())
    assert cfg["algorithm"]["name"] == "ind_mask" and cfg["data"]["labels_per_agent"] == 4
    assert cfg["agents"]["num"] == 2 and cfg["train"]["iterations"] == 4 and cfg["seed"] == 0


def test_summary_has_provenance(done: Done) -> None:
    for job in JOBS:
        prov = summary(done.out / job)["provenance"]
        assert re.fullmatch(r"[0-9a-f]{40}|unknown", prov["git_commit"]), prov
        assert isinstance(prov["git_dirty"], bool)
        assert prov["machine"].strip() and prov["torch"] and prov["python"]
        assert prov["sweep_command"].startswith("python -m mcepl_dist.sweep ")
        assert f"--out {done.out}" in prov["sweep_command"]
        assert "mcepl_dist.run" in prov["command"]
    first = summary(done.out / "mce-pl_c3_s0")["provenance"]["sweep_command"]
    assert "--rows MCE-PL" in first  # the invocation that actually ran it


def test_sweep_state_file(done: Done) -> None:
    state = json.loads((done.out / "sweep.json").read_text())
    assert state["name"] == "tiny" and state["extra_set"] == []
    assert state["spec"] == spec() and state["file"] == str(done.file.resolve())
    assert sorted(state["jobs"]) == sorted(JOBS)  # the first run's 2 merged with the rest
    job = state["jobs"]["ind-mask_c3_s0"]
    assert (job["row"], job["column"], job["seed"]) == ("ind-mask", 3, 0)
    assert "--set algorithm.name=ind_mask" in job["command"] and "--resume" not in job["command"]
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", state["git_commit"])
    stamps = [state["created_utc"], state["updated_utc"]]  # the merge picks the newest spec
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in stamps)
    assert stamps == sorted(stamps)


def test_checkpoints_removed_unless_kept(done: Done) -> None:
    kept = done.out / "mce-pl_c3_s0" / "checkpoints"
    assert sorted(p.name for p in kept.iterdir()) == ["rank0", "rank1"]
    assert all(any(d.glob("iter*.pt")) for d in kept.iterdir())
    for job in JOBS[1:]:
        assert not (done.out / job / "checkpoints").exists()
        assert (done.out / job / "summary.json").is_file()


def test_second_invocation_skips_everything(done: Done) -> None:
    assert done.third.returncode == 0, explain(done.third)
    lines = done.third.stdout.splitlines()
    assert lines[0] == f"sweep tiny: 4 jobs, 4 complete, 0 to run -> {done.out}"
    assert [x.split(" | ")[0] for x in lines[1:]] == [
        f"[{i}/4] {job}: complete, skipped" for i, job in enumerate(JOBS, 1)]
    assert {job: log_text(done.out, job) for job in JOBS} == done.logs_before_third  # no torchrun


def run_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(args) here (no torchrun may start in these cases): (exit, stdout, stderr)."""
    saved = os.environ.pop("MCEPL_FAULT", None)
    try:
        code = main(args)
    finally:
        if saved is not None:
            os.environ["MCEPL_FAULT"] = saved
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dry_run_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file, out = write_sweep(tmp_path), tmp_path / "out"
    code, stdout, _ = run_in_process([str(file), "--out", str(out), "--dry-run"], capsys)
    assert code == 0 and not out.exists()
    assert stdout.splitlines() == [f"sweep tiny: 4 jobs, 0 complete, 4 to run -> {out}"] + [
        f"[{i}/4] {job}: would start (2 ranks, 4 iterations)" for i, job in enumerate(JOBS, 1)]


def test_a_row_that_restates_another_is_noted(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """At --set algorithm.eta=10 a row "eta_ft 10" restates eta_ft = eta: the sweep says
    which job it repeats (and still runs it: its row needs the cell)."""
    raw = spec()
    raw["rows"].append({"label": "MCE-PL eta_ft 10", "set": {"algorithm.eta_ft": 10.0}})
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump(raw, sort_keys=False))
    args = [str(file), "--out", str(tmp_path / "o"), "--dry-run", "--columns", "3"]
    code, stdout, _ = run_in_process([*args, "--rows", "MCE-PL eta_ft 10",
                                      "--set", "algorithm.eta=1"], capsys)
    assert code == 0 and not any(line.startswith("note:") for line in stdout.splitlines())
    code, stdout, _ = run_in_process([*args, "--rows", "MCE-PL eta_ft 10",
                                      "--set", "algorithm.eta=10"], capsys)
    assert code == 0
    assert stdout.splitlines()[1] == ("note: mce-pl-eta-ft-10_c3_s0 trains the same "
                                      "configuration as mce-pl_c3_s0 (only the row label "
                                      "differs)")
    assert stdout.splitlines()[2].endswith("mce-pl-eta-ft-10_c3_s0: would start "
                                           "(2 ranks, 4 iterations)")


def test_a_set_that_only_the_chosen_rows_take_is_fine(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Looking for repeats reads every row's config, but a row not chosen may reject the
    --set (local_steps is for the SGD baselines only): that is no error."""
    raw = spec()
    raw["rows"].append({"label": "DSGD", "set": {"algorithm.name": "dsgd"}})
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump(raw, sort_keys=False))
    code, stdout, _ = run_in_process([str(file), "--out", str(tmp_path / "o"), "--dry-run",
                                      "--rows", "DSGD", "--set", "algorithm.local_steps=2"],
                                     capsys)
    assert code == 0 and len(stdout.splitlines()) == 3


def test_dry_run_on_a_finished_sweep(done: Done, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_in_process([str(done.file), "--out", str(done.out), "--dry-run",
                                      "--rows", "ind-mask"], capsys)
    assert code == 0
    assert stdout.splitlines()[1:] == ["[1/2] ind-mask_c3_s0: would skip (2 ranks, 4 iterations)",
                                       "[2/2] ind-mask_c4_s0: would skip (2 ranks, 4 iterations)"]


@pytest.mark.parametrize("args, expected", [
    (["--rows", "ind-mask"], ["ind-mask_c3_s0", "ind-mask_c4_s0"]),
    (["--rows", "MCE-PL,ind-mask", "--columns", "4"], ["mce-pl_c4_s0", "ind-mask_c4_s0"]),
    (["--columns", "3", "--seeds", "0"], ["mce-pl_c3_s0", "ind-mask_c3_s0"]),
    (["--rows", " MCE-PL ", "--columns", "3,4"], ["mce-pl_c3_s0", "mce-pl_c4_s0"]),
])
def test_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                 expected: list[str]) -> None:
    file = write_sweep(tmp_path)
    code, stdout, _ = run_in_process([str(file), "--out", str(tmp_path / "o"), "--dry-run",
                                      *args], capsys)
    assert code == 0
    assert [x.split("] ")[1].split(":")[0] for x in stdout.splitlines()[1:]] == expected


@pytest.mark.parametrize("text, expected", [
    ("a, b", {"a, b"}),  # a label holding a comma is taken whole
    ("a, b,c", {"a, b", "c"}),
    ("c,a, b", {"c", "a, b"}),
    ("a,c", {"a", "c"}),  # "a" alone is no label: it is reported as unknown
    (" c , a, b, c ", {"c", "a, b, c"}),  # the longest label wins
    (",", set()),
])
def test_pick_labels_keeps_labels_with_commas(text: str, expected: set[str]) -> None:
    assert pick_labels(text, {"a, b", "a, b, c", "c"}) == expected


@pytest.mark.parametrize("args, message", [
    (["--rows", "MCE-PL,nope"], "--rows: no row 'nope' in sweep tiny (rows: MCE-PL, ind-mask)"),
    (["--columns", "5"], "--columns: sweep tiny has columns 3, 4"),
    (["--seeds", "0,1"], "--seeds: sweep tiny has seeds 0"),
    (["--rows", ","], "no job matches --rows/--columns/--seeds"),
])
def test_bad_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                     message: str) -> None:
    file, out = write_sweep(tmp_path), tmp_path / "o"
    code, stdout, stderr = run_in_process([str(file), "--out", str(out), *args], capsys)
    assert (code, stdout, stderr) == (2, "", f"mcepl_dist.sweep: error: {message}\n")
    assert not out.exists()


def test_other_set_on_the_same_out_is_refused(done: Done) -> None:
    proc = sweep([str(done.file), "--out", str(done.out), "--set", "train.iterations=2"])
    assert proc.returncode == 2 and proc.stdout == "", explain(proc)
    assert proc.stderr.splitlines() == [
        f"mcepl_dist.sweep: error: --out {done.out} was started with --set []; give the same "
        f"overrides (now ['train.iterations=2']) or another --out"]


def test_bad_config_in_one_job_stops_before_any_job(tmp_path: Path) -> None:
    file, out = write_sweep(tmp_path, ind={"agents.retention": 2.0}), tmp_path / "out"
    proc = sweep([str(file), "--out", str(out)])
    assert proc.returncode == 2 and proc.stdout == "", explain(proc)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "mcepl_dist.sweep: error: job ind-mask_c3_s0: agents.retention"), lines
    assert not out.exists()  # not even the sweep directory: no MCE-PL job ran first


def test_out_of_another_kind_is_refused(tmp_path: Path, done: Done,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    file = write_sweep(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine\n")
    code, _, err = run_in_process([str(file), "--out", str(busy)], capsys)
    assert code == 2 and err == (f"mcepl_dist.sweep: error: --out {busy} is not empty and is "
                                 f"not a sweep directory (no sweep.json)\n")
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    code, _, err = run_in_process([str(file), "--out", str(busy / "notes.txt")], capsys)
    assert code == 2 and err.endswith("notes.txt exists and is not a directory\n")
    other = write_sweep(tmp_path / "other")
    raw = yaml.safe_load(other.read_text())
    other.write_text(yaml.safe_dump({**raw, "name": "other"}))
    code, _, err = run_in_process([str(other), "--out", str(done.out), "--dry-run"], capsys)
    assert code == 2 and err == (f"mcepl_dist.sweep: error: --out {done.out} holds sweep "
                                 f"'tiny', not 'other'\n")


def test_job_dir_of_another_config_is_refused(tmp_path: Path, done: Done,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    (out / "mce-pl_c4_s0").mkdir(parents=True)
    shutil.copy(done.out / "sweep.json", out / "sweep.json")
    shutil.copy(done.out / "mce-pl_c3_s0" / "config.yaml", out / "mce-pl_c4_s0" / "config.yaml")
    code, _, err = run_in_process([str(done.file), "--out", str(out)], capsys)
    assert code == 2 and err == (
        f"mcepl_dist.sweep: error: {out / 'mce-pl_c4_s0'} holds a run of another config (key "
        f"data.labels_per_agent: 4 != 3); remove it or use another --out\n")


def test_stop_after_zero_starts_nothing(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    file, out = write_sweep(tmp_path), tmp_path / "out"
    code, stdout, _ = run_in_process([str(file), "--out", str(out), "--stop-after", "0"], capsys)
    assert code == 0  # stopping as asked is no failure; the same command continues
    assert stdout.splitlines()[1:] == [
        "stopping after 0 s (--stop-after): 4 jobs left; run the same command to continue"]
    assert sorted(p.name for p in out.iterdir()) == ["sweep.json", "sweep.lock"]  # no job


def test_a_second_sweep_on_the_same_out_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Two sweeps on one directory would run the same jobs into the same run directories."""
    import fcntl
    file, out = write_sweep(tmp_path), tmp_path / "out"
    assert run_in_process([str(file), "--out", str(out), "--stop-after", "0"], capsys)[0] == 0
    with open(out / "sweep.lock", "a+") as held:  # as a running sweep holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.truncate(0)
        held.write("4242\n")
        held.flush()
        code, _, err = run_in_process([str(file), "--out", str(out)], capsys)
    assert code == 2 and err == (f"mcepl_dist.sweep: error: another sweep (pid 4242) is "
                                 f"running in {out}; wait for it or stop it\n")
    assert run_in_process([str(file), "--out", str(out), "--stop-after", "0"], capsys)[0] == 0


# --- a sweep interrupted mid-job ------------------------------------------------------


@dataclass
class Faulted:
    out: Path
    killed: subprocess.CompletedProcess[str]  # both c_i = 3 jobs lose rank 1 at iteration 3
    checkpointed: dict[str, dict[str, list[str]]]  # job -> rank -> checkpoint files after it
    rerun: subprocess.CompletedProcess[str]  # no fault: resume one, restart the other


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> Faulted:
    root = tmp_path_factory.mktemp("faulted")
    file, out = write_sweep(root), root / "out"
    args = [str(file), "--out", str(out), "--columns", "3"]
    killed = sweep(args, fault=FAULT)
    jobs = ["mce-pl_c3_s0", "ind-mask_c3_s0"]
    checkpointed = {job: {d.name: sorted(p.name for p in d.iterdir())
                          for d in sorted((out / job / "checkpoints").glob("rank*"))}
                    for job in jobs if (out / job / "checkpoints").is_dir()}
    # ind-mask: as if it had stopped before rank 1's first checkpoint
    shutil.rmtree(out / "ind-mask_c3_s0" / "checkpoints" / "rank1", ignore_errors=True)
    rerun = sweep(args)
    return Faulted(out, killed, checkpointed, rerun)


def test_failed_jobs_give_exit_1_and_the_sweep_goes_on(faulted: Faulted) -> None:
    proc = faulted.killed
    assert proc.returncode == 1, explain(proc)
    lines = proc.stdout.splitlines()
    assert lines[1] == "[1/2] mce-pl_c3_s0: start (2 ranks, 4 iterations) ..."
    assert lines[2].startswith("[1/2] mce-pl_c3_s0: FAILED (exit 1) after ")
    assert f"(log {faulted.out / 'logs' / 'mce-pl_c3_s0.log'})" in lines[2]
    assert lines[3] == "[2/2] ind-mask_c3_s0: start (2 ranks, 4 iterations) ..."  # went on
    assert lines[4].startswith("[2/2] ind-mask_c3_s0: FAILED (exit 1) after ")
    assert lines[5] == "sweep: 2 job(s) failed: mce-pl_c3_s0, ind-mask_c3_s0"
    for job in ("mce-pl_c3_s0", "ind-mask_c3_s0"):
        assert "injected fault kill (rank 1, iteration 3)" in log_text(faulted.out, job)
        assert faulted.checkpointed[job] == {"rank0": ["iter0000002.pt"],
                                             "rank1": ["iter0000002.pt"]}


def test_job_with_every_ranks_checkpoint_is_resumed(faulted: Faulted, done: Done) -> None:
    proc = faulted.rerun
    assert proc.returncode == 0, explain(proc)
    lines = proc.stdout.splitlines()
    assert lines[0] == f"sweep tiny: 2 jobs, 0 complete, 2 to run -> {faulted.out}"
    assert lines[1] == "[1/2] mce-pl_c3_s0: resume (2 ranks, 4 iterations) ..."
    assert re.fullmatch(r"\[1/2\] mce-pl_c3_s0: done in \d+ s \| acc .*", lines[2])
    log = log_text(faulted.out, "mce-pl_c3_s0")
    assert log.count("$ ") == 2 and f"--resume {faulted.out / 'mce-pl_c3_s0'}" in log
    resumed, whole = summary(faulted.out / "mce-pl_c3_s0"), summary(done.out / "mce-pl_c3_s0")
    assert resumed["final_mean_test_acc"] == whole["final_mean_test_acc"]
    assert resumed["per_agent_test_acc"] == whole["per_agent_test_acc"]
    assert not (faulted.out / "mce-pl_c3_s0" / "checkpoints").exists()


def test_job_without_every_ranks_checkpoint_is_restarted(faulted: Faulted, done: Done) -> None:
    lines = faulted.rerun.stdout.splitlines()
    assert lines[3] == "[2/2] ind-mask_c3_s0: start (2 ranks, 4 iterations) ..."
    assert re.fullmatch(r"\[2/2\] ind-mask_c3_s0: done in \d+ s \| acc .*", lines[4])
    log = log_text(faulted.out, "ind-mask_c3_s0")
    assert log.count("$ ") == 2 and "--resume" not in log
    assert "injected fault" in log  # the failed first attempt's log is kept, appended to
    restarted = summary(faulted.out / "ind-mask_c3_s0")
    whole = summary(done.out / "ind-mask_c3_s0")
    assert restarted["per_agent_test_acc"] == whole["per_agent_test_acc"]
    metrics = (faulted.out / "ind-mask_c3_s0" / "metrics" / "rank1.jsonl").read_text()
    iters = [json.loads(x)["iter"] for x in metrics.splitlines() if x.strip()]
    assert iters == sorted(set(iters)) and iters[-1] == 4  # nothing left of the killed attempt


def test_sigterm_ends_the_running_job_too(tmp_path: Path) -> None:
    """A sweep stopped by SIGTERM (a scheduler, `timeout`) must not leave its job's ranks
    running: they would hold the run directory and the CPUs."""
    file, out = write_sweep(tmp_path), tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "MCEPL_FAULT"}
    proc = subprocess.Popen([sys.executable, "-m", "mcepl_dist.sweep", str(file), "--out",
                             str(out), "--set", "train.iterations=100000", "--rows", "MCE-PL"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "logs" / "mce-pl_c3_s0.log"
    deadline = time.monotonic() + SWEEP_TIMEOUT_S
    while not (log.exists() and "run dir" in log.read_text()):  # the ranks are training
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err
    time.sleep(2)
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(out).encode() in cmdline.read_bytes():
                left.append(cmdline.parent.name)
        except OSError:
            continue
    assert not left, f"processes of the stopped job still running: {left}"
