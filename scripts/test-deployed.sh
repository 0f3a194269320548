#!/usr/bin/env bash
# Deploy the real Spool stack into an AWS emulator, drive its API like a user, tear it down.
#
#   bash scripts/test-deployed.sh            # MiniStack (pinned, own venv, started and stopped here)
#   SPOOL_EMULATOR=localstack bash scripts/test-deployed.sh
#                                            # LocalStack from localstack/compose.yaml (Docker, and the
#                                            # LOCALSTACK_AUTH_TOKEN of a plan with HTTP APIs; not run where
#                                            # this was written), on SPOOL_EMULATOR_PORT like MiniStack
#   SPOOL_EMULATOR=external bash scripts/test-deployed.sh
#                                            # an emulator already listening on AWS_ENDPOINT_URL
#
# Steps: start MiniStack, `cdk synth` (real bundling), `cdk bootstrap`, `cdk deploy`, drive the API with
# scripts/ministack/drive.py (endpoint, three events, the NDJSON object in the emulator's S3), `cdk destroy`,
# stop MiniStack by PID. Everything temporary lives under .tmp/deployed/ (git-ignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MINISTACK_VERSION="1.5.33"
# MiniStack pins botocore; boto3 must be the release made for that botocore.
MINISTACK_BOTO3="1.43.106"
# Lambda's Python 3.12+ runtimes include snapshot-restore-py; with it MiniStack runs the handlers' SnapStart
# hooks (before-snapshot at publish, after-restore before the first invocation) as they run on AWS.
SNAPSHOT_RESTORE_PY="1.0.0"
EMULATOR="${SPOOL_EMULATOR:-ministack}"
PORT="${SPOOL_EMULATOR_PORT:-4566}"
STAGE="deployedtest"
STACK="Spool-${STAGE}"
WORK="$ROOT/.tmp/deployed"
VENV="$ROOT/.tmp/ministack-venv"
CDK="$ROOT/node_modules/.bin/cdk"
PY="$ROOT/.venv/bin/python"
START=$SECONDS

log() { printf '[test-deployed %3ds] %s\n' "$((SECONDS - START))" "$*"; }
fail() { log "FAILED: $*"; exit 1; }

[[ -x "$CDK" ]] || fail "$CDK missing: run make bootstrap (npm ci)"
[[ -x "$PY" ]] || fail "$PY missing: run make bootstrap"
command -v curl >/dev/null || fail "curl is needed for the emulator's health check"

rm -rf "$WORK"
mkdir -p "$WORK/tmp"
# MiniStack and the Lambda workers it spawns write their scratch files here, not to /tmp.
export TMPDIR="$WORK/tmp"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:${PORT}}"
export AWS_ENDPOINT_URL_S3="$AWS_ENDPOINT_URL"
unset AWS_PROFILE AWS_SESSION_TOKEN
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export CDK_DISABLE_CLI_TELEMETRY=true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION=1
ACCOUNT="000000000000"

# MiniStack runs Python handlers with its own interpreter, so the bundled wheels must match this machine.
case "$(uname -m)" in
  x86_64 | amd64) ARCH=x86_64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) fail "unsupported machine $(uname -m)" ;;
esac
# Plain-http store endpoints are allowed (the emulator's S3 is http://127.0.0.1); nothing is retained.
CONTEXT=(-c "stage=$STAGE" -c "lambdaArchitecture=$ARCH" -c allowInsecureEndpoints=true -c dataRemovalPolicy=destroy)

MINISTACK_PID=""
LOCALSTACK_UP=""
DEPLOYED=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "$DEPLOYED" ]]; then
    log "cdk destroy (after a failure)"
    "$CDK" destroy "$STACK" --app "$WORK/cdk.out" --force >"$WORK/destroy.log" 2>&1 || log "destroy failed: see $WORK/destroy.log"
  fi
  if [[ -n "$MINISTACK_PID" ]]; then
    # MiniStack was started with setsid: its PID is its process group, which holds the Lambda workers.
    kill -TERM -- "-$MINISTACK_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 -- "-$MINISTACK_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 -- "-$MINISTACK_PID" 2>/dev/null; then
      log "MiniStack did not stop on TERM; killing process group $MINISTACK_PID"
      kill -KILL -- "-$MINISTACK_PID" 2>/dev/null || true
    fi
    wait "$MINISTACK_PID" 2>/dev/null || true
    log "MiniStack (pid $MINISTACK_PID) stopped"
  fi
  if [[ -n "$LOCALSTACK_UP" ]]; then
    docker compose -f localstack/compose.yaml logs --no-color >"$WORK/localstack.log" 2>&1 || true
    docker compose -f localstack/compose.yaml down -v >/dev/null 2>&1 || true
    log "LocalStack stopped (its log: $WORK/localstack.log)"
  fi
  if ((status != 0)) && [[ -f "$WORK/ministack.log" ]]; then
    log "last lines of the MiniStack log ($WORK/ministack.log):"
    tail -n 40 "$WORK/ministack.log" | cut -c1-400 || true
  fi
  log "done (exit $status)"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ministack_venv() {
  local stamp="$VENV/.stamp-$MINISTACK_VERSION-$MINISTACK_BOTO3-$SNAPSHOT_RESTORE_PY"
  [[ -f "$stamp" ]] && return
  local py=""
  for candidate in "${PY313:-}" "$(ls -d "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.13*/bin/python3.13 2>/dev/null | tail -1)" \
                   "$(command -v python3.13 || true)" "$(command -v python3.12 || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then py="$candidate"; break; fi
  done
  [[ -n "$py" ]] || fail "MiniStack needs Python 3.12+ (3.13 matches the Lambda runtime)"
  log "creating the MiniStack venv with $py"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "ministack==$MINISTACK_VERSION" "boto3==$MINISTACK_BOTO3" "snapshot-restore-py==$SNAPSHOT_RESTORE_PY" \
    >"$WORK/pip.log" 2>&1 \
    || { tail -n 30 "$WORK/pip.log"; fail "installing MiniStack"; }
  touch "$stamp"
}

start_ministack() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    fail "port $PORT is taken; stop whatever listens there or set SPOOL_EMULATOR=external to use it"
  fi
  ministack_venv
  log "starting MiniStack $MINISTACK_VERSION on 127.0.0.1:$PORT"
  BIND_HOST=127.0.0.1 GATEWAY_PORT="$PORT" LOG_LEVEL=INFO \
    setsid "$VENV/bin/ministack" >"$WORK/ministack.log" 2>&1 </dev/null &
  MINISTACK_PID=$!
}

wait_for_health() {
  local deadline=$((SECONDS + 60))
  until curl -fsS "$AWS_ENDPOINT_URL/_localstack/health" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "the emulator did not answer on $AWS_ENDPOINT_URL within 60 s"
    if [[ -n "$MINISTACK_PID" ]] && ! kill -0 "$MINISTACK_PID" 2>/dev/null; then fail "MiniStack exited"; fi
    sleep 0.2
  done
  log "emulator healthy at $AWS_ENDPOINT_URL"
}

start_localstack() {
  command -v docker >/dev/null || fail "SPOOL_EMULATOR=localstack needs Docker"
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then fail "port $PORT is taken"; fi
  log "starting LocalStack (localstack/compose.yaml)"
  LOCALSTACK_UP=1
  LOCALSTACK_PORT="$PORT" docker compose -f localstack/compose.yaml up -d --wait >"$WORK/compose.log" 2>&1 \
    || { cat "$WORK/compose.log"; fail "docker compose up"; }
  # The sink runs in a Lambda container, where 127.0.0.1 is not LocalStack: leave the store endpoint out
  # so the S3 client uses the AWS_ENDPOINT_URL that LocalStack gives every function.
  export SPOOL_STORE_ENDPOINT="${SPOOL_STORE_ENDPOINT-}"
}

case "$EMULATOR" in
  ministack) start_ministack ;;
  localstack) start_localstack ;;
  external) log "using the emulator already at $AWS_ENDPOINT_URL" ;;
  *) fail "SPOOL_EMULATOR must be ministack, localstack or external" ;;
esac

# Synthesize once (real bundling, reused from cdk.out when the sources did not change); deploy and
# destroy then read this cloud assembly instead of synthesizing again.
log "cdk synth (arch $ARCH)"
"$CDK" synth "$STACK" "${CONTEXT[@]}" --quiet -o "$WORK/cdk.out" >"$WORK/synth.log" 2>&1 \
  || { cat "$WORK/synth.log"; fail "cdk synth"; }
wait_for_health

log "cdk bootstrap"
"$CDK" bootstrap "aws://$ACCOUNT/us-east-1" --app "$WORK/cdk.out" >"$WORK/bootstrap.log" 2>&1 \
  || { tail -n 30 "$WORK/bootstrap.log"; fail "cdk bootstrap"; }

log "cdk deploy $STACK"
DEPLOYED=1
"$CDK" deploy "$STACK" --app "$WORK/cdk.out" --require-approval never --outputs-file "$WORK/outputs.json" \
  >"$WORK/deploy.log" 2>&1 || { tail -n 40 "$WORK/deploy.log"; fail "cdk deploy"; }

log "driving the deployed API"
PYTHONPATH="$ROOT/functions" "$PY" scripts/ministack/drive.py "$WORK/outputs.json" "$STACK"

log "cdk destroy $STACK"
"$CDK" destroy "$STACK" --app "$WORK/cdk.out" --force >"$WORK/destroy.log" 2>&1 \
  || { tail -n 30 "$WORK/destroy.log"; fail "cdk destroy"; }
DEPLOYED=""
"$PY" - <<'EOF' || fail "resources left after cdk destroy"
import boto3

left = {
    "functions": [f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]],
    "tables": boto3.client("dynamodb").list_tables()["TableNames"],
    "queues": boto3.client("sqs").list_queues().get("QueueUrls", []),
}
left = {kind: names for kind, names in left.items() if names}
if left:
    raise SystemExit(f"left behind: {left}")
print("[test-deployed] nothing of the stack is left: no functions, tables or queues")
EOF
log "passed"
