# Sourced by the bench scripts that start voxd (voxd_memory.sh, voxd_ab.sh).
# voxd_start BUILD_DIR CONFIG MODELS_DIR LOG: starts voxd on a free port, its stdout in LOG and
# stderr in LOG.err, and returns once it listens with VOXD_PID and VOXD_ADDR set; if voxd dies
# first, prints its stderr and exits the script (after 300 s it stops voxd and exits too).
voxd_start() {
  "$1/server/voxd" --config "$2" --models "$3" --listen 127.0.0.1:0 >"$4" 2>"$4.err" &
  VOXD_PID=$!
  VOXD_ADDR=""
  for _ in $(seq 1 3000); do
    VOXD_ADDR=$(sed -n 's/^voxd listening on //p' "$4" | head -1)
    [ -n "$VOXD_ADDR" ] && return 0
    kill -0 "$VOXD_PID" 2>/dev/null || { cat "$4.err" >&2; exit 1; }
    sleep 0.1
  done
  kill -TERM "$VOXD_PID" 2>/dev/null || true
  echo "$(basename "$0"): voxd did not start within 300 s" >&2
  exit 1
}
