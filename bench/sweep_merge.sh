#!/usr/bin/env bash
# Merge a sweep directory run elsewhere (a device call's output) into the local one:
# finished jobs with their metrics are copied, skeleton and unfinished ones are not, and
# the two sweep.json files are merged (their job lists joined, the newer's other fields).
#   usage: bench/sweep_merge.sh FROM_DIR INTO_DIR
set -euo pipefail
src=$1; dst=$2
mkdir -p "$dst"
if [[ -f $src/sweep.json ]]; then
  PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}" python3 - "$src/sweep.json" "$dst/sweep.json" <<'PY'
import json, sys
from pathlib import Path
from mcepl_dist.metrics import atomic_write
from mcepl_dist.report.archive import merged_state
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
incoming = json.loads(src.read_text())
held = json.loads(dst.read_text()) if dst.is_file() else incoming
if held.get("name") != incoming.get("name"):
    sys.exit(f"sweep_merge: {dst} holds sweep {held.get('name')!r}, {src} "
             f"{incoming.get('name')!r}: merge into another directory")
if held.get("extra_set") != incoming.get("extra_set"):
    sys.exit(f"sweep_merge: {dst} and {src} were run with other --set overrides: "
             f"merge into another directory")
atomic_write(dst, json.dumps(merged_state(dst, incoming), indent=1) + "\n")
PY
fi
copied=0
for job in "$src"/*/; do
  name=$(basename "$job")
  if [[ -f $job/summary.json && -d $job/metrics && ! -f $dst/$name/summary.json ]]; then
    rm -rf "${dst:?}/$name"
    cp -r "$job" "$dst/$name"
    copied=$((copied + 1))
  fi
done
[[ -d $src/logs ]] && mkdir -p "$dst/logs" && cp -r "$src/logs/." "$dst/logs/"
echo "sweep_merge: $copied job(s) into $dst"
