"""`python -m mcepl_dist.run --check`: validates without training and prints the plan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mcepl_dist.config import load_config
from mcepl_dist.plan import describe

REPO = Path(__file__).resolve().parents[1]


def test_describe_paper_setting_message_and_traffic() -> None:
    cfg = load_config(overrides=["data.name=synthetic"])

    lines = describe(cfg)

    assert lines[0].startswith("config OK: mcepl, 20 agents")
    assert "104 edges, degree min/mean/max 2/10.4/14" in lines[1]
    assert "1,227,328 masked weights" in lines[2]
    assert lines[3] == "message: 153,448 bytes (153,416 payload + 32 header)"
    assert lines[4] == f"traffic per round, all agents: {2 * 104 * 153_448:,} bytes"
    agent0 = next(line for line in lines if line.strip().startswith("0 "))
    assert "[6, 9, 4, 1]" in agent0


def test_check_flag_runs_without_torchrun_and_writes_nothing(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "mcepl_dist.run", "--check",
           "--config", str(REPO / "configs" / "quickstart.yaml"), "--set", "data.name=synthetic"]

    ok = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    bad = subprocess.run([*cmd, "--set", "topology.kind=er", "--set", "topology.p=0.01",
                          "--set", "topology.max_tries=3"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)

    assert ok.returncode == 0, ok.stderr
    assert "config OK: mcepl, 4 agents" in ok.stdout
    assert "launch: torchrun --nproc_per_node=4" in ok.stdout
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "Erdos-Renyi" in bad.stderr
    assert list(tmp_path.iterdir()) == []


def test_describe_ind_mask_sends_nothing() -> None:
    cfg = load_config(overrides=["data.name=synthetic", "algorithm.name=ind_mask"])
    assert "traffic per round, all agents: 0 bytes" in describe(cfg)
