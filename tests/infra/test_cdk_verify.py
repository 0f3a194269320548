"""Bounded verify in the stack: a function of its own with a reserved concurrency and a timeout that fits the
probe's deadline, run with the sink's role, invoked only by the api; reserved concurrency for the api and sink."""

from __future__ import annotations

import json
from typing import Any

from infra_synth import Synth
from tests.infra.infra_synth import SynthFactory

from spool import names as shared
from spool.domain import limits


def _function(synth: Synth, handler: str) -> dict[str, Any]:
    return next(
        f["Properties"]
        for f in synth.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == handler
    )


def _reserved(synth: Synth) -> dict[str, Any]:
    return {
        name: _function(synth, entry.handler).get("ReservedConcurrentExecutions")
        for name, entry in (
            ("api", shared.API_FUNCTION),
            ("sink", shared.SINK_FUNCTION),
            ("verify", shared.VERIFY_FUNCTION),
        )
    }


def test_each_function_has_its_documented_reserved_concurrency(synth: Synth) -> None:
    # api 50, sink = maxConcurrency (10 in the tests' context), verify 5: 65 of the account's 1,000 by default,
    # leaving the 100 Lambda keeps unreserved (docs/infrastructure.md).
    assert _reserved(synth) == {"api": 50, "sink": 10, "verify": 5}


def test_reserved_concurrency_follows_the_context_and_zero_means_none(synth_with: SynthFactory) -> None:
    synth = synth_with({"apiReservedConcurrency": 0, "sinkReservedConcurrency": 0, "verifyReservedConcurrency": 2})
    assert _reserved(synth) == {"api": None, "sink": None, "verify": 2}
    assert _reserved(synth_with({"maxConcurrency": 20}))["sink"] == 20


def test_verify_times_out_within_the_apis_wait_and_runs_the_verify_handler(synth: Synth) -> None:
    verify = _function(synth, shared.VERIFY_FUNCTION.handler)
    assert verify["Timeout"] == limits.VERIFY_TIMEOUT_SECONDS
    assert (
        verify["Timeout"] + limits.VERIFY_COLD_START_SECONDS < _function(synth, shared.API_FUNCTION.handler)["Timeout"]
    )
    assert set(verify["Environment"]["Variables"]) >= {"SPOOL_TABLE_NAME", "SPOOL_ALLOW_INSECURE_ENDPOINTS"}
    assert "SPOOL_QUEUE_URL" not in verify["Environment"]["Variables"]


def test_verify_runs_with_the_sinks_role_the_one_tenants_roles_trust(synth: Synth) -> None:
    verify = _function(synth, shared.VERIFY_FUNCTION.handler)
    assert verify["Role"] == _function(synth, shared.SINK_FUNCTION.handler)["Role"]


def test_the_api_invokes_only_the_verify_functions_live_alias(synth: Synth) -> None:
    api = _function(synth, shared.API_FUNCTION.handler)
    role = api["Role"]["Fn::GetAtt"][0]
    invokes = [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "lambda:InvokeFunction"
    ]
    (invoke,) = invokes
    alias_id = invoke["Resource"]["Ref"]
    alias = synth.json["Resources"][alias_id]["Properties"]
    assert alias["Name"] == "live"
    assert (
        synth.json["Resources"][alias["FunctionName"]["Ref"]]["Properties"]["Handler"] == shared.VERIFY_FUNCTION.handler
    )
    # `{function name}:live`, cut out of the alias's ARN: the SnapStart version, not $LATEST
    name = api["Environment"]["Variables"]["SPOOL_VERIFY_FUNCTION_NAME"]
    assert json.dumps({"Ref": alias_id}) in json.dumps(name)
    assert name["Fn::Join"][1][-1] == ":live"
