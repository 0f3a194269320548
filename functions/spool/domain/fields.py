"""The API's field types: each a type with its rules (pydantic constraints and validators), stated once and used
by the models of every resource (domain/storage.py, domain/models.py, domain/events.py). Field names are the JSON
names of the SPEC (camelCase); a field's own rules live here, rules that span fields or need configuration (url
agreement, endpoint URL safety, what a provider takes) in `domain.endpoints`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, SecretStr, StringConstraints, WithJsonSchema

from spool.domain import keys, limits
from spool.domain.encoding import CODECS, FORMATS
from spool.domain.matching import EVENT_TYPE_RE, PATTERN_RE
from spool.domain.providers import PROVIDERS

# The request bodies' models: a field the API does not know is refused (422 naming it), strings taken as sent.
STRICT = ConfigDict(extra="forbid", str_strip_whitespace=False)
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
    _descend(value, 1, limit)
    return value


def _descend(node: dict[str, Any] | list[Any], depth: int, limit: int) -> None:
    # Parsed JSON holds plain dicts and lists only, so `type(...) is` (cheaper than isinstance) is exact; every
    # event of every request passes here (make bench, B2).
    children: Any = node.values() if type(node) is dict else node
    for child in children:
        kind = type(child)
        if kind is dict or kind is list:
            if depth >= limit:
                raise ValueError(f"must not nest deeper than {limit} levels")
            _descend(child, depth + 1, limit)


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
Description = Annotated[str, Field(max_length=256)]
EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
Payload = Annotated[dict[str, Any], AfterValidator(_depth)]


def _one_of(names: tuple[str, ...], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"must be one of {', '.join(names)} ({what})")
        return value

    return AfterValidator(check)


# The providers, formats and codecs are tables (providers.py, encoding.py): a new entry there is a new accepted
# value here.
Provider = Annotated[
    str, _one_of(tuple(PROVIDERS), "a provider"), WithJsonSchema({"type": "string", "enum": list(PROVIDERS)})
]
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
