# Sourced by the scripts run on the lent GPU machine (bench/device_*.sh): unpack the carried
# CIFAR-10 batches (gzipped or not, bench/sparse_cifar.py) to /tmp/d and set the environment
# a run reads there: the data, this tree on PYTHONPATH, and the commit of .devcommit (the
# copied tree's own .git may be older).
#   usage: source bench/device_common.sh DATA_DIR
mkdir -p /tmp/d
for f in "$1"/*; do
  base=$(basename "$f")
  case $f in
    *.gz) gunzip -c "$f" >"/tmp/d/${base%.gz}" ;;
    *) cp "$f" /tmp/d/ ;;
  esac
done
export MCEPL_DATA=/tmp/d PYTHONPATH=$PWD
MCEPL_GIT_COMMIT=$(cat .devcommit 2>/dev/null || echo unknown)
export MCEPL_GIT_COMMIT
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
