#!/usr/bin/env bash
# NLLB "C++ against Python" and "Memory" benchmarks (issue 2; docs/benchmarks.md, "Translation
# engine"). Not part of CI: it writes ~5 GB (a synthetic checkpoint with NLLB-200-distilled-600M's
# full dimensions and its export; random weights, never committed) and takes many minutes.
#
#   bench/run_nllb_cpp_vs_python.sh [--dir DIR] [--build BUILD_DIR] [--threads "1 2"]
#                                   [--tokens 20] [--repeats 3]
#
# For each thread count, one after the other so both see the same machine: the Python eager
# reference (bench/nllb_python_reference.py: transformers-style nn.Linear model with a KV cache)
# and the C++ engine (nllb_engine_bench) decode the same sentence for exactly --tokens tokens
# (fixed-length greedy, fp32), each measuring memory read bandwidth in the same run. Then a
# summary: each side at its best thread count, C++ / Python, each against the bandwidth bound,
# peak RSS / fp32 weights, and the output projection's kernels. Raw JSON lines are kept in
# DIR/results-<time>/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=""
BUILD="$ROOT/build"
THREADS="1 2"
TOKENS=20
REPEATS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --tokens) TOKENS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run_nllb_cpp_vs_python.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
DIR=${DIR:-$BUILD/nllb-600m-bench}
PY=/usr/bin/python3
BENCH="$BUILD/bench/nllb_engine_bench"
if [ ! -x "$BENCH" ]; then
  echo "run_nllb_cpp_vs_python.sh: $BENCH missing; build it first:" >&2
  echo "  cmake --build $BUILD --target nllb_engine_bench" >&2
  exit 1
fi

"$PY" "$ROOT/bench/nllb_python_reference.py" --dir "$DIR" --prepare-only > /dev/null
OUT="$DIR/results-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
# Other work on the machine skews every figure: record the load average around the runs.
cut -d' ' -f1-3 /proc/loadavg > "$OUT/loadavg-start" 2>/dev/null || true
for t in $THREADS; do
  echo "== $t thread(s): Python eager reference" >&2
  "$PY" "$ROOT/bench/nllb_python_reference.py" --dir "$DIR" --threads "$t" --tokens "$TOKENS" \
      --repeats "$REPEATS" > "$OUT/python-$t.jsonl"
  echo "== $t thread(s): C++ engine" >&2
  OPENBLAS_NUM_THREADS=$t "$BENCH" --model "$DIR/model" --threads "$t" --tokens "$TOKENS" \
      --repeats "$REPEATS" --kernels > "$OUT/cpp-$t.jsonl"
done

cut -d' ' -f1-3 /proc/loadavg > "$OUT/loadavg-end" 2>/dev/null || true

"$PY" - "$OUT" <<'PYEOF'
import glob, json, os, subprocess, sys, datetime
out = sys.argv[1]
def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]
runs = {"python": {}, "cpp": {}}
for path in sorted(glob.glob(os.path.join(out, "*.jsonl"))):
    side, t = os.path.basename(path)[:-6].split("-")
    runs[side][int(t)] = {e["event"]: e for e in lines(path)}
try:
    cpu = [l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
           if l.startswith("Model name")][0]
except Exception:
    cpu = "unknown"
def loadavg(name):
    try:
        return open(os.path.join(out, name)).read().strip()
    except OSError:
        return "n/a"
print(f"machine: {cpu}, {os.cpu_count()} cores; date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; "
      f"load average (1/5/15 min) at start {loadavg('loadavg-start')}, at end {loadavg('loadavg-end')}")
print()
print("| side | threads | median ms/token | best s (20 tok) | bandwidth GB/s | bound ms/token | ÷ bound |")
print("|---|---|---|---|---|---|---|")
best = {}
for side, name in (("python", "Python eager (nn.Linear)"), ("cpp", "C++ engine (TorchScript)")):
    for t, ev in sorted(runs[side].items()):
        r, b = ev["result"], ev.get("bound", {})
        print(f"| {name} | {t} | {r['ms_per_token']:.1f} | {r['best_s']:.2f} | {b.get('gb_per_s', float('nan')):.2f} "
              f"| {b.get('bound_ms_per_token', float('nan')):.1f} | {r['bound_ratio'] or float('nan'):.2f} |")
        if side not in best or r["ms_per_token"] < best[side][1]["ms_per_token"]:
            best[side] = (t, r, b)
print()
if "python" in best and "cpp" in best:
    (tp, rp, bp), (tc, rc, bc) = best["python"], best["cpp"]
    print(f"C++ ({tc} threads) / Python ({tp} threads), median per token: {rc['ms_per_token'] / rp['ms_per_token']:.2f} (goal <= 0.7)")
    bw = max(bp.get("gb_per_s", 0), bc.get("gb_per_s", 0))
    if bw:
        bound = bc["bytes_per_token"] / (bw * 1e9) * 1000
        print(f"C++ / bound ({bc['bytes_per_token'] / 1e9:.2f} GB per token at the best measured {bw:.2f} GB/s = {bound:.0f} ms): "
              f"{rc['ms_per_token'] / bound:.2f} (goal <= 1.3)")
    same = rc["ids"] == rp["ids"]
    print(f"ids equal: {same}" + ("" if same else f" (Python min margin {rp.get('min_margin')})"))
for t, ev in sorted(runs["cpp"].items()):
    m = ev.get("memory")
    if m:
        print(f"memory ({t} threads): peak RSS {m['peak_rss_bytes'] / 1e9:.2f} GB / fp32 weights {m['fp32_weight_bytes'] / 1e9:.2f} GB = {m['ratio']:.2f} (goal <= 1.3)")
    k = ev.get("kernels")
    if k:
        print(f"output projection [1,{k['d']}] x [{k['rows']},{k['d']}]^T ({t} threads): mv {k['mv_ms']:.1f} ms, "
              f"linear {k['linear_ms']:.1f} ms, matmul {k['matmul_ms']:.1f} ms"
              + (f"; 4 rows: one linear {k['linear_4rows_ms']:.1f} ms, four mv {k['mv_4x_ms']:.1f} ms" if 'mv_4x_ms' in k else ""))
PYEOF
echo "raw results: $OUT" >&2
