"""HTTP API, its stage and the api function."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template
from infra_synth import Synth, SynthFactory


def _api_function(synth: Synth) -> dict[str, Any]:
    return next(
        f["Properties"]
        for f in synth.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "spool.handlers.api.lambda_handler"
    )


def test_http_api_routes_everything_to_the_api_function_without_authorizer(synth: Synth, template: Template) -> None:
    template.has_resource_properties("AWS::ApiGatewayV2::Api", {"ProtocolType": "HTTP"})
    template.has_resource_properties("AWS::ApiGatewayV2::Route", {"RouteKey": "$default", "AuthorizationType": "NONE"})
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Integration", {"IntegrationType": "AWS_PROXY", "PayloadFormatVersion": "2.0"}
    )
    template.resource_count_is("AWS::ApiGatewayV2::Authorizer", 0)


def test_stage_is_throttled_from_context(synth_with: SynthFactory) -> None:
    template = synth_with({"apiRateLimit": 50, "apiBurstLimit": 70}).template
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AutoDeploy": True,
            "DefaultRouteSettings": {"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 70},
        },
    )


def test_stage_writes_json_access_logs_without_headers(synth: Synth) -> None:
    (stage,) = synth.resources("AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["AccessLogSettings"]
    assert synth.json["Resources"][settings["DestinationArn"]["Fn::GetAtt"][0]]["Type"] == "AWS::Logs::LogGroup"
    fields = json.loads(settings["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert fields["status"] == "$context.status"
    assert not any("header" in value.lower() for value in fields.values())


def test_an_access_log_line_costs_what_the_cost_model_counts(synth: Synth) -> None:
    """A single-event request's line, with values as API Gateway writes them, is no larger than bench/cost.py's
    figure for it (CloudWatch adds 26 bytes per log event)."""
    from bench.cost import ACCESS_LOG_BYTES

    (stage,) = synth.resources("AWS::ApiGatewayV2::Stage").values()
    typical = {
        "$context.requestId": "Q3kxVg6OIAMEbpw=",
        "$context.identity.sourceIp": "203.0.113.24",
        "$context.httpMethod": "POST",
        "$context.path": "/api/v1/events",
        "$context.status": "202",
        "$context.responseLatency": "25",
        "$context.integrationErrorMessage": "-",
        "$context.error.message": "-",
    }
    line = stage["Properties"]["AccessLogSettings"]["Format"]
    for variable, value in typical.items():
        line = line.replace(variable, value)
    assert "$context" not in line, "a field without a typical value here"
    assert len(line.encode()) + 26 <= ACCESS_LOG_BYTES


def test_api_function_runtime_timeout_and_environment(synth: Synth) -> None:
    fn = _api_function(synth)
    assert fn["Runtime"] == "python3.13"
    assert fn["Architectures"] == ["arm64"]
    assert fn["Timeout"] < 30  # the HTTP API integration limit
    env = fn["Environment"]["Variables"]
    assert set(env) == {
        "SPOOL_TABLE_NAME",
        "SPOOL_QUEUE_URL",
        "SPOOL_DLQ_URL",
        "SPOOL_KMS_KEY_ID",
        "SPOOL_PEPPER_SECRET_ID",
        "SPOOL_VERIFY_FUNCTION_NAME",
        "SPOOL_SINK_ROLE_ARN",
        "SPOOL_ALLOW_INSECURE_ENDPOINTS",
        "SPOOL_PARQUET",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "POWERTOOLS_TRACE_DISABLED",
    }
    assert env["POWERTOOLS_SERVICE_NAME"] == "spool-api"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert env["SPOOL_ALLOW_INSECURE_ENDPOINTS"] == "false"
    assert env["SPOOL_PARQUET"] == "true"


def test_the_api_is_told_parquet_is_off_when_the_sink_is_built_without_it(synth_with: SynthFactory) -> None:
    assert _api_function(synth_with({"parquet": False}))["Environment"]["Variables"]["SPOOL_PARQUET"] == "false"


def test_api_environment_points_at_the_stack_resources(synth: Synth) -> None:
    env = _api_function(synth)["Environment"]["Variables"]
    types = {
        "SPOOL_TABLE_NAME": "AWS::DynamoDB::Table",
        "SPOOL_QUEUE_URL": "AWS::SQS::Queue",
        "SPOOL_DLQ_URL": "AWS::SQS::Queue",
        "SPOOL_KMS_KEY_ID": "AWS::KMS::Key",
        "SPOOL_PEPPER_SECRET_ID": "AWS::SecretsManager::Secret",
    }
    for name, cfn_type in types.items():
        assert synth.json["Resources"][env[name]["Ref"]]["Type"] == cfn_type, name
    # `{name}:live`, joined from the alias's ARN (tests/infra/test_cdk_verify.py)
    refs = _refs(env["SPOOL_VERIFY_FUNCTION_NAME"])
    assert [synth.json["Resources"][ref]["Type"] for ref in refs] == ["AWS::Lambda::Alias"]
    assert env["SPOOL_QUEUE_URL"] != env["SPOOL_DLQ_URL"]


def test_api_hands_out_the_sink_roles_arn_which_is_also_an_output(synth: Synth) -> None:
    env = _api_function(synth)["Environment"]["Variables"]
    role, attribute = env["SPOOL_SINK_ROLE_ARN"]["Fn::GetAtt"]
    assert (synth.json["Resources"][role]["Type"], attribute) == ("AWS::IAM::Role", "Arn")
    sink = next(
        f["Properties"]
        for f in synth.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "spool.handlers.sink.lambda_handler"
    )
    assert sink["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    assert synth.json["Outputs"]["SinkRoleArn"]["Value"] == {"Fn::GetAtt": [role, "Arn"]}


def test_functions_trace_with_xray_unless_disabled(synth: Synth, synth_with: SynthFactory) -> None:
    synth.template.all_resources_properties("AWS::Lambda::Function", {"TracingConfig": {"Mode": "Active"}})
    untraced = synth_with({"tracing": False})
    untraced.template.all_resources_properties(
        "AWS::Lambda::Function",
        {
            "TracingConfig": Match.absent(),
            "Environment": {"Variables": Match.object_like({"POWERTOOLS_TRACE_DISABLED": "true"})},
        },
    )


def test_custom_domain_maps_the_default_stage(synth_with: SynthFactory) -> None:
    synth = synth_with(
        {
            "domainName": "spool.example.com",
            "certificateArn": "arn:aws:acm:us-east-1:111111111111:certificate/abc",
        }
    )
    synth.template.has_resource_properties("AWS::ApiGatewayV2::DomainName", {"DomainName": "spool.example.com"})
    synth.template.resource_count_is("AWS::ApiGatewayV2::ApiMapping", 1)
    assert "CustomDomainTarget" in synth.json["Outputs"]


def test_lambda_architecture_context_switches_both_functions(synth_with: SynthFactory) -> None:
    synth_with({"lambdaArchitecture": "x86_64"}).template.all_resources_properties(
        "AWS::Lambda::Function", {"Architectures": ["x86_64"]}
    )


def _refs(value: Any) -> list[str]:
    """The logical ids `value` refers to with Ref, at any depth."""
    if isinstance(value, dict):
        return [value["Ref"]] if "Ref" in value else [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []
