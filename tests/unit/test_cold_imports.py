"""What loading a handler module imports (make bench, B3): only what every request needs. Each case runs in a
fresh interpreter with the environment a deployed function has, tracing on."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bench.coldstart import lambda_environment

from spool.observability import tracing_enabled

# Loaded later, by the request that needs them (or before a SnapStart snapshot), never by the module import.
NOT_AT_IMPORT = {
    "api": [
        "boto3",
        "botocore.session",
        "aws_xray_sdk",
        "requests",
        "aws_lambda_powertools.utilities.idempotency",
        "aws_lambda_powertools.event_handler.openapi.models",
        "spool.domain.delivery",
        "spool.adapters.stores",
    ],
    "sink": [
        "boto3",
        "botocore.session",
        "aws_xray_sdk",
        "requests",
        "aws_lambda_powertools.utilities.idempotency",
        "spool.adapters.idempotency",
        "spool.domain.tenants",
        "pyarrow",
    ],
}


def loaded_after(code: str) -> set[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], env=lambda_environment(), capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("handler", sorted(NOT_AT_IMPORT))
def test_loading_a_handler_leaves_out_what_requests_load_when_they_need_it(handler: str) -> None:
    loaded = loaded_after(f"import spool.handlers.{handler}")
    early = [name for name in NOT_AT_IMPORT[handler] if name in loaded]
    assert early == []


def test_an_event_without_key_or_ids_does_not_load_powertools_idempotency() -> None:
    code = """
from spool.domain.ingest import Ingest
from spool.domain.events import EventIn
from spool.adapters.idempotency import IdempotentIngest
class Repo:
    def active_endpoints(self, tenant_id):
        return []
def refuse():
    raise AssertionError("records built")
ingest = IdempotentIngest(Ingest(Repo(), None), refuse)
ingest.accept("ten_a", [EventIn(eventType="a.b", payload={})])
"""
    assert "aws_lambda_powertools.utilities.idempotency" not in loaded_after(code)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
    ],
)
def test_tracing_is_on_only_in_a_lambda_function_that_did_not_turn_it_off(
    environ: dict[str, str], expected: bool
) -> None:
    assert tracing_enabled(environ) is expected
