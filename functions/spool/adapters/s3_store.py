"""An endpoint's S3 or S3-compatible bucket, written through boto3.

Names are never reused: writes are conditional (`If-None-Match: *`; AWS S3, MinIO and SeaweedFS honour it and
answer 412 when the key exists). Stores that ignore `If-None-Match` would let a concurrent flush overwrite an
object with the same name; docs/delivery.md lists which stores honour it. What a store answers is said in words
naming what to fix (`describe_store_error`), and no secret is ever part of it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from spool.adapters.store_errors import DENIED, scrub
from spool.domain.credentials import Credentials
from spool.domain.errors import StoreError
from spool.domain.roles import PROBE_MARKER
from spool.domain.storage import StorageSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Codes that mean "the name is taken": 412 after the object exists, 409 while a concurrent conditional write
# to the same key is in flight. Either way the writer moves on to the next counter.
_TAKEN = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
# S3's answers for a request sent to another region than the bucket's (301 is a HEAD's bare status).
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}


def _key_secrets(credentials: Credentials | None) -> Callable[[], list[str]]:
    values = []
    if credentials is not None:
        values = [s.get_secret_value() for s in (credentials.accessKeyId, credentials.secretAccessKey) if s]
    return lambda: values


@dataclass(frozen=True)
class Where:
    """What a store's messages name: the bucket, prefix and region it writes to, and the role, if any."""

    bucket: str
    prefix: str = ""
    region: str | None = None
    role_arn: str | None = None


def _bucket_region(http: Any, parsed: dict[str, Any]) -> str | None:
    """The bucket's region when S3 answered that the request went to the wrong one."""
    error = parsed.get("Error", {})
    if error.get("Code") not in _WRONG_REGION and getattr(http, "status_code", None) != 301:
        return None
    return str(http.headers.get("x-amz-bucket-region") or error.get("Region") or "") or None


def describe_store_error(
    where: Where, code: str, status: object, message: str, region: str | None = None, *, deleting: bool = False
) -> str:
    """An S3 error in words that name what to fix: a missing bucket, another region, a KMS key that refuses,
    a role or keys that may not write under the prefix. The code and status stay in the text."""
    tag = f"({code}, HTTP {status})"
    bucket, target = where.bucket, f"s3://{where.bucket}/{where.prefix}"
    if code == "NoSuchBucket":
        return f"bucket {bucket} does not exist {tag}"
    if code in _WRONG_REGION:
        actual = f"region {region}" if region else "another region"
        return f"bucket {bucket} is in {actual}, not in {where.region} (storageConfig.region) {tag}"
    if code.startswith("KMS.") or (code in DENIED and "kms:" in message.lower()):
        needs = " (the role needs kms:GenerateDataKey on it)" if where.role_arn else ""
        return f"bucket {bucket}: the KMS key refuses the write{needs} {tag}: {message}".rstrip(": ")
    if code in DENIED:
        who = f"role {where.role_arn}" if where.role_arn else "these credentials"
        verb, action, keys = (
            ("delete verify's probe", "s3:DeleteObject", f"{PROBE_MARKER}*")
            if deleting
            else ("write", "s3:PutObject", "*")
        )
        needs = ""
        if where.role_arn:
            partition = where.role_arn.split(":")[1]
            needs = f"; it needs {action} on arn:{partition}:s3:::{bucket}/{where.prefix}{keys}"
        return f"{who} may not {verb} under {target}{needs} {tag}: {message}".rstrip(": ")
    if "checksum" in message.lower() or "content-md5" in message.lower() or code in ("BadDigest", "InvalidDigest"):
        return (
            f"bucket {bucket}: the store refused the write's checksum ({code}, HTTP {status}): {message}. A store "
            "that does not take SHA-256 checksums needs storageConfig.checksum md5"
        )
    return f"bucket {bucket}: {code} (HTTP {status}): {message}".strip()


class S3Store:
    """One endpoint's bucket. Error messages never hold a secret: the access keys, or the role's temporary
    credentials, are scrubbed from whatever the store answers."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        credentials: Credentials | None = None,
        *,
        where: Where | None = None,
        hidden: Callable[[], Iterable[str]] | None = None,
        verifying: bool = False,
        put_options: dict[str, str] | None = None,
        checksum: str = "sha256",
    ) -> None:
        self._s3 = client
        self._bucket = bucket
        self._checksum = checksum
        # Sent with every PutObject, verify's probe included: server-side encryption and storage class.
        self._put_options = put_options or {}
        self._where = where or Where(bucket)
        # The values no message may carry: the access keys, or the role session's temporary credentials.
        self._hidden = hidden or _key_secrets(credentials)
        if verifying:
            # Verify: S3 redirects a request to the bucket's region and botocore follows, so a wrong region
            # would only cost a round trip per client; verify names it instead of writing through it.
            client.meta.events.register("needs-retry.s3", self._refuse_redirect)

    def put_new(
        self, key: str, body: bytes, *, content_type: str, content_encoding: str | None, sha256: str | None = None
    ) -> bool:
        """A conditional PutObject with the body's checksum, which the store checks (a body changed on the way is
        refused) and, for SHA-256, keeps and answers with (HeadObject with ChecksumMode ENABLED): so Object Lock
        buckets, which refuse a put without Content-MD5 or a checksum header, take Spool's writes, and a reader can
        verify any object (docs/delivery.md, Checksums)."""
        extra: dict[str, Any] = dict(self._put_options)
        if content_encoding:
            extra["ContentEncoding"] = content_encoding
        digest = bytes.fromhex(sha256) if sha256 else hashlib.sha256(body).digest()
        if self._checksum == "md5":
            extra["ContentMD5"] = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        else:
            # The algorithm named as well as the value (x-amz-sdk-checksum-algorithm): the store then keeps it.
            extra["ChecksumAlgorithm"] = "SHA256"
            extra["ChecksumSHA256"] = base64.b64encode(digest).decode()
        try:
            self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*", **extra
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _TAKEN:
                return self._is_ours(key, body, digest)
            raise self._error(exc) from None
        except BotoCoreError as exc:
            raise self._error(exc) from None
        return True

    def _is_ours(self, key: str, body: bytes, digest: bytes) -> bool:
        """After a 412: is the object there the one we just wrote (our first attempt's answer got lost and
        botocore retried)? The SHA-256 the store kept says so, or, where the store keeps none, the ETag, which is
        the body's MD5 for single-part puts without SSE-KMS; anything else counts as someone else's object and the
        caller moves on to the next name. (A role with PutObject only may not HeadObject: then the name counts as
        taken too: a duplicate at worst, never a loss; the ledger keeps it from a retry's.)"""
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        except (ClientError, BotoCoreError):
            return False
        kept = head.get("ChecksumSHA256")
        if kept:
            return bool(base64.b64decode(kept) == digest)
        return bool(head["ETag"].strip('"') == hashlib.md5(body, usedforsecurity=False).hexdigest())

    def holds(self, key: str, sha256: str) -> bool | None:
        """Whether `key` holds this body: the SHA-256 the store kept (ChecksumMode ENABLED), or for a single-part
        put without SSE-KMS its ETag against the body's MD5 cannot be known here, so None then. None too when HEAD
        is refused (a role that may only write)."""
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            return None
        except BotoCoreError:
            return None
        kept = head.get("ChecksumSHA256")
        if not kept:
            return None
        return bool(base64.b64decode(kept).hex() == sha256)

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, deleting=True) from None

    def _refuse_redirect(self, response: Any = None, **_: Any) -> None:
        if response is None:
            return
        actual = _bucket_region(*response)
        if actual and actual != self._where.region:
            code = response[1].get("Error", {}).get("Code") or "PermanentRedirect"
            status = getattr(response[0], "status_code", None)
            raise StoreError(describe_store_error(self._where, code, status, "", actual))

    def _error(self, exc: Exception, *, deleting: bool = False) -> StoreError:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            region = str(headers.get("x-amz-bucket-region") or error.get("Region") or "") or None
            code, message = str(error.get("Code", "Error")), str(error.get("Message", ""))
            text = describe_store_error(self._where, code, status, message, region, deleting=deleting)
        else:
            text = f"bucket {self._bucket}: store unreachable: {type(exc).__name__}"
        return StoreError(scrub(text, self._hidden()))


def put_options(settings: StorageSettings) -> dict[str, str]:
    """PutObject's parameters for the endpoint's serverSideEncryption, kmsKeyId and storageClass (none set:
    none sent, so the bucket's defaults apply)."""
    options = {
        "ServerSideEncryption": settings.serverSideEncryption,
        "SSEKMSKeyId": settings.kmsKeyId,
        "StorageClass": settings.storageClass,
    }
    return {name: value for name, value in options.items() if value is not None}
