"""`storageConfig`: an endpoint's storage settings as a client sends them (create, PATCH), as they are stored, and
as the API answers them. Each field is stated once (`StorageFields`); its type and rules are domain/fields.py's,
what each provider takes is domain/providers.py's.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from spool.domain import keys, limits
from spool.domain.base import Model
from spool.domain.fields import (
    STRICT,
    AccessKeyId,
    BatchSize,
    Bucket,
    Checksum,
    Compression,
    EndpointUrl,
    FlushInterval,
    Format,
    KeyTemplate,
    KmsKeyId,
    Manifests,
    MaxObjectBytes,
    ParquetCodec,
    Prefix,
    Provider,
    Region,
    RoleArn,
    SecretAccessKey,
    ServerSideEncryption,
    StorageClass,
)


class StorageFields(Model):
    """The storage settings of an endpoint, stated once: their JSON names, rules, defaults and descriptions.

    Three models share them. `StorageConfigIn` is what a client sends on create (with the access keys),
    `StorageSettings` is what is stored (with Spool's `externalId`), and `StorageConfigOut` is what the API
    answers (with `credentialsConfigured`). `StorageConfigPatch` has the same fields, all optional
    (tests/unit/test_storage.py holds it to this list).

    The fields of one provider only (region, endpoint, the encryption and checksum settings, roleArn, the access
    keys: `providers.PROVIDER_FIELDS`) are here too, since the wire format is flat; the provider's table entry
    says which it takes, and domain/endpoints.py refuses the others.

    A stored item is validated with the same rules when it is read. A rule made stricter must come with a
    migration of the items it would refuse, or those endpoints could not be read. Items stored before a
    setting existed read as its default."""

    provider: Provider
    # Optional in a request, so that its absence gets the service's own message (domain.endpoints: the url
    # may name the bucket); a stored endpoint always has one.
    bucket: Bucket | None = None
    prefix: Prefix = ""
    region: Region | None = None
    roleArn: RoleArn | None = Field(default=None, description="The tenant's IAM role the sink assumes (Amazon S3)")
    endpoint: EndpointUrl | None = Field(
        default=None, description="An S3-compatible store's URL (provider s3); null: Amazon S3"
    )
    batchSize: BatchSize = limits.BATCH_SIZE_DEFAULT
    flushIntervalSeconds: FlushInterval = limits.FLUSH_INTERVAL_DEFAULT
    compression: Compression = Field(
        default="none", description="NDJSON objects: none, gzip (.ndjson.gz) or zstd (.ndjson.zst)"
    )
    keyTemplate: KeyTemplate = Field(
        default=keys.DEFAULT_TEMPLATE, description="Object keys from named parts; the extension is appended"
    )
    format: Format = "ndjson"
    parquetCodec: ParquetCodec = Field(default="snappy", description="Parquet objects' codec (format parquet)")
    maxObjectBytes: MaxObjectBytes | None = Field(
        default=None, description="No object is larger as stored; null: no cap"
    )
    serverSideEncryption: ServerSideEncryption | None = Field(
        default=None, description="Sent with every write; null: the bucket's default encryption"
    )
    kmsKeyId: KmsKeyId | None = Field(default=None, description="The KMS key of serverSideEncryption aws:kms")
    storageClass: StorageClass | None = Field(default=None, description="Sent with every write; null: STANDARD")
    manifests: Manifests = Field(
        default=False,
        description="Seal each folder with _manifest.json once no more lines can reach it (its time window ended)",
    )
    checksum: Checksum = Field(
        default="sha256",
        description="Every write's checksum, which the store checks and keeps: sha256 (x-amz-checksum-sha256), or "
        "md5 (Content-MD5) for S3-compatible stores that refuse flexible checksums",
    )


class StorageConfigIn(StorageFields):
    """`storageConfig` as a client sends it on create."""

    model_config = STRICT

    accessKeyId: AccessKeyId | None = None
    secretAccessKey: SecretAccessKey | None = None


class StorageConfigPatch(Model):
    """`storageConfig` in a PATCH: every field optional; keys change only when both are given, and keys or a
    roleArn replace whichever of the two the endpoint had.

    Its fields are `StorageConfigIn`'s, each with its type or null. Pydantic has no partial model, and one built
    with `create_model` would be a variable that neither `EndpointPatch` nor mypy can name as a type, so the
    list is written again and tests/unit/test_storage.py holds it to `StorageConfigIn`'s."""

    model_config = STRICT

    provider: Provider | None = None
    bucket: Bucket | None = None
    prefix: Prefix | None = None
    region: Region | None = None
    roleArn: RoleArn | None = None
    endpoint: EndpointUrl | None = None
    batchSize: BatchSize | None = None
    flushIntervalSeconds: FlushInterval | None = None
    compression: Compression | None = None
    keyTemplate: KeyTemplate | None = None
    format: Format | None = None
    parquetCodec: ParquetCodec | None = None
    maxObjectBytes: MaxObjectBytes | None = None
    serverSideEncryption: ServerSideEncryption | None = None
    kmsKeyId: KmsKeyId | None = None
    storageClass: StorageClass | None = None
    manifests: Manifests | None = None
    checksum: Checksum | None = None
    accessKeyId: AccessKeyId | None = None
    secretAccessKey: SecretAccessKey | None = None

    @field_validator(
        "prefix",
        "batchSize",
        "flushIntervalSeconds",
        "compression",
        "keyTemplate",
        "format",
        "parquetCodec",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # These always have a value (a default at creation); null has no meaning, unlike for region and endpoint.
        if value is None:
            raise ValueError("cannot be null; leave it out to keep the current value")
        return value


class StorageSettings(StorageFields):
    """Stored storage settings: everything but the access keys, which are kept encrypted beside them.

    `roleArn` and `externalId` are not secrets: the tenant sees both. `externalId` is Spool's, generated for
    every Amazon S3 endpoint (provider s3 without `endpoint`) and kept while it stays one."""

    bucket: Bucket
    externalId: str | None = Field(
        default=None,
        description="Generated by Spool for every Amazon S3 endpoint: the sts:ExternalId the role's trust policy "
        "must require (GET /api/v1/endpoints/{id}/aws-role). Never chosen by the tenant.",
    )

    @model_validator(mode="after")
    def _role_with_external_id(self) -> StorageSettings:
        # A role is assumed only with the endpoint's ExternalId (domain/roles.py): a stored item with one and not
        # the other is corrupt, and refused when it is read.
        if self.roleArn is not None and self.externalId is None:
            raise ValueError("a roleArn needs the endpoint's externalId")
        return self


class StorageConfigOut(StorageSettings):
    """`storageConfig` as the API answers it: the stored settings and whether access keys are stored."""

    # The answer always has every key (null where unset), so its schema says so.
    model_config = ConfigDict(
        json_schema_mode_override="serialization", json_schema_serialization_defaults_required=True
    )

    credentialsConfigured: bool = Field(description="True when access keys are stored (never with roleArn)")
