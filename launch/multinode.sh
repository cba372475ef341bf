#!/usr/bin/env bash
# Several hosts: run this same command on every host; torchrun's c10d rendezvous at
# HOST:PORT (any host that all can reach, usually the first) forms the job.
#   usage: launch/multinode.sh --nnodes N --nproc P --rdzv-endpoint HOST:PORT
#                              [--node-rank R] [--rdzv-id ID] [--ifname IFACE] [RUN_ARGS...]
#   N nodes x P ranks = agents.num. --nnodes MIN:MAX is elastic (ranks then follow join
#   order; --node-rank is optional with c10d). --rdzv-id (default mcepl) must be the same
#   on every host and new for every job. --ifname IFACE sets GLOO_SOCKET_IFNAME and
#   NCCL_SOCKET_IFNAME (both are passed through as they are when already set).
#   e.g. on each of 2 hosts:
#     launch/multinode.sh --nnodes 2 --nproc 10 --rdzv-endpoint node1:29500 --rdzv-id run7 \
#       --ifname eth0 --out /shared/runs/run7
# Environment instead of options: NNODES NPROC RDZV_ENDPOINT NODE_RANK RDZV_ID IFNAME.
# TORCHRUN overrides the launcher; DRY_RUN=1 prints the command without running it.
set -euo pipefail
# shellcheck disable=SC2034  # SCRIPT and USAGE are read by _common.sh
SCRIPT=launch/multinode.sh
USAGE="launch/multinode.sh --nnodes N --nproc P --rdzv-endpoint HOST:PORT [--node-rank R] [--rdzv-id ID] [--ifname IFACE] [RUN_ARGS...]"
# shellcheck source=_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

nnodes=${NNODES:-}; nproc=${NPROC:-}; endpoint=${RDZV_ENDPOINT:-}
node_rank=${NODE_RANK:-}; rdzv_id=${RDZV_ID:-mcepl}; ifname=${IFNAME:-}
while [[ $# -gt 0 ]]; do
  case $1 in
    --nnodes) need_value "$1" $#; nnodes=$2; shift 2 ;;
    --nproc) need_value "$1" $#; nproc=$2; shift 2 ;;
    --rdzv-endpoint) need_value "$1" $#; endpoint=$2; shift 2 ;;
    --node-rank) need_value "$1" $#; node_rank=$2; shift 2 ;;
    --rdzv-id) need_value "$1" $#; rdzv_id=$2; shift 2 ;;
    --ifname) need_value "$1" $#; ifname=$2; shift 2 ;;
    -h|--help) echo "usage: $USAGE"; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[[ -n $nnodes ]] || die "missing --nnodes N (or MIN:MAX)"
[[ $nnodes =~ ^[1-9][0-9]*(:[1-9][0-9]*)?$ ]] || die "--nnodes must be N or MIN:MAX, got '$nnodes'"
[[ -n $nproc ]] || die "missing --nproc P (ranks on this host)"
positive_int --nproc "$nproc"
[[ -n $endpoint ]] || die "missing --rdzv-endpoint HOST:PORT (the same on every host)"
[[ $endpoint =~ ^[^:]+:[0-9]+$ ]] || die "--rdzv-endpoint must be HOST:PORT, got '$endpoint'"
[[ -z $node_rank || $node_rank =~ ^[0-9]+$ ]] || die "--node-rank must be >= 0, got '$node_rank'"
if [[ -n $ifname ]]; then
  export GLOO_SOCKET_IFNAME=${GLOO_SOCKET_IFNAME:-$ifname}
  export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-$ifname}
fi

launcher
cmd=("${LAUNCHER[@]}" --nnodes="$nnodes" --nproc-per-node="$nproc" --rdzv-backend=c10d
     --rdzv-endpoint="$endpoint" --rdzv-id="$rdzv_id")
[[ -n $node_rank ]] && cmd+=(--node-rank="$node_rank")
run_or_print "${cmd[@]}" -m mcepl_dist.run "$@"
