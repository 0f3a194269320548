"""Every validation rule of the endpoint body (domain/fields.py, domain/storage.py, domain/models.py,
domain/endpoints.py, domain/paths.py).

Each rule is driven through the real api handler and must answer 422 with the offending field path; the
local-root rules that need a real directory tree use `EndpointService` over a temporary directory.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from spool.domain import limits
from spool.domain.endpoints import EndpointService
from spool.domain.errors import InvalidInput
from spool.domain.models import EndpointCreate
from spool.domain.paths import check_local_target, local_object_path
from spool.domain.urlpolicy import UrlPolicy
from tests.conftest import spec_body
from tests.fakes import FakeCipher, FakeRepo
from tests.unit.conftest import ApiHarness, Reply

ENDPOINTS = "/api/v1/endpoints"


def s3_body(**storage: Any) -> dict[str, Any]:
    """The SPEC body with storageConfig changes, its `url` kept in agreement with bucket and prefix."""
    body = spec_body(**storage)
    config = body["storageConfig"]
    body["url"] = f"s3://{config.get('bucket', '')}/{config.get('prefix', '')}"
    return body


def local_body(**storage: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"provider": "local", "bucket": "archive", "prefix": "events/"}
    for name, value in storage.items():
        if value is None:
            config.pop(name, None)
        else:
            config[name] = value
    return {
        "url": f"local://{config.get('bucket', '')}/{config.get('prefix', '')}",
        "deliveryMode": "storage",
        "eventTypes": ["*"],
        "storageConfig": config,
    }


def with_top(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body.update(fields)
    return body


def without(body: dict[str, Any], name: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body.pop(name)
    return body


def create(harness: ApiHarness, body: Any) -> Reply:
    return harness.call("POST", ENDPOINTS, body)


def assert_invalid(reply: Reply, field: str) -> dict[str, Any]:
    assert reply.status == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]], error
    return error


def assert_created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


# --- the SPEC bodies ------------------------------------------------------------------------------------------


def test_spec_body_with_endpoint_is_accepted_verbatim_by_the_local_runtime(harness: ApiHarness) -> None:
    assert_created(create(harness, spec_body()))


def test_spec_body_without_endpoint_is_accepted_verbatim_under_aws_rules(strict_harness: ApiHarness) -> None:
    assert_created(create(strict_harness, spec_body(endpoint=None)))


def test_optional_fields_take_their_documented_defaults(harness: ApiHarness) -> None:
    body = s3_body(prefix=None, endpoint=None, batchSize=None, flushIntervalSeconds=None)

    config = assert_created(create(harness, body))["storageConfig"]

    assert config["prefix"] == ""
    assert config["batchSize"] == limits.BATCH_SIZE_DEFAULT == 100
    assert config["flushIntervalSeconds"] == limits.FLUSH_INTERVAL_DEFAULT == 60
    assert config["compression"] == "none"
    assert config["endpoint"] is None


# --- provider and deliveryMode ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["gcs", "S3", "", "azure", 3, None])
def test_provider_other_than_s3_or_local_is_refused(harness: ApiHarness, provider: Any) -> None:
    body = spec_body()
    body["storageConfig"]["provider"] = provider

    assert_invalid(create(harness, body), "storageConfig.provider")


def test_missing_provider_is_refused(harness: ApiHarness) -> None:
    assert_invalid(create(harness, spec_body(provider=None)), "storageConfig.provider")


@pytest.mark.parametrize("mode", ["http", "webhook", "", None])
def test_delivery_mode_other_than_storage_is_refused(harness: ApiHarness, mode: Any) -> None:
    assert_invalid(create(harness, with_top(spec_body(), deliveryMode=mode)), "deliveryMode")


def test_missing_delivery_mode_is_refused(harness: ApiHarness) -> None:
    assert_invalid(create(harness, without(spec_body(), "deliveryMode")), "deliveryMode")


@pytest.mark.parametrize("name", ["url", "eventTypes", "storageConfig"])
def test_missing_top_level_field_is_refused(harness: ApiHarness, name: str) -> None:
    assert_invalid(create(harness, without(spec_body(), name)), name)


# --- required fields per provider ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bucket", "region", "accessKeyId", "secretAccessKey"])
def test_s3_requires_field(harness: ApiHarness, name: str) -> None:
    body = spec_body(**{name: None})

    assert_invalid(create(harness, body), f"storageConfig.{name}")


def test_local_provider_needs_only_a_directory(harness: ApiHarness) -> None:
    created = assert_created(create(harness, local_body()))

    assert created["url"] == "local://archive/events/"
    assert created["storageConfig"]["provider"] == "local"
    assert created["storageConfig"]["credentialsConfigured"] is False


def test_local_provider_requires_a_directory(harness: ApiHarness) -> None:
    assert_invalid(create(harness, local_body(bucket=None)), "storageConfig.bucket")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("region", "us-east-1"),
        ("endpoint", "http://minio:9000"),
        ("accessKeyId", "AKIAIOSFODNN7EXAMPLE"),
        ("secretAccessKey", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ],
)
def test_local_provider_forbids_s3_only_field(harness: ApiHarness, name: str, value: str) -> None:
    assert_invalid(create(harness, local_body(**{name: value})), f"storageConfig.{name}")


def test_local_provider_is_refused_when_the_deployment_has_no_local_root() -> None:
    service = EndpointService(FakeRepo(), FakeCipher(), UrlPolicy(), local_root=None)

    with pytest.raises(InvalidInput) as caught:
        service.create("ten_a", EndpointCreate.model_validate(local_body()))

    assert caught.value.field == "storageConfig.provider"


# --- url agrees with storageConfig -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "s3://other-bucket/events/",
        "s3://my-webhook-archive/other/",
        "s3://my-webhook-archive/events",
        "s3://my-webhook-archive/",
        "s3://my-webhook-archive/events/production/",
        "local://my-webhook-archive/events/",
        "s3://my-webhook-archive:9000/events/",
        "s3://user@my-webhook-archive/events/",
        "s3://MY-WEBHOOK-ARCHIVE/events/",
    ],
)
def test_url_disagreeing_with_bucket_or_prefix_is_refused_naming_url(harness: ApiHarness, url: str) -> None:
    error = assert_invalid(create(harness, with_top(spec_body(), url=url)), "url")

    assert "storageConfig" in error["message"]


@pytest.mark.parametrize(
    "url",
    [
        "https://my-webhook-archive.s3.amazonaws.com/events/",
        "my-webhook-archive/events/",
        "s3:///events/",
        "s3://my-webhook-archive/events/?x=1",
        "s3://my-webhook-archive/events/#x",
        "",
    ],
)
def test_url_not_of_the_storage_form_is_refused_naming_url(harness: ApiHarness, url: str) -> None:
    assert_invalid(create(harness, with_top(spec_body(), url=url)), "url")


def test_url_with_an_unclosed_ipv6_bracket_is_refused_naming_url(harness: ApiHarness) -> None:
    assert_invalid(create(harness, with_top(spec_body(), url="s3://[::1/events/")), "url")


def test_s3_url_for_a_local_provider_is_refused_naming_url(harness: ApiHarness) -> None:
    body = local_body()
    body["url"] = "s3://archive/events/"

    assert_invalid(create(harness, body), "url")


def test_url_over_2048_characters_is_refused(harness: ApiHarness) -> None:
    assert_invalid(create(harness, with_top(spec_body(), url="s3://b/" + "a" * 2048)), "url")


# --- bucket naming ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bucket",
    [
        "ab",
        "a" * 64,
        "My-Bucket",
        "my_bucket",
        "-bucket",
        "bucket-",
        ".bucket",
        "bucket.",
        "my..bucket",
        "my.-bucket",
        "my-.bucket",
        "192.168.5.4",
        "xn--bucket",
        "sthree-bucket",
        "bucket-s3alias",
        "bucket--ol-s3",
        "bucket--x-s3",
        "my bucket",
        "bücket",
        "bucket/x",
    ],
)
def test_bucket_breaking_s3_naming_rules_is_refused(harness: ApiHarness, bucket: str) -> None:
    assert_invalid(create(harness, s3_body(bucket=bucket)), "storageConfig.bucket")


@pytest.mark.parametrize("bucket", ["abc", "a" * 63, "my.webhook-archive", "0bucket9", "a-b.c-d"])
def test_bucket_following_s3_naming_rules_is_accepted(harness: ApiHarness, bucket: str) -> None:
    assert_created(create(harness, s3_body(bucket=bucket)))


def test_bucket_of_wrong_json_type_is_refused(harness: ApiHarness) -> None:
    assert_invalid(create(harness, spec_body(bucket=5)), "storageConfig.bucket")


# --- region ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "region", ["US-EAST-1", "us_east_1", "", "-us-east-1", "us east 1", "us-east-1 ", "a" * 33, "us-east-1\n"]
)
def test_region_of_wrong_format_is_refused(harness: ApiHarness, region: str) -> None:
    assert_invalid(create(harness, spec_body(region=region)), "storageConfig.region")


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "ap-southeast-2", "auto", "garage"])
def test_region_of_right_format_is_accepted(harness: ApiHarness, region: str) -> None:
    assert_created(create(harness, spec_body(region=region)))


# --- prefix ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        ("/events/", "leading slash"),
        ("../events/", "parent segment"),
        ("events/../../x/", "parent segment inside"),
        ("events/..", "parent segment at the end"),
        ("./events/", "current segment"),
        ("events//production/", "empty segment"),
        ("events production/", "space"),
        ("events\\production/", "backslash"),
        ("events/ä/", "non-ascii"),
        ("events/%2e%2e/", "percent"),
        ("events/?x/", "question mark"),
        ("events/#/", "hash"),
        ("events/\n/", "newline"),
        ("events/\x00/", "nul"),
    ],
)
def test_prefix_breaking_a_rule_is_refused(harness: ApiHarness, prefix: str, why: str) -> None:
    assert_invalid(create(harness, s3_body(prefix=prefix)), "storageConfig.prefix")


def test_prefix_over_the_length_limit_is_refused(harness: ApiHarness) -> None:
    prefix = "a" * (limits.PREFIX_MAX_LEN - 1) + "/x"

    assert_invalid(create(harness, s3_body(prefix=prefix)), "storageConfig.prefix")


def test_prefix_at_the_length_limit_is_accepted(harness: ApiHarness) -> None:
    prefix = "a" * (limits.PREFIX_MAX_LEN - 1) + "/"

    assert_created(create(harness, s3_body(prefix=prefix)))


@pytest.mark.parametrize(
    "prefix", ["", "events/", "events/production/", "a..b/", "logs-", "team=ops/year=2026/", "x_(1)!*'.-/"]
)
def test_prefix_following_the_rules_is_accepted(harness: ApiHarness, prefix: str) -> None:
    assert_created(create(harness, s3_body(prefix=prefix)))


# --- endpoint URL ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254",
        "https://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]",
        "http://[fe80::1]:9000",
        "http://169.254.10.20:9000",
        "https://metadata.example",
        "http://metadata.google.internal",
    ],
)
@pytest.mark.parametrize("rules", ["harness", "strict_harness"])
def test_endpoint_at_metadata_or_link_local_is_refused_everywhere(
    request: pytest.FixtureRequest, rules: str, endpoint: str
) -> None:
    harness: ApiHarness = request.getfixturevalue(rules)

    assert_invalid(create(harness, spec_body(endpoint=endpoint)), "storageConfig.endpoint")


@pytest.mark.parametrize(
    "endpoint",
    [
        "ftp://minio:9000",
        "minio:9000",
        "/minio",
        "http://",
        "http://user:pw@minio:9000",
        "http://minio:9000/?region=x",
        "http://minio:9000/#x",
        "http://[::1",
        "http://minio:99999",
    ],
)
def test_endpoint_that_is_not_a_plain_absolute_http_url_is_refused(harness: ApiHarness, endpoint: str) -> None:
    assert_invalid(create(harness, spec_body(endpoint=endpoint)), "storageConfig.endpoint")


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://s3.example.com",
        "https://127.0.0.1:9000",
        "https://10.0.0.1",
        "https://192.168.1.1:9000",
        "https://private.example",
        "https://minio:9000",
    ],
)
def test_endpoint_plain_http_loopback_or_private_is_refused_under_aws_rules(
    strict_harness: ApiHarness, endpoint: str
) -> None:
    assert_invalid(create(strict_harness, spec_body(endpoint=endpoint)), "storageConfig.endpoint")


@pytest.mark.parametrize(
    "endpoint", ["http://minio:9000", "http://127.0.0.1:9000", "http://10.0.0.1:8333", "http://private.example"]
)
def test_endpoint_plain_http_loopback_or_private_is_allowed_by_the_local_runtime(
    harness: ApiHarness, endpoint: str
) -> None:
    assert assert_created(create(harness, spec_body(endpoint=endpoint)))["storageConfig"]["endpoint"] == endpoint


def test_public_https_endpoint_is_accepted_under_aws_rules(strict_harness: ApiHarness) -> None:
    created = assert_created(create(strict_harness, spec_body(endpoint="https://s3.example.com/")))

    assert created["storageConfig"]["endpoint"] == "https://s3.example.com"


def test_patch_to_a_metadata_endpoint_is_refused(harness: ApiHarness) -> None:
    endpoint_id = assert_created(create(harness, spec_body()))["id"]

    reply = harness.call(
        "PATCH", f"{ENDPOINTS}/{endpoint_id}", {"storageConfig": {"endpoint": "http://169.254.169.254"}}
    )

    assert_invalid(reply, "storageConfig.endpoint")


def test_endpoint_over_2048_characters_is_refused(harness: ApiHarness) -> None:
    assert_invalid(
        create(harness, spec_body(endpoint="https://s3.example.com/" + "a" * 2048)), "storageConfig.endpoint"
    )


# --- batchSize and flushIntervalSeconds ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [limits.BATCH_SIZE_MIN - 1, -1, limits.BATCH_SIZE_MAX + 1, 10**400, 1.5, "abc", None])
def test_batch_size_outside_its_range_or_type_is_refused(harness: ApiHarness, value: Any) -> None:
    body = spec_body()
    body["storageConfig"]["batchSize"] = value

    assert_invalid(create(harness, body), "storageConfig.batchSize")


@pytest.mark.parametrize("value", [limits.BATCH_SIZE_MIN, limits.BATCH_SIZE_MAX])
def test_batch_size_at_its_bounds_is_accepted(harness: ApiHarness, value: int) -> None:
    assert assert_created(create(harness, spec_body(batchSize=value)))["storageConfig"]["batchSize"] == value


def test_batch_size_true_is_refused(harness: ApiHarness) -> None:
    assert_invalid(create(harness, spec_body(batchSize=True)), "storageConfig.batchSize")


@pytest.mark.parametrize("value", [limits.FLUSH_INTERVAL_MIN - 1, -5, limits.FLUSH_INTERVAL_MAX + 1, 0.5, "60s", None])
def test_flush_interval_outside_its_range_or_type_is_refused(harness: ApiHarness, value: Any) -> None:
    body = spec_body()
    body["storageConfig"]["flushIntervalSeconds"] = value

    assert_invalid(create(harness, body), "storageConfig.flushIntervalSeconds")


@pytest.mark.parametrize("value", [limits.FLUSH_INTERVAL_MIN, limits.FLUSH_INTERVAL_MAX])
def test_flush_interval_at_its_bounds_is_accepted(harness: ApiHarness, value: int) -> None:
    created = assert_created(create(harness, spec_body(flushIntervalSeconds=value)))

    assert created["storageConfig"]["flushIntervalSeconds"] == value


# --- compression, description, credentials ---------------------------------------------------------------------


def test_gzip_compression_is_accepted(harness: ApiHarness) -> None:
    assert assert_created(create(harness, spec_body(compression="gzip")))["storageConfig"]["compression"] == "gzip"


@pytest.mark.parametrize("value", ["zip", "GZIP", "", 1])
def test_unknown_compression_is_refused(harness: ApiHarness, value: Any) -> None:
    assert_invalid(create(harness, spec_body(compression=value)), "storageConfig.compression")


def test_description_over_256_characters_is_refused(harness: ApiHarness) -> None:
    assert_invalid(create(harness, with_top(spec_body(), description="d" * 257)), "description")


@pytest.mark.parametrize(
    ("name", "value"),
    [("accessKeyId", "AK"), ("accessKeyId", "A" * 129), ("secretAccessKey", "short"), ("secretAccessKey", "s" * 257)],
)
def test_credential_of_wrong_length_is_refused(harness: ApiHarness, name: str, value: str) -> None:
    assert_invalid(create(harness, spec_body(**{name: value})), f"storageConfig.{name}")


# --- eventTypes ------------------------------------------------------------------------------------------------


def test_empty_event_types_is_refused(harness: ApiHarness) -> None:
    assert_invalid(create(harness, with_top(spec_body(), eventTypes=[])), "eventTypes")


def test_more_event_types_than_the_limit_is_refused(harness: ApiHarness) -> None:
    patterns = [f"type{i}.created" for i in range(limits.EVENT_TYPES_MAX + 1)]

    assert_invalid(create(harness, with_top(spec_body(), eventTypes=patterns)), "eventTypes")


def test_event_types_up_to_the_limit_are_accepted(harness: ApiHarness) -> None:
    patterns = [f"type{i}.created" for i in range(limits.EVENT_TYPES_MAX)]

    assert assert_created(create(harness, with_top(spec_body(), eventTypes=patterns)))["eventTypes"] == patterns


def test_a_huge_event_types_list_is_refused_with_a_4xx(harness: ApiHarness) -> None:
    patterns = [f"t{i}" for i in range(100_000)]

    assert_invalid(create(harness, with_top(spec_body(), eventTypes=patterns)), "eventTypes")


def test_repeated_event_type_is_refused(harness: ApiHarness) -> None:
    assert_invalid(create(harness, with_top(spec_body(), eventTypes=["order.*", "order.*"])), "eventTypes")


@pytest.mark.parametrize(
    "pattern",
    [
        "order.*.created",
        "*.created",
        "order*",
        "order.**",
        "**",
        "*.*",
        "",
        " order.created",
        "order.",
        ".order",
        "order..created",
        "order created",
        "ordér.created",
        "order/created",
        "a" * (limits.EVENT_TYPE_MAX_LEN + 1),
    ],
)
def test_event_type_pattern_that_is_not_star_exact_or_trailing_wildcard_is_refused(
    harness: ApiHarness, pattern: str
) -> None:
    assert_invalid(create(harness, with_top(spec_body(), eventTypes=["order.*", pattern])), "eventTypes.1")


@pytest.mark.parametrize(
    "pattern", ["*", "order.*", "order.created", "Order_Item-v2.created", "a.b.c.*", "a" * limits.EVENT_TYPE_MAX_LEN]
)
def test_event_type_pattern_of_the_spec_forms_is_accepted(harness: ApiHarness, pattern: str) -> None:
    assert_created(create(harness, with_top(spec_body(), eventTypes=[pattern])))


@pytest.mark.parametrize("value", ["order.*", None, {"order.*": True}, [1]])
def test_event_types_of_wrong_json_type_is_refused(harness: ApiHarness, value: Any) -> None:
    reply = create(harness, with_top(spec_body(), eventTypes=value))

    assert reply.status == 422, reply.text
    assert all(f["field"].startswith("eventTypes") for f in reply.json()["error"]["fields"])


# --- unknown fields --------------------------------------------------------------------------------------------


def test_typo_in_a_storage_config_field_is_refused_naming_it(harness: ApiHarness) -> None:
    body = spec_body(flushIntervalSeconds=None)
    body["storageConfig"]["flushIntervalSecond"] = 30

    assert_invalid(create(harness, body), "storageConfig.flushIntervalSecond")


@pytest.mark.parametrize("name", ["eventType", "storage_config", "credentials", "id", "status"])
def test_unknown_top_level_field_is_refused_naming_it(harness: ApiHarness, name: str) -> None:
    assert_invalid(create(harness, with_top(spec_body(), **{name: "x"})), name)


def test_unknown_field_in_a_patch_is_refused_naming_it(harness: ApiHarness) -> None:
    endpoint_id = assert_created(create(harness, spec_body()))["id"]

    reply = harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", {"storageConfig": {"flushIntervalSecond": 5}})

    assert_invalid(reply, "storageConfig.flushIntervalSecond")


def test_every_problem_of_a_body_is_reported_at_once(harness: ApiHarness) -> None:
    body = spec_body(batchSize=0, region="US")
    body["eventTypes"] = []

    fields = {f["field"] for f in assert_invalid(create(harness, body), "eventTypes")["fields"]}

    assert {"storageConfig.batchSize", "storageConfig.region", "eventTypes"} <= fields


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"storageConfig": {"batchSize": 0}}, "storageConfig.batchSize"),
        (
            {"storageConfig": {"flushIntervalSeconds": limits.FLUSH_INTERVAL_MAX + 1}},
            "storageConfig.flushIntervalSeconds",
        ),
        ({"storageConfig": {"bucket": "Bad_Bucket"}}, "storageConfig.bucket"),
        ({"storageConfig": {"prefix": "/events/"}}, "storageConfig.prefix"),
        ({"storageConfig": {"region": "US-EAST-1"}}, "storageConfig.region"),
        ({"storageConfig": {"provider": "gcs"}}, "storageConfig.provider"),
        ({"storageConfig": {"compression": "zip"}}, "storageConfig.compression"),
        ({"storageConfig": {"endpoint": "ftp://minio"}}, "storageConfig.endpoint"),
        ({"eventTypes": []}, "eventTypes"),
        ({"eventTypes": ["order.*", "order.*"]}, "eventTypes"),
        ({"eventTypes": ["*.created"]}, "eventTypes.0"),
        ({"deliveryMode": "http"}, "deliveryMode"),
        ({"url": "https://example.com/"}, "url"),
        ({"description": "d" * 257}, "description"),
        ({"id": "ep_mine"}, "id"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_patch_applies_the_same_rules_as_create(harness: ApiHarness, patch: dict[str, Any], field: str) -> None:
    endpoint_id = assert_created(create(harness, spec_body()))["id"]

    assert_invalid(harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", patch), field)


# --- local directories never escape the root -------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["../", "../../etc/", "a/../../b/", "/etc/"])
def test_local_prefix_leading_out_of_the_root_is_refused(harness: ApiHarness, prefix: str) -> None:
    assert_invalid(create(harness, local_body(prefix=prefix)), "storageConfig.prefix")


@pytest.mark.parametrize("directory", ["..", ".", "../etc", "/etc"])
def test_local_directory_leading_out_of_the_root_is_refused(harness: ApiHarness, directory: str) -> None:
    assert_invalid(create(harness, local_body(bucket=directory)), "storageConfig.bucket")


def test_local_target_inside_the_root_is_returned_resolved(tmp_path: Path) -> None:
    assert check_local_target(str(tmp_path), "archive", "events/2026/") == (tmp_path / "archive/events/2026").resolve()


def test_local_directory_that_is_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "archive").symlink_to(outside)
    service = EndpointService(FakeRepo(), FakeCipher(), UrlPolicy(), local_root=str(root))

    with pytest.raises(InvalidInput) as caught:
        service.create("ten_a", EndpointCreate.model_validate(local_body()))

    assert caught.value.field is not None
    assert caught.value.field.startswith("storageConfig.")


def test_local_prefix_through_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "archive").mkdir(parents=True)
    outside.mkdir()
    (root / "archive" / "events").symlink_to(outside)

    with pytest.raises(InvalidInput):
        check_local_target(str(root), "archive", "events/")


def test_local_symlink_staying_inside_the_root_is_accepted(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "archive").symlink_to(root / "real")

    assert check_local_target(str(root), "archive", "events/") == (root / "real" / "events").resolve()


def test_local_object_path_planted_symlink_is_refused_at_write_time(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "archive").mkdir(parents=True)
    outside.mkdir()
    check_local_target(str(root), "archive", "events/")  # fine when the endpoint is created
    (root / "archive" / "events").symlink_to(outside)  # planted afterwards

    with pytest.raises(InvalidInput):
        local_object_path(str(root), "archive", "events/2026-04-14/1776162600-001.ndjson")


def test_local_object_path_inside_the_root_is_accepted(tmp_path: Path) -> None:
    path = local_object_path(str(tmp_path), "archive", "events/2026-04-14/1776162600-001.ndjson")

    assert path == (tmp_path / "archive/events/2026-04-14/1776162600-001.ndjson").resolve()
