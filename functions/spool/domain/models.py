"""Request, response and stored models. Field names are the JSON names of the SPEC (camelCase).

Field-level rules live here as pydantic constraints; rules that span fields or need configuration
(url agreement, endpoint URL safety) live in `domain.endpoints`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from spool.domain import keys, limits
from spool.domain.encoding import CODECS, FORMATS
from spool.domain.matching import EVENT_TYPE_RE, PATTERN_RE

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_IP_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_PREFIX_CHARS_RE = re.compile(r"^[A-Za-z0-9!_.*'()/=\-]*$")
_REGION_RE = re.compile(r"^[a-z0-9][a-z0-9\-]{0,31}$")
# arn:{partition}:iam::{account}:role/{path/}{name}: IAM's characters for paths and names, a name of 1-64.
# A KMS key as S3's SSEKMSKeyId takes it: key id (or multi-Region key id), key ARN, alias name or alias ARN.
KMS_KEY_RE = re.compile(
    r"^(arn:(aws|aws-cn|aws-us-gov):kms:[a-z0-9-]+:\d{12}:(key/[A-Za-z0-9-]{1,64}|alias/[A-Za-z0-9/_-]{1,256})"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]{1,256})$"
)
ROLE_ARN_RE = re.compile(r"^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})$")


def _bucket(value: str) -> str:
    # S3 general purpose bucket naming rules; S3-compatible stores accept a subset of the same names.
    if not _BUCKET_RE.match(value):
        raise ValueError(
            "must be 3-63 characters of lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError("must not contain '..', '.-' or '-.'")
    if _IP_RE.match(value):
        raise ValueError("must not look like an IP address")
    if value.startswith(("xn--", "sthree-")) or value.endswith(("-s3alias", "--ol-s3", "--x-s3")):
        raise ValueError("uses a prefix or suffix that S3 reserves")
    return value


def _prefix(value: str) -> str:
    if value.startswith("/"):
        raise ValueError("must not start with '/'")
    if not _PREFIX_CHARS_RE.match(value):
        raise ValueError("may contain only letters, digits and ! _ . * ' ( ) / = -")
    if "//" in value:
        raise ValueError("must not contain empty path segments ('//')")
    if any(segment in (".", "..") for segment in value.split("/")):
        raise ValueError("must not contain '.' or '..' segments")
    return value


def _matching(pattern: re.Pattern[str], message: str) -> AfterValidator:
    """A validator that refuses a string `pattern` does not match, with `message`."""

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a pattern")
    return values


def _depth(value: Any, limit: int = limits.PAYLOAD_MAX_DEPTH) -> Any:
    """Refuse payloads nested deeper than `limit` containers (scalars are not walked: they cannot nest)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    raise ValueError(f"must not nest deeper than {limit} levels")
                stack.append((child, depth + 1))
    return value


Bucket = Annotated[str, AfterValidator(_bucket)]
Prefix = Annotated[str, Field(max_length=limits.PREFIX_MAX_LEN), AfterValidator(_prefix)]
Region = Annotated[str, StringConstraints(pattern=_REGION_RE.pattern)]
AccessKeyId = Annotated[SecretStr, Field(min_length=3, max_length=128)]
SecretAccessKey = Annotated[SecretStr, Field(min_length=8, max_length=256)]
RoleArn = Annotated[
    str,
    Field(max_length=limits.ROLE_ARN_MAX_LEN),
    _matching(ROLE_ARN_RE, "must be an IAM role ARN: arn:aws:iam::{12-digit account id}:role/{name}"),
]
EventPattern = Annotated[
    str,
    Field(max_length=limits.EVENT_TYPE_MAX_LEN),
    _matching(PATTERN_RE, "must be '*', an event type like 'order.created', or a prefix wildcard like 'order.*'"),
]
EventType = Annotated[
    str,
    Field(min_length=1, max_length=limits.EVENT_TYPE_MAX_LEN),
    _matching(EVENT_TYPE_RE, "must be dot-separated segments of letters, digits, '_' and '-', e.g. 'order.created'"),
]
EventTypes = Annotated[
    list[EventPattern],
    Field(min_length=1, max_length=limits.EVENT_TYPES_MAX),
    AfterValidator(_unique),
]
BatchSize = Annotated[int, Field(strict=True, ge=limits.BATCH_SIZE_MIN, le=limits.BATCH_SIZE_MAX)]
FlushInterval = Annotated[int, Field(strict=True, ge=limits.FLUSH_INTERVAL_MIN, le=limits.FLUSH_INTERVAL_MAX)]
EndpointUrl = Annotated[str, Field(min_length=1, max_length=2048)]
Provider = Literal["s3", "local"]


def _one_of(names: tuple[str, ...], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"must be one of {', '.join(names)} ({what})")
        return value

    return AfterValidator(check)


# The formats and codecs are encoding.py's tables: a new entry there is a new accepted value here.
Compression = Annotated[
    str, _one_of(tuple(CODECS), "a codec"), WithJsonSchema({"type": "string", "enum": list(CODECS)})
]
Format = Annotated[
    str, _one_of(tuple(FORMATS), "an object format"), WithJsonSchema({"type": "string", "enum": list(FORMATS)})
]
ParquetCodec = Literal["snappy", "zstd", "gzip"]
ServerSideEncryption = Literal["AES256", "aws:kms"]
# Seal folders with a manifest (a JSON true or false, nothing that merely reads as one).
Manifests = Annotated[bool, Field(strict=True)]
# How every write is checksummed (the store checks the body against it): SHA-256, which S3 keeps and answers
# with (and which Object Lock buckets take), or Content-MD5 for S3-compatible stores without flexible checksums.
Checksum = Literal["sha256", "md5"]
# The storage classes a PutObject to a general purpose bucket accepts (not Outposts, directory buckets, FSx or
# Snow, which Spool's buckets are not).
StorageClass = Literal[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
]
KeyTemplate = Annotated[
    str, Field(min_length=1, max_length=limits.KEY_TEMPLATE_MAX_LEN), AfterValidator(keys.check_template)
]
MaxObjectBytes = Annotated[int, Field(strict=True, ge=limits.MAX_OBJECT_BYTES_MIN, le=limits.MAX_OBJECT_BYTES_MAX)]
KmsKeyId = Annotated[
    str,
    Field(max_length=limits.KMS_KEY_ID_MAX_LEN),
    _matching(KMS_KEY_RE, "must be a KMS key id, key ARN, alias name (alias/...) or alias ARN"),
]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=False)


class StorageFields(BaseModel):
    """The storage settings of an endpoint, stated once: their JSON names, rules, defaults and descriptions.

    Three models share them. `StorageConfigIn` is what a client sends on create (with the access keys),
    `StorageSettings` is what is stored (with Spool's `externalId`), and `StorageConfigOut` is what the API
    answers (with `credentialsConfigured`). `StorageConfigPatch` has the same fields, all optional
    (tests/unit/test_models.py holds it to this list).

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

    model_config = _STRICT

    accessKeyId: AccessKeyId | None = None
    secretAccessKey: SecretAccessKey | None = None


class StorageConfigPatch(BaseModel):
    """`storageConfig` in a PATCH: every field optional; keys change only when both are given, and keys or a
    roleArn replace whichever of the two the endpoint had.

    Its fields are `StorageConfigIn`'s, each with its type or null. Pydantic has no partial model, and one built
    with `create_model` would be a variable that neither `EndpointPatch` nor mypy can name as a type, so the
    list is written again and tests/unit/test_models.py holds it to `StorageConfigIn`'s."""

    model_config = _STRICT

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


class EndpointCreate(BaseModel):
    """Body of `POST /api/v1/endpoints`."""

    model_config = _STRICT

    url: EndpointUrl
    deliveryMode: Literal["storage"]
    eventTypes: EventTypes
    storageConfig: StorageConfigIn
    description: Annotated[str, Field(max_length=256)] | None = None


class EndpointPatch(BaseModel):
    """Body of `PATCH /api/v1/endpoints/{id}`."""

    model_config = _STRICT

    url: EndpointUrl | None = None
    deliveryMode: Literal["storage"] | None = None
    eventTypes: EventTypes | None = None
    storageConfig: StorageConfigPatch | None = None
    description: Annotated[str, Field(max_length=256)] | None = None


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


class Endpoint(BaseModel):
    """An endpoint as stored. `credentials` is KMS ciphertext (never plaintext)."""

    id: str
    tenantId: str
    url: str
    deliveryMode: Literal["storage"] = "storage"
    eventTypes: list[str]
    storage: StorageSettings
    credentials: bytes | None = None
    description: str | None = None
    status: Literal["active", "deleted"] = "active"
    createdAt: str
    updatedAt: str


class RoleToAssume(BaseModel):
    """A tenant's IAM role the sink assumes to write one endpoint's objects. Nothing in it is secret (the
    tenant is shown the ExternalId); the temporary credentials STS gives for it never leave the store client."""

    model_config = ConfigDict(frozen=True)

    endpointId: str
    roleArn: str
    externalId: str
    sessionName: str


class Credentials(BaseModel):
    """What the sink signs an endpoint's store requests with: the tenant's access keys (decrypted, they exist
    only in the sink and briefly in the api while encrypting), or the tenant's role to assume."""

    accessKeyId: SecretStr | None = None
    secretAccessKey: SecretStr | None = None
    role: RoleToAssume | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Credentials:
        keys = (self.accessKeyId is not None, self.secretAccessKey is not None)
        if self.role is not None and any(keys):
            raise ValueError("access keys or a role, not both")
        if self.role is None and not all(keys):
            raise ValueError("both access keys, or a role")
        return self


class StorageConfigOut(StorageSettings):
    """`storageConfig` as the API answers it: the stored settings and whether access keys are stored."""

    # The answer always has every key (null where unset), so its schema says so.
    model_config = ConfigDict(
        json_schema_mode_override="serialization", json_schema_serialization_defaults_required=True
    )

    credentialsConfigured: bool = Field(description="True when access keys are stored (never with roleArn)")


class DeliveryStatus(BaseModel):
    """What the sink last did for an endpoint, and whether it is parked (docs/delivery.md: a bad endpoint is
    contained)."""

    lastFlushAt: str | None = None
    lastObjectKey: str | None = None
    lastError: str | None = None
    lastErrorAt: str | None = None
    eventsWritten: int = 0
    objectsWritten: int = 0
    consecutiveFailures: int = Field(default=0, description="Failed deliveries since the last written object")
    parkedUntil: str | None = Field(
        default=None, description="Deliveries wait until then (or until a probe write succeeds after it)"
    )


class EndpointOut(BaseModel):
    """An endpoint as the API returns it: no credentials, only `credentialsConfigured`."""

    id: str
    url: str
    deliveryMode: Literal["storage"]
    eventTypes: list[str]
    storageConfig: StorageConfigOut
    description: str | None = None
    status: Literal["active", "deleted"]
    createdAt: str
    updatedAt: str
    delivery: DeliveryStatus | None = None


class EndpointPage(BaseModel):
    items: list[EndpointOut]
    nextCursor: str | None = None


class EventIn(BaseModel):
    """One event. `id` is optional; when given, a retry with the same id is accepted once."""

    model_config = _STRICT

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] | None = None
    eventType: EventType
    payload: Annotated[dict[str, Any], AfterValidator(_depth)]


class EventBatchIn(BaseModel):
    model_config = _STRICT

    events: Annotated[list[EventIn], Field(min_length=1, max_length=limits.BATCH_MAX_EVENTS)]


class Accepted(BaseModel):
    id: str
    createdAt: str


class AcceptedBatch(BaseModel):
    events: list[Accepted]


class AcceptedEvent(BaseModel):
    """An accepted event, ready to route: its NDJSON line is rendered once, at the API."""

    id: str
    eventType: str
    createdAt: str
    acceptedAt: float
    line: str


class ErrorField(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[ErrorField] | None = None
    requestId: str | None = Field(
        default=None, description="On 5xx answers: the request's id (API Gateway's), to quote when reporting it"
    )


class ErrorBody(BaseModel):
    """Every error the API answers: `{"error": {"code", "message", "fields"?, "requestId"?}}`."""

    error: ErrorDetail


class VerifyResult(BaseModel):
    """What a probe write (and removal) with the stored credentials gave."""

    ok: bool
    probeKey: str | None = None
    elapsedMs: int | None = None
    error: str | None = None


class AwsRole(BaseModel):
    """What the tenant needs to create the role Spool assumes, in their own AWS account."""

    roleArn: str | None = Field(
        description="The endpoint's roleArn; null when it has none yet: deploy the template, then PATCH its "
        "RoleArn output in as storageConfig.roleArn"
    )
    roleName: str = Field(description="The role's name in the template (roleArn's, or spool-{endpoint id})")
    externalId: str
    sinkRoleArn: str = Field(description="The principal the trust policy trusts: this deployment's sink role")
    trustPolicy: dict[str, Any]
    permissionPolicy: dict[str, Any]
    cloudFormationTemplate: dict[str, Any] = Field(description="Both policies as one AWS::IAM::Role")
    deployCommand: str = Field(description="Save the template as templateFile, then run this")
    templateFile: str


class RedriveResult(BaseModel):
    """`complete` is false when time ran out before the DLQ was drained: call again to move the rest."""

    moved: int
    complete: bool
