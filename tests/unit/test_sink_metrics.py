"""The sink's metrics: one EMF document per endpoint, its figures under the one dimension set `service`, so
CloudWatch sums the totals over the documents, and the endpoint's id as a property, not a dimension: no custom
metric per endpoint (issue 20, item 6), its figures a Logs Insights query away."""

from __future__ import annotations

import json

import pytest

from spool.domain.delivery import DeliveryReport, EndpointOutcome
from spool.handlers.sink import emit_metrics
from spool.names import SINK_METRICS


def test_each_endpoint_gets_one_document_feeding_the_totals_with_its_id_as_a_property(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = DeliveryReport()
    report.endpoints["ep_a"] = EndpointOutcome(events_written=5, objects_written=1)
    report.endpoints["ep_b"] = EndpointOutcome(held=3, failed=2, error="store refused")

    emit_metrics(report)

    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [d["endpointId"] for d in documents] == ["ep_a", "ep_b"]
    for document in documents:
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["service"]]
        assert [m["Name"] for m in directive["Metrics"]] == list(SINK_METRICS)
    assert [documents[0][name] for name in SINK_METRICS] == [[5.0], [1.0], [0.0], [0.0]]
    assert [documents[1][name] for name in SINK_METRICS] == [[0.0], [0.0], [3.0], [2.0]]


def test_the_document_is_the_one_powertools_writes_for_the_same_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """The sink builds its EMF document by hand (handlers/sink.py says why); Powertools' EphemeralMetrics,
    given the same dimension sets and figures, must write the same document."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    from spool.handlers.sink import metrics_document
    from spool.observability import NAMESPACE, SERVICE

    outcome = EndpointOutcome(events_written=7, objects_written=2, held=1, failed=3)
    powertools = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    powertools.add_dimension(name="service", value=SERVICE)
    powertools.add_metadata(key="endpointId", value="ep_a")
    for name, value in zip(SINK_METRICS, (7, 2, 1, 3), strict=True):
        powertools.add_metric(name=name, unit=MetricUnit.Count, value=value)
    powertools.flush_metrics()
    [expected] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]

    ours = json.loads(metrics_document("ep_a", outcome, expected["_aws"]["Timestamp"]))

    assert ours == expected
    assert list(ours) == list(expected)


def test_no_document_when_powertools_metrics_are_disabled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make dev` sets POWERTOOLS_METRICS_DISABLED: there is no CloudWatch to read the documents locally."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    report = DeliveryReport()
    report.endpoints["ep_a"] = EndpointOutcome(events_written=5, objects_written=1)

    emit_metrics(report)

    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_records_without_an_endpoint_id_count_in_the_totals_only(capsys: pytest.CaptureFixture[str]) -> None:
    """A message without Spool's attributes decodes with an empty endpoint id; CloudWatch takes no empty
    dimension value, so its figures go under `service` alone."""
    report = DeliveryReport()
    report.endpoints[""] = EndpointOutcome(failed=1, error="a queued message was not a bundle of event lines")

    emit_metrics(report)

    [document] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert "endpointId" not in document
    assert document["DeliveryFailures"] == [1.0]
