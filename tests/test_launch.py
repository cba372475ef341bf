"""launch/: the scripts' argument checks and printed commands, and a real two-"node" job.

Two `launch/multinode.sh` invocations on this one host act as two nodes (c10d rendezvous
on 127.0.0.1, 2 ranks each); the 4-agent job they form must give the same masks as the
same config run as one 4-rank node with `launch/local.sh`. Both nodes share the
filesystem and the same --out, as on a cluster with a shared home.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mcepl_dist.metrics import load_masks
from mcepl_dist.run import _check_out_dir

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"
QUICKSTART = REPO / "configs" / "quickstart.yaml"
AGENTS = 4
SMALL = ["--config", str(QUICKSTART), "--set", "data.name=synthetic",
         "--set", "model.width=0.125", "--set", "train.iterations=4",
         "--set", "train.eval_every=2"]
HANG_GUARD_S = 300
TORCHRUN = f"{sys.executable} -m torch.distributed.run"


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCHRUN": TORCHRUN, **extra}
    for key in ("NPROC", "NNODES", "RDZV_ENDPOINT", "NODE_RANK", "RDZV_ID", "IFNAME",
                "GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME", "DRY_RUN", "SLURM_JOB_ID"):
        if key not in extra:
            env.pop(key, None)
    return env


def _script(name: str, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(LAUNCH / name), *args], env=_env(**env), cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------
# argument checks and printed commands


@pytest.mark.parametrize(("name", "args", "env", "message"), [
    ("local.sh", [], {}, "missing --nproc"),
    ("local.sh", ["--nproc", "x"], {}, "--nproc must be a positive integer"),
    ("local.sh", ["--nproc"], {}, "--nproc needs a value"),
    ("multinode.sh", ["--nproc", "2", "--rdzv-endpoint", "h:1"], {}, "missing --nnodes"),
    ("multinode.sh", ["--nnodes", "2", "--rdzv-endpoint", "h:1"], {}, "missing --nproc"),
    ("multinode.sh", ["--nnodes", "2", "--nproc", "2"], {}, "missing --rdzv-endpoint"),
    ("multinode.sh", ["--nnodes", "2", "--nproc", "2", "--rdzv-endpoint", "h"], {},
     "must be HOST:PORT"),
    ("slurm.sbatch", [], {}, "not inside a Slurm job"),
    ("slurm.sbatch", [], {"SLURM_JOB_ID": "7"}, "set NPROC"),
])
def test_missing_arguments_fail_clearly(name: str, args: list[str], env: dict[str, str],
                                        message: str) -> None:
    proc = _script(name, args, **env)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stderr.startswith(f"launch/{name}: error:")
    assert "usage:" in proc.stderr


def test_local_prints_its_command() -> None:
    proc = _script("local.sh", ["--nproc", "4", "--out", "runs/x"], DRY_RUN="1")
    assert proc.returncode == 0, proc.stderr
    assert (f"running: {TORCHRUN} --standalone --nproc-per-node=4 -m mcepl_dist.run "
            "--out runs/x") in proc.stdout


def test_multinode_prints_its_command_and_interfaces() -> None:
    proc = _script("multinode.sh", ["--nnodes", "2", "--nproc", "10", "--rdzv-endpoint",
                                    "node1:29500", "--node-rank", "1", "--rdzv-id", "r7",
                                    "--ifname", "eth0", "--set", "train.iterations=5"],
                   DRY_RUN="1")
    assert proc.returncode == 0, proc.stderr
    assert "GLOO_SOCKET_IFNAME=eth0" in proc.stdout
    assert "NCCL_SOCKET_IFNAME=eth0" in proc.stdout
    assert (f"running: {TORCHRUN} --nnodes=2 --nproc-per-node=10 --rdzv-backend=c10d "
            "--rdzv-endpoint=node1:29500 --rdzv-id=r7 --node-rank=1 -m mcepl_dist.run "
            "--set train.iterations=5") in proc.stdout


def test_slurm_rendezvous_on_first_node(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    scontrol = fake / "scontrol"
    scontrol.write_text("#!/bin/sh\nprintf 'gpu017\\ngpu018\\n'\n")
    scontrol.chmod(0o755)
    proc = _script("slurm.sbatch", ["--out", "runs/s"], DRY_RUN="1", NPROC="10",
                   SLURM_JOB_ID="4242", SLURM_JOB_NODELIST="gpu[017-018]",
                   SLURM_JOB_NUM_NODES="2", GLOO_SOCKET_IFNAME="ib0",
                   PATH=f"{fake}:{os.environ['PATH']}")
    assert proc.returncode == 0, proc.stderr
    assert "GLOO_SOCKET_IFNAME=ib0" in proc.stdout
    assert (f"running: srun --ntasks-per-node=1 --kill-on-bad-exit=1 {TORCHRUN} --nnodes=2 "
            "--nproc-per-node=10 --rdzv-backend=c10d --rdzv-endpoint=gpu017:29500 "
            "--rdzv-id=4242 -m mcepl_dist.run --out runs/s") in proc.stdout


# ---------------------------------------------------------------------------------------
# the output-directory check on a shared filesystem


def test_only_rank_zero_refuses_a_non_empty_out_dir(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("made by rank 0\n")
    with pytest.raises(Exception, match="not empty"):
        _check_out_dir(out, rank=0)
    _check_out_dir(out, rank=3)  # another node's rank, after rank 0 made it: fine


# ---------------------------------------------------------------------------------------
# two "nodes" on this host vs one node


def _wait_all(procs: list[subprocess.Popen[str]], what: str) -> list[tuple[int, str]]:
    """Wait for every process (one deadline for all); kill the lot on a hang."""
    deadline = time.monotonic() + HANG_GUARD_S
    results = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((p.returncode, out))
    except subprocess.TimeoutExpired:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        logs = "\n".join((p.communicate()[0] or "")[-3000:] for p in procs)
        pytest.fail(f"{what} did not finish within {HANG_GUARD_S} s\n{logs}")
    return results


def _start(name: str, args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(["bash", str(LAUNCH / name), *args], env=_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_two_nodes_give_the_masks_of_one_node(tmp_path: Path) -> None:
    one = tmp_path / "one_node"
    [(rc, log)] = _wait_all([_start("local.sh", ["--nproc", str(AGENTS), *SMALL,
                                                 "--out", str(one)])], "one-node run")
    assert rc == 0, log[-4000:]

    two = tmp_path / "two_nodes"
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [_start("multinode.sh", ["--nnodes", "2", "--nproc", "2", "--rdzv-endpoint",
                                     endpoint, "--rdzv-id", f"t{os.getpid()}",
                                     "--node-rank", str(node), "--ifname", "lo", *SMALL,
                                     "--out", str(two)])
             for node in (0, 1)]
    results = _wait_all(nodes, "two-node run")
    for node, (rc, log) in enumerate(results):
        assert rc == 0, f"node {node}:\n{log[-4000:]}"
        assert "--rdzv-backend=c10d" in log

    for agent in range(AGENTS):
        a = load_masks(one / "masks" / f"agent{agent}.npz")
        b = load_masks(two / "masks" / f"agent{agent}.npz")
        for layer, (ma, mb) in enumerate(zip(a, b, strict=True)):
            assert np.array_equal(ma, mb), f"agent {agent} layer {layer} differs"
    for rank in range(AGENTS):  # the same traffic, rank by rank
        ra = (one / "metrics" / f"rank{rank}.jsonl").read_text().splitlines()
        rb = (two / "metrics" / f"rank{rank}.jsonl").read_text().splitlines()
        assert len(ra) == len(rb) == 5
    sa = json.loads((one / "summary.json").read_text())
    sb = json.loads((two / "summary.json").read_text())
    for key in ("num_agents", "bytes_sent_total", "bytes_per_message", "per_agent_test_acc"):
        assert sa[key] == sb[key], key
