"""Ingest queue, DLQ, sink function and its event source mapping."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from infra_synth import Synth, SynthFactory

from spool.config import ApiSettings, SinkSettings
from spool.domain import limits
from spool.domain.delivery import STEP_MARGIN_SECONDS
from spool.names import API_FUNCTION, SINK_FUNCTION
from spool_infra.ingest import SINK_TIMEOUT_SECONDS

FOURTEEN_DAYS = 14 * 24 * 3600


def _queues(synth: Synth) -> tuple[dict[str, Any], dict[str, Any]]:
    queues = synth.resources("AWS::SQS::Queue")
    ingest = next(q["Properties"] for q in queues.values() if "RedrivePolicy" in q["Properties"])
    dlq = next(q["Properties"] for q in queues.values() if "RedrivePolicy" not in q["Properties"])
    return ingest, dlq


def _function(synth: Synth, handler: str) -> dict[str, Any]:
    return next(
        f["Properties"]
        for f in synth.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == handler
    )


def test_both_queues_are_encrypted_and_keep_messages_14_days(synth: Synth) -> None:
    for queue in _queues(synth):
        assert queue["SqsManagedSseEnabled"] is True
        assert queue["MessageRetentionPeriod"] == FOURTEEN_DAYS


def test_queues_refuse_plain_http(template: Template) -> None:
    template.resource_count_is("AWS::SQS::QueuePolicy", 2)
    template.all_resources_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


def test_ingest_queue_dead_letters_after_8_receives(synth: Synth, template: Template) -> None:
    ingest, _ = _queues(synth)
    policy = ingest["RedrivePolicy"]
    assert policy["maxReceiveCount"] == 8
    dlq_id = policy["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert synth.json["Resources"][dlq_id]["Type"] == "AWS::SQS::Queue"
    assert "RedrivePolicy" not in synth.json["Resources"][dlq_id]["Properties"]


def test_visibility_timeout_is_at_least_six_sink_timeouts(synth: Synth) -> None:
    ingest, _ = _queues(synth)
    sink = _function(synth, "spool.handlers.sink.lambda_handler")
    assert ingest["VisibilityTimeout"] >= 6 * sink["Timeout"]


def test_event_source_mapping_uses_context_settings(synth_with: SynthFactory) -> None:
    template = synth_with({"batchSize": 500, "maxBatchingWindowSeconds": 7, "maxConcurrency": 4}).template
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 500,
            "MaximumBatchingWindowInSeconds": 7,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 4},
        },
    )
    # The sink sends its flush triggers that window early: one setting, both places.
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"SPOOL_BATCHING_WINDOW_SECONDS": "7"})}},
    )


def test_event_source_mapping_defaults_and_target(synth: Synth, template: Template) -> None:
    template.resource_count_is("AWS::Lambda::EventSourceMapping", 1)
    (esm,) = synth.resources("AWS::Lambda::EventSourceMapping").values()
    props = esm["Properties"]
    assert props["BatchSize"] == 1000
    assert props["MaximumBatchingWindowInSeconds"] == 5
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # `{function name}:live`, the name cut out of the alias's ARN (test_cdk_snapstart.py checks the alias).
    _, (split, suffix) = props["FunctionName"]["Fn::Join"]
    assert suffix == ":live"
    alias = synth.json["Resources"][split["Fn::Select"][1]["Fn::Split"][1]["Ref"]]
    assert alias["Type"] == "AWS::Lambda::Alias"
    function_id = alias["Properties"]["FunctionName"]["Ref"]
    assert synth.json["Resources"][function_id]["Properties"]["Handler"] == "spool.handlers.sink.lambda_handler"
    queue_id = props["EventSourceArn"]["Fn::GetAtt"][0]
    assert "RedrivePolicy" in synth.json["Resources"][queue_id]["Properties"]


def test_sink_function_runtime_and_environment(synth: Synth) -> None:
    sink = _function(synth, "spool.handlers.sink.lambda_handler")
    assert sink["Runtime"] == "python3.13"
    assert sink["Architectures"] == ["arm64"]
    env = sink["Environment"]["Variables"]
    assert set(env) == {
        "SPOOL_TABLE_NAME",
        "SPOOL_QUEUE_URL",
        "SPOOL_STAGING_BUCKET",
        "SPOOL_ALLOW_INSECURE_ENDPOINTS",
        "SPOOL_ENDPOINT_CACHE_SECONDS",
        "SPOOL_RETRY_BASE_SECONDS",
        "SPOOL_RETRY_MAX_SECONDS",
        "SPOOL_BATCHING_WINDOW_SECONDS",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "POWERTOOLS_TRACE_DISABLED",
    }
    assert env["POWERTOOLS_SERVICE_NAME"] == "spool-sink"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Spool"
    assert env["SPOOL_ALLOW_INSECURE_ENDPOINTS"] == "false"
    assert (env["SPOOL_ENDPOINT_CACHE_SECONDS"], env["SPOOL_RETRY_BASE_SECONDS"]) == ("30", "10")
    assert env["SPOOL_RETRY_MAX_SECONDS"] == "900"
    # The flush trigger is sent the event source mapping's batching window early (domain/delivery.py).
    assert env["SPOOL_BATCHING_WINDOW_SECONDS"] == "5"
    assert "SPOOL_LOCAL_ROOT" not in env


def test_insecure_endpoints_only_when_the_context_allows(synth_with: SynthFactory) -> None:
    synth = synth_with({"allowInsecureEndpoints": "true"})
    for handler in ("spool.handlers.sink.lambda_handler", "spool.handlers.api.lambda_handler"):
        assert _function(synth, handler)["Environment"]["Variables"]["SPOOL_ALLOW_INSECURE_ENDPOINTS"] == "true"


def test_both_functions_log_json_without_lambdas_start_end_report_lines(synth: Synth) -> None:
    for handler in ("spool.handlers.sink.lambda_handler", "spool.handlers.api.lambda_handler"):
        logging = _function(synth, handler)["LoggingConfig"]
        # Platform lines only from WARN; application lines are filtered by Powertools (level and sampling).
        assert (logging["LogFormat"], logging["SystemLogLevel"], logging["ApplicationLogLevel"]) == (
            "JSON",
            "WARN",
            "DEBUG",
        )
        assert "LogGroup" in logging


@pytest.mark.parametrize(
    ("handler", "model"),
    [(API_FUNCTION.handler, ApiSettings), (SINK_FUNCTION.handler, SinkSettings)],
    ids=["api", "sink"],
)
def test_each_function_is_given_exactly_the_settings_its_model_reads(
    synth: Synth, handler: str, model: type[ApiSettings] | type[SinkSettings]
) -> None:
    # The stack writes the environment from the model's field names (config.py); this holds the two together:
    # every variable set is one the model reads, and every setting it needs is there and parses.
    env = _function(synth, handler)["Environment"]["Variables"]
    spool = {name: value if isinstance(value, str) else "resolved-at-deploy" for name, value in env.items()}
    spool = {name: value for name, value in spool.items() if name.startswith("SPOOL_")}
    assert set(spool) <= {field.alias for field in model.model_fields.values()}
    model.from_env(spool)


def test_the_sink_timeout_covers_its_longest_store_call_and_the_calls_around_it() -> None:
    # The sink starts no store call without its whole deadline left (domain/delivery.py), so the timeout must
    # leave room for the longest one.
    assert limits.STORE_CALL_MAX_SECONDS + STEP_MARGIN_SECONDS < SINK_TIMEOUT_SECONDS
