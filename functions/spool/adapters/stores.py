"""Object stores: S3 and S3-compatible stores through boto3, and a local directory.

Names are never reused: S3 writes are conditional (`If-None-Match: *`; AWS S3, MinIO and SeaweedFS honour
it and answer 412 when the key exists), and the local store publishes a finished temp file with a hard link,
which fails when the name exists. Stores that ignore `If-None-Match` would let a concurrent flush overwrite
an object with the same name; docs/delivery.md lists which stores honour it.

An S3 endpoint signs with the tenant's access keys, or, on Amazon S3, with a role of the tenant's that the sink
assumes (`RoleSession`); either way what a store answers is said in words naming what to fix
(`describe_store_error`, `describe_assume_error`), and no secret is ever part of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import boto3
import botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from spool.domain import limits
from spool.domain.errors import InvalidInput, StoreError
from spool.domain.models import Credentials, RoleToAssume, StorageSettings
from spool.domain.paths import local_object_path
from spool.domain.ports import ObjectStore
from spool.domain.roles import EXTERNAL_ID_PREFIX, PROBE_MARKER, ROLE_SESSION_SECONDS
from spool.domain.urlpolicy import UrlPolicy

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A dead or slow store must not eat the sink's invocation: the write budget is domain/limits.py's.
SINK_CLIENT_CONFIG = Config(
    connect_timeout=limits.STORE_CONNECT_SECONDS,
    read_timeout=limits.STORE_READ_SECONDS,
    retries={"max_attempts": limits.STORE_ATTEMPTS, "mode": "standard"},
)
# Verification answers an API call (API Gateway waits 30 s at most): one quick attempt.
VERIFY_CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1, "mode": "standard"})
# Codes that mean "the name is taken": 412 after the object exists, 409 while a concurrent conditional write
# to the same key is in flight. Either way the writer moves on to the next counter.
_TAKEN = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
# S3's answers for a request sent to another region than the bucket's (301 is a HEAD's bare status).
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}
_DENIED = {"AccessDenied", "AccessDeniedException", "Forbidden", "403"}
# The sink's AssumeRole calls: as bounded as a store write, so a slow STS cannot eat the invocation.
STS_CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})


def _scrub(text: str, hidden: Iterable[str]) -> str:
    for value in hidden:
        if value:
            text = text.replace(value, "***")
    return text


def _key_secrets(credentials: Credentials | None) -> Callable[[], list[str]]:
    values = []
    if credentials is not None:
        values = [s.get_secret_value() for s in (credentials.accessKeyId, credentials.secretAccessKey) if s]
    return lambda: values


@dataclass(frozen=True)
class _Where:
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
    where: _Where, code: str, status: object, message: str, region: str | None = None, *, deleting: bool = False
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
    if code.startswith("KMS.") or (code in _DENIED and "kms:" in message.lower()):
        needs = " (the role needs kms:GenerateDataKey on it)" if where.role_arn else ""
        return f"bucket {bucket}: the KMS key refuses the write{needs} {tag}: {message}".rstrip(": ")
    if code in _DENIED:
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
        where: _Where | None = None,
        hidden: Callable[[], Iterable[str]] | None = None,
        verifying: bool = False,
        put_options: dict[str, str] | None = None,
    ) -> None:
        self._s3 = client
        self._bucket = bucket
        # Sent with every PutObject, verify's probe included: server-side encryption and storage class.
        self._put_options = put_options or {}
        self._where = where or _Where(bucket)
        # The values no message may carry: the access keys, or the role session's temporary credentials.
        self._hidden = hidden or _key_secrets(credentials)
        if verifying:
            # Verify: S3 redirects a request to the bucket's region and botocore follows, so a wrong region
            # would only cost a round trip per client; verify names it instead of writing through it.
            client.meta.events.register("needs-retry.s3", self._refuse_redirect)

    def put_new(self, key: str, body: bytes, *, content_type: str, content_encoding: str | None) -> bool:
        extra: dict[str, Any] = dict(self._put_options)
        if content_encoding:
            extra["ContentEncoding"] = content_encoding
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
        counts as someone else's object and the caller moves on to the next name. (A role with PutObject only
        may not HeadObject: then the name counts as taken too; so does our own SSE-KMS object, whose ETag is no
        MD5: a duplicate at worst, never a loss.)"""
        try:
            etag = self._s3.head_object(Bucket=self._bucket, Key=key)["ETag"].strip('"')
        except (ClientError, BotoCoreError):
            return False
        return etag == hashlib.md5(body, usedforsecurity=False).hexdigest()

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
        return StoreError(_scrub(text, self._hidden()))


def put_options(settings: StorageSettings) -> dict[str, str]:
    """PutObject's parameters for the endpoint's serverSideEncryption, kmsKeyId and storageClass (none set:
    none sent, so the bucket's defaults apply)."""
    options = {
        "ServerSideEncryption": settings.serverSideEncryption,
        "SSEKMSKeyId": settings.kmsKeyId,
        "StorageClass": settings.storageClass,
    }
    return {name: value for name, value in options.items() if value is not None}


class _RoleCredentials(DeferredRefreshableCredentials):
    """Fetched at the first request, renewed shortly before they expire. botocore's defaults renew 15 and 10
    minutes before expiry, which a 15-minute session is always within: every request would assume again."""

    _advisory_refresh_timeout = 240
    _mandatory_refresh_timeout = 120


class _Given(CredentialProvider):
    """The only credential provider of a role store's botocore session: it never falls back to the sink's own
    credentials (environment, config files, the function's role)."""

    METHOD = "spool-assume-role"
    CANONICAL_NAME = "spool-assume-role"

    def __init__(self, credentials: _RoleCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> _RoleCredentials:
        return self._credentials


class RoleSession:
    """An endpoint's role, assumed through the sink's STS client with the endpoint's ExternalId.

    The temporary credentials live only inside the store client's credential object; the last few issued are
    remembered here only to scrub them from error messages."""

    def __init__(self, sts: Any, role: RoleToAssume) -> None:
        self._sts = sts
        self._role = role
        self._issued: deque[str] = deque(maxlen=9)
        self.credentials = _RoleCredentials(refresh_using=self._assume, method=_Given.METHOD)

    def issued(self) -> list[str]:
        return list(self._issued)

    def check_external_id_required(self) -> None:
        """Verify's check that the trust policy requires the endpoint's ExternalId: AssumeRole with another
        one must be refused. A trust policy without the condition lets any ExternalId through, and with it
        any Spool tenant that names the role. What STS answers a wrongly allowed call is thrown away."""
        role = self._role
        try:
            self._sts.assume_role(
                RoleArn=role.roleArn,
                RoleSessionName=role.sessionName,
                ExternalId=f"{EXTERNAL_ID_PREFIX}not-{secrets.token_hex(8)}",
                DurationSeconds=ROLE_SESSION_SECONDS,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _DENIED:
                return
            raise StoreError(describe_assume_error(role, exc)) from None
        except BotoCoreError as exc:
            raise StoreError(f"AWS STS unreachable while assuming role {role.roleArn}: {type(exc).__name__}") from None
        raise StoreError(
            f"role {role.roleArn}: its trust policy does not require sts:ExternalId = {role.externalId}. Spool "
            "assumed it with another ExternalId, so any Spool tenant naming this role could. Add the condition: "
            f"GET /api/v1/endpoints/{role.endpointId}/aws-role gives a trust policy that has it"
        )

    def _assume(self) -> dict[str, str]:
        role = self._role
        try:
            answer = self._sts.assume_role(
                RoleArn=role.roleArn,
                RoleSessionName=role.sessionName,
                ExternalId=role.externalId,
                DurationSeconds=ROLE_SESSION_SECONDS,
            )
        except ClientError as exc:
            raise StoreError(describe_assume_error(role, exc)) from None
        except BotoCoreError as exc:
            raise StoreError(f"AWS STS unreachable while assuming role {role.roleArn}: {type(exc).__name__}") from None
        issued = answer["Credentials"]
        self._issued.extend((issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]))
        return {
            "access_key": issued["AccessKeyId"],
            "secret_key": issued["SecretAccessKey"],
            "token": issued["SessionToken"],
            "expiry_time": issued["Expiration"].isoformat(),
        }


def describe_assume_error(role: RoleToAssume, exc: ClientError) -> str:
    """Why STS refused AssumeRole, in words. AWS answers every trust failure alike (a missing role, a trust
    policy naming another principal, an ExternalId missing from it or another one): AccessDenied."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Error"))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _DENIED:
        return (
            f"role {role.roleArn}: Spool cannot assume it ({code}, HTTP {status}). The role does not exist, or "
            "its trust policy does not let Spool's sink role assume it with sts:ExternalId = "
            f"{role.externalId}. GET /api/v1/endpoints/{role.endpointId}/aws-role gives a trust policy that does"
        )
    if code == "RegionDisabledException":
        return f"role {role.roleArn}: Spool cannot assume it ({code}): AWS STS is not activated in the sink's region"
    return f"role {role.roleArn}: Spool cannot assume it: AWS STS answered {code} (HTTP {status})"


class LocalStore:
    """A directory below the configured root; each object is written to a temp file and then linked.
    serverSideEncryption and storageClass are S3's: a directory ignores them (docs/api.md)."""

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
    """The `StoreFactory`: builds a client for an endpoint's settings, checking its URL again first.

    Access keys sign with a client of their own; a role gets a botocore session of its own whose only
    credentials are the role's (assumed through `sts`, the sink's own STS client, so the call is the sink
    role's). Both share one loader, so the service models are read once per process.

    `verifying` (verify's stores) checks more than delivery needs: a region S3 redirects from is an error
    rather than followed, and a role's trust policy must refuse an ExternalId other than the endpoint's."""

    def __init__(
        self,
        url_policy: UrlPolicy,
        local_root: str | None,
        config: Config = SINK_CLIENT_CONFIG,
        sts: Any = None,
        *,
        verifying: bool = False,
        amazon_s3_url: str | None = None,
    ) -> None:
        self._policy = url_policy
        # Where an endpoint without an `endpoint` is written: Amazon S3 (None), or the local runtime's emulator.
        # Public: a test may put a proxy in front of it; stores built from then on go through it.
        self.amazon_s3_url = amazon_s3_url
        # What a call builds the store with; a test may wrap it (to watch every write), stores built from then
        # on go through the wrapper.
        self.build: Callable[[StorageSettings, Credentials | None], ObjectStore] = self.make
        self._local_root = local_root
        self._config = config
        self._sts = sts
        self._verifying = verifying
        self._botocore = botocore.session.get_session()
        self._session = boto3.session.Session(botocore_session=self._botocore)
        # The first S3 client of a botocore session loads and builds the S3 model, endpoint rules and client
        # class (about 0.2 s alone, near a second when a few invocations do it at once in the local runtime);
        # the later ones take milliseconds. Made here, at cold start (Lambda's init phase), so an invocation
        # never pays it. The client is unsigned (no credentials looked up), makes no call and is dropped.
        self._session.client("s3", region_name="us-east-1", config=Config(signature_version=UNSIGNED))

    def __call__(self, settings: StorageSettings, credentials: Credentials | None) -> ObjectStore:
        return self.build(settings, credentials)

    def make(self, settings: StorageSettings, credentials: Credentials | None) -> ObjectStore:
        """A store for the endpoint's settings and credentials."""
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
        config = self._config.merge(Config(s3={"addressing_style": "path" if endpoint_url else "auto"}))
        where = _Where(settings.bucket, settings.prefix, settings.region)
        if credentials.role is not None:
            return self._role_store(settings, credentials.role, config, where)
        assert credentials.accessKeyId is not None  # Credentials holds both keys or a role
        assert credentials.secretAccessKey is not None
        client = self._session.client(
            "s3",
            region_name=settings.region,
            endpoint_url=endpoint_url or self.amazon_s3_url,
            aws_access_key_id=credentials.accessKeyId.get_secret_value(),
            aws_secret_access_key=credentials.secretAccessKey.get_secret_value(),
            config=config,
        )
        return S3Store(
            client,
            settings.bucket,
            credentials,
            where=where,
            verifying=self._verifying,
            put_options=put_options(settings),
        )

    def _role_store(self, settings: StorageSettings, role: RoleToAssume, config: Config, where: _Where) -> S3Store:
        if settings.endpoint:
            raise StoreError("roleArn is for Amazon S3 only, not for a store at an endpoint")
        if self._sts is None:
            raise StoreError("this deployment cannot assume roles")
        assumed = RoleSession(self._sts, role)
        if self._verifying:
            assumed.check_external_id_required()
        session = botocore.session.Session()
        session.register_component("data_loader", self._botocore.get_component("data_loader"))
        session.register_component("credential_provider", CredentialResolver([_Given(assumed.credentials)]))
        client = cast(
            "S3Client",
            session.create_client("s3", region_name=settings.region, endpoint_url=self.amazon_s3_url, config=config),
        )
        return S3Store(
            client,
            settings.bucket,
            where=dataclasses.replace(where, role_arn=role.roleArn),
            hidden=assumed.issued,
            verifying=self._verifying,
            put_options=put_options(settings),
        )
