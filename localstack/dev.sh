#!/usr/bin/env bash
# `make dev-localstack`: LocalStack on the host (localstack/serve.sh) on 127.0.0.1:4566, then the local runtime
# (`make dev`'s) against it through AWS_ENDPOINT_URL. Ctrl-C stops both. SPOOL_DEV_AWS_PORT moves LocalStack;
# the runtime's other knobs (SPOOL_DEV_PORT, ...) are `make dev`'s. LocalStack's log: .tmp/localstack/localstack.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PORT="${SPOOL_DEV_AWS_PORT:-4566}"
URL="http://127.0.0.1:$PORT"
WORK="$ROOT/.tmp/localstack"
PY="$ROOT/.venv/bin/python"

log() { echo "[dev-localstack] $*"; }
fail() { log "$*" >&2; exit 1; }

[[ -x "$PY" ]] || fail "$PY missing: run make bootstrap"
command -v curl >/dev/null || fail "curl is needed for LocalStack's health check"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  fail "port $PORT is taken (make dev's emulator, another LocalStack?); stop it or set SPOOL_DEV_AWS_PORT"
fi
bash localstack/serve.sh install

rm -rf "$WORK" && mkdir -p "$WORK"
LOCALSTACK_PID=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "$LOCALSTACK_PID" ]]; then
    # Started with setsid: its PID is its process group.
    kill -TERM -- "-$LOCALSTACK_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 -- "-$LOCALSTACK_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL -- "-$LOCALSTACK_PID" 2>/dev/null || true
    log "LocalStack stopped"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting LocalStack on $URL (log: $WORK/localstack.log)"
setsid bash localstack/serve.sh "$PORT" "$WORK/root" >"$WORK/localstack.log" 2>&1 </dev/null &
LOCALSTACK_PID=$!
deadline=$((SECONDS + 60))
until curl -fsS "$URL/_localstack/health" >/dev/null 2>&1; do
  kill -0 "$LOCALSTACK_PID" 2>/dev/null || { tail -n 30 "$WORK/localstack.log"; fail "LocalStack exited"; }
  ((SECONDS < deadline)) || { tail -n 30 "$WORK/localstack.log"; fail "LocalStack did not answer within 60 s"; }
  sleep 0.2
done
log "LocalStack is up: $URL/_localstack/health"

# Not exec: this shell stays to stop LocalStack when the runtime ends (Ctrl-C reaches both in the terminal's
# process group; LocalStack, in its own session, is stopped by the trap).
AWS_ENDPOINT_URL="$URL" "$PY" -m spool.local
