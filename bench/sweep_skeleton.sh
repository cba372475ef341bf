#!/usr/bin/env bash
# A sweep directory's skeleton: sweep.json and each finished job's config.yaml and
# summary.json, a few KB that tell a sweep started elsewhere what is done already.
#   usage: bench/sweep_skeleton.sh SWEEP_DIR SKELETON_DIR
set -euo pipefail
src=$1; dst=$2
rm -rf "$dst"; mkdir -p "$dst"
[[ -f $src/sweep.json ]] || exit 0
cp "$src/sweep.json" "$dst/"
for job in "$src"/*/; do
  name=$(basename "$job")
  if [[ -f $job/summary.json && -f $job/config.yaml ]]; then
    mkdir -p "$dst/$name"
    cp "$job/summary.json" "$job/config.yaml" "$dst/$name/"
  fi
done
