"""Wall-clock per phase of an iteration (pure; an optional sync makes GPU timings honest)."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Phases an iteration is split into; t_compute, t_pack and t_comm are sums of these.
COMPUTE_PHASES = ("fwd_bwd", "finetune", "aggregate")
PACK_PHASES = ("pack",)
COMM_PHASES = ("comm",)


class PhaseTimer:
    """Accumulates seconds per named phase until `pop` hands them out and resets."""

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self._sync = sync
        self._acc: dict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block; device work it queued is waited for before the clock stops."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._sync is not None:
                self._sync()
            self._acc[name] += time.perf_counter() - start

    def pop(self) -> dict[str, float]:
        """The phases timed since the last pop, plus the t_compute/t_pack/t_comm sums."""
        acc, self._acc = dict(self._acc), defaultdict(float)
        out = {f"t_{k}": v for k, v in acc.items()}
        out["t_compute"] = sum(acc.get(k, 0.0) for k in COMPUTE_PHASES)
        out["t_pack"] = sum(acc.get(k, 0.0) for k in PACK_PHASES)
        out["t_comm"] = sum(acc.get(k, 0.0) for k in COMM_PHASES)
        return out


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc; 0.0 where that is unavailable).

    Used for the start-up figure: interpreter and torch import, validation, data loading
    and the process group, all before the first iteration.
    """
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0
