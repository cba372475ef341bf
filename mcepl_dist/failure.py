"""When a rank fails: one line, a fast exit, a watchdog for a stuck rank, and a fault hook.

A failing rank prints one line and leaves with `os._exit`, so its sockets close at once and
its neighbours learn of it within milliseconds instead of after comm.timeout_s; ranks that
are not its neighbours learn through the cascade (their neighbours leave in turn) or at the
next evaluation collective. A rank that is alive but stuck is caught by its neighbours'
timeout, and ends itself through the `Watchdog`.

Fault injection for tests, read once per process from the environment:

    MCEPL_FAULT=kill@rank=2,iter=3    SIGKILL itself (as the out-of-memory killer would)
    MCEPL_FAULT=raise@rank=2,iter=3   raise a RuntimeError inside the training loop
    MCEPL_FAULT=hang@rank=2,iter=3    stop answering (sleep) without exiting
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from mcepl_dist.errors import ConfigError, PeerError, ProtocolError

FAULT_ENV = "MCEPL_FAULT"
FAULT_KINDS = ("kill", "raise", "hang")
EXIT_FAILED = 1  # a rank that failed or lost a peer (bad input is 2)
WATCHDOG_FACTOR = 2.0  # a rank with no progress for this many comm.timeout_s ends itself


def failure_line(rank: int, iteration: int | None, exc: BaseException) -> str:
    """The one line a user sees for a failure at run time (`iteration` None: before the
    training loop, e.g. while the ranks connect)."""
    if isinstance(exc, (PeerError, ProtocolError)):
        what = str(exc)
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
        what = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        if any(word in what for word in ("Dist", "gloo", "Connection", "Timed out")):
            what = ("could not reach every rank: " if iteration is None else "a collective "
                    "with all ranks failed (a rank died or stopped answering): ") + what
    where = f"iteration {iteration}" if iteration is not None else "before training"
    return f"mcepl_dist: error (rank {rank}): {where}: {what}"


def exit_on_failure(rank: int, iteration: int | None, exc: BaseException,
                    log_dir: Path | None) -> NoReturn:
    """Report `exc` in one line (traceback to a file) and end this process now."""
    line = failure_line(rank, iteration, exc)
    if log_dir is not None and not isinstance(exc, PeerError):
        path = log_dir / f"rank{rank}.txt"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(line + "\n\n" + "".join(traceback.format_exception(exc)))
            line += f" (traceback in {path})"
        except OSError:
            pass
    _die(line)


def _die(line: str) -> NoReturn:
    """Print, flush everything, and leave without running teardown that could block."""
    print(line, file=sys.stderr, flush=True)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(EXIT_FAILED)


class Watchdog:
    """Ends the process if `progress()` (the loop's iteration) stalls for `limit_s` seconds."""

    def __init__(self, rank: int, progress: Callable[[], int], limit_s: float) -> None:
        self.rank, self.progress, self.limit_s = rank, progress, limit_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="mcepl-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _watch(self) -> None:
        last, since = self.progress(), time.monotonic()
        while not self._stop.wait(min(1.0, self.limit_s / 10)):
            now = self.progress()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since > self.limit_s:
                _die(f"mcepl_dist: error (rank {self.rank}): iteration {now}: no progress for "
                     f"{self.limit_s:.0f} s (this rank is stuck); exiting")


@dataclass(frozen=True)
class Fault:
    """An injected failure: `kind` on `rank` at the start of iteration `iteration`."""

    kind: str
    rank: int
    iteration: int

    @classmethod
    def from_env(cls) -> Fault | None:
        """Parse $MCEPL_FAULT ("kind@rank=R,iter=K"); None when unset."""
        text = os.environ.get(FAULT_ENV, "").strip()
        if not text:
            return None
        try:
            kind, _, rest = text.partition("@")
            fields = dict(item.split("=", 1) for item in rest.split(","))
            fault = cls(kind, int(fields["rank"]), int(fields["iter"]))
        except (KeyError, ValueError):
            fault = None
        if fault is None or fault.kind not in FAULT_KINDS:
            raise ConfigError(f"{FAULT_ENV}={text!r}: expected KIND@rank=R,iter=K with KIND one "
                              f"of {', '.join(FAULT_KINDS)}")
        return fault

    def fire_if_due(self, rank: int, iteration: int) -> None:
        """Fail as configured when this is the rank and iteration."""
        if rank != self.rank or iteration != self.iteration:
            return
        print(f"mcepl_dist: injected fault {self.kind} (rank {rank}, iteration {iteration}) "
              f"at {time.time():.3f}", file=sys.stderr, flush=True)
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "raise":
            raise RuntimeError(f"injected fault at iteration {iteration}")
        while True:  # hang: alive, silent
            time.sleep(3600)
