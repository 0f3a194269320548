"""What lands in storage: NDJSON lines, object bodies, object keys and timestamps (SPEC: What lands in storage)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from spool.domain import keys
from spool.domain.naming import iso_timestamp, ndjson_line, order_key
from spool.domain.storage import StorageSettings

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


def object_key(prefix: str, flushed_at: float, batch: int, *, gzip: bool = False) -> str:
    """The default template's name, as the sink renders it (domain/keys.py)."""
    compression = "gzip" if gzip else "none"
    settings = StorageSettings(provider="local", bucket="archive", prefix=prefix, compression=compression)
    return keys.object_key(settings, flushed_at, batch)


def test_acceptance_order_is_created_at_then_id() -> None:
    first = ndjson_line("evt_b", "a.b", {"createdAt": "9999"}, "2026-04-14T10:30:00.000Z")
    second = ndjson_line("evt_a", "a.b", {}, "2026-04-14T10:30:00.001Z")
    third = ndjson_line("evt_c", "a.b", {}, "2026-04-14T10:30:00.001Z")

    assert order_key(first) == ("2026-04-14T10:30:00.000Z", "evt_b")
    assert sorted([third, second, first], key=order_key) == [first, second, third]


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
