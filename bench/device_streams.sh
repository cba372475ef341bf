#!/usr/bin/env bash
# One call on the lent GPU machine running several sweeps side by side: the H200 and its 16
# cores hold three 20-rank jobs at once (MCE-PL at 0.13-0.27 s per iteration then, 0.16
# alone). Finished jobs come back as one gzipped tar, split into 15 MB parts ($OUT takes at
# most 8 files of 16 MiB, no more than 2 folders down). Its /tmp/streams outlives a call on a
# warm machine, so a second call brings the first one's jobs back too (merging is idempotent).
#   usage (on the device): bench/device_streams.sh DATA_DIR BUDGET_S PLAN_FILE
# PLAN_FILE: one sweep per line, "STREAM GUARD_S SWEEP NAME [sweep options]". Lines of one
# STREAM run one after another, streams run at once. The options are shell words: quote a
# label that holds spaces (--rows "MCE-PL eta 10 (authors)"). A line starts no job later than
# GUARD_S before the budget ends (its longest job, with room to spare); each NAME must be
# distinct, since a sweep directory takes one sweep at a time.
# Back here: cat FILES_AT/runs.tgz.* | tar xz -C .devout, then bench/sweep_merge.sh for each
# .devout/NAME (sweep directories of one sweep and one --set may be merged into one).
# Before spending device time on a plan, check it here (bench/check_plan.py: every line a
# valid sweep selection, NAMEs distinct, no job that repeats another or a kept run; reads
# the data of MCEPL_DATA, runs nothing):
#   bench/device_streams.sh --check PLAN_FILE
set -uo pipefail
if [[ ${1:-} == --check ]]; then exec python3 "$(dirname "$0")/check_plan.py" "${@:2}"; fi
data=$1; budget=$2; plan=$3
start=$(date +%s)
work=${DEVICE_STREAMS_DIR:-/tmp/streams}  # where the sweeps write (another one for tests)
mkdir -p "$work"
source "$(dirname "$0")/device_common.sh" "$data"

run_stream() {  # the plan's lines of one stream, in order
  local id=$1 guard sweep name left opts
  grep -E "^$id[[:space:]]" "$plan" | while read -r _ guard sweep name rest; do
    left=$(( budget - 30 - guard - ($(date +%s) - start) ))
    if (( left <= 0 )); then echo "stream $id: no time for $name $rest"; continue; fi
    eval "opts=($rest)"  # the plan is ours: its quotes group words as on a command line
    python3 -m mcepl_dist.sweep "$sweep" --out "$work/$name" --stop-after "$left" \
      --set checkpoint.every=0 "${opts[@]}" </dev/null >"$work/$name.log" 2>&1
    echo "stream $id: $name exited $? at $(( $(date +%s) - start )) s"
  done
}

streams=$(awk 'NF && $1 !~ /^#/ {print $1}' "$plan" | sort -u)
for id in $streams; do run_stream "$id" & done
# Whatever still runs 25 s before the budget ends is lost; stop it so the rest comes back.
( sleep $(( budget - 25 - ($(date +%s) - start) )) &&
  pkill -TERM -f "mcepl_dist[.]sweep .*--out $work/" ) >/dev/null 2>&1 &
watchdog=$!
wait $(jobs -p | grep -v "^$watchdog$")
pkill -P "$watchdog" sleep 2>/dev/null  # the watchdog ends with its sleep (the && skips pkill)
tail -n 3 "$work"/*.log
out=${OUT:-/tmp/out}
mkdir -p "$out"
tar czf - -C "$work" . | split -b 15m - "$out/runs.tgz."
echo "device_streams: $(( $(date +%s) - start )) s"
