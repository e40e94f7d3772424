#!/bin/bash
# A/B of clone.ts from two commits' exporters on one synthetic v2 checkpoint, runs interleaved
# (docs/benchmarks.md, "Voice cloning"). Needs build/bench/clone_bench.
#   bench/clone_ab.sh BEFORE_COMMIT AFTER_COMMIT [WORK_DIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
before=$1 after=$2 work=${3:-/tmp/clone-ab} rounds=${4:-3}
mkdir -p "$work"
for c in "$before" "$after"; do
  rm -rf "$work/tools-$c" && mkdir -p "$work/tools-$c" && git archive "$c" tools | tar -x -C "$work/tools-$c"
done
[ -f "$work/ckpt-v2/model.pth" ] || /usr/bin/python3 tools/xtts_checkpoint.py --preset v2 --out "$work/ckpt-v2"
for c in "$before" "$after"; do
  /usr/bin/python3 "$work/tools-$c/tools/export_xtts.py" --checkpoint "$work/ckpt-v2" --out "$work/v2-$c"
done
for i in $(seq "$rounds"); do
  for c in "$before" "$after"; do
    echo "== $c $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    build/bench/clone_bench --model "$work/v2-$c" --threads 2 --seconds 10 --rate 48000 --runs 5 | grep '^clone'
  done
done
