"""The ingest queue's message format (domain/messages.py): bundles, flush triggers, size limits, and messages
without Spool's attributes."""

from __future__ import annotations

from spool.domain import messages
from spool.domain.messages import BUNDLE_MAX_BYTES, MESSAGE_MAX_BYTES, bundles, decode, flush_trigger, send_batches
from spool.domain.naming import ndjson_line

OWNER = {"tenantId": "ten_a", "endpointId": "ep_a"}


def line(n: int, size: int = 100) -> str:
    return ndjson_line(f"evt_{n:06d}", "order.created", {"pad": "x" * size}, "2026-04-14T10:30:00.000Z")


def test_a_requests_lines_for_one_endpoint_are_one_bundle_in_order() -> None:
    lines = [line(n) for n in range(100)]
    [bundle] = bundles("ten_a", "ep_a", lines)
    assert bundle.lines == lines
    assert decode(bundle.body, OWNER).lines == lines


def test_a_single_event_bundle_is_its_line_with_a_line_count_of_one() -> None:
    [bundle] = bundles("ten_a", "ep_a", [line(1)])
    assert bundle.body == line(1)
    assert messages.sqs_attributes(bundle) == {
        "tenantId": {"DataType": "String", "StringValue": "ten_a"},
        "endpointId": {"DataType": "String", "StringValue": "ep_a"},
        "lines": {"DataType": "Number", "StringValue": "1"},
    }


def test_a_bundle_carries_its_line_count_so_the_sink_need_not_count() -> None:
    lines = [line(n) for n in range(37)]
    [bundle] = bundles("ten_a", "ep_a", lines)
    attributes = {k: v["StringValue"] for k, v in messages.sqs_attributes(bundle).items()}
    assert decode(bundle.body, attributes).line_count == 37


def test_a_message_without_a_line_count_decodes_with_a_count_of_zero() -> None:
    decoded = decode(line(7), OWNER)
    assert (decoded.kind, decoded.tenant_id, decoded.endpoint_id) == ("event", "ten_a", "ep_a")
    assert decoded.line_count == 0  # no count sent: the sink takes it for an odd message


def test_bundles_split_only_where_the_size_limit_would_be_passed() -> None:
    lines = [line(n, size=60_000) for n in range(10)]  # about 600 KB
    found = bundles("ten_a", "ep_a", lines)
    assert [m for b in found for m in b.lines] == lines
    assert all(b.size <= MESSAGE_MAX_BYTES and len(b.body.encode()) <= BUNDLE_MAX_BYTES for b in found)
    assert len(found) == 3  # 4 + 4 + 2 lines of ~60 KB


def test_a_line_of_the_largest_allowed_size_fits_a_bundle_of_its_own() -> None:
    big = line(1, size=256 * 1024 - 200)
    found = bundles("ten_a", "ep_a", [line(0), big, line(2)])
    assert [b.lines for b in found] == [[line(0)], [big], [line(2)]]
    assert all(b.size <= MESSAGE_MAX_BYTES for b in found)


def test_flush_triggers_round_trip() -> None:
    trigger = flush_trigger("ten_a", "ep_a", 1_776_000_000, 30)
    attributes = {k: v["StringValue"] for k, v in messages.sqs_attributes(trigger).items()}
    decoded = decode(trigger.body, attributes)
    assert (decoded.kind, decoded.flush_at, decoded.lines) == ("flush", 1_776_000_000, [])
    assert trigger.delay_seconds == 30
    assert messages.owner(attributes) == ("ten_a", "ep_a")


def test_a_message_without_spools_attributes_has_no_owner() -> None:
    decoded = decode("anything", {})
    assert (decoded.tenant_id, decoded.endpoint_id) == ("", "")


def test_send_batches_keep_to_ten_entries_and_256_kib_per_call() -> None:
    small = [m for n in range(25) for m in bundles("ten_a", f"ep_{n}", [line(n)])]
    assert [len(b) for b in send_batches(small, size=lambda m: m.size)] == [10, 10, 5]
    large = [m for n in range(5) for m in bundles("ten_a", f"ep_{n}", [line(n, size=100_000)])]
    batches = list(send_batches(large, size=lambda m: m.size))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert all(sum(m.size for m in b) <= MESSAGE_MAX_BYTES for b in batches)


def test_lambda_and_api_message_shapes_decode_the_same() -> None:
    attributes = {"tenantId": "ten_a", "endpointId": "ep_a", "lines": "2"}
    body = f"{line(1)}\n{line(2)}"
    lambda_shape = {
        "body": body,
        "messageAttributes": {k: {"stringValue": v, "dataType": "String"} for k, v in attributes.items()},
    }
    api_shape = {
        "Body": body,
        "MessageAttributes": {k: {"StringValue": v, "DataType": "String"} for k, v in attributes.items()},
    }
    decoded = messages.decode_lambda_record(lambda_shape)
    assert decoded == messages.decode(body, messages.api_attributes(api_shape)) == messages.decode(body, attributes)
    assert (decoded.tenant_id, decoded.endpoint_id, decoded.line_count, decoded.lines) == (
        "ten_a",
        "ep_a",
        2,
        [line(1), line(2)],
    )
    assert messages.api_attributes(api_shape) == attributes


def test_a_message_without_spools_attributes_decodes_with_empty_ids() -> None:
    for decoded in (messages.decode_lambda_record({"body": "x"}), messages.decode("x", {})):
        assert (decoded.tenant_id, decoded.endpoint_id, decoded.kind, decoded.line_count) == ("", "", "event", 0)


def test_a_bundle_holds_its_lines_in_acceptance_order_whatever_their_order_in_the_request() -> None:
    """One request's events share their createdAt, so acceptance order is the order of their ids (the sink
    orders whole bundles by their first and last lines, domain/planner.py)."""
    request = [ndjson_line(i, "order.created", {}, "2026-04-14T10:30:00.000Z") for i in ("evt_z", "evt_a", "evt_m")]

    [bundle] = messages.bundles("ten_a", "ep_a", request)

    assert bundle.lines == [request[1], request[2], request[0]]
