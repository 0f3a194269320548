"""The object settings of storageConfig (keyTemplate, format, compression, parquetCodec, maxObjectBytes,
serverSideEncryption, kmsKeyId, storageClass): validation through the real api handler, PATCH merging, and
the store adapter sending SSE and storage class with every write, verify's probe included."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict

from spool.adapters.s3_store import put_options
from spool.adapters.stores import Stores
from spool.config import ApiSettings
from spool.domain import encoding, limits
from spool.domain.credentials import Credentials
from spool.domain.storage import StorageSettings
from spool.domain.urlpolicy import UrlPolicy
from tests.conftest import spec_body
from tests.unit.conftest import ApiHarness, Reply

ENDPOINTS = "/api/v1/endpoints"
HIVE = "{prefix}dt={date}/hour={hour}/type={eventType}/{timestamp}-{batch}"
KMS_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DEFAULTS = {
    "keyTemplate": "{prefix}{date}/{timestamp}-{batch}",
    "format": "ndjson",
    "compression": "none",
    "parquetCodec": "snappy",
    "maxObjectBytes": None,
    "serverSideEncryption": None,
    "kmsKeyId": None,
    "storageClass": None,
}


def create(harness: ApiHarness, **storage: Any) -> Reply:
    return harness.call("POST", ENDPOINTS, spec_body(**storage))


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.text
    config: dict[str, Any] = reply.json()["storageConfig"]
    return config


def patch(harness: ApiHarness, endpoint_id: str, **storage: Any) -> Reply:
    return harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", {"storageConfig": storage})


def assert_invalid(reply: Reply, field: str) -> str:
    assert reply.status == 422, reply.text
    error = reply.json()["error"]
    assert field in [f["field"] for f in error["fields"]], error
    return str(error["message"]) + " ".join(f["message"] for f in error["fields"])


def test_an_endpoint_that_sets_none_of_them_shows_the_defaults(harness: ApiHarness) -> None:
    config = created(create(harness))

    assert {name: config[name] for name in DEFAULTS} == DEFAULTS


def test_every_setting_is_stored_and_shown(harness: ApiHarness) -> None:
    given = {
        "keyTemplate": HIVE,
        "format": "parquet",
        "parquetCodec": "zstd",
        "maxObjectBytes": 8 * 1024 * 1024,
        "serverSideEncryption": "aws:kms",
        "kmsKeyId": KMS_ARN,
        "storageClass": "INTELLIGENT_TIERING",
    }

    config = created(create(harness, **given))

    assert {name: config[name] for name in given} == given


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("keyTemplate", "{prefix}{date}/{nope}-{timestamp}"),
        ("keyTemplate", "{prefix}{date}/{batch}"),
        ("keyTemplate", "{prefix}../{timestamp}"),
        ("keyTemplate", "{prefix}{date} {timestamp}"),
        ("keyTemplate", ""),
        ("keyTemplate", "{prefix}" + "a" * limits.KEY_TEMPLATE_MAX_LEN + "{timestamp}"),
        ("keyTemplate", None),
        ("format", "csv"),
        ("format", None),
        ("compression", "brotli"),
        ("parquetCodec", "lz4"),
        ("maxObjectBytes", limits.MAX_OBJECT_BYTES_MIN - 1),
        ("maxObjectBytes", limits.MAX_OBJECT_BYTES_MAX + 1),
        ("maxObjectBytes", "1MB"),
        ("maxObjectBytes", 1048576.5),
        ("serverSideEncryption", "aws:kms:dsse"),
        ("serverSideEncryption", "aes256"),
        ("kmsKeyId", "not a key"),
        ("storageClass", "GLACIER_FLEXIBLE"),
        ("storageClass", "EXPRESS_ONEZONE"),
        ("storageClass", "standard"),
    ],
)
def test_a_bad_value_is_a_422_naming_the_field(harness: ApiHarness, name: str, value: Any) -> None:
    body = spec_body()
    body["storageConfig"][name] = value

    assert_invalid(harness.call("POST", ENDPOINTS, body), f"storageConfig.{name}")


@pytest.mark.parametrize("value", [limits.MAX_OBJECT_BYTES_MIN, limits.MAX_OBJECT_BYTES_MAX])
def test_max_object_bytes_at_its_bounds_is_accepted(harness: ApiHarness, value: int) -> None:
    assert created(create(harness, maxObjectBytes=value))["maxObjectBytes"] == value


@pytest.mark.parametrize(
    "key",
    [KMS_ARN, "1234abcd-12ab-34cd-56ef-1234567890ab", "alias/webhooks", "arn:aws:kms:eu-west-1:111122223333:alias/x"],
)
def test_kms_keys_are_accepted_as_id_arn_or_alias(harness: ApiHarness, key: str) -> None:
    assert created(create(harness, serverSideEncryption="aws:kms", kmsKeyId=key))["kmsKeyId"] == key


@pytest.mark.parametrize("sse", [None, "AES256"])
def test_a_kms_key_without_aws_kms_is_refused(harness: ApiHarness, sse: str | None) -> None:
    assert_invalid(create(harness, serverSideEncryption=sse, kmsKeyId=KMS_ARN), "storageConfig.kmsKeyId")


def test_parquet_with_ndjson_compression_is_refused(harness: ApiHarness) -> None:
    message = assert_invalid(create(harness, format="parquet", compression="gzip"), "storageConfig.compression")

    assert "parquetCodec" in message


def test_parquet_is_refused_where_the_deployment_cannot_write_it(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoding.importlib.util, "find_spec", lambda name: None)

    assert_invalid(create(harness, format="parquet"), "storageConfig.format")


def test_a_deployed_api_without_pyarrow_accepts_parquet_when_the_stack_says_the_sink_writes_it(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The api's asset has no pyarrow (only the sink's has it): SPOOL_PARQUET=true decides.
    monkeypatch.setattr(encoding.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(harness.services.endpoints, "parquet", True)

    assert created(create(harness, format="parquet"))["format"] == "parquet"


def test_parquet_is_refused_when_the_stack_says_the_sink_cannot_write_it(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness.services.endpoints, "parquet", False)

    message = assert_invalid(create(harness, format="parquet"), "storageConfig.format")

    assert "not available" in message
    assert created(create(harness, format="ndjson"))["format"] == "ndjson"


@pytest.mark.parametrize(("value", "parsed"), [("true", True), ("false", False), (None, None)])
def test_the_api_reads_whether_parquet_is_available_from_spool_parquet(value: str | None, parsed: bool | None) -> None:
    environ = {
        "SPOOL_TABLE_NAME": "t",
        "SPOOL_QUEUE_URL": "q",
        "SPOOL_KMS_KEY_ID": "k",
        "SPOOL_PEPPER_SECRET_ID": "p",
        "SPOOL_DLQ_URL": "d",
        "SPOOL_VERIFY_FUNCTION_NAME": "f",
        "SPOOL_SINK_ROLE_ARN": "arn:aws:iam::123456789012:role/sink",
    }
    if value is not None:
        environ["SPOOL_PARQUET"] = value

    assert ApiSettings.from_env(environ).parquet is parsed


def test_patch_changes_only_the_settings_given(harness: ApiHarness) -> None:
    endpoint_id = created_id(harness, keyTemplate=HIVE, compression="zstd", storageClass="STANDARD_IA")

    reply = patch(harness, endpoint_id, maxObjectBytes=limits.MAX_OBJECT_BYTES_MIN)

    assert reply.status == 200, reply.text
    config = reply.json()["storageConfig"]
    assert (config["keyTemplate"], config["compression"], config["storageClass"]) == (HIVE, "zstd", "STANDARD_IA")
    assert config["maxObjectBytes"] == limits.MAX_OBJECT_BYTES_MIN


def test_patch_null_clears_the_optional_settings(harness: ApiHarness) -> None:
    endpoint_id = created_id(
        harness, maxObjectBytes=limits.MAX_OBJECT_BYTES_MIN, serverSideEncryption="AES256", storageClass="GLACIER_IR"
    )

    reply = patch(harness, endpoint_id, maxObjectBytes=None, serverSideEncryption=None, storageClass=None)

    assert reply.status == 200, reply.text
    config = reply.json()["storageConfig"]
    assert (config["maxObjectBytes"], config["serverSideEncryption"], config["storageClass"]) == (None, None, None)


@pytest.mark.parametrize("name", ["keyTemplate", "format", "parquetCodec"])
def test_patch_cannot_null_a_setting_that_always_has_a_value(harness: ApiHarness, name: str) -> None:
    endpoint_id = created_id(harness)

    assert_invalid(patch(harness, endpoint_id, **{name: None}), f"storageConfig.{name}")


def test_patch_leaving_aws_kms_drops_its_key(harness: ApiHarness) -> None:
    endpoint_id = created_id(harness, serverSideEncryption="aws:kms", kmsKeyId=KMS_ARN)

    reply = patch(harness, endpoint_id, serverSideEncryption="AES256")

    assert reply.status == 200, reply.text
    assert (reply.json()["storageConfig"]["serverSideEncryption"], reply.json()["storageConfig"]["kmsKeyId"]) == (
        "AES256",
        None,
    )


@pytest.mark.parametrize(
    ("storage", "field"),
    [
        ({"keyTemplate": "{prefix}{batch}"}, "storageConfig.keyTemplate"),
        ({"format": "parquet", "compression": "gzip"}, "storageConfig.compression"),
        ({"kmsKeyId": KMS_ARN}, "storageConfig.kmsKeyId"),
        ({"maxObjectBytes": 1024}, "storageConfig.maxObjectBytes"),
    ],
)
def test_patch_applies_the_same_rules_as_create(harness: ApiHarness, storage: dict[str, Any], field: str) -> None:
    endpoint_id = created_id(harness)

    assert_invalid(patch(harness, endpoint_id, **storage), field)


def test_patch_to_parquet_of_a_gzip_endpoint_names_compression(harness: ApiHarness) -> None:
    endpoint_id = created_id(harness, compression="gzip")

    assert_invalid(patch(harness, endpoint_id, format="parquet"), "storageConfig.compression")
    assert patch(harness, endpoint_id, format="parquet", compression="none").status == 200


def created_id(harness: ApiHarness, **storage: Any) -> str:
    reply = create(harness, **storage)
    assert reply.status == 201, reply.text
    return str(reply.json()["id"])


# --- the store adapter sends them -------------------------------------------------------------------------------

KEYS = Credentials.model_validate({"accessKeyId": "AKIAEXAMPLEKEY", "secretAccessKey": "secret-example-key"})


def s3_settings(**fields: Any) -> StorageSettings:
    base = {"provider": "s3", "bucket": "tenant-bucket", "prefix": "events/", "region": "us-east-1"}
    return StorageSettings.model_validate(base | fields)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, str]]]:
    """Every S3 request the `Stores` factory's clients send (method and headers), answered 200 at once."""
    session = botocore.session.get_session()
    requests: list[tuple[str, dict[str, str]]] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        requests.append((request.method, headers))
        return AWSResponse(request.url, 200, HeadersDict({"ETag": '"e"', "Content-Length": "0"}), _Empty())

    session.register("before-send.s3", answer)
    monkeypatch.setattr(botocore.session, "get_session", lambda: session)
    return requests


class _Empty:
    def stream(self, **_: Any) -> Any:
        yield b""


def test_put_options_map_the_settings_to_put_object_parameters() -> None:
    assert put_options(s3_settings()) == {}
    assert put_options(s3_settings(serverSideEncryption="aws:kms", kmsKeyId=KMS_ARN, storageClass="GLACIER")) == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": KMS_ARN,
        "StorageClass": "GLACIER",
    }


def test_every_write_carries_sse_kms_its_key_and_the_storage_class(sent: list[tuple[str, dict[str, str]]]) -> None:
    settings = s3_settings(serverSideEncryption="aws:kms", kmsKeyId=KMS_ARN, storageClass="STANDARD_IA")
    store = Stores(UrlPolicy(allow_insecure=False), None)(settings, KEYS)

    for n in (1, 2):
        store.put_new(f"events/{n}.ndjson", b"{}\n", content_type="application/x-ndjson", content_encoding=None)

    assert len(sent) == 2
    for method, headers in sent:
        assert method == "PUT"
        assert headers["x-amz-server-side-encryption"] == "aws:kms"
        assert headers["x-amz-server-side-encryption-aws-kms-key-id"] == KMS_ARN
        assert headers["x-amz-storage-class"] == "STANDARD_IA"
        assert headers["if-none-match"] == "*"


def test_an_endpoint_without_them_sends_no_sse_or_storage_class_header(sent: list[tuple[str, dict[str, str]]]) -> None:
    store = Stores(UrlPolicy(allow_insecure=False), None)(s3_settings(), KEYS)

    store.put_new("events/1.ndjson.gz", b"x", content_type="application/x-ndjson", content_encoding="gzip")

    [(_, headers)] = sent
    assert not [h for h in headers if h.startswith("x-amz-server-side-encryption") or h == "x-amz-storage-class"]
    assert headers["content-encoding"].startswith("gzip")  # botocore adds aws-chunked for its checksum


def test_verify_probes_with_the_endpoints_sse_and_storage_class(
    harness: ApiHarness, sent: list[tuple[str, dict[str, str]]]
) -> None:
    endpoint_id = created_id(harness, serverSideEncryption="AES256", storageClass="ONEZONE_IA")

    result = harness.services.endpoints.verify(
        harness.tenant_id, endpoint_id, Stores(UrlPolicy(allow_insecure=True), None, verifying=True)
    )

    assert result["ok"] is True, result
    put = [headers for method, headers in sent if method == "PUT"]
    assert len(put) == 1
    assert put[0]["x-amz-server-side-encryption"] == "AES256"
    assert put[0]["x-amz-storage-class"] == "ONEZONE_IA"
    assert [method for method, _ in sent] == ["PUT", "DELETE"]


def test_a_local_directory_ignores_sse_and_storage_class(tmp_path: Any) -> None:
    settings = StorageSettings(
        provider="local", bucket="archive", serverSideEncryption="aws:kms", kmsKeyId=KMS_ARN, storageClass="GLACIER"
    )
    store = Stores(UrlPolicy(allow_insecure=False), str(tmp_path))(settings, None)

    assert store.put_new("events/x.ndjson", b"{}\n", content_type="application/x-ndjson", content_encoding=None)
    assert (tmp_path / "archive" / "events" / "x.ndjson").read_bytes() == b"{}\n"
