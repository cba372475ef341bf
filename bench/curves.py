"""Print the accuracy curves and headline figures of run directories, one block per run.

    python bench/curves.py RUN_DIR [RUN_DIR ...]

Per run: mean (min-max) local test accuracy over agents at every evaluated iteration, then
the summary's final accuracy, bytes per agent per iteration, median s/iteration, comm
fraction and peak memory. Reads only JSON, so it works on copied-back results.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def curve(run: Path) -> list[tuple[int, float, float, float]]:
    """(iteration, mean, min, max) of the agents' test accuracy at each evaluation."""
    accs: dict[int, list[float]] = defaultdict(list)
    for path in sorted((run / "metrics").glob("rank*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if "test_acc" in rec:
                accs[rec["iter"]].append(rec["test_acc"])
    return [(it, sum(v) / len(v), min(v), max(v)) for it, v in sorted(accs.items())]


def describe(run: Path) -> list[str]:
    s = json.loads((run / "summary.json").read_text())
    lines = [f"== {run.name}: {s['algorithm']}, {s['num_agents']} agents, "
             f"{s['iterations']} iterations"]
    lines += [f"  iter {it:>4}  acc {m:.4f}  ({lo:.3f}-{hi:.3f})" for it, m, lo, hi in curve(run)]
    paper = s["paper_bytes_sent_total"] / s["num_agents"] / max(s["iterations"], 1)
    lines.append(
        f"  final {s['final_mean_test_acc']:.4f} | {s['bytes_sent_per_agent_per_iter']:,.0f} B "
        f"per agent per iter (paper-style {paper:,.0f}) | "
        f"{s['median_t_iter_s']:.3f} s/iter | comm {100 * s['comm_fraction']:.1f}% | "
        f"RSS {s['peak_rss_mb_max']:.0f} MB, GPU {s['peak_gpu_mb_max']:.0f} MiB")
    return lines


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print("\n".join(describe(Path(arg))))
