"""Every bad input stops the run before training: one line, exit code 2, no traceback, no
run directory. Runs `mcepl_dist.run.main` in this process as rank 0 of a 3-rank job (the
errors come before the process group forms), so each case costs milliseconds."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mcepl_dist.config import dump_config, load_config, with_resolved_paths
from mcepl_dist.run import main

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"
BASE = ["--config", str(QUICKSTART), "--set", "data.name=synthetic", "--set", "model.width=0.125",
        "--set", "agents.num=3", "--set", "agents.retention=0.5", "--set", "train.iterations=2"]


def graph(text: str) -> Callable[[Path], list[str]]:
    """Args that use a graph file holding `text`."""
    def make(tmp: Path) -> list[str]:
        (tmp / "graph.txt").write_text(text)
        return ["--set", "topology.kind=file", "--set", f"topology.path={tmp / 'graph.txt'}"]
    return make


def sets(*items: str) -> Callable[[Path], list[str]]:
    return lambda tmp: [a for item in items for a in ("--set", item)]


def fake_cifar(batch1: bytes | None) -> Callable[[Path], list[str]]:
    """A CIFAR-10 directory whose files exist; data_batch_1 holds `batch1`."""
    def make(tmp: Path) -> list[str]:
        root = tmp / "cifar"
        root.mkdir()
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            (root / name).write_bytes(b"")
        if batch1 is not None:
            (root / "data_batch_1").write_bytes(batch1)
        return ["--set", "data.name=cifar10", "--set", f"data.root={root}"]
    return make


VALID_PICKLE = pickle.dumps({b"data": np.zeros((10, 3072), np.uint8), b"labels": [0] * 10},
                            protocol=2)


def resume_of(*items: str) -> Callable[[Path], list[str]]:
    """--resume of a fabricated run directory (its config.yaml is BASE's)."""
    def make(tmp: Path) -> list[str]:
        run = tmp / "old_run"
        run.mkdir()
        cfg = load_config(QUICKSTART, [a for a in BASE[2:] if a != "--set"])
        (run / "config.yaml").write_text(dump_config(with_resolved_paths(cfg)))
        return ["--resume", str(run), *[a for item in items for a in ("--set", item)]]
    return make


def out_dir(path: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    return lambda tmp: ["--out", str(path(tmp))]


def file_parent(tmp: Path) -> Path:
    (tmp / "a_file").write_text("x")
    return tmp / "a_file" / "run"


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "world size": (sets("agents.num=4"), "world size 3 != agents.num 4"),
    "retention above 1": (sets("agents.retention=1.5"),
                          "agents.retention values must be in (0, 1]"),
    "retention zero": (sets("agents.retention=0"), "agents.retention values must be in (0, 1]"),
    "retention list length": (sets("agents.retention=[0.5,0.5]"),
                              "agents.retention has 2 values but agents.num is 3"),
    "labels per agent": (sets("data.labels_per_agent=11"),
                         "data.labels_per_agent must be in 1..10"),
    "graph file missing": (sets("topology.kind=file", "topology.path=/nonexistent/g.txt"),
                           "graph file not found: /nonexistent/g.txt"),
    "graph not square": (graph("0 1 1\n1 0 1\n"), "adjacency matrix must be square"),
    "graph asymmetric": (graph("0 1 1\n0 0 1\n1 1 0\n"), "adjacency is not symmetric"),
    "graph self loop": (graph("1 1 1\n1 0 1\n1 1 0\n"), "self loop at node 0"),
    "graph disconnected": (graph("0 1 0\n1 0 0\n0 0 0\n"), "graph is not connected"),
    "graph wrong size": (graph("0 1 1 1\n1 0 1 1\n1 1 0 1\n1 1 1 0\n"),
                         "graph has 4 nodes but the config has 3 agents"),
    "er probability": (sets("topology.kind=er", "topology.p=1.5"), "topology.p must be in (0, 1]"),
    "unknown algorithm": (sets("algorithm.name=mcepll"), "unknown algorithm 'mcepll'"),
    "misspelled key": (sets("train.iteratons=5"), "unknown config key 'train.iteratons'"),
    "unknown section": (sets("trian.iterations=5"), "unknown config key 'trian'"),
    "wrong type": (sets("train.batch_size=abc"), "train.batch_size: expected int, got 'abc'"),
    "wrong type bool": (sets("output.save_masks=3"), "output.save_masks: expected bool"),
    "zero learning rate": (sets("algorithm.eta=0"), "algorithm.eta must be > 0"),
    "negative learning rate": (sets("algorithm.eta=-1"), "algorithm.eta must be > 0"),
    "zero batch size": (sets("train.batch_size=0"), "train.batch_size must be >= 1"),
    "zero iterations": (sets("train.iterations=0"), "train.iterations must be >= 1"),
    "negative iterations": (sets("train.iterations=-3"), "train.iterations must be >= 1"),
    "checkpoint every": (sets("checkpoint.every=-1"), "checkpoint.every must be >= 0"),
    "checkpoint keep": (sets("checkpoint.keep=0"), "checkpoint.keep must be >= 1"),
    "data directory missing": (sets("data.name=cifar10", "data.root=/nonexistent/cifar"),
                               "CIFAR-10 not found: /nonexistent/cifar/data_batch_1 is missing"),
    "batch file truncated": (fake_cifar(VALID_PICKLE[:100]), "is unreadable or truncated"),
    "batch file wrong shape": (fake_cifar(VALID_PICKLE),
                               "data must be uint8 of shape (10000, 3072), got uint8 (10, 3072)"),
    "output dir not writable": (out_dir(lambda tmp: Path("/proc/mcepl-run")),
                                "output directory /proc/mcepl-run is not writable"),
    "output dir under a file": (out_dir(file_parent), "is not writable"),
    "resume config differs": (resume_of("train.iterations=7"),
                              "--resume: config differs from the run's: key train.iterations: "
                              "7 != 2"),
    "resume without checkpoints": (resume_of(), "--resume: no checkpoint of rank 0"),
    "resume not a run dir": (lambda tmp: ["--resume", str(tmp)], "is not a run directory"),
    "fault hook malformed": (sets(), "MCEPL_FAULT='explode@rank=1': expected KIND@rank=R,iter=K"),
}


@pytest.fixture
def rank0_of_3(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"RANK": "0", "WORLD_SIZE": "3", "LOCAL_RANK": "0",
                       "LOCAL_WORLD_SIZE": "3", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MCEPL_FAULT", raising=False)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_exit_2(case: str, tmp_path: Path, rank0_of_3: None,
                                   capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    make, message = CASES[case]
    monkeypatch.chdir(tmp_path)
    if case == "fault hook malformed":
        monkeypatch.setenv("MCEPL_FAULT", "explode@rank=1")
    args = make(tmp_path)
    resume = "--resume" in args
    out = tmp_path / "run"
    before = sorted(p.name for p in tmp_path.iterdir())
    if resume:
        argv = args
    elif "--out" in args:
        argv = [*BASE, *args]
    else:
        argv = [*BASE, *args, "--out", str(out)]
    code = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("mcepl_dist: error: "), lines[0]
    assert message in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
