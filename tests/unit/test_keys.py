"""Object keys from key templates (domain/keys.py): rendering, the default's names, validation on save."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from spool.domain import keys
from spool.domain.storage import StorageSettings
from tests.conftest import seed_key as seed_object_key

# 2026-04-14T10:30:00Z, the SPEC's example flush; 09:05:07 on another day for zero-padded parts.
FLUSH_AT = datetime(2026, 4, 14, 10, 30, tzinfo=UTC).timestamp()
EARLY = datetime(2026, 1, 2, 9, 5, 7, tzinfo=UTC).timestamp()
HIVE = "{prefix}dt={date}/hour={hour}/type={eventType}/{timestamp}-{batch}"


def settings(**fields: object) -> StorageSettings:
    return StorageSettings.model_validate({"provider": "s3", "bucket": "keys", "prefix": "events/production/"} | fields)


def test_an_endpoint_without_a_template_gets_the_spec_example_name() -> None:
    assert keys.object_key(settings(), FLUSH_AT, 1) == "events/production/2026-04-14/1776162600-001.ndjson"


@pytest.mark.parametrize("compression", ["none", "gzip"])
@pytest.mark.parametrize("batch", [1, 2, 999, 1000])
def test_the_default_template_gives_the_seed_names(compression: str, batch: int) -> None:
    expected = seed_object_key("events/", EARLY, batch, gzip=compression == "gzip")

    assert keys.object_key(settings(prefix="events/", compression=compression), EARLY, batch) == expected


@pytest.mark.parametrize(
    ("fields", "suffix"),
    [
        ({}, ".ndjson"),
        ({"compression": "gzip"}, ".ndjson.gz"),
        ({"compression": "zstd"}, ".ndjson.zst"),
        ({"format": "parquet"}, ".parquet"),
        ({"format": "parquet", "parquetCodec": "zstd"}, ".parquet"),
    ],
)
def test_the_extension_comes_from_format_and_compression(fields: dict[str, str], suffix: str) -> None:
    assert (
        keys.object_key(settings(**fields), FLUSH_AT, 1).removeprefix("events/production/2026-04-14/1776162600-001")
        == suffix
    )


def test_every_part_renders_zero_padded_from_the_flush_time_in_utc() -> None:
    template = "{prefix}{year}/{month}/{day}/{hour}/{minute}/{date}-{timestamp}-{batch}-{eventType}"

    key = keys.object_key(settings(prefix="p/", keyTemplate=template), EARLY, 7, "order.created")

    assert key == f"p/2026/01/02/09/05/2026-01-02-{int(EARLY)}-007-order.created.ndjson"


def test_the_hive_template_gives_partition_segments() -> None:
    key = keys.object_key(settings(keyTemplate=HIVE, format="parquet"), FLUSH_AT, 2, "order.created")

    assert key == "events/production/dt=2026-04-14/hour=10/type=order.created/1776162600-002.parquet"


def test_a_template_without_batch_takes_the_counter_only_when_its_first_name_is_taken() -> None:
    template = "{prefix}{date}/{timestamp}"

    first, second = (keys.object_key(settings(keyTemplate=template), FLUSH_AT, n) for n in (1, 2))

    assert first == "events/production/2026-04-14/1776162600.ndjson"
    assert second == "events/production/2026-04-14/1776162600-002.ndjson"


@pytest.mark.parametrize("template", [keys.DEFAULT_TEMPLATE, HIVE, "{prefix}{timestamp}", "{prefix}x/{timestamp}"])
def test_every_counter_gives_another_name(template: str) -> None:
    names = {keys.object_key(settings(keyTemplate=template), FLUSH_AT, n, "a.b") for n in range(1, 200)}

    assert len(names) == 199


def test_a_template_naming_event_type_needs_the_objects_type() -> None:
    with pytest.raises(ValueError, match="eventType"):
        keys.object_key(settings(keyTemplate=HIVE), FLUSH_AT, 1)


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{prefix}{date}/{nope}-{timestamp}", "unknown part {nope}"),
        ("{prefix}{date}/{timestamp-{batch}", "unmatched"),
        ("{prefix}{date}/{timestamp}}", "unmatched"),
        ("{prefix}{batch:05d}/{timestamp}", "takes no format"),
        ("{prefix}{batch!r}/{timestamp}", "takes no format"),
        ("{prefix}{date}/{batch}", "must contain {timestamp}"),
        ("{date}/{prefix}{timestamp}", "must start with {prefix}"),
        ("x/{prefix}{timestamp}", "must start with {prefix}"),
        ("{prefix}{timestamp}/{timestamp}", "at most once"),
        ("{prefix}../{timestamp}", "'..'"),
        ("{prefix}a..b/{timestamp}", "'..'"),
        ("{prefix}{date}//{timestamp}", "empty path segments"),
        ("{prefix}{timestamp}/", "end with '/'"),
        ("{prefix}./{timestamp}", "'.' segments"),
        ("{prefix}/{timestamp}", "empty path segments"),
        ("{prefix}{date} {timestamp}", "only letters"),
        ("{prefix}{date}/{timestamp}?x", "only letters"),
        ("{prefix}{date}\\{timestamp}", "only letters"),
        ("{prefix}{{date}}/{timestamp}", "only letters"),
        ("{prefix}日付/{timestamp}", "only letters"),
    ],
)
def test_a_template_that_cannot_give_safe_unique_keys_is_refused(template: str, words: str) -> None:
    with pytest.raises(ValueError, match=None) as raised:
        keys.check_template(template)

    assert words in str(raised.value)


@pytest.mark.parametrize(
    "template",
    [
        keys.DEFAULT_TEMPLATE,
        HIVE,
        "{prefix}{timestamp}",
        "{prefix}y={year}/m={month}/d={day}/{hour}{minute}-{timestamp}_{batch}",
    ],
)
def test_templates_of_named_parts_and_safe_characters_are_accepted(template: str) -> None:
    assert keys.check_template(template) == template
