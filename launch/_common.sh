# shellcheck shell=bash
# Helpers shared by launch/local.sh and launch/multinode.sh (sourced, not run).
# TORCHRUN overrides the launcher command; DRY_RUN=1 prints the command and stops.

die() {
  echo "$SCRIPT: error: $*" >&2
  echo "usage: $USAGE" >&2
  exit 2
}

need_value() {  # need_value OPTION ARGC: an option that takes a value must have one
  [[ $2 -ge 2 ]] || die "$1 needs a value"
}

positive_int() {  # positive_int NAME VALUE
  [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '$2'"
}

# shellcheck disable=SC2034  # LAUNCHER is read by the sourcing script
launcher() {  # fills the array LAUNCHER: $TORCHRUN, else torchrun, else python3 -m ...
  if [[ -n ${TORCHRUN:-} ]]; then
    read -ra LAUNCHER <<<"$TORCHRUN"
  elif command -v torchrun >/dev/null 2>&1; then
    LAUNCHER=(torchrun)
  else
    LAUNCHER=(python3 -m torch.distributed.run)
  fi
}

run_or_print() {  # print the command (and the socket interfaces), then exec it
  local var
  for var in GLOO_SOCKET_IFNAME NCCL_SOCKET_IFNAME MASTER_ADDR; do
    [[ -n ${!var:-} ]] && echo "$SCRIPT: $var=${!var}"
  done
  echo "$SCRIPT: running: $*"
  [[ ${DRY_RUN:-0} == 1 ]] && exit 0
  exec "$@"
}
