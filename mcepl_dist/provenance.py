"""Where a run's numbers came from: the code's git commit, the machine and the command.

Recorded in summary.json so that every committed result names its commit and machine.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

_REPO = Path(__file__).resolve().parent.parent


def git_commit(repo: Path = _REPO, ignore: Path | None = None) -> tuple[str, bool]:
    """(commit, dirty) of the checkout holding this package. MCEPL_GIT_COMMIT, where set,
    wins: a copied tree (the lent GPU machine's) may carry an older .git than the commit it
    was copied from, or none. Changes under `ignore` (a tool's own output directory) do not
    count as dirty."""
    given = os.environ.get("MCEPL_GIT_COMMIT")
    if given:
        return given, False
    status_cmd = ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"]
    skip = ignore.resolve() if ignore is not None else None
    if skip is not None and skip.is_relative_to(repo.resolve()):
        status_cmd += ["--", ".", f":(exclude){skip}"]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(status_cmd, capture_output=True, text=True,
                                timeout=10, check=True).stdout
        return head, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> str:
    """A one-line description: the GPU used (if any), the CPU and its core count."""
    cpu = f"{os.cpu_count()}-core {cpu_model()}"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, {cpu}"
    return cpu


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def provenance(device: torch.device) -> dict[str, Any]:
    """The provenance block of summary.json, taken when the run starts (the commit then is
    the code that runs; the tree may change before it ends)."""
    commit, dirty = git_commit()
    info: dict[str, Any] = {
        "git_commit": commit,
        "git_dirty": dirty,
        "machine": machine(device),
        "host": socket.gethostname(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": " ".join([Path(sys.executable).name, "-m", "mcepl_dist.run", *sys.argv[1:]]),
        "started_utc": utc_now(),
    }
    if os.environ.get("MCEPL_SWEEP_COMMAND"):
        info["sweep_command"] = os.environ["MCEPL_SWEEP_COMMAND"]
    return info
