"""Peer failure without torchrun's supervision: every rank is its own OS process (as on
separate hosts), so only the runtime's own detection can end the survivors.

A fault ($MCEPL_FAULT) is injected on rank 2 of a 4-rank ring at iteration 3: a hard kill
(SIGKILL, as the out-of-memory killer does), an exception, or a hang. Every process must
end, non-zero, each survivor with one line naming the iteration and the neighbour it waited
for; the time from the fault to the last exit is measured.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"
WORLD = 4
VICTIM, FAULT_ITER = 2, 3
NEIGHBOURS = (1, 3)  # of the victim on the 4-ring
STARTUP_GUARD_S = 120  # generous: imports and the first iterations on a loaded 2-core host
FAULT_LINE = re.compile(r"injected fault \w+ \(rank (\d+), iteration (\d+)\) at ([\d.]+)")


def small_args(out: Path, timeout_s: float, iterations: int = 8) -> list[str]:
    return ["--out", str(out), "--config", str(QUICKSTART), "--set", "data.name=synthetic",
            "--set", "model.width=0.125", "--set", f"train.iterations={iterations}",
            "--set", "train.eval_every=4", "--set", f"comm.timeout_s={timeout_s}",
            "--set", "checkpoint.every=0"]


@dataclass
class Ended:
    rank: int
    returncode: int
    stderr: str
    ended_at: float  # time.time() when the parent saw it gone

    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith("mcepl_dist: error")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_ranks(cwd: Path, args: list[str], env_extra: dict[str, str], guard_s: float,
               world: int = WORLD) -> list[Ended]:
    """Run `world` independent ranks (tests/bare_launch.py: no launcher watches them); wait
    for all to end (killing them after `guard_s`, which fails the test)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), **env_extra}
    cmd = [sys.executable, str(Path(__file__).with_name("bare_launch.py")), str(world),
           str(cwd), "--", *args]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, _ = proc.communicate(timeout=guard_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, _ = proc.communicate()
    ends = {e["rank"]: e for e in map(json.loads, stdout.splitlines())}
    out = [Ended(r, ends[r]["code"] if r in ends else -999,
                 (cwd / f"rank{r}.stderr").read_text() if (cwd / f"rank{r}.stderr").exists()
                 else "", ends[r]["t"] if r in ends else float("inf")) for r in range(world)]
    hung = [r for r in range(world) if r not in ends]
    assert not hung, f"ranks {hung} still running after {guard_s} s:\n" + describe(out)
    return out


def describe(ended: list[Ended]) -> str:
    return "\n".join(f"--- rank {e.rank}: exit {e.returncode}\n{e.stderr[-3000:]}" for e in ended)


def fault_time(ended: list[Ended]) -> float:
    """When the injected fault fired (the victim prints it just before failing)."""
    m = FAULT_LINE.search(ended[VICTIM].stderr)
    assert m, "the victim did not report its injected fault:\n" + describe(ended)
    assert (int(m.group(1)), int(m.group(2))) == (VICTIM, FAULT_ITER)
    return float(m.group(3))


def check_survivors(ended: list[Ended], reason: str) -> None:
    """Every other rank failed with exactly one line; the victim's neighbours name a dead
    neighbour, and one of them names the victim.

    A neighbour of the victim whose other neighbour has also ended by the time it waits
    (rank 1 on the 4-ring: rank 3 saw the victim, rank 0 then saw rank 3) may name that
    one instead: both are gone, and which wait fails first is a race.
    """
    named_victim = False
    for e in ended:
        if e.rank == VICTIM:
            continue
        assert e.returncode == 1, describe(ended)
        lines = e.error_lines()
        assert len(lines) == 1, describe(ended)
        assert lines[0].startswith(f"mcepl_dist: error (rank {e.rank}): iteration "), lines[0]
        assert "Traceback" not in e.stderr, describe(ended)
        if e.rank in NEIGHBOURS:
            m = re.search(rf"iteration {FAULT_ITER}: neighbour (\d+) {reason}", lines[0])
            assert m, lines[0]
            peer = int(m.group(1))
            assert peer == VICTIM or ended[peer].ended_at <= e.ended_at, describe(ended)
            named_victim |= peer == VICTIM
    assert named_victim, describe(ended)


def report(kind: str, ended: list[Ended], t_fault: float) -> float:
    last = max(e.ended_at for e in ended)
    print(f"\n{kind}: fault at iteration {FAULT_ITER} on rank {VICTIM}; last process ended "
          f"{last - t_fault:.2f} s later; per rank: "
          + ", ".join(f"{e.rank}: exit {e.returncode} after {e.ended_at - t_fault:.2f} s"
                      for e in ended))
    for e in ended:
        for line in e.error_lines():
            print("   ", line)
    return last - t_fault


@pytest.mark.parametrize("kind", ["kill", "raise"])
def test_dead_rank_ends_every_rank_before_the_timeout(tmp_path: Path, kind: str) -> None:
    """A process that dies (or raises, then exits) closes its sockets: the survivors learn
    at once, long before comm.timeout_s."""
    timeout_s = 60.0
    ended = bare_ranks(tmp_path, small_args(tmp_path / "run", timeout_s),
                       {"MCEPL_FAULT": f"{kind}@rank={VICTIM},iter={FAULT_ITER}"},
                       STARTUP_GUARD_S)
    t_fault = fault_time(ended)
    victim = ended[VICTIM]
    if kind == "kill":
        assert victim.returncode == -9, describe(ended)
    else:
        assert victim.returncode == 1, describe(ended)
        (line,) = victim.error_lines()
        assert line.startswith(f"mcepl_dist: error (rank {VICTIM}): iteration {FAULT_ITER}: "
                               "RuntimeError: injected fault"), line
        assert "Traceback" not in victim.stderr, victim.stderr
        assert "Traceback" in (tmp_path / "run" / "errors" / f"rank{VICTIM}.txt").read_text()
    check_survivors(ended, "closed the connection")
    elapsed = report(kind, ended, t_fault)
    assert elapsed < timeout_s, "the survivors waited for the timeout"


def test_hung_rank_is_caught_by_the_timeout(tmp_path: Path) -> None:
    """A rank alive but silent: its neighbours give up after comm.timeout_s, the others
    follow, and the stuck rank's watchdog ends it after 2 x comm.timeout_s."""
    timeout_s = 5.0
    ended = bare_ranks(tmp_path, small_args(tmp_path / "run", timeout_s),
                       {"MCEPL_FAULT": f"hang@rank={VICTIM},iter={FAULT_ITER}"},
                       STARTUP_GUARD_S)
    t_fault = fault_time(ended)
    check_survivors(ended, "did not answer within comm.timeout_s")
    victim = ended[VICTIM]
    assert victim.returncode == 1, describe(ended)
    (line,) = victim.error_lines()
    assert f"(rank {VICTIM}): iteration {FAULT_ITER}: no progress for 10 s" in line, line
    elapsed = report("hang", ended, t_fault)
    assert elapsed < 2 * timeout_s + 15, "a rank outlived the watchdog"
    neighbours_done = max(ended[r].ended_at for r in NEIGHBOURS) - t_fault
    assert neighbours_done < timeout_s + 15, "a neighbour outlived its timeout"


# ---------------------------------------------------------------------------------------
# A problem only rank 0 sees, after the process group has formed


def _run_dir_worker(rank: int, world: int, base: str) -> str:
    from mcepl_dist.config import load_config
    from mcepl_dist.errors import UserError
    from mcepl_dist.run import make_run_dir

    out = "/proc/mcepl-run" if rank == 0 else f"{base}/run"  # only rank 0 creates it
    try:
        make_run_dir(load_config(), out, rank)
    except UserError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "created"


def test_run_dir_failure_on_rank_0_stops_every_rank(tmp_path: Path) -> None:
    from test_transport import expect_ok, launch

    results = expect_ok(launch(_run_dir_worker, 2, tmp_path, str(tmp_path)))
    assert results[0].startswith("ConfigError: cannot create the run directory /proc/mcepl-run")
    assert results[1] == "ElsewhereError: creating the run directory failed on another rank"
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------
# The pieces, in process


def test_fault_spec_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcepl_dist.errors import ConfigError
    from mcepl_dist.failure import Fault

    monkeypatch.delenv("MCEPL_FAULT", raising=False)
    assert Fault.from_env() is None
    monkeypatch.setenv("MCEPL_FAULT", "hang@rank=3,iter=7")
    assert Fault.from_env() == Fault("hang", 3, 7)
    for bad in ("hang", "hang@rank=3", "boom@rank=1,iter=2", "kill@rank=x,iter=2"):
        monkeypatch.setenv("MCEPL_FAULT", bad)
        with pytest.raises(ConfigError, match="MCEPL_FAULT"):
            Fault.from_env()
    with pytest.raises(RuntimeError, match="injected fault at iteration 2"):
        Fault("raise", 1, 2).fire_if_due(1, 2)
    Fault("raise", 1, 2).fire_if_due(0, 2)  # another rank: nothing happens


def test_failure_lines() -> None:
    from mcepl_dist.errors import PeerError, ProtocolError
    from mcepl_dist.failure import failure_line

    gone = PeerError(4, 2, "[pair.cc:553] Connection closed by peer [127.0.0.1]:5000")
    assert failure_line(1, 4, gone) == ("mcepl_dist: error (rank 1): iteration 4: neighbour 2 "
                                        "closed the connection (its process ended or failed)")
    silent = PeerError(4, 2, "[unbound_buffer.cc:129] Timed out waiting 5000ms for send")
    assert "neighbour 2 did not answer within comm.timeout_s" in failure_line(1, 4, silent)
    assert "one of neighbours 1, 3" in str(PeerError(1, [1, 3], "Connection reset"))
    bad = ProtocolError("bad frame from rank 2: payload CRC32 mismatch")
    assert failure_line(0, 9, bad).endswith("iteration 9: bad frame from rank 2: payload CRC32 "
                                            "mismatch")
    assert failure_line(0, None, RuntimeError("Timed out after 6 seconds waiting for clients")) \
        == ("mcepl_dist: error (rank 0): before training: could not reach every rank: "
            "RuntimeError: Timed out after 6 seconds waiting for clients")
