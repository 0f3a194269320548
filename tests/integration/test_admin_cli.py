"""The admin CLI against the local runtime, as a user runs it while `make dev` is up: on a fresh machine, with
no AWS configuration at all (no ~/.aws, no AWS_* variables), since the CLI takes the local runtime's region,
endpoint and credentials from `.spool/runtime.json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from spool.local.runtime import LocalRuntime
from tests.integration.conftest import Api

Spool = Callable[..., tuple[int, dict, str]]


def fresh_machine(home: Path, **extra: str) -> dict[str, str]:
    """A new user's environment: PATH, an empty HOME and nothing of AWS (the test process has AWS_* set by
    the runtime it started, which `make dev` in another terminal would not hand to the CLI)."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), **extra}


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, dict, str]:
    done = subprocess.run(
        [sys.executable, "-m", "spool.cli", "admin", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
    return done.returncode, json.loads(last), done.stderr


@pytest.fixture
def spool(runtime: LocalRuntime, tmp_path: Path) -> Spool:
    """`spool admin ARGS...` on a fresh machine, against the session's local runtime."""
    home = tmp_path / "home"
    home.mkdir()
    env = fresh_machine(home, SPOOL_DEV_STATE_DIR=str(Path(runtime.settings.state_dir).resolve()))
    return lambda *args: run_cli(env, home, *args)


def test_the_cli_works_on_a_machine_without_aws_configuration(runtime: LocalRuntime, spool: Spool) -> None:
    code, created, stderr = spool("tenant", "create", "fresh-machine")
    assert code == 0, stderr
    code, listed, stderr = spool("tenant", "list")
    assert code == 0, stderr
    assert created["tenantId"] in [t["tenantId"] for t in listed["tenants"]]
    code, key, stderr = spool("key", "create", created["tenantId"])
    assert code == 0, stderr
    code, redriven, stderr = spool("redrive", "--tenant", created["tenantId"])
    assert code == 0, stderr
    assert redriven == {"moved": 0}
    for api_key in (created["apiKey"], key["apiKey"]):
        assert Api(runtime.api_url, api_key).call("GET", "/api/v1/endpoints").status_code == 200


def test_a_stack_without_a_region_is_a_clear_error(tmp_path: Path) -> None:
    code, _, stderr = run_cli(fresh_machine(tmp_path), tmp_path, "tenant", "list", "--stack", "Spool-dev")
    assert code == 2
    assert "set AWS_REGION or use --region" in stderr
    assert "Traceback" not in stderr


def test_tenant_create_prints_a_working_key_as_the_last_line(runtime: LocalRuntime, spool: Spool) -> None:
    code, created, _ = spool("tenant", "create", "acme-cli")
    assert code == 0
    assert created["tenantId"].startswith("ten_")
    reply = Api(runtime.api_url, created["apiKey"]).call("GET", "/api/v1/endpoints")
    assert reply.status_code == 200
    assert reply.json()["items"] == []  # a new tenant sees none of the dev tenant's endpoints

    code, listed, _ = spool("tenant", "list")
    assert code == 0
    assert created["tenantId"] in [t["tenantId"] for t in listed["tenants"]]


def test_revoked_key_is_refused(runtime: LocalRuntime, spool: Spool) -> None:
    _, created, _ = spool("tenant", "create", "revoker")
    _, second, _ = spool("key", "create", created["tenantId"])
    code, revoked, _ = spool("key", "revoke", created["tenantId"], second["keyId"])
    assert code == 0
    assert revoked["revoked"] is True
    assert Api(runtime.api_url, second["apiKey"]).call("GET", "/api/v1/endpoints").status_code == 401
    assert Api(runtime.api_url, created["apiKey"]).call("GET", "/api/v1/endpoints").status_code == 200
    _, keys, _ = spool("key", "list", created["tenantId"])
    assert {k["keyId"]: k["revoked"] for k in keys["keys"]}[second["keyId"]] is True
    assert second["apiKey"] not in json.dumps(keys)


def test_unknown_tenant_is_a_clear_error(spool: Spool) -> None:
    code, _, stderr = spool("key", "create", "ten_000000000000nope")
    assert code == 2
    assert "not found" in stderr
