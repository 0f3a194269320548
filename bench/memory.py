"""B7: peak memory of the sink handling one 6 MB batch, in a fresh process (`python -m bench.memory`).

The event is built as Lambda's event source mapping delivers it (records of ~1 KB events up to the 6 MB
invocation payload), kept as the JSON text the runtime receives and parsed from it, then handed to the real
sink entry point over the in-memory stubs; the endpoint's batchSize takes the whole batch, so it is written
as one object (the most the sink holds at once). Peak RSS is what Lambda reports as "Max Memory Used";
tracemalloc's peak is the Python heap the invocation itself allocated. `--parquet` makes the endpoint write
Parquet (pyarrow is imported by that flush, as in a deployed sink, and counts in the peak).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

PAYLOAD_CAP_BYTES = 6 * 1024 * 1024  # Lambda's invocation payload limit for an SQS batch


def rss_mb() -> float:
    """Peak RSS of this process so far, MB.

    VmHWM belongs to the process image, so it starts afresh at exec; ru_maxrss does not (Linux carries the
    parent's peak across fork and exec, and `make bench` forks this process from a large parent).
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    from bench import stubs
    from spool.domain.naming import iso_timestamp, ndjson_line
    from spool.handlers import sink
    from spool.local.lambda_context import FakeContext

    trace = "--trace" in sys.argv
    parquet = "--parquet" in sys.argv
    endpoint_id = "ep_" + "0" * 28
    baseline = rss_mb()

    records: list[str] = []
    size = len('{"Records":[]}')
    sent_ms = int(time.time() * 1000) - 60_000
    while True:
        n = len(records)
        line = ndjson_line(f"evt_{n:028x}", "order.created", stubs.payload(n), iso_timestamp((sent_ms + n) / 1000))
        record = json.dumps(stubs.sqs_record(n, endpoint_id, line, sent_ms + n))
        if size + len(record) + 1 > PAYLOAD_CAP_BYTES:
            break
        records.append(record)
        size += len(record) + 1
    payload = ('{"Records":[' + ",".join(records) + "]}").encode()
    count = len(records)
    del records
    store = stubs.CountingStore()
    services, _, queue = stubs.sink_services([stubs.endpoint(endpoint_id, batch_size=count, parquet=parquet)], store)
    handler = sink.make_handler(lambda: services)
    event = json.loads(payload)  # the runtime keeps the received bytes alive while the handler runs
    before = rss_mb()
    if trace:
        tracemalloc.start()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        answer = handler(event, FakeContext("spool-sink", timeout_seconds=900))
    heap_peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    if answer.get("batchItemFailures") or queue.flushes or store.puts != 1:
        raise RuntimeError(f"the batch was not written as one object: {answer}")
    print(
        json.dumps(
            {
                "peak_rss_mb": round(rss_mb(), 1),
                "baseline_rss_mb": round(baseline, 1),
                "rss_with_event_mb": round(before, 1),
                "handler_heap_peak_mb": round(heap_peak, 1) if heap_peak is not None else None,
                "payload_mb": round(len(payload) / 2**20, 2),
                "records": len(event["Records"]),
                "object_mb": round(store.bytes_written / 2**20, 2),
                "format": "parquet" if parquet else "ndjson",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
