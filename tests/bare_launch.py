"""Start WORLD ranks of `mcepl_dist.run` as independent processes with no launcher watching
them (as on separate hosts): import once, fork WORLD times before any torch work (so no
thread pool is copied), and print one JSON line per child as it ends.

    python tests/bare_launch.py WORLD LOG_DIR -- ARGS...     # MASTER_ADDR/PORT from the env

Each child's stderr goes to LOG_DIR/rank<r>.stderr. Only for tests: nothing here restarts,
kills or watches a rank, so only the runtime's own failure detection can end them.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback


def child(rank: int, world: int, log_dir: str, argv: list[str]) -> None:
    """Become rank `rank` and run the entry point; never returns."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_WORLD_SIZE=str(world))
    err = os.open(os.path.join(log_dir, f"rank{rank}.stderr"),
                  os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(err, 2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    code = 1
    try:
        from mcepl_dist.run import main

        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - an escaped exception is a test failure to show
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def launch() -> None:
    world, log_dir = int(sys.argv[1]), sys.argv[2]
    argv = sys.argv[sys.argv.index("--") + 1:]
    import mcepl_dist.run  # noqa: F401 - the slow imports, once, before forking

    pids = {}
    for rank in range(world):
        pid = os.fork()
        if pid == 0:
            child(rank, world, log_dir, argv)
        pids[pid] = rank
    while pids:
        pid, status = os.wait()
        print(json.dumps({"rank": pids.pop(pid), "code": os.waitstatus_to_exitcode(status),
                          "t": time.time()}), flush=True)


if __name__ == "__main__":
    launch()
