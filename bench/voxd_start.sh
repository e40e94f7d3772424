# Sourced by the bench scripts that start voxd (peers/run, voxd_memory.sh, voxd_ab.sh).
# voxd_start BUILD_DIR CONFIG MODELS_DIR LOG [VOXD_FLAG...]: starts voxd on a free port with the
# flags given, its stdout in LOG and stderr in LOG.err, and returns once it listens with VOXD_PID
# and VOXD_ADDR set, and with --metrics-listen among the flags once VOXD_METRICS (its /metrics
# URL) is known too; if voxd dies first, prints its stderr and exits the script (after 300 s it
# stops voxd and exits too).
voxd_start() {
  local build=$1 config=$2 models=$3 log=$4 metrics=""
  shift 4
  case " $* " in *" --metrics-listen "*) metrics=1 ;; esac
  "$build/server/voxd" --config "$config" --models "$models" --listen 127.0.0.1:0 "$@" >"$log" 2>"$log.err" &
  VOXD_PID=$!
  VOXD_ADDR=""
  VOXD_METRICS=""
  for _ in $(seq 1 3000); do
    VOXD_ADDR=$(sed -n 's/^voxd listening on //p' "$log" | head -1)
    [ -z "$metrics" ] || VOXD_METRICS=$(sed -n 's/^voxd: metrics at //p' "$log.err" | head -1)
    [ -n "$VOXD_ADDR" ] && { [ -z "$metrics" ] || [ -n "$VOXD_METRICS" ]; } && return 0
    kill -0 "$VOXD_PID" 2>/dev/null || { cat "$log.err" >&2; exit 1; }
    sleep 0.1
  done
  kill -TERM "$VOXD_PID" 2>/dev/null || true
  echo "$(basename "$0"): voxd did not start within 300 s" >&2
  cat "$log.err" >&2
  exit 1
}

# The peer benchmark's sentence, and its Translate request as voxbench --data takes it:
# peer_translate_data TOKENS -> JSON asking for exactly TOKENS target tokens (fixed length).
PEER_TEXT="The weather is nice today, so we are going to the park with the children."
peer_translate_data() {
  printf '{"texts": ["%s"], "sourceLanguage": "eng_Latn", "targetLanguage": "spa_Latn", "options": {"maxLength": %d, "fixedLength": true}}\n' \
    "$PEER_TEXT" "$1"
}
