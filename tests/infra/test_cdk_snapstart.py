"""SnapStart (context `snapStart`): published versions, the `live` alias, and every trigger pointing at it."""

from __future__ import annotations

import json
from typing import Any

from infra_synth import Synth, SynthFactory

HANDLERS = {
    "api": "spool.handlers.api.lambda_handler",
    "sink": "spool.handlers.sink.lambda_handler",
    "verify": "spool.handlers.verify.lambda_handler",
}


def _function_id(synth: Synth, handler: str) -> str:
    return next(
        logical
        for logical, f in synth.resources("AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == handler
    )


def _alias_of(synth: Synth, function_id: str) -> tuple[str, dict[str, Any]]:
    return next(
        (logical, a)
        for logical, a in synth.resources("AWS::Lambda::Alias").items()
        if a["Properties"]["FunctionName"] == {"Ref": function_id}
    )


def test_every_function_publishes_with_snapstart_by_default(synth: Synth) -> None:
    for handler in HANDLERS.values():
        function = synth.json["Resources"][_function_id(synth, handler)]["Properties"]
        assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}


def test_snapstart_can_be_turned_off_and_the_alias_stays(synth_with: SynthFactory) -> None:
    synth = synth_with({"snapStart": "false"})
    for handler in HANDLERS.values():
        function_id = _function_id(synth, handler)
        assert "SnapStart" not in synth.json["Resources"][function_id]["Properties"]
        _alias_of(synth, function_id)


def test_each_function_has_a_live_alias_on_a_version_that_is_deleted_when_replaced(synth: Synth) -> None:
    for handler in HANDLERS.values():
        function_id = _function_id(synth, handler)
        _, alias = _alias_of(synth, function_id)
        assert alias["Properties"]["Name"] == "live"
        version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        version = synth.json["Resources"][version_id]
        assert version["Type"] == "AWS::Lambda::Version"
        assert version["Properties"]["FunctionName"] == {"Ref": function_id}
        # SnapStart bills each published version's snapshot while it exists.
        assert version["DeletionPolicy"] == "Delete"


def test_the_event_source_mapping_invokes_the_sinks_alias(synth: Synth) -> None:
    (esm,) = synth.resources("AWS::Lambda::EventSourceMapping").values()
    alias_id, _ = _alias_of(synth, _function_id(synth, HANDLERS["sink"]))
    # `{function name}:live`, cut out of the alias's ARN
    assert json.dumps({"Ref": alias_id}) in json.dumps(esm["Properties"]["FunctionName"])
    assert esm["Properties"]["FunctionName"]["Fn::Join"][1][-1] == ":live"


def test_the_http_api_invokes_the_apis_alias_and_may_invoke_only_it(synth: Synth) -> None:
    alias_id, _ = _alias_of(synth, _function_id(synth, HANDLERS["api"]))
    (integration,) = synth.resources("AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["IntegrationUri"] == {"Ref": alias_id}
    permissions = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert permissions
    assert all(p["FunctionName"] == {"Ref": alias_id} for p in permissions)
