#!/usr/bin/env bash
# `make test`'s pytest part. The reliability tier runs in a process of its own beside the unit, integration and
# infra tiers: each process has its own local runtime, moto server and SeaweedFS on free ports, so neither sees
# the other's endpoints or leftovers, and both mostly wait (flush times, seals, back-offs, parks), so side by side
# on 2 cores they take about as long as the longer of the two instead of their sum. The hostile-tenants test then
# runs alone, in a fresh process: it measures other tenants' latency beside a dripping store, which two busy
# processes on 2 cores would measure instead (DEVELOPERS.md, "Tests").
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOSTILE=tests/reliability/test_hostile.py
log=$(mktemp)
"$PY" -m pytest -q -p no:cacheprovider tests/reliability --ignore="$HOSTILE" >"$log" 2>&1 &
reliability=$!
trap 'kill "$reliability" 2>/dev/null; rm -f "$log"' EXIT
"$PY" -m pytest -q tests/unit tests/integration tests/infra
others=$?
wait "$reliability"
reliable=$?
echo
echo "==================== tests/reliability (ran beside the tiers above) ===================="
cat "$log"
echo
echo "==================== $HOSTILE (alone) ===================="
"$PY" -m pytest -q -p no:cacheprovider "$HOSTILE"
hostile=$?
exit $((others != 0 || reliable != 0 || hostile != 0))
