#!/usr/bin/env bash
# Two voxd processes, one per models directory (two exports of a model, say), serving the same
# CONFIG side by side, and single Translate calls of the peer benchmark's sentence (20 tokens,
# fixed length) sent to them in turns: ROUNDS (default 5) rounds of CALLS (default 3) calls to A
# then to B, so that the host's drift falls on both (docs/benchmarks.md). Prints each round's
# median milliseconds and B's over A's, then the medians of all calls. Each voxd idles while
# the other serves.
#   bench/voxd_ab.sh BUILD_DIR CONFIG MODELS_A MODELS_B      (environment passes through)
set -euo pipefail
BUILD=${1:?usage: bench/voxd_ab.sh BUILD_DIR CONFIG MODELS_A MODELS_B}
CONFIG=${2:?config}
ROUNDS=${ROUNDS:-5}
CALLS=${CALLS:-3}
OUT=$(mktemp -d)
PIDS=()
trap 'rm -rf "$OUT"; for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done' EXIT
. "$(dirname "$0")/voxd_start.sh"
ADDRS=()
voxd_start "$BUILD" "$CONFIG" "$3" "$OUT/A.out"
PIDS+=("$VOXD_PID")
ADDRS+=("$VOXD_ADDR")
voxd_start "$BUILD" "$CONFIG" "$4" "$OUT/B.out"
PIDS+=("$VOXD_PID")
ADDRS+=("$VOXD_ADDR")
DATA=$(peer_translate_data 20)
calls() {  # ADDR N OUT.json
  "$BUILD/bench/voxbench" --server "$1" --call translate --concurrency 1 --total "$2" --deadline 600s \
    --data "$DATA" --no-progress --format json >"$3"
}
for i in 0 1; do calls "${ADDRS[$i]}" 2 "$OUT/warmup.json"; done
for round in $(seq 1 "$ROUNDS"); do
  calls "${ADDRS[0]}" "$CALLS" "$OUT/A-$round.json"
  calls "${ADDRS[1]}" "$CALLS" "$OUT/B-$round.json"
done
/usr/bin/python3 - "$OUT" "$ROUNDS" <<'PYEOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def ms(path):
    return [d["latency"] / 1e6 for d in json.load(open(path))["details"]]
every = {"A": [], "B": []}
for r in range(1, rounds + 1):
    a, b = ms(f"{out}/A-{r}.json"), ms(f"{out}/B-{r}.json")
    every["A"] += a
    every["B"] += b
    print(f"round {r}: A {statistics.median(a):.0f} ms, B {statistics.median(b):.0f} ms, "
          f"B/A {statistics.median(b) / statistics.median(a):.3f}")
print(f"all calls: A {statistics.median(every['A']):.0f} ms, B {statistics.median(every['B']):.0f} ms "
      f"({len(every['A'])} calls each)")
PYEOF
