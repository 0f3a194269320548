#!/usr/bin/env bash
# LocalStack on this machine, without Docker or an auth token: localstack-core from PyPI in its own venv.
#
#   bash localstack/serve.sh install        # create or update .tmp/localstack-venv (from requirements.lock)
#   bash localstack/serve.sh PORT DIR       # install if needed, then run LocalStack in the foreground on
#                                           # 127.0.0.1:PORT with its files under DIR, until SIGTERM/SIGINT
#
# Used by `make dev-localstack` (localstack/dev.sh) and by the tests' `--emulator=localstack` (tests/servers.py).
# This script is the one place that says how LocalStack runs here: the venv, the plugin, the settings below.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tmp/localstack-venv"
LOCK="$ROOT/localstack/requirements.lock"
PLUGIN="$ROOT/localstack/plugin"

fail() { echo "localstack/serve.sh: $*" >&2; exit 1; }

python313() {
  local candidate
  for candidate in "${PY313:-}" "$(ls -d "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.13*/bin/python3.13 2>/dev/null | tail -1)" \
                   "$(command -v python3.13 || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then echo "$candidate"; return; fi
  done
  fail "Python 3.13 not found (pyenv install 3.13 or put python3.13 on PATH)"
}

install() {
  # The stamp names what was installed: a change to the lockfile or the plugin reinstalls.
  local stamp
  stamp="$VENV/.stamp-$(cat "$LOCK" "$PLUGIN"/pyproject.toml "$PLUGIN"/*.py | sha1sum | cut -c1-12)"
  [[ -f "$stamp" ]] && return
  command -v uv >/dev/null || python3 -m pip install -q 'uv>=0.9'
  mkdir -p "$ROOT/.tmp"
  # One install at a time: two sessions (make dev-localstack and a test run) may start together.
  exec 9>"$ROOT/.tmp/localstack-venv.lock"
  flock 9
  if [[ ! -f "$stamp" ]]; then
    echo "localstack/serve.sh: installing LocalStack into $VENV (once)" >&2
    UV_PYTHON_DOWNLOADS=never uv venv -q --allow-existing --python "$(python313)" "$VENV"
    uv pip sync -q --python "$VENV/bin/python" --require-hashes "$LOCK"
    # The plugin is built outside the repository (the build backend leaves nothing in localstack/plugin).
    uv pip install -q --python "$VENV/bin/python" --no-deps "$PLUGIN"
    rm -f "$VENV"/.stamp-* && touch "$stamp"
  fi
  exec 9>&-
}

case "${1:-}" in
  install) install; exit 0 ;;
  "" | -h | --help) sed -n '2,9p' "$0"; exit 2 ;;
esac

PORT="$1"
DIR="${2:?usage: localstack/serve.sh PORT DIR}"
[[ "$PORT" =~ ^[0-9]+$ ]] || fail "PORT must be a number, not $PORT"
install
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
cd "$DIR"  # not the repository root, whose localstack/ folder would shadow the package

# This machine looks like a container to LocalStack; it must run as a host process.
export OVERRIDE_IN_DOCKER=0
export GATEWAY_LISTEN="127.0.0.1:$PORT"
# Every file LocalStack writes (state, logs, caches) lives under DIR.
export FILESYSTEM_ROOT="$DIR"
# Nothing reaches the network: no DNS server of its own, no certificate download, no analytics events.
export DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1
# DynamoDB from moto (localstack/plugin): LocalStack's own provider downloads DynamoDB Local and a JDK.
export PROVIDER_OVERRIDE_DYNAMODB=moto
# The services Spool uses (cloudformation: the tenant's role template in the tests); no others are loaded.
export SERVICES=s3,sqs,dynamodb,kms,secretsmanager,iam,sts,cloudformation
# Credentials or settings of the caller's own AWS setup must not leak in.
unset AWS_PROFILE AWS_ENDPOINT_URL
exec "$VENV/bin/python" -m localstack.runtime.main
