#!/usr/bin/env bash
# Every algorithm and the DSLTH check on one GPU machine (CUDA compute, gloo transport).
#   usage: bench/device_baselines.sh DATA_DIR OUT_DIR BUDGET_S [--set KEY=VALUE ...]
# 1. DSLTH (configs/dslth.yaml): dense weights (ind_weipru at r = 1) and masks at
#    r = 0.1, 0.3, 0.5, the four 3-rank jobs side by side.
# 2. configs/compare4.yaml for each of the ten algorithms, one job after another so each
#    job's timing is its own. Extra --set options apply to every job.
# DEVICE=cpu runs it without a GPU (for trying it out). Results (summaries, configs, metrics, logs; no masks) go to OUT_DIR/results.tar.gz.
set -uo pipefail
data=$1; out=$2; budget=$3; shift 3
extra=("$@")
start=$(date +%s)
mkdir -p "$out/runs"
left() { echo $(( budget - ($(date +%s) - start) )); }
job() {  # name nproc config [--set ...]
  local name=$1 nproc=$2 config=$3; shift 3
  MCEPL_DATA=$data timeout "$(left)" python3 -m torch.distributed.run --standalone \
    --nproc_per_node="$nproc" -m mcepl_dist.run --config "$config" --set comm.device="${DEVICE:-cuda}" \
    --set output.save_masks=false "${extra[@]}" "$@" --out "$out/runs/$name" \
    >"$out/runs/$name.log" 2>&1
  echo "$name rc=$? $(grep -E 'done:|error' "$out/runs/$name.log" | tail -1)"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
job dslth_dense 3 configs/dslth.yaml --set algorithm.name=ind_weipru --set agents.retention=1.0 &
for r in 0.1 0.3 0.5; do
  job "dslth_mask_r$r" 3 configs/dslth.yaml --set agents.retention=$r &
done
wait
for a in mcepl ind_mask dsgd fedavg dsgd_prox lottery_dsgd ind_weipru avr_weipru par_weipru \
         dispfl; do
  if (( $(left) < 45 )); then echo "skip $a: $(left)s left"; continue; fi
  job "compare4_$a" 4 configs/compare4.yaml --set algorithm.name=$a --set name=$a
done
tar -czf "$out/results.tar.gz" -C "$out" runs && rm -rf "$out/runs"
echo "total $(( $(date +%s) - start ))s"
