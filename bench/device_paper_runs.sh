#!/usr/bin/env bash
# Paper-scale runs on one GPU machine: 20 ranks sharing the GPU (CUDA compute, gloo
# transport), the paper's Table II setting (c_i = 4) with the authors' train_fraction 0.2.
#   usage: bench/device_paper_runs.sh DATA_DIR OUT_DIR BUDGET_S [RUN ...]
#   RUN is name:iterations:extra --set options separated by commas, e.g.
#     mcepl_eta10:400:algorithm.eta=10  ind_mask:400:algorithm.name=ind_mask
# Each run is skipped when the time left in BUDGET_S is under its estimate; results are
# packed into OUT_DIR/results.tar.gz (summaries, configs, per-rank metrics, logs).
set -uo pipefail
data=$1; out=$2; budget=$3; shift 3
start=$(date +%s)
mkdir -p "$out/runs"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
for spec in "$@"; do
  IFS=: read -r name iters extra <<<"$spec"
  left=$(( budget - ($(date +%s) - start) ))
  if (( left < 60 )); then echo "skip $name: ${left}s left"; continue; fi
  sets=(--set data.train_fraction=0.2 --set train.iterations="$iters" --set comm.device=cuda)
  IFS=, read -ra more <<<"$extra"
  for kv in "${more[@]}"; do [[ -n $kv ]] && sets+=(--set "$kv"); done
  echo "== $name: ${sets[*]} (${left}s left)"
  t0=$(date +%s)
  MCEPL_DATA=$data timeout "$left" python3 -m torch.distributed.run --standalone \
    --nproc_per_node=20 -m mcepl_dist.run "${sets[@]}" --out "$out/runs/$name" \
    >"$out/runs/$name.log" 2>&1
  echo "rc=$? $(( $(date +%s) - t0 ))s"; grep -E "done:|error" "$out/runs/$name.log" | tail -3
done
tar -czf "$out/results.tar.gz" -C "$out" runs && rm -rf "$out/runs"
