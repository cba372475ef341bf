#!/usr/bin/env bash
# One call of a sweep on the lent GPU machine: unpack the carried data, run the sweep's
# jobs until BUDGET_S is nearly spent, and leave every finished job in $OUT/NAME.
#   usage (on the device): bench/device_sweep.sh DATA_DIR SWEEP NAME BUDGET_S [sweep options]
# DATA_DIR holds the CIFAR-10 batches, gzipped or not (bench/sparse_cifar.py). Jobs already
# finished are carried in as a skeleton, .devskel/NAME (bench/sweep_skeleton.sh), so they
# are skipped. .devcommit holds the git commit (the device's copy has no .git).
# Back here: bench/sweep_merge.sh FILES_AT/NAME runs/gpu/NAME.
set -uo pipefail
data=$1; sweep=$2; name=$3; budget=$4; shift 4
start=$(date +%s)
source "$(dirname "$0")/device_common.sh" "$data"
out=${OUT:-/tmp/out}/$name
mkdir -p "$out"
if [[ -d .devskel/$name ]]; then cp -r ".devskel/$name/." "$out/"; fi
# A job takes about 2 minutes here; start none that cannot end within the budget.
stop=$(( budget - 150 - ($(date +%s) - start) ))
python3 -m mcepl_dist.sweep "$sweep" --out "$out" --stop-after "$(( stop > 0 ? stop : 0 ))" \
  --set checkpoint.every=0 "$@"
echo "device_sweep: $(( $(date +%s) - start )) s"
