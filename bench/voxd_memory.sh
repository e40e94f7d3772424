#!/usr/bin/env bash
# voxd's memory around one burst (docs/benchmarks.md, "Translation with int8 weights"): VmHWM and
# VmRSS once voxd serves (weights and warm-up), then after CALLS concurrent Translate calls of
# the peer benchmark's sentence (20 tokens, fixed length). Sizes are kB / 1024 (MiB). ROUNDS
# (default 1) repeats the burst, printing each round's seconds (voxbench's total) and at the end
# the process's minor page faults. BURST_JSON, when set, names a file for voxbench's report of
# the last burst (its latencies and total time).
#   bench/voxd_memory.sh BUILD_DIR CONFIG MODELS_DIR [CALLS]      (environment passes through)
set -euo pipefail
BUILD=${1:?usage: bench/voxd_memory.sh BUILD_DIR CONFIG MODELS_DIR [CALLS]}
CONFIG=${2:?config}
MODELS=${3:?models directory}
CALLS=${4:-32}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"; [ -z "${PID:-}" ] || kill -TERM "$PID" 2>/dev/null || true' EXIT
. "$(dirname "$0")/voxd_start.sh"
voxd_start "$BUILD" "$CONFIG" "$MODELS" "$OUT/out"
PID=$VOXD_PID
ADDR=$VOXD_ADDR
mem() {
  awk -v when="$1" '/VmHWM|VmRSS|RssAnon|RssFile/ {v[$1] = $2} END {
    printf "%s: VmHWM %.0f MB, VmRSS %.0f MB (anonymous %.0f MB, files %.0f MB)\n", when,
      v["VmHWM:"] / 1024, v["VmRSS:"] / 1024, v["RssAnon:"] / 1024, v["RssFile:"] / 1024}' "/proc/$PID/status"
}
mem "serving"
DATA=$(peer_translate_data 20)
ROUNDS=${ROUNDS:-1}
for round in $(seq 1 "$ROUNDS"); do
  "$BUILD/bench/voxbench" --server "$ADDR" --call translate --concurrency "$CALLS" --total "$CALLS" \
    --deadline 600s --data "$DATA" --no-progress --no-details --format json >"$OUT/burst.json"
  [ "$ROUNDS" = 1 ] || /usr/bin/python3 -c 'import json, sys; print("round %s: %.2f s" % (sys.argv[2], json.load(open(sys.argv[1]))["total"] / 1e9))' \
    "$OUT/burst.json" "$round"
done
[ -z "${BURST_JSON:-}" ] || cp "$OUT/burst.json" "$BURST_JSON"
mem "after $((CALLS * ROUNDS)) calls"
[ "$ROUNDS" = 1 ] || echo "minor faults: $(awk '{print $10}' "/proc/$PID/stat")"
kill -TERM "$PID"
wait "$PID" || true
PID=""
