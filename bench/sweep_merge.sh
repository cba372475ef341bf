#!/usr/bin/env bash
# Merge a sweep directory run elsewhere (a device call's output) into the local one:
# finished jobs with their metrics are copied, skeleton and unfinished ones are not.
#   usage: bench/sweep_merge.sh FROM_DIR INTO_DIR
set -euo pipefail
src=$1; dst=$2
mkdir -p "$dst"
[[ -f $src/sweep.json ]] && cp "$src/sweep.json" "$dst/sweep.json"
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
