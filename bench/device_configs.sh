#!/usr/bin/env bash
# Shipped configs, one job after another, on one GPU machine (CUDA compute; gloo transport
# when ranks share the GPU). Jobs are skipped once less than 50 s of BUDGET_S is left.
#   usage: bench/device_configs.sh DATA OUT BUDGET_S JOB... [-- --set KEY=VALUE ...]
#   JOB is NPROC:CONFIG:NAME[:KEY=VALUE,KEY=VALUE]; the --set options after `--` apply to
#   every job, before the job's own.
# Results (summaries, configs, metrics, logs; no masks) go to OUT/results.tar.gz.
set -uo pipefail
data=$1; out=$2; budget=$3; shift 3
jobs=(); common=()
while (( $# )); do
  if [[ $1 == -- ]]; then shift; common=("$@"); break; fi
  jobs+=("$1"); shift
done
start=$(date +%s)
mkdir -p "$out/runs"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for spec in "${jobs[@]}"; do
  IFS=: read -r nproc config name extra <<<"$spec"
  left=$(( budget - ($(date +%s) - start) ))
  if (( left < 50 )); then echo "skip $name: ${left}s left"; continue; fi
  sets=(--set comm.device="${DEVICE:-cuda}" --set output.save_masks=false "${common[@]}")
  IFS=, read -ra more <<<"$extra"
  for kv in "${more[@]}"; do [[ -n $kv ]] && sets+=(--set "$kv"); done
  t0=$(date +%s)
  MCEPL_DATA=$data timeout "$left" python3 -m torch.distributed.run --standalone \
    --nproc_per_node="$nproc" -m mcepl_dist.run --config "$config" "${sets[@]}" \
    --out "$out/runs/$name" >"$out/runs/$name.log" 2>&1
  echo "$name rc=$? $(( $(date +%s) - t0 ))s $(grep -E 'done:|error' "$out/runs/$name.log" | tail -1)"
done
tar -czf "$out/results.tar.gz" -C "$out" runs && rm -rf "$out/runs"
echo "total $(( $(date +%s) - start ))s"
