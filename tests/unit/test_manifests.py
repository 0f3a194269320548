"""Sealed partitions (issue 22, item 4): a folder gets `_manifest.json` once its time window has ended and the
interval, the batching window and the grace have passed; it lists exactly the folder's objects with their
bytes, events, SHA-256 and first and last lines, is written once and never changes; lines that reach the
folder later get `_manifest.2.json`. Over fakes; the local runtime does it for real in
tests/reliability/test_manifests.py."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from spool.domain import keys, manifests
from spool.domain.planner import InboundRecord
from tests.unit.conftest import ApiHarness, SinkHarness
from tests.unit.test_delivery import add_endpoint, deliver, events, store
from tests.unit.test_delivery_layouts import configure

MINUTE_FOLDERS = "{prefix}{date}/{hour}{minute}/{timestamp}-{batch}"


def seal_trigger(sink: SinkHarness, window: int, seal_at: int, *, name: str = "seal") -> InboundRecord:
    return InboundRecord(
        f"msg-{name}-{window}", f"rh-{name}-{window}", "ten_sink", "ep_a", "seal", seal_at - 120, kind="seal",
        flush_at=seal_at, window=window,
    )  # fmt: skip


def manifest_of(sink: SinkHarness, key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(store(sink).objects[key])
    return document


def data_keys(sink: SinkHarness) -> list[str]:
    return sorted(k for k in store(sink).objects if "/_manifest" not in k)


def sealed_endpoint(sink: SinkHarness) -> None:
    add_endpoint(sink, batch_size=2, interval=3)
    configure(sink, keyTemplate=MINUTE_FOLDERS, manifests=True)


def test_a_written_object_schedules_its_windows_seal_after_the_interval_the_window_and_the_grace(
    sink_harness: SinkHarness,
) -> None:
    sealed_endpoint(sink_harness)

    deliver(sink_harness, events(sink_harness, "ep_a", 2))

    window = keys.time_window(MINUTE_FOLDERS, sink_harness.clock[0])
    assert window is not None
    [(_, _, start, seal_at, delay)] = sink_harness.queue.seals
    assert start == window[0]
    assert seal_at == manifests.seal_at(window[1], 3, 0.0) == window[1] + 3 + manifests.SEAL_GRACE_SECONDS
    assert delay == round(seal_at - sink_harness.clock[0])


def test_the_seal_lists_exactly_the_folders_objects_with_their_sizes_counts_and_digests(
    sink_harness: SinkHarness,
) -> None:
    sealed_endpoint(sink_harness)
    deliver(sink_harness, events(sink_harness, "ep_a", 4))
    [(_, _, window, seal_at, _)] = sink_harness.queue.seals
    sink_harness.clock[0] = seal_at

    report = deliver(sink_harness, [seal_trigger(sink_harness, window, seal_at)])

    assert report.retry == set()
    [key] = [k for k in store(sink_harness).objects if k.endswith("_manifest.json")]
    folder = keys.folder(key)
    document = manifest_of(sink_harness, key)
    assert document["partition"] == folder and document["epoch"] == 1 and document["endpointId"] == "ep_a"
    objects = store(sink_harness).objects
    assert [o["key"] for o in document["objects"]] == data_keys(sink_harness)
    for listed in document["objects"]:
        body = objects[listed["key"]]
        lines = body.decode().splitlines()
        assert listed["bytes"] == len(body)
        assert listed["sha256"] == hashlib.sha256(body).hexdigest()
        assert listed["events"] == len(lines)
        assert (listed["firstId"], listed["lastId"]) == (json.loads(lines[0])["id"], json.loads(lines[-1])["id"])
        assert listed["lastCreatedAt"] == json.loads(lines[-1])["createdAt"]
    assert document["events"] == 4


def test_a_seal_that_runs_again_leaves_the_manifest_byte_identical(sink_harness: SinkHarness) -> None:
    sealed_endpoint(sink_harness)
    deliver(sink_harness, events(sink_harness, "ep_a", 2))
    [(_, _, window, seal_at, _)] = sink_harness.queue.seals
    sink_harness.clock[0] = seal_at
    deliver(sink_harness, [seal_trigger(sink_harness, window, seal_at)])
    before = dict(store(sink_harness).objects)
    sink_harness.clock[0] += 60

    deliver(sink_harness, [seal_trigger(sink_harness, window, seal_at, name="again")])

    assert store(sink_harness).objects == before


def test_lines_that_reach_a_sealed_folder_later_get_the_next_epoch_and_the_first_manifest_stays(
    sink_harness: SinkHarness,
) -> None:
    sealed_endpoint(sink_harness)
    first_try = sink_harness.clock[0]
    records = events(sink_harness, "ep_a", 4)
    deliver(sink_harness, records[:2])
    [(_, _, window, seal_at, _)] = sink_harness.queue.seals
    sink_harness.clock[0] = seal_at
    deliver(sink_harness, [seal_trigger(sink_harness, window, seal_at)])
    [first] = [k for k in store(sink_harness).objects if k.endswith("_manifest.json")]
    before = store(sink_harness).objects[first]

    # The last two were first tried in the window (a store that was down, a redrive): their object is named
    # for it and lands in the sealed folder; a seal is sent at once.
    late = [dataclasses.replace(r, receive_count=5, first_attempt=first_try) for r in records[2:]]
    deliver(sink_harness, late)
    [(_, _, again_window, again_at, delay)] = sink_harness.queue.seals[1:]
    deliver(sink_harness, [seal_trigger(sink_harness, again_window, again_at, name="late")])

    assert (again_window, delay) == (window, 0)
    assert store(sink_harness).objects[first] == before
    second = manifest_of(sink_harness, first.replace("_manifest.json", "_manifest.2.json"))
    assert second["epoch"] == 2 and second["events"] == 2
    assert {o["key"] for o in second["objects"]} | {o["key"] for o in json.loads(before)["objects"]} == set(
        data_keys(sink_harness)
    )


def test_an_endpoint_without_manifests_sends_no_seal(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=2)

    deliver(sink_harness, events(sink_harness, "ep_a", 2))

    assert sink_harness.queue.seals == []


def test_manifests_need_a_time_part_in_the_folder_naming_key_template(harness: ApiHarness) -> None:
    from tests.conftest import spec_body

    body = spec_body(manifests=True, keyTemplate="{prefix}{eventType}/{timestamp}-{batch}")

    reply = harness.call("POST", "/api/v1/endpoints", body)

    assert reply.status == 422
    assert [f["field"] for f in reply.json()["error"]["fields"]] == ["storageConfig.keyTemplate"]
    ok = harness.call("POST", "/api/v1/endpoints", spec_body(manifests=True, keyTemplate=MINUTE_FOLDERS))
    assert ok.status == 201, ok.text
