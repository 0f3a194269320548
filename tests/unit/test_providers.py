"""Providers as a table (domain/providers.py, adapters/stores.py): one entry per provider in the domain, one store
builder per provider in the adapters, and the rules the entries state, through the API."""

from __future__ import annotations

from typing import Any

import pytest

from spool.adapters.stores import BUILDERS
from spool.domain.errors import InvalidInput
from spool.domain.providers import CREDENTIAL_FIELDS, PROVIDER_FIELDS, PROVIDERS, parse_storage_url, storage_url
from spool.domain.storage import StorageConfigIn, StorageFields, StorageSettings
from tests.unit.conftest import ApiHarness
from tests.unit.test_endpoints_api import create, local_body, stored

ENDPOINTS = "/api/v1/endpoints"
# A value the s3 provider takes for each of its own fields.
S3_VALUES: dict[str, Any] = {
    "region": "us-east-1",
    "endpoint": "https://store.example",
    "serverSideEncryption": "AES256",
    "kmsKeyId": "alias/spool",
    "storageClass": "STANDARD_IA",
    "checksum": "md5",
    "roleArn": "arn:aws:iam::111122223333:role/spool-delivery",
    "accessKeyId": "AKIAEXAMPLEEXAMPLE12",
    "secretAccessKey": "an-example-secret-key",
}


def test_every_provider_has_a_store_builder_and_every_builder_a_provider() -> None:
    assert set(BUILDERS) == set(PROVIDERS)


def test_the_provider_field_accepts_exactly_the_tables_names() -> None:
    base = {"bucket": "archive", "region": "us-east-1"}
    for name in PROVIDERS:
        assert StorageConfigIn.model_validate(base | {"provider": name}).provider == name
    with pytest.raises(ValueError, match="must be one of s3, local"):
        StorageConfigIn.model_validate(base | {"provider": "gcs"})


def test_each_providers_fields_are_storage_config_fields_and_none_is_shared() -> None:
    every = set(StorageConfigIn.model_fields)
    for provider in PROVIDERS.values():
        assert provider.fields <= every, provider.name
        assert set(provider.required) <= provider.fields, provider.name
        assert set(provider.destination) <= set(provider.settings), provider.name
    shared = {"provider", "bucket", "prefix", "batchSize", "flushIntervalSeconds", "compression", "keyTemplate"}
    assert not PROVIDER_FIELDS & (shared | {"format", "parquetCodec", "maxObjectBytes", "manifests"})
    assert set(S3_VALUES) == PROVIDERS["s3"].fields
    assert PROVIDERS["local"].fields == frozenset()
    assert set(CREDENTIAL_FIELDS["keys"]) | set(CREDENTIAL_FIELDS["role"]) <= set(StorageConfigIn.model_fields)
    assert not set(CREDENTIAL_FIELDS["keys"]) & set(StorageFields.model_fields)  # keys are never stored as settings


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_the_url_is_the_providers_scheme_and_reads_back(name: str) -> None:
    settings = StorageSettings(provider=name, bucket="archive", prefix="events/")
    url = storage_url(settings)
    assert url == f"{PROVIDERS[name].scheme}://archive/events/"
    assert parse_storage_url(url) == (name, "archive", "events/")


def test_a_url_of_no_providers_scheme_names_every_form() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_storage_url("gs://archive/events/")
    assert refused.value.field == "url"
    assert refused.value.message == "must be s3://{bucket}/{prefix} or local://{directory}/{prefix}"


def test_only_amazon_s3_may_sign_with_a_role() -> None:
    s3 = PROVIDERS["s3"]
    assert s3.signs_with(StorageSettings(provider="s3", bucket="archive", region="us-east-1")) == ("keys", "role")
    compatible = StorageSettings(provider="s3", bucket="archive", region="us-east-1", endpoint="https://x.example")
    assert s3.signs_with(compatible) == ("keys",)
    assert PROVIDERS["local"].signs_with(StorageSettings(provider="local", bucket="archive")) == ()


@pytest.mark.parametrize("field", sorted(S3_VALUES))
def test_a_local_endpoint_refuses_each_setting_of_s3_naming_it(harness: ApiHarness, field: str) -> None:
    body = local_body()
    body["storageConfig"][field] = S3_VALUES[field]

    reply = harness.call("POST", ENDPOINTS, body)

    assert reply.status == 422, reply.text
    assert [f["field"] for f in reply.json()["error"]["fields"]] == [f"storageConfig.{field}"]
    assert reply.json()["error"]["fields"][0]["message"] == "is not used by provider local"


def test_a_local_endpoint_stores_no_setting_of_s3_and_a_patch_keeps_it_so(harness: ApiHarness) -> None:
    endpoint_id = create(harness, local_body())["id"]

    reply = harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", {"storageConfig": {"batchSize": 7}})

    assert reply.status == 200, reply.text
    settings = stored(harness, endpoint_id).storage
    assert settings.batchSize == 7
    for name in PROVIDER_FIELDS & set(StorageSettings.model_fields):
        assert getattr(settings, name) in (None, StorageSettings.model_fields[name].default), name


def test_moving_to_a_directory_drops_the_role_and_defaults_and_refuses_a_setting_kept(harness: ApiHarness) -> None:
    body = local_body() | {"url": "s3://archive/events/"}
    body["storageConfig"] = {"provider": "s3", "bucket": "archive", "prefix": "events/", "region": "eu-west-1"}
    body["storageConfig"] |= {"roleArn": S3_VALUES["roleArn"], "storageClass": "STANDARD_IA"}
    endpoint_id = create(harness, body)["id"]
    to_local = {"url": "local://archive/events/", "storageConfig": {"region": None}}

    kept = harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", to_local)
    moved = harness.call(
        "PATCH", f"{ENDPOINTS}/{endpoint_id}", to_local | {"storageConfig": {"region": None, "storageClass": None}}
    )

    assert kept.status == 422
    assert [f["field"] for f in kept.json()["error"]["fields"]] == ["storageConfig.storageClass"]
    assert moved.status == 200, moved.text
    config = moved.json()["storageConfig"]
    assert (config["provider"], config["roleArn"], config["externalId"], config["storageClass"]) == (
        "local",
        None,
        None,
        None,
    )
