"""Alarms and dashboard."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template
from infra_synth import Synth, SynthFactory


def _alarms(synth: Synth) -> list[dict[str, Any]]:
    return [a["Properties"] for a in synth.resources("AWS::CloudWatch::Alarm").values()]


def _alarm_on(synth: Synth, metric: str, namespace: str) -> dict[str, Any]:
    (alarm,) = [a for a in _alarms(synth) if a["MetricName"] == metric and a["Namespace"] == namespace]
    return alarm


def test_dlq_depth_alarm_fires_on_the_first_message(synth: Synth) -> None:
    alarm = _alarm_on(synth, "ApproximateNumberOfMessagesVisible", "AWS/SQS")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    (dimension,) = alarm["Dimensions"]
    queue = synth.json["Resources"][dimension["Value"]["Fn::GetAtt"][0]]
    assert "RedrivePolicy" not in queue["Properties"]  # the DLQ


def test_oldest_message_alarm_watches_the_ingest_queue(synth_with: SynthFactory) -> None:
    synth = synth_with({"oldestMessageAlarmSeconds": 1200})
    alarm = _alarm_on(synth, "ApproximateAgeOfOldestMessage", "AWS/SQS")
    assert alarm["Threshold"] == 1200
    (dimension,) = alarm["Dimensions"]
    assert "RedrivePolicy" in synth.json["Resources"][dimension["Value"]["Fn::GetAtt"][0]]["Properties"]


def test_function_error_alarms_cover_sink_and_api(synth: Synth) -> None:
    errors = [a for a in _alarms(synth) if a["MetricName"] == "Errors" and a["Namespace"] == "AWS/Lambda"]
    handlers = {synth.json["Resources"][a["Dimensions"][0]["Value"]["Ref"]]["Properties"]["Handler"] for a in errors}
    assert handlers == {"spool.handlers.sink.lambda_handler", "spool.handlers.api.lambda_handler"}


def test_api_5xx_alarm(synth: Synth) -> None:
    alarm = _alarm_on(synth, "5xx", "AWS/ApiGateway")
    assert alarm["Threshold"] == 0
    assert {d["Name"] for d in alarm["Dimensions"]} == {"ApiId"}


def test_every_alarm_notifies_the_topic_and_tolerates_no_data(synth: Synth, template: Template) -> None:
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    for alarm in _alarms(synth):
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["TreatMissingData"] == "notBreaching"
    template.resource_count_is("AWS::CloudWatch::Alarm", 5)


def test_alarm_email_subscribes_to_the_topic(synth_with: SynthFactory) -> None:
    synth_with({"alarmEmail": "ops@example.com"}).template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


def test_dashboard_shows_the_powertools_metrics(synth: Synth) -> None:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    text = body if isinstance(body, str) else json.dumps(body)
    for metric, service in [
        ("EventsAccepted", "spool-api"),
        ("EventsWritten", "spool-sink"),
        ("ObjectsWritten", "spool-sink"),
        ("HeldBack", "spool-sink"),
        ("DeliveryFailures", "spool-sink"),
    ]:
        assert f'\\"Spool\\",\\"{metric}\\",\\"service\\",\\"{service}\\"' in text, metric
