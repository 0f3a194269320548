"""B1 and B2: handler CPU time per event against the bare references, in this process.

B1 calls the real sink entry point (`spool.handlers.sink.lambda_handler`, Powertools decorators included)
with its services built over fakes and a counting store (NDJSON endpoints, and a Parquet endpoint against
a reference that writes the same Parquet file with pyarrow directly); B2 calls the real api entry point
(`spool.handlers.api.lambda_handler`) with a batch of 100 events, its SQS adapter over a stub client.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from bench import stubs
from bench.common import measure_ratio
from bench.reference import reference_ingest, reference_sink, reference_sink_parquet
from spool.local.front import to_event
from spool.local.lambda_context import FakeContext

# (events in the SQS batch, endpoints they are spread over, events per message); batchSize = events per
# endpoint, so all is written. The first case is the figure (B1_sink_vs_reference: 1,000 events in 100-event
# bundles, what 100-event requests give); the single-event cases are the worst case, in more_figures.
SINK_CASES = [(1000, 1, 100), (5000, 5, 100), (100, 1, 1), (1000, 1, 1), (5000, 1, 1)]
# The first case again for a Parquet endpoint (B1_sink_vs_reference_parquet in more_figures).
PARQUET_CASES = [(1000, 1, 100)]
INGEST_EVENTS = 100


def run_b1(*, rounds: int) -> tuple[float, dict[str, Any]]:
    """The ratio of the first case; the worst over all cases in more_figures; details per case (CPU
    microseconds per event)."""
    from spool.handlers import sink

    cases = {name: _sink_case(sink, case, rounds, parquet=False) for name, case in _named(SINK_CASES)}
    parquet = {name: _sink_case(sink, case, rounds, parquet=True) for name, case in _named(PARQUET_CASES)}
    first = next(iter(cases.values()))["ratio"]
    worst = max(case["ratio"] for case in cases.values())
    figures = {
        "B1_sink_vs_reference_worst_case": round(worst, 3),
        "B1_sink_vs_reference_parquet": round(next(iter(parquet.values()))["ratio"], 3),
    }
    detail = {"cases": cases, "parquet_cases": parquet, "unit": "CPU microseconds per event (thread time)"}
    return first, detail | {"figures": figures}


def _named(cases: list[tuple[int, int, int]]) -> list[tuple[str, tuple[int, int, int]]]:
    return [(f"{count}x{spread}ep/{per_message}", (count, spread, per_message)) for count, spread, per_message in cases]


def _sink_case(sink: Any, case: tuple[int, int, int], rounds: int, *, parquet: bool) -> dict[str, Any]:
    """One case: the handler once (checking it wrote everything), then handler vs reference."""
    count, spread, per_message = case
    context = FakeContext("spool-sink", timeout_seconds=900)
    ids = [f"ep_{n:028x}" for n in range(spread)]
    store = stubs.CountingStore()
    endpoints = [stubs.endpoint(i, batch_size=count // spread, parquet=parquet) for i in ids]
    services, _, queue = stubs.sink_services(endpoints, store)
    event = stubs.sqs_event(count, ids, per_message=per_message)
    reference = reference_sink_parquet if parquet else reference_sink
    handler = sink.make_handler(lambda: services)  # the deployed entry point's decorators, over the stubs
    with _quiet():
        answer = handler(event, context)
        if answer.get("batchItemFailures") or queue.flushes or store.puts != spread:
            raise RuntimeError(f"the sink did not write the {count}-event batch in full: {answer}")
        ratio = measure_ratio(lambda: handler(event, context), lambda: reference(event, store), rounds=rounds)
    return ratio.as_dict(per=count)


def run_b2(*, rounds: int) -> tuple[float, dict[str, Any]]:
    from spool.handlers import api

    sqs = stubs.StubSqsClient()
    rig = stubs.api_services(sqs)
    headers = {"x-api-key": rig.api_key, "content-type": "application/json", "host": "api.example.com"}
    event = to_event("POST", "/api/v1/events", headers, stubs.events_body(INGEST_EVENTS), "198.51.100.7")
    context = FakeContext("spool-api")
    handler = api.make_handler(lambda: rig.services)
    with _quiet():
        before = sqs.lines
        answer = handler(event, context)
        if answer["statusCode"] != 202 or sqs.lines - before != INGEST_EVENTS:
            raise RuntimeError(f"the api did not accept the batch: {answer['statusCode']} {answer['body'][:300]}")

        def reference() -> object:
            return reference_ingest(event, sqs=sqs, queue_url=stubs.QUEUE_URL, repo=rig.repo, tenant_id=rig.tenant_id)

        ratio = measure_ratio(lambda: handler(event, context), reference, rounds=rounds)
    return ratio.ratio, {"batch": ratio.as_dict(per=INGEST_EVENTS), "unit": "CPU microseconds per event (thread time)"}


@contextlib.contextmanager
def _quiet() -> Any:
    """Powertools Metrics prints its EMF document to stdout after every invocation, as in Lambda."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield
