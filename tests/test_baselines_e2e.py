"""Baselines under torchrun from the shipped configs: the run completes, the bytes the
runtime counted equal what `--check` announces, and the paper-style accounting is logged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_e2e import AGENTS, QUICKSTART, SMALL, Run, torchrun

from mcepl_dist.codec import frame_bytes, ring_allreduce_bytes
from mcepl_dist.config import load_config
from mcepl_dist.plan import payload_bytes
from mcepl_dist.topology import build_graph

REPO = Path(__file__).resolve().parents[1]
ITERATIONS = 6  # test_e2e.SMALL


@pytest.mark.parametrize(("name", "steps"), [("par_weipru", 1), ("fedavg", 3)])
def test_baseline_runs_and_counts_what_check_announces(tmp_path: Path, name: str,
                                                       steps: int) -> None:
    """Two-phase sparse messages; a collective, with 3 local steps per round (same bytes)."""
    args = ["--config", str(QUICKSTART), *SMALL, "--set", f"algorithm.name={name}",
            "--set", f"algorithm.local_steps={steps}"]
    run = torchrun(tmp_path, AGENTS, args, tmp_path / "run")
    assert run.proc.returncode == 0, run.describe()
    s = run.summary()
    cfg = load_config(QUICKSTART, [a for a in args[2:] if a != "--set"])
    adj = build_graph("ring", AGENTS)
    if name == "fedavg":
        per_round = AGENTS * ring_allreduce_bytes(payload_bytes(cfg, 0), AGENTS)
    else:
        per_round = sum(int(adj[a].sum()) * frame_bytes(payload_bytes(cfg, a))
                        for a in range(AGENTS))
    assert s["bytes_sent_total"] == ITERATIONS * per_round
    assert s["algorithm"] == name and 0.0 <= s["final_mean_test_acc"] <= 1.0
    assert s["paper_bytes_sent_total"] > 0
    records = [r for r in run.metrics(0) if r["iter"] > 0]
    assert len(records) == ITERATIONS and all("paper_bits" in r for r in records)


def test_every_algorithm_config_validates() -> None:
    for path in sorted((REPO / "configs").glob("*.yaml")):
        if "label" in path.name:
            continue
        cfg = load_config(path, ["data.name=synthetic"])
        if path.stem in ("dsgd", "fedavg", "dsgd_prox", "lottery_dsgd", "ind_mask",
                         "ind_weipru", "avr_weipru", "par_weipru", "dispfl"):
            assert cfg.algorithm.name == path.stem
            assert cfg.agents.num == 20 and cfg.train.iterations == 400  # from default.yaml


def test_baseline_resume_is_bitwise(tmp_path: Path) -> None:
    """Dis-PFL killed after a checkpoint and resumed: the same masks, accuracies and bytes as
    the uninterrupted run (its weights, evolving mask and step count travel in the
    checkpoint; the other baselines' state round-trips in test_baselines.py)."""
    args = ["--config", str(QUICKSTART), *SMALL, "--set", "algorithm.name=dispfl",
            "--set", "checkpoint.every=2", "--set", "algorithm.dispfl_every=2"]
    whole = torchrun(tmp_path, AGENTS, args, tmp_path / "whole")
    assert whole.proc.returncode == 0, whole.describe()
    crashed = torchrun(tmp_path, AGENTS, args, tmp_path / "crashed",
                       env_extra={"MCEPL_FAULT": "kill@rank=1,iter=5"})
    assert crashed.proc.returncode != 0, crashed.describe()
    resumed = torchrun(tmp_path, AGENTS, ["--resume", str(tmp_path / "crashed")], None)
    assert resumed.proc.returncode == 0, resumed.describe()
    run = Run(tmp_path / "crashed", resumed.proc)
    for agent in range(AGENTS):
        for ma, mb in zip(whole.masks(agent), run.masks(agent), strict=True):
            assert np.array_equal(ma, mb), agent
        timeless = [[{k: v for k, v in r.items() if not k.startswith("t_")}
                     for r in x.metrics(agent)] for x in (whole, run)]
        assert timeless[0] == timeless[1], agent
    for key in ("per_agent_test_acc", "bytes_sent_total", "paper_bytes_sent_total"):
        assert whole.summary()[key] == run.summary()[key], key
