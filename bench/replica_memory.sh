#!/usr/bin/env bash
# voxd's peak resident memory (VmHWM once it serves: models loaded, warm-up done) with 1 and 2
# replicas per model, on each models directory given (docs/benchmarks.md, "Replica memory").
#
#   bench/replica_memory.sh BUILD_DIR [MODELS_DIR ...]
#
# Default directories: BUILD_DIR/tiny/models (run with TINY_FLAGS, default --max-batch-size 1, so
# that a second worker's batch of activations does not hide the weights; TINY_FLAGS= runs the
# default batch) and BUILD_DIR/synthetic/models (NLLB 600M dims, 2 layers: cmake --build
# BUILD_DIR --target synthetic_nllb_600m_2layer).
set -euo pipefail
BUILD=${1:?usage: bench/replica_memory.sh BUILD_DIR [MODELS_DIR ...]}
shift
VOXD=$BUILD/server/voxd
if [ $# -eq 0 ]; then set -- "$BUILD/tiny/models" "$BUILD/synthetic/models"; fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# peak MODELS REPLICAS [voxd flags...] -> bytes
peak() {
  local models=$1 replicas=$2
  shift 2
  "$VOXD" --listen 127.0.0.1:0 --builtin off --models "$models" --replicas "$replicas" \
    --threads 1 "$@" >"$OUT/stdout" 2>"$OUT/stderr" &
  local pid=$! i
  for i in $(seq 1200); do
    grep -q "listening" "$OUT/stdout" && break
    kill -0 "$pid" 2>/dev/null || { cat "$OUT/stderr" >&2; return 1; }
    sleep 0.1
  done
  awk '/VmHWM/ {print $2 * 1024}' "/proc/$pid/status"
  kill -TERM "$pid"
  wait "$pid" || true
}

printf '%-40s %-22s %14s %14s %7s\n' models flags "1 replica MB" "2 replicas MB" ratio
for models in "$@"; do
  flags=()
  if [ "$(basename "$(dirname "$models")")" = tiny ]; then
    read -r -a flags <<<"${TINY_FLAGS---max-batch-size 1}"
  fi
  one=$(peak "$models" 1 "${flags[@]}")
  two=$(peak "$models" 2 "${flags[@]}")
  printf '%-40s %-22s %14.1f %14.1f %7.3f\n' "${models#"$BUILD"/}" "${flags[*]:-default}" \
    "$(echo "$one / 1048576" | bc -l)" "$(echo "$two / 1048576" | bc -l)" "$(echo "$two / $one" | bc -l)"
done
