"""End to end: `torchrun ... -m mcepl_dist.run` as a subprocess, checked through its run dir.

Each torchrun start costs 10-20 s on a small CPU machine, so the runs are few and shared:
one module-scoped quickstart run (plus its twin for determinism) backs most assertions.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from mcepl_dist.config import load_config
from mcepl_dist.data import label_table
from mcepl_dist.metrics import load_masks
from mcepl_dist.model import CONV_LAYERS, LAYER_NAMES, layer_shapes

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"
CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-batches-py"
RUN_TIMEOUT_S = 300

AGENTS = 4
RETENTION = [0.5, 0.3, 0.3, 0.5]  # quickstart.yaml
RING_DEGREE = 2
ITERATIONS = 6
EVAL_EVERY = 3
WIDTH = 0.125
SMALL = ["--set", "data.name=synthetic", "--set", f"model.width={WIDTH}",
         "--set", f"train.iterations={ITERATIONS}", "--set", f"train.eval_every={EVAL_EVERY}"]
RECORD_KEYS = {"iter", "rank", "bytes_sent", "bytes_recv", "t_iter", "t_compute", "t_comm",
               "t_pack"}
EVAL_KEYS = {"test_acc", "test_loss", "train_loss", "dead_label_rows"}
SUMMARY_KEYS = {"algorithm", "num_agents", "iterations", "final_mean_test_acc",
                "per_agent_test_acc", "bytes_sent_total", "bytes_per_message", "wall_clock_s",
                "median_t_iter_s", "comm_fraction", "resumes"}


@dataclass
class Run:
    out: Path
    proc: subprocess.CompletedProcess[str]

    def describe(self) -> str:
        return (f"exit {self.proc.returncode}\n--- stdout ---\n{self.proc.stdout[-4000:]}"
                f"\n--- stderr ---\n{self.proc.stderr[-6000:]}")

    def metrics(self, rank: int) -> list[dict]:
        path = self.out / "metrics" / f"rank{rank}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def summary(self) -> dict:
        return json.loads((self.out / "summary.json").read_text())

    def masks(self, agent: int) -> list[np.ndarray]:
        return load_masks(self.out / "masks" / f"agent{agent}.npz")


def torchrun(cwd: Path, nproc: int, args: list[str], out: Path | None,
             env_extra: dict[str, str] | None = None) -> Run:
    """Run the entry point under torchrun; never raises on a non-zero exit."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "mcepl_dist.run", *args]
    if out is not None:
        cmd += ["--out", str(out)]
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"torchrun did not finish within {RUN_TIMEOUT_S} s: {' '.join(cmd)}\n"
                    f"stderr: {(exc.stderr or b'')[-4000:]!r}")
    return Run(out if out is not None else cwd, proc)


def masked_weights(width: float) -> int:
    return sum(math.prod(s) for s in layer_shapes(width))


def expected_message_bytes(width: float) -> int:
    return 32 + math.ceil(masked_weights(width) / 8)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def quick(workdir: Path) -> Run:
    run = torchrun(workdir, AGENTS, ["--config", str(QUICKSTART), *SMALL], workdir / "run")
    assert run.proc.returncode == 0, run.describe()
    return run


@pytest.fixture(scope="module")
def quick_twin(workdir: Path, quick: Run) -> Run:
    run = torchrun(workdir, AGENTS, ["--config", str(QUICKSTART), *SMALL], workdir / "run2")
    assert run.proc.returncode == 0, run.describe()
    return run


# ---------------------------------------------------------------------------------------
# (a) one small MCE-PL run


def test_run_dir_layout_and_config(quick: Run) -> None:
    assert (quick.out / "config.yaml").is_file()
    assert (quick.out / "summary.json").is_file()
    for r in range(AGENTS):
        assert (quick.out / "metrics" / f"rank{r}.jsonl").is_file()
        assert (quick.out / "masks" / f"agent{r}.npz").is_file()
    cfg = load_config(quick.out / "config.yaml")
    assert cfg.data.name == "synthetic"
    assert cfg.model.width == WIDTH
    assert cfg.train.iterations == ITERATIONS
    assert cfg.train.eval_every == EVAL_EVERY
    assert cfg.agents.num == AGENTS
    assert cfg.topology.kind == "ring"
    assert cfg.algorithm.name == "mcepl"


def test_metrics_jsonl(quick: Run) -> None:
    per_msg = expected_message_bytes(WIDTH)
    for r in range(AGENTS):
        records = quick.metrics(r)
        assert [rec["iter"] for rec in records] == list(range(ITERATIONS + 1))
        for rec in records:
            missing = RECORD_KEYS - set(rec)
            assert not missing, f"rank {r} iter {rec['iter']}: missing {sorted(missing)}"
            assert rec["rank"] == r
            assert rec["bytes_sent"] == rec["bytes_recv"] == RING_DEGREE * per_msg
            for key in ("t_iter", "t_compute", "t_comm", "t_pack"):
                assert rec[key] >= 0, (r, rec["iter"], key)
            is_eval = rec["iter"] > 0 and (rec["iter"] % EVAL_EVERY == 0
                                           or rec["iter"] == ITERATIONS)
            if is_eval:
                missing = EVAL_KEYS - set(rec)
                assert not missing, f"rank {r} iter {rec['iter']}: missing {sorted(missing)}"
                assert 0.0 <= rec["test_acc"] <= 1.0
                assert math.isfinite(rec["test_loss"]) and rec["test_loss"] >= 0
                assert math.isfinite(rec["train_loss"])
            else:
                assert "test_acc" not in rec, f"rank {r} evaluated at iter {rec['iter']}"
        assert records[-1]["bytes_sent_cum"] == (ITERATIONS + 1) * RING_DEGREE * per_msg


def test_summary(quick: Run) -> None:
    s = quick.summary()
    missing = SUMMARY_KEYS - set(s)
    assert not missing, f"summary.json lacks {sorted(missing)}"
    assert s["algorithm"] == "mcepl"
    assert s["num_agents"] == AGENTS
    assert s["iterations"] == ITERATIONS
    per_msg = expected_message_bytes(WIDTH)
    assert per_msg == 32 + math.ceil(19_912 / 8)  # width 0.125: 8/16/32 channels, fc 24
    assert s["bytes_per_message"] == per_msg
    assert s["bytes_sent_total"] == AGENTS * (ITERATIONS + 1) * RING_DEGREE * per_msg
    final = [quick.metrics(r)[-1]["test_acc"] for r in range(AGENTS)]
    assert s["per_agent_test_acc"] == pytest.approx(final)
    assert s["final_mean_test_acc"] == pytest.approx(float(np.mean(final)))
    assert 0.0 <= s["final_mean_test_acc"] <= 1.0
    # The run's wall clock covers every iteration and evaluation each rank timed.
    timed = _timed_s(quick)
    assert timed <= s["wall_clock_s"] < timed + 60
    assert s["resumes"] == 0
    assert s["median_t_iter_s"] > 0
    assert 0.0 <= s["comm_fraction"] <= 1.0


def test_masks_match_retention(quick: Run) -> None:
    shapes = layer_shapes(WIDTH)
    for agent in range(AGENTS):
        masks = quick.masks(agent)
        assert len(masks) == len(LAYER_NAMES)
        for layer, (m, shape) in enumerate(zip(masks, shapes, strict=True)):
            assert m.dtype == bool
            assert m.shape == shape
            # Fil is off in quickstart and fc_retention is null: every layer keeps r_i.
            frac = float(m.mean())
            assert frac == pytest.approx(RETENTION[agent], abs=0.01), (
                f"agent {agent} {LAYER_NAMES[layer]}: {frac:.4f} ones, "
                f"retention {RETENTION[agent]}")


def test_dead_label_rows_match_the_final_masks(quick: Run) -> None:
    """Each evaluation counts the agent's labels whose output row the mask empties."""
    cfg = load_config(quick.out / "config.yaml")
    table = label_table(cfg)
    for agent in range(AGENTS):
        fc2 = quick.masks(agent)[-1]
        expected = sum(not fc2[label].any() for label in table[agent])
        assert quick.metrics(agent)[-1]["dead_label_rows"] == expected, agent


# ---------------------------------------------------------------------------------------
# (b) determinism


def _timed_s(run: Run) -> float:
    """The slowest rank's iteration and evaluation times, summed over its metrics."""
    return max(sum(rec["t_iter"] + rec.get("t_eval", 0.0) for rec in run.metrics(r))
               for r in range(AGENTS))


def _comparable(rec: dict) -> dict:
    """Everything in a record except wall-clock timings."""
    return {k: v for k, v in rec.items() if not k.startswith("t_")}


def test_same_command_is_deterministic(quick: Run, quick_twin: Run) -> None:
    for agent in range(AGENTS):
        a, b = quick.masks(agent), quick_twin.masks(agent)
        for layer, (ma, mb) in enumerate(zip(a, b, strict=True)):
            assert np.array_equal(ma, mb), f"agent {agent} {LAYER_NAMES[layer]} masks differ"
    for r in range(AGENTS):
        ra, rb = quick.metrics(r), quick_twin.metrics(r)
        assert len(ra) == len(rb)
        for x, y in zip(ra, rb, strict=True):
            for key in ("test_acc", "test_loss", "train_loss", "loss"):
                assert x.get(key) == y.get(key), (r, x["iter"], key, x.get(key), y.get(key))
            assert _comparable(x) == _comparable(y), (r, x["iter"])
    sa, sb = quick.summary(), quick_twin.summary()
    for key in ("per_agent_test_acc", "bytes_sent_total", "bytes_per_message"):
        assert sa[key] == sb[key], key


# ---------------------------------------------------------------------------------------
# (b2) a rank killed under torchrun, then --resume: the same masks and metrics bit for bit

CRASH_TIMEOUT_S = 30
KILLED, KILL_ITER = 2, 3


def test_killed_rank_fails_the_run_and_resume_matches(workdir: Path, quick: Run) -> None:
    out = workdir / "crashed"
    args = ["--config", str(QUICKSTART), *SMALL, "--set", "checkpoint.every=2",
            "--set", f"comm.timeout_s={CRASH_TIMEOUT_S}"]
    crashed = torchrun(workdir, AGENTS, args, out,
                       env_extra={"MCEPL_FAULT": f"kill@rank={KILLED},iter={KILL_ITER}"})
    ended = time.time()
    err = crashed.proc.stderr
    assert crashed.proc.returncode != 0, crashed.describe()
    fault = re.search(r"injected fault kill \(rank 2, iteration 3\) at ([\d.]+)", err)
    assert fault, crashed.describe()
    # torchrun reports the killed rank among the failures. Which failure it calls the root
    # cause is a race: the killed rank's neighbours may exit (code 1, naming it) first.
    report = err[err.index("Failures:"):]
    assert re.search(rf"rank\s*:\s*{KILLED}\b[^\[]*?SIGKILL", report), crashed.describe()
    assert ended - float(fault.group(1)) < CRASH_TIMEOUT_S + 15, crashed.describe()
    # Iteration 2's checkpoint is on every rank, loadable without unpickling code.
    for r in range(AGENTS):
        assert [p.name for p in sorted((out / "checkpoints" / f"rank{r}").iterdir())] == [
            "iter0000002.pt"]
        state = torch.load(out / "checkpoints" / f"rank{r}" / "iter0000002.pt",
                           weights_only=True)
        assert state["iteration"] == 2 and state["rank"] == r
    assert not (out / "summary.json").exists()

    resumed = torchrun(workdir, AGENTS, ["--resume", str(out)], None)
    assert resumed.proc.returncode == 0, resumed.describe()
    assert "resuming" in resumed.proc.stderr and "after iteration 2" in resumed.proc.stderr
    run = Run(out, resumed.proc)
    for agent in range(AGENTS):
        for layer, (ma, mb) in enumerate(zip(quick.masks(agent), run.masks(agent), strict=True)):
            assert np.array_equal(ma, mb), f"agent {agent} {LAYER_NAMES[layer]} masks differ"
        a, b = quick.metrics(agent), run.metrics(agent)
        assert [rec["iter"] for rec in b] == list(range(ITERATIONS + 1))
        assert [_comparable(x) for x in a] == [_comparable(y) for y in b], agent
    sa, sb = quick.summary(), run.summary()
    wall = {"wall_clock_s", "median_t_iter_s", "comm_fraction", "startup_s_median",
            "startup_s_max"}
    for key in sa:
        if key not in wall | {"resumes"} and not key.startswith("peak_") and key != "provenance":
            assert sa[key] == sb[key], key
    # The wall clock adds the segment before the crash (up to its checkpoint) to the resumed
    # one, so it covers every iteration the metrics timed, across both processes.
    assert sb["resumes"] == 1
    assert _timed_s(run) <= sb["wall_clock_s"]
    # The same code and machine; only the command and the times differ.
    same = ("git_commit", "git_dirty", "machine", "torch")
    assert [sa["provenance"][k] for k in same] == [sb["provenance"][k] for k in same]
    assert "--resume" in sb["provenance"]["command"]


# ---------------------------------------------------------------------------------------
# (c) ind_mask: no communication


def test_ind_mask_sends_nothing(workdir: Path) -> None:
    run = torchrun(workdir, AGENTS, ["--config", str(QUICKSTART), *SMALL,
                                     "--set", "algorithm.name=ind_mask"], workdir / "ind")
    assert run.proc.returncode == 0, run.describe()
    s = run.summary()
    assert s["algorithm"] == "ind_mask"
    assert s["bytes_sent_total"] == 0
    for r in range(AGENTS):
        records = run.metrics(r)
        assert [rec["iter"] for rec in records] == list(range(ITERATIONS + 1))
        assert all(rec["bytes_sent"] == 0 and rec["bytes_recv"] == 0 for rec in records)
        assert "test_acc" in records[-1]
        masks = run.masks(r)
        assert [m.shape for m in masks] == layer_shapes(WIDTH)
        for layer in range(CONV_LAYERS):
            assert float(masks[layer].mean()) == pytest.approx(RETENTION[r], abs=0.01)


# ---------------------------------------------------------------------------------------
# (d), (e) bad input: one line, non-zero exit, no run directory


def _error_lines(run: Run) -> list[str]:
    return [ln for ln in run.proc.stderr.splitlines() if ln.startswith("mcepl_dist: error:")]


def test_world_size_mismatch(workdir: Path) -> None:
    out = workdir / "mismatch"
    run = torchrun(workdir, 2, ["--config", str(QUICKSTART), *SMALL], out)
    assert run.proc.returncode != 0, run.describe()
    assert "world size 2 != agents.num 4" in run.proc.stderr, run.describe()
    assert len(_error_lines(run)) == 1, run.describe()  # printed once, by local rank 0
    assert re.search(r"exitcode\s*:\s*2\b", run.proc.stderr), run.describe()
    assert not out.exists()


def test_unknown_config_key(workdir: Path) -> None:
    out = workdir / "badkey"
    run = torchrun(workdir, 2, ["--config", str(QUICKSTART), *SMALL,
                                "--set", "train.iterationz=3"], out)
    assert run.proc.returncode != 0, run.describe()
    lines = _error_lines(run)
    assert len(lines) == 1, run.describe()
    assert "iterationz" in lines[0]
    assert not out.exists()


def _single(cwd: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`python -m mcepl_dist.run` without torchrun (world size 1)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                "MASTER_PORT"):
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "mcepl_dist.run", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def test_bad_value_without_torchrun_exits_2_with_one_line(workdir: Path) -> None:
    out = workdir / "badvalue"
    proc = _single(workdir, ["--config", str(QUICKSTART), "--set", "train.iterations=0",
                             "--out", str(out)])
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mcepl_dist: error:") and "train.iterations" in lines[0]
    assert not out.exists()


def test_non_empty_out_dir_is_refused(workdir: Path) -> None:
    out = workdir / "occupied"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    proc = _single(workdir, ["--config", str(QUICKSTART), *SMALL, "--set", "agents.num=1",
                             "--set", "agents.retention=0.5", "--out", str(out)])
    assert proc.returncode == 2, proc.stderr
    assert "not empty" in proc.stderr and str(out) in proc.stderr, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "precious"


# ---------------------------------------------------------------------------------------
# (f) real CIFAR-10


@pytest.mark.skipif(not (CIFAR / "data_batch_1").is_file(),
                    reason=f"CIFAR-10 python batches not found at {CIFAR}")
def test_cifar10_end_to_end(workdir: Path) -> None:
    width = 0.25
    run = torchrun(workdir, AGENTS,
                   ["--config", str(QUICKSTART), "--set", f"model.width={width}",
                    "--set", "train.iterations=3", "--set", "train.eval_every=0",
                    "--set", "train.eval_batch_size=500"],
                   workdir / "cifar", env_extra={"MCEPL_DATA": str(CIFAR)})
    assert run.proc.returncode == 0, run.describe()
    assert (run.out / "config.yaml").is_file()
    for r in range(AGENTS):
        records = run.metrics(r)
        assert [rec["iter"] for rec in records] == [0, 1, 2, 3]
        assert ["test_acc" in rec for rec in records] == [False, False, False, True]
        assert [m.shape for m in run.masks(r)] == layer_shapes(width)
    s = run.summary()
    assert s["iterations"] == 3
    assert 0.0 <= s["final_mean_test_acc"] <= 1.0
    assert s["bytes_per_message"] == expected_message_bytes(width)
    assert s["bytes_sent_total"] == AGENTS * 4 * RING_DEGREE * expected_message_bytes(width)
