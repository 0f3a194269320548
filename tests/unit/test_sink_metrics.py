"""The sink's metrics: one EMF document per endpoint, its figures under the totals' dimension set (`service`)
and the endpoint's (`service` + `endpointId`), so CloudWatch sums the totals over the documents."""

from __future__ import annotations

import json

import pytest

from spool.domain.delivery import DeliveryReport, EndpointOutcome
from spool.handlers.sink import emit_metrics
from spool.names import SINK_METRICS


def test_each_endpoint_gets_one_document_feeding_the_totals_and_its_own_dimension(
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
        assert directive["Dimensions"] == [["service"], ["service", "endpointId"]]
        assert [m["Name"] for m in directive["Metrics"]] == list(SINK_METRICS)
    assert [documents[0][name] for name in SINK_METRICS] == [[5.0], [1.0], [0.0], [0.0]]
    assert [documents[1][name] for name in SINK_METRICS] == [[0.0], [0.0], [3.0], [2.0]]
