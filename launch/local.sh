#!/usr/bin/env bash
# One host, one process per agent: torchrun --standalone.
#   usage: launch/local.sh --nproc N [RUN_ARGS...]        (or NPROC=N launch/local.sh ...)
#   RUN_ARGS go to `python -m mcepl_dist.run` (--config, --set, --out); N = agents.num.
#   e.g.   launch/local.sh --nproc 4 --config configs/quickstart.yaml --out runs/demo
# TORCHRUN overrides the launcher; DRY_RUN=1 prints the command without running it.
set -euo pipefail
# shellcheck disable=SC2034  # SCRIPT and USAGE are read by _common.sh
SCRIPT=launch/local.sh
USAGE="launch/local.sh --nproc N [RUN_ARGS...]"
# shellcheck source=_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

nproc=${NPROC:-}
while [[ $# -gt 0 ]]; do
  case $1 in
    --nproc) need_value "$1" $#; nproc=$2; shift 2 ;;
    --nproc=*) nproc=${1#*=}; shift ;;
    -h|--help) echo "usage: $USAGE"; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[[ -n $nproc ]] || die "missing --nproc N (ranks on this host = agents.num)"
positive_int --nproc "$nproc"

launcher
run_or_print "${LAUNCHER[@]}" --standalone --nproc-per-node="$nproc" -m mcepl_dist.run "$@"
