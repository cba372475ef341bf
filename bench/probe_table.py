"""Print a markdown table of test accuracy per evaluation for each probe run directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(root: Path) -> None:
    rows = []
    for metrics in sorted(root.glob("*/metrics/rank0.jsonl")):
        evals = [json.loads(line) for line in metrics.read_text().splitlines()]
        evals = [e for e in evals if "test_acc" in e]
        rows.append((metrics.parent.parent.name, evals))
    if not rows:
        print("no runs found")
        return
    iters = [e["iter"] for e in max((r[1] for r in rows), key=len)]
    print("| run | " + " | ".join(str(i) for i in iters) + " |")
    print("|---|" + "---|" * len(iters))
    for name, evals in rows:
        print(f"| {name} | " + " | ".join(f"{e['test_acc']:.3f}" for e in evals) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
