#!/usr/bin/env bash
# ALGORITHM.md's single-agent probe, run for many knob variants at once (one process
# each, in parallel): one agent holding labels 6, 9, 4, 1 with the first 555 training
# images of each, its 4000 test images, r = 0.3, eta = 10, lambda = 0.001, Fil off,
# batch 128, evaluated every 50 iterations. Prints final accuracies; JSON per run in OUT.
#   usage: bench/probe_single_agent.sh DATA_DIR OUT_DIR ITERATIONS PARALLEL [NAME_REGEX]
set -uo pipefail
data=$1; out=$2; iters=$3; par=$4; pick=${5:-.}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
printf '4:\n  - [6, 9, 4, 1]\n' >"$out/probe_labels.yaml"
base="agents.num=1 agents.retention=0.3 data.label_table=$out/probe_labels.yaml
  data.train_fraction=0.111 topology.kind=complete algorithm.name=ind_mask algorithm.eta=10
  algorithm.lam=0.001 algorithm.fil_threshold=0 train.iterations=$iters train.eval_every=50"
variants=(
  "init_kaiming_normal|model.weight_init=kaiming_normal"
  "init_kaiming_scaled|model.weight_init=kaiming_scaled"
  "init_signed_constant|model.weight_init=signed_constant"
  "init_torch_default|model.weight_init=torch_default"
  "init_uniform|model.weight_init=uniform"
  "eta1|algorithm.eta=1"
  "eta100|algorithm.eta=100"
  "lam0|algorithm.lam=0"
  "eta1_lam0|algorithm.eta=1 algorithm.lam=0"
  "r01_fil20|agents.retention=0.1 algorithm.fil_threshold=20"
  "r01_fil0|agents.retention=0.1"
  "r01_fil20_fc09|agents.retention=0.1 algorithm.fil_threshold=20 algorithm.fc_retention=0.9"
  "authors|algorithm.lam=0 algorithm.weight_decay=0.0005 algorithm.fc_retention=0.9 algorithm.fil_threshold=20 model.logits_elu=true"
  "logits_elu|model.logits_elu=true"
  "wd5e-4|algorithm.weight_decay=0.0005"
  "eta1_r01_fil20|algorithm.eta=1 agents.retention=0.1 algorithm.fil_threshold=20"
)
run_one() {
  local name=${1%%|*} extra=${1#*|} sets=()
  for kv in $base $extra; do sets+=(--set "$kv"); done
  MCEPL_DATA=$data OMP_NUM_THREADS=1 python3 -m mcepl_dist.run "${sets[@]}" \
    --out "$out/$name" >"$out/$name.log" 2>&1
  echo "$name rc=$? $(grep -o 'mean test acc [0-9.]*' "$out/$name.log" | tail -1)"
}
export -f run_one; export base data out
printf '%s\n' "${variants[@]}" | grep -E "^($pick)[^|]*\|" | xargs -P "$par" -I{} bash -c 'run_one "$@"' _ {}
python3 "$here/probe_table.py" "$out" | tee "$out/table.md"
