#!/usr/bin/env bash
# What TLS and a bearer token add to Translate's latency on loopback (docs/benchmarks.md, "TLS
# and tokens"): three voxd on the tiny NLLB model, plaintext, TLS alone, and TLS with a token
# file; voxbench sends one Translate at a time to each, in turn (plain, tls, token, plain, ...) so
# a noisy machine hits all alike, and the medians of the runs' p50 and p99 are printed.
#
#   bench/tls_overhead.sh BUILD_DIR
#
# BUILD_DIR must hold voxd, voxbench and the tiny models (cmake --build BUILD_DIR --target voxd
# voxbench tiny_models). Settings: REPS (default 5), CALLS per run (default 2000).
set -euo pipefail
BUILD=${1:?usage: bench/tls_overhead.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
REPS=${REPS:-5}
CALLS=${CALLS:-2000}
VOXD=$BUILD/server/voxd
VOXBENCH=$BUILD/bench/voxbench
MODELS=$BUILD/tiny/models
for f in "$VOXD" "$VOXBENCH" "$MODELS/nllb-tiny/manifest.json"; do
  [ -e "$f" ] || { echo "tls_overhead: $f is missing" >&2; exit 2; }
done
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

cd "$WORK"
mkdir models && ln -s "$MODELS/nllb-tiny" models/nllb-tiny
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -days 2 -subj /CN=bench-ca -keyout ca.key -out ca.pem 2>/dev/null
openssl req "${ec[@]}" -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
openssl x509 -req -days 2 -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -extfile server.ext -out server.pem 2>/dev/null
head -c 32 /dev/urandom | base64 >token
printf '[[token]]\nname = "bench"\nsha256 = "%s"\nservices = ["*"]\n' \
  "$(printf %s "$(cat token)" | sha256sum | cut -d' ' -f1)" >tokens.toml

start() {  # start NAME ARGS...: in this shell (so cleanup can stop it); address in NAME.addr
  local name=$1; shift
  "$VOXD" --listen 127.0.0.1:0 --models models --builtin off --threads 1 --access-log false "$@" \
    >"$name.out" 2>"$name.err" &
  PIDS+=($!)
  for _ in $(seq 600); do
    grep -q 'listening on' "$name.out" 2>/dev/null && break
    sleep 0.1
  done
  sed -n 's/^voxd listening on //p' "$name.out" >"$name.addr"
}
start plain
start tls --tls-cert server.pem --tls-key server.key
start token --tls-cert server.pem --tls-key server.key --token-file tokens.toml
PLAIN=$(cat plain.addr) TLS=$(cat tls.addr) TOKEN=$(cat token.addr)
[ -n "$PLAIN" ] && [ -n "$TLS" ] && [ -n "$TOKEN" ] || { echo "tls_overhead: voxd did not start" >&2; cat ./*.err >&2; exit 1; }

run() {  # run NAME ADDRESS ARGS...: one voxbench run, JSON report to NAME.json
  local name=$1 address=$2; shift 2
  "$VOXBENCH" --server "$address" --call translate --concurrency 1 --total "$CALLS" \
    --text "It is raining today." --from eng_Latn --to spa_Latn --format json --no-progress --no-details \
    --out "$name.json" "$@"
}
# Warm-up: both servers, connections and the model's first calls.
run warm-plain "$PLAIN" >/dev/null
run warm-tls "$TLS" --tls-ca ca.pem >/dev/null
run warm-token "$TOKEN" --tls-ca ca.pem --token-file token >/dev/null
for i in $(seq "$REPS"); do
  run "plain-$i" "$PLAIN"
  run "tls-$i" "$TLS" --tls-ca ca.pem
  run "token-$i" "$TOKEN" --tls-ca ca.pem --token-file token
done
/usr/bin/python3 - "$REPS" <<'PY'
import json, statistics, sys
reps = int(sys.argv[1])
def pct(report, p):
    for d in report["latencyDistribution"]:
        if d["percentage"] == p:
            return d["latency"] / 1e6  # ns -> ms
    raise KeyError(p)
rows = {}
for kind in ("plain", "tls", "token"):
    reports = [json.load(open("%s-%d.json" % (kind, i))) for i in range(1, reps + 1)]
    rows[kind] = {p: statistics.median(pct(r, p) for r in reports) for p in (50, 99)}
    rows[kind]["rps"] = statistics.median(r["rps"] for r in reports)
print("| server | p50 ms | p99 ms | calls/s |")
print("|---|---|---|---|")
for kind, label in (("plain", "plaintext"), ("tls", "TLS"), ("token", "TLS + bearer token")):
    r = rows[kind]
    print("| %s | %.3f | %.3f | %.0f |" % (label, r[50], r[99], r["rps"]))
print()
print("TLS adds %.3f ms at p50, the token check %.3f ms more; together %.3f ms (goal <= 0.2 ms)"
      % (rows["tls"][50] - rows["plain"][50], rows["token"][50] - rows["tls"][50],
         rows["token"][50] - rows["plain"][50]))
PY
