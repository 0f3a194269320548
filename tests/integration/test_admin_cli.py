"""The admin CLI against the local runtime, as a user runs it while `make dev` is up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from spool.local.runtime import LocalRuntime
from tests.integration.conftest import Api


def spool(runtime: LocalRuntime, *args: str) -> tuple[int, dict, str]:
    env = dict(os.environ, SPOOL_DEV_STATE_DIR=runtime.settings.state_dir)
    done = subprocess.run(
        [sys.executable, "-m", "spool.cli", "admin", *args], capture_output=True, text=True, env=env, timeout=60
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
    return done.returncode, json.loads(last), done.stderr


def test_tenant_create_prints_a_working_key_as_the_last_line(runtime: LocalRuntime) -> None:
    code, created, _ = spool(runtime, "tenant", "create", "acme-cli")
    assert code == 0
    assert created["tenantId"].startswith("ten_")
    reply = Api(runtime.api_url, created["apiKey"]).call("GET", "/api/v1/endpoints")
    assert reply.status_code == 200
    assert reply.json()["items"] == []  # a new tenant sees none of the dev tenant's endpoints

    code, listed, _ = spool(runtime, "tenant", "list")
    assert code == 0
    assert created["tenantId"] in [t["tenantId"] for t in listed["tenants"]]


def test_revoked_key_is_refused(runtime: LocalRuntime) -> None:
    _, created, _ = spool(runtime, "tenant", "create", "revoker")
    _, second, _ = spool(runtime, "key", "create", created["tenantId"])
    code, revoked, _ = spool(runtime, "key", "revoke", created["tenantId"], second["keyId"])
    assert code == 0
    assert revoked["revoked"] is True
    assert Api(runtime.api_url, second["apiKey"]).call("GET", "/api/v1/endpoints").status_code == 401
    assert Api(runtime.api_url, created["apiKey"]).call("GET", "/api/v1/endpoints").status_code == 200
    _, keys, _ = spool(runtime, "key", "list", created["tenantId"])
    assert {k["keyId"]: k["revoked"] for k in keys["keys"]}[second["keyId"]] is True
    assert second["apiKey"] not in json.dumps(keys)


def test_unknown_tenant_is_a_clear_error(runtime: LocalRuntime) -> None:
    code, _, stderr = spool(runtime, "key", "create", "ten_000000000000nope")
    assert code == 2
    assert "not found" in stderr
