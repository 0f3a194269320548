"""Object stores: S3 and S3-compatible stores through boto3, and a local directory.

Names are never reused: S3 writes are conditional (`If-None-Match: *`; AWS S3, MinIO and SeaweedFS honour
it and answer 412 when the key exists), and the local store publishes a finished temp file with a hard link,
which fails when the name exists. Stores that ignore `If-None-Match` would let a concurrent flush overwrite
an object with the same name; docs/storage.md lists which stores honour it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from spool.domain.errors import InvalidInput, StoreError
from spool.domain.models import Credentials, StorageSettings
from spool.domain.paths import local_object_path
from spool.domain.ports import ObjectStore
from spool.domain.urlpolicy import UrlPolicy

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A dead or slow store must not eat the sink's invocation: at worst 2 x (3 + 20) s per write, which the sink
# keeps in reserve before it starts another endpoint (domain/delivery.py, Sink.reserve_seconds).
SINK_CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"})
# Verification answers an API call (API Gateway waits 30 s at most): one quick attempt.
VERIFY_CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1, "mode": "standard"})
# Codes that mean "the name is taken": 412 after the object exists, 409 while a concurrent conditional write
# to the same key is in flight. Either way the writer moves on to the next counter.
_TAKEN = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def _scrub(text: str, credentials: Credentials | None) -> str:
    if credentials is not None:
        for secret in (credentials.accessKeyId, credentials.secretAccessKey):
            value = secret.get_secret_value()
            if value:
                text = text.replace(value, "***")
    return text


class S3Store:
    def __init__(self, client: S3Client, bucket: str, credentials: Credentials | None = None) -> None:
        self._s3 = client
        self._bucket = bucket
        self._credentials = credentials

    def put_new(self, key: str, body: bytes, *, content_type: str, content_encoding: str | None) -> bool:
        extra: dict[str, Any] = {"ContentEncoding": content_encoding} if content_encoding else {}
        try:
            self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*", **extra
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _TAKEN:
                return self._is_ours(key, body)
            raise self._error(exc) from None
        except BotoCoreError as exc:
            raise self._error(exc) from None
        return True

    def _is_ours(self, key: str, body: bytes) -> bool:
        """After a 412: is the object there the one we just wrote (our first attempt's answer got lost and
        botocore retried)? Its ETag is the body's MD5 for single-part puts without SSE-KMS; anything else
        counts as someone else's object and the caller moves on to the next name."""
        try:
            etag = self._s3.head_object(Bucket=self._bucket, Key=key)["ETag"].strip('"')
        except (ClientError, BotoCoreError):
            return False
        return etag == hashlib.md5(body, usedforsecurity=False).hexdigest()

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> StoreError:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            text = f"{error.get('Code', 'Error')} (HTTP {status}): {error.get('Message', '')}".strip()
        else:
            text = f"store unreachable: {type(exc).__name__}"
        return StoreError(_scrub(f"bucket {self._bucket}: {text}", self._credentials))


class LocalStore:
    """A directory below the configured root; each object is written to a temp file and then linked."""

    def __init__(self, root: str, directory: str) -> None:
        self._root = root
        self._directory = directory

    def put_new(self, key: str, body: bytes, *, content_type: str, content_encoding: str | None) -> bool:
        path = local_object_path(self._root, self._directory, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            with open(temp, "xb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temp, path)
            except FileExistsError:
                return False
            finally:
                temp.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"local store: {exc.strerror or type(exc).__name__}") from None
        return True

    def delete(self, key: str) -> None:
        try:
            local_object_path(self._root, self._directory, key).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"local store: {exc.strerror or type(exc).__name__}") from None

    def path(self, key: str) -> Path:
        return local_object_path(self._root, self._directory, key)


class Stores:
    """The `StoreFactory`: builds a client for an endpoint's settings, checking its URL again first."""

    def __init__(self, url_policy: UrlPolicy, local_root: str | None, config: Config = SINK_CLIENT_CONFIG) -> None:
        self._policy = url_policy
        self._local_root = local_root
        self._config = config
        self._session = boto3.session.Session()

    def __call__(self, settings: StorageSettings, credentials: Credentials | None) -> ObjectStore:
        if settings.provider == "local":
            if self._local_root is None:
                raise StoreError("provider local is not enabled in this deployment")
            return LocalStore(self._local_root, settings.bucket)
        if credentials is None:
            raise StoreError("no credentials configured")
        endpoint_url = None
        if settings.endpoint:
            try:
                endpoint_url = self._policy.check(settings.endpoint)
            except InvalidInput as exc:
                raise StoreError(f"endpoint refused: {exc.message}") from None
        client = self._session.client(
            "s3",
            region_name=settings.region,
            endpoint_url=endpoint_url,
            aws_access_key_id=credentials.accessKeyId.get_secret_value(),
            aws_secret_access_key=credentials.secretAccessKey.get_secret_value(),
            config=self._config.merge(Config(s3={"addressing_style": "path" if endpoint_url else "auto"})),
        )
        return S3Store(client, settings.bucket, credentials)
