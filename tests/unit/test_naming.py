"""What lands in storage: NDJSON lines, object bodies, object keys and timestamps (SPEC: What lands in storage)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from spool.domain.naming import iso_timestamp, ndjson_body, ndjson_line, object_key

# 2026-04-14T10:30:00Z, the SPEC's example flush.
FLUSH_AT = datetime(2026, 4, 14, 10, 30, tzinfo=UTC).timestamp()


def test_ndjson_line_matches_the_spec_example_byte_for_byte() -> None:
    line = ndjson_line("evt_abc", "order.created", {"orderId": "ord_123"}, "2026-04-14T10:30:00Z")

    assert line == (
        '{"id":"evt_abc","eventType":"order.created","payload":{"orderId":"ord_123"},"createdAt":"2026-04-14T10:30:00Z"}'
    )


def test_ndjson_line_keeps_keys_in_spec_order() -> None:
    line = ndjson_line("evt_1", "a.b", {"z": 1, "a": 2}, "2026-04-14T10:30:00.000Z")

    assert list(json.loads(line)) == ["id", "eventType", "payload", "createdAt"]


def test_ndjson_line_keeps_payload_key_order_as_sent() -> None:
    line = ndjson_line("evt_1", "a.b", {"z": 1, "a": 2}, "2026-04-14T10:30:00.000Z")

    assert '"payload":{"z":1,"a":2}' in line


def test_ndjson_line_has_no_newline_and_no_spaces_between_tokens() -> None:
    line = ndjson_line("evt_1", "a.b", {"k": [1, 2, {"x": None}]}, "2026-04-14T10:30:00.000Z")

    assert "\n" not in line
    assert ", " not in line
    assert ": " not in line


def test_ndjson_line_writes_non_ascii_as_utf8_not_escapes() -> None:
    line = ndjson_line("evt_1", "a.b", {"name": "Zoë 🚀"}, "2026-04-14T10:30:00.000Z")

    assert "Zoë 🚀" in line
    assert "\\u" not in line


def test_ndjson_line_escapes_a_newline_inside_the_payload() -> None:
    line = ndjson_line("evt_1", "a.b", {"text": "two\nlines"}, "2026-04-14T10:30:00.000Z")

    assert "\n" not in line
    assert json.loads(line)["payload"]["text"] == "two\nlines"


def test_ndjson_body_ends_every_line_with_a_newline() -> None:
    assert ndjson_body(["{}", '{"a":1}']) == b'{}\n{"a":1}\n'


def test_ndjson_body_of_one_line_is_that_line_and_a_newline() -> None:
    assert ndjson_body(['{"a":1}']) == b'{"a":1}\n'


def test_ndjson_body_is_utf8() -> None:
    assert ndjson_body(['{"a":"é"}']) == '{"a":"é"}\n'.encode()


def test_object_key_matches_the_spec_example_layout() -> None:
    key = object_key("events/production/", FLUSH_AT, 1)

    assert key == f"events/production/2026-04-14/{int(FLUSH_AT)}-001.ndjson"


def test_object_key_without_prefix_starts_with_the_date() -> None:
    assert object_key("", FLUSH_AT, 1) == f"2026-04-14/{int(FLUSH_AT)}-001.ndjson"


@pytest.mark.parametrize(("batch", "suffix"), [(1, "001"), (42, "042"), (999, "999"), (1000, "1000")])
def test_object_key_pads_the_batch_counter_to_three_digits(batch: int, suffix: str) -> None:
    assert object_key("p/", FLUSH_AT, batch).endswith(f"-{suffix}.ndjson")


def test_object_key_uses_whole_unix_seconds() -> None:
    assert object_key("p/", FLUSH_AT + 0.999, 1) == f"p/2026-04-14/{int(FLUSH_AT)}-001.ndjson"


def test_object_key_date_is_the_utc_date_of_the_flush() -> None:
    just_before_midnight = datetime(2026, 4, 14, 23, 59, 59, tzinfo=UTC).timestamp()

    assert object_key("", just_before_midnight, 1).startswith("2026-04-14/")
    assert object_key("", just_before_midnight + 1, 1).startswith("2026-04-15/")


def test_object_key_with_gzip_ends_in_ndjson_gz() -> None:
    assert object_key("p/", FLUSH_AT, 3, gzip=True) == f"p/2026-04-14/{int(FLUSH_AT)}-003.ndjson.gz"


def test_object_keys_sort_by_flush_time_within_a_day() -> None:
    keys = [object_key("p/", FLUSH_AT + offset, 1) for offset in (0, 1, 59, 3600)]

    assert keys == sorted(keys)


def test_iso_timestamp_is_utc_with_milliseconds_and_z() -> None:
    assert iso_timestamp(FLUSH_AT + 0.123) == "2026-04-14T10:30:00.123Z"


def test_iso_timestamp_of_a_whole_second_keeps_three_decimals() -> None:
    assert iso_timestamp(FLUSH_AT) == "2026-04-14T10:30:00.000Z"


def test_iso_timestamps_sort_as_strings_in_time_order() -> None:
    stamps = [iso_timestamp(FLUSH_AT + offset) for offset in (0, 0.001, 0.5, 9, 86_400)]

    assert stamps == sorted(stamps)
