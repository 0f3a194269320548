"""Endpoint management: create, list, get, patch, delete, verify (SPEC: API)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr, ValidationError

from spool.domain import keys, roles
from spool.domain.credentials import ENCRYPTION_CONTEXT_KEYS, Credentials, RoleToAssume
from spool.domain.encoding import FORMATS
from spool.domain.errors import Conflict, InvalidInput, NotFound, ServiceFault, StoreError, location
from spool.domain.ids import ENDPOINT_ID_PREFIX, new_id
from spool.domain.models import Endpoint, EndpointCreate, EndpointOut, EndpointPage, EndpointPatch
from spool.domain.naming import iso_timestamp
from spool.domain.ports import Cipher, EndpointRepository, StatusBook, StoreFactory
from spool.domain.providers import (
    CREDENTIAL_FIELDS,
    PROVIDER_FIELDS,
    PROVIDERS,
    parse_storage_url,
    storage_url,
    takes_role,
)
from spool.domain.roles import AwsRole
from spool.domain.storage import StorageConfigIn, StorageConfigOut, StorageSettings
from spool.domain.urlpolicy import UrlPolicy

Clock = Callable[[], float]
_KEY_FIELDS = ("accessKeyId", "secretAccessKey")
# Where an endpoint's data goes. Access keys are the tenant's for one store: a PATCH that points the endpoint
# elsewhere must give them again, or a stolen API key could send the tenant's keys (their signatures) to a host
# of the thief's choosing.
_DESTINATION = ("provider", "bucket")  # and each provider's own (`Provider.destination`)


def encryption_context(tenant_id: str, endpoint_id: str) -> dict[str, str]:
    """KMS encryption context: ciphertext of one endpoint cannot be decrypted as another's."""
    return dict(zip(ENCRYPTION_CONTEXT_KEYS, (tenant_id, endpoint_id), strict=True))


def seal(cipher: Cipher, tenant_id: str, endpoint_id: str, credentials: Credentials) -> bytes:
    """Access keys as KMS ciphertext bound to the endpoint (a role has nothing to seal)."""
    if credentials.accessKeyId is None or credentials.secretAccessKey is None:
        raise ValueError("only access keys are sealed")
    plaintext = json.dumps(
        {
            "accessKeyId": credentials.accessKeyId.get_secret_value(),
            "secretAccessKey": credentials.secretAccessKey.get_secret_value(),
        }
    ).encode()
    return cipher.encrypt(plaintext, encryption_context(tenant_id, endpoint_id))


def unseal(cipher: Cipher, endpoint: Endpoint) -> Credentials | None:
    """What the sink signs the endpoint's store requests with: its role to assume (no decryption), or its
    access keys, decrypted."""
    storage = endpoint.storage
    if storage.roleArn is not None:
        assert storage.externalId is not None  # StorageSettings holds none without the other
        role = RoleToAssume(
            endpointId=endpoint.id,
            roleArn=storage.roleArn,
            externalId=storage.externalId,
            sessionName=roles.session_name(endpoint.id),
        )
        return Credentials(role=role)
    if endpoint.credentials is None:
        return None
    plaintext = cipher.decrypt(endpoint.credentials, encryption_context(endpoint.tenantId, endpoint.id))
    return Credentials.model_validate_json(plaintext)


@dataclass
class EndpointService:
    repo: EndpointRepository
    cipher: Cipher
    url_policy: UrlPolicy
    local_root: str | None = None
    clock: Clock = time.time
    # This deployment's sink role (the principal tenants' roles trust); the api has it, the sink needs it not.
    sink_role_arn: str | None = None
    # Whether the sink can write Parquet. None: whether pyarrow is installed here (the local runtime, the
    # sink); a deployed api is told (SPOOL_PARQUET), as only the sink's asset holds pyarrow.
    parquet: bool | None = None
    # Where the endpoints' delivery status is read from (None: answers carry none).
    status: StatusBook | None = None

    def create(self, tenant_id: str, body: EndpointCreate) -> EndpointOut:
        config = body.storageConfig
        settings = self._settings(config, external_id=None)
        self._check_url_agrees(body.url, settings)
        credentials = self._credentials_for(settings, config.accessKeyId, config.secretAccessKey)
        now = iso_timestamp(self.clock())
        endpoint_id = new_id(ENDPOINT_ID_PREFIX)
        endpoint = Endpoint(
            id=endpoint_id,
            tenantId=tenant_id,
            url=body.url,
            eventTypes=body.eventTypes,
            storage=settings,
            credentials=seal(self.cipher, tenant_id, endpoint_id, credentials) if credentials else None,
            description=body.description,
            createdAt=now,
            updatedAt=now,
        )
        self.repo.create_endpoint(endpoint)
        return self.view(endpoint, include_status=False)

    def get(self, tenant_id: str, endpoint_id: str) -> EndpointOut:
        return self.view(self._active(tenant_id, endpoint_id))

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> EndpointPage:
        after = _decode_cursor(cursor) if cursor else None
        endpoints, last = self.repo.list_endpoints(tenant_id, limit, after)
        return EndpointPage(
            items=[self.view(e, include_status=False) for e in endpoints],
            nextCursor=_encode_cursor(last) if last else None,
        )

    def patch(self, tenant_id: str, endpoint_id: str, patch: EndpointPatch) -> EndpointOut:
        current = self._active(tenant_id, endpoint_id)
        given = patch.model_dump(exclude_unset=True)
        config_patch = patch.storageConfig.model_dump(exclude_unset=True) if patch.storageConfig else {}
        # null clears an optional field (region, endpoint); the required ones cannot be cleared.
        for name in ("provider", "bucket"):
            if name in config_patch and config_patch[name] is None:
                raise InvalidInput("is required and cannot be null", field=f"storageConfig.{name}")
        merged = current.storage.model_dump(exclude={"externalId"}) | {
            k: v for k, v in config_patch.items() if k not in _KEY_FIELDS
        }
        if any(k in config_patch for k in _KEY_FIELDS) and "roleArn" not in config_patch:
            merged["roleArn"] = None  # access keys replace the role
        url = patch.url if patch.url is not None else current.url
        if "url" in given and not ({"bucket", "prefix", "provider"} & config_patch.keys()):
            # Only the url changed: bucket and prefix follow it.
            merged["provider"], merged["bucket"], merged["prefix"] = parse_storage_url(url)
        elif "url" not in given and {"bucket", "prefix", "provider"} & config_patch.keys():
            # Only bucket/prefix changed: the url follows them.
            url = storage_url(StorageSettings.model_validate(merged))
        if (
            "serverSideEncryption" in config_patch
            and "kmsKeyId" not in config_patch
            and merged["serverSideEncryption"] != "aws:kms"
        ):
            merged["kmsKeyId"] = None  # the key belongs to aws:kms and goes with it
        # Of what the provider does not take, a move to it drops the credentials (like the keys, the role goes when
        # the endpoint moves to a directory) and what was left at its default; a setting given a value of its own
        # must be cleared (null) in the same PATCH, or is refused below like on create.
        for name in PROVIDER_FIELDS - PROVIDERS[merged["provider"]].fields - config_patch.keys():
            if name in CREDENTIAL_FIELDS["role"] or merged.get(name) == StorageConfigIn.model_fields[name].default:
                merged[name] = None
        # Re-validate the merged whole exactly as a create would.
        try:
            full = StorageConfigIn.model_validate(
                {k: v for k, v in merged.items() if v is not None}
                | {k: config_patch[k] for k in _KEY_FIELDS if k in config_patch}
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            where = location(error)
            field = "url" if "url" in given and where in ("bucket", "prefix") else f"storageConfig.{where}"
            raise InvalidInput(str(error["msg"]), field=field) from None
        settings = self._settings(full, external_id=current.storage.externalId)
        self._check_url_agrees(url, settings)
        destination = dict.fromkeys(
            [*_DESTINATION, *PROVIDERS[current.storage.provider].destination, *PROVIDERS[settings.provider].destination]
        )
        moved = [name for name in destination if getattr(settings, name) != getattr(current.storage, name)]
        keys_given = all(k in config_patch for k in _KEY_FIELDS)
        signs_with_keys = settings.roleArn is None and "keys" in PROVIDERS[settings.provider].signs_with(settings)
        keeps_keys = current.credentials is not None and signs_with_keys
        if moved and keeps_keys and not keys_given:
            missing = next(k for k in _KEY_FIELDS if k not in config_patch)
            raise InvalidInput(
                f"must be given again when {', '.join(f'storageConfig.{m}' for m in moved)} changes: the stored "
                "access keys are for the store the endpoint writes to now",
                field=f"storageConfig.{missing}",
            )
        # The item holds access keys or a roleArn, never both: a role (or a provider without keys) drops the keys.
        credentials_blob = current.credentials
        if not signs_with_keys:
            self._credentials_for(settings, full.accessKeyId, full.secretAccessKey)
            credentials_blob = None
        elif full.accessKeyId is not None or full.secretAccessKey is not None or current.credentials is None:
            credentials = self._credentials_for(settings, full.accessKeyId, full.secretAccessKey)
            assert credentials is not None
            credentials_blob = seal(self.cipher, tenant_id, endpoint_id, credentials)
        updated = current.model_copy(
            update={
                "url": url,
                "eventTypes": patch.eventTypes if patch.eventTypes is not None else current.eventTypes,
                "storage": settings,
                "credentials": credentials_blob,
                "description": patch.description if "description" in given else current.description,
                "updatedAt": _later_timestamp(self.clock(), current.updatedAt),
            }
        )
        self.repo.replace_endpoint(
            updated, expected_updated_at=current.updatedAt, previous_role=current.storage.roleArn
        )
        return self.view(updated)

    def delete(self, tenant_id: str, endpoint_id: str) -> None:
        endpoint = self._active(tenant_id, endpoint_id)
        self.repo.mark_deleted(tenant_id, endpoint_id, iso_timestamp(self.clock()), role_arn=endpoint.storage.roleArn)

    def verify(self, tenant_id: str, endpoint_id: str, stores: StoreFactory) -> dict[str, object]:
        """Write and remove a probe object with the stored credentials (or the assumed role); report what the
        store said, in words that name what to fix (adapters/s3_store.py, role_session.py)."""
        endpoint = self._active(tenant_id, endpoint_id)
        key = roles.probe_key(endpoint.storage.prefix)
        started = self.clock()
        try:
            store = stores(endpoint.storage, unseal(self.cipher, endpoint))
            store.put_new(key, b"spool verify probe\n", content_type="text/plain", content_encoding=None)
        except StoreError as exc:
            return {"ok": False, "error": exc.message, "probeKey": key}
        try:
            store.delete(key)
        except StoreError as exc:
            return {
                "ok": False,
                "error": f"the probe was written but could not be removed: {exc.message}",
                "probeKey": key,
            }
        return {"ok": True, "probeKey": key, "elapsedMs": round((self.clock() - started) * 1000)}

    def aws_role(self, tenant_id: str, endpoint_id: str, kms_key_arn: str | None = None) -> AwsRole:
        """The role the tenant creates for this endpoint: trust and permission policies, and a template."""
        endpoint = self._active(tenant_id, endpoint_id)
        if self.sink_role_arn is None:
            raise ServiceFault("the sink role ARN is not configured", detail={"setting": "sink_role_arn"})
        if not takes_role(endpoint.storage):
            raise Conflict(
                "roles are for Amazon S3 endpoints (provider s3 without endpoint); this one cannot sign with one"
            )
        return roles.aws_role(endpoint, self.sink_role_arn, kms_key_arn)

    def view(self, endpoint: Endpoint, *, include_status: bool = True) -> EndpointOut:
        storage = endpoint.storage
        return EndpointOut(
            id=endpoint.id,
            url=endpoint.url,
            deliveryMode=endpoint.deliveryMode,
            eventTypes=endpoint.eventTypes,
            storageConfig=StorageConfigOut(
                **storage.model_dump(), credentialsConfigured=endpoint.credentials is not None
            ),
            description=endpoint.description,
            status=endpoint.status,
            createdAt=endpoint.createdAt,
            updatedAt=endpoint.updatedAt,
            delivery=self.status.get_status(endpoint.tenantId, endpoint.id) if include_status and self.status else None,
        )

    def _active(self, tenant_id: str, endpoint_id: str) -> Endpoint:
        endpoint = self.repo.get_endpoint(tenant_id, endpoint_id)
        if endpoint is None or endpoint.status != "active":
            raise NotFound(f"endpoint {endpoint_id} not found")
        return endpoint

    def _settings(self, config: StorageConfigIn, *, external_id: str | None) -> StorageSettings:
        """The settings to store, by the rules of the endpoint's provider (domain/providers.py). An endpoint that
        may sign with a role (Amazon S3) keeps `external_id` (its current one), or gets a new one; any other
        endpoint has none."""
        if config.bucket is None:
            raise InvalidInput("is required", field="storageConfig.bucket")
        provider = PROVIDERS[config.provider]
        given = {name for name in config.model_fields_set & PROVIDER_FIELDS if getattr(config, name) is not None}
        refused = [name for name in StorageConfigIn.model_fields if name in given - provider.fields]
        if refused:
            raise InvalidInput(f"is not used by provider {provider.name}", field=f"storageConfig.{refused[0]}")
        missing = [name for name in provider.required if getattr(config, name) is None]
        if missing:
            raise InvalidInput(f"is required for provider {provider.name}", field=f"storageConfig.{missing[0]}")
        provider.check(config, self.local_root)
        endpoint = self.url_policy.check(config.endpoint) if config.endpoint else None
        settings = config.model_copy(update={"endpoint": endpoint})
        if config.roleArn is not None:
            self._check_role(config.roleArn, settings)
        self._check_layout(config)
        return StorageSettings.model_validate(
            settings.model_dump(exclude=set(_KEY_FIELDS))
            | {"externalId": (external_id or roles.new_external_id()) if takes_role(settings) else None}
        )

    def _check_layout(self, config: StorageConfigIn) -> None:
        """Rules between the object settings (each field alone is checked by its model), from the formats table."""
        entry = FORMATS[config.format]
        if config.compression not in entry.compressions:
            note = f": {entry.compression_note}" if entry.compression_note else ""
            raise InvalidInput(
                f"must be {' or '.join(entry.compressions)} with format {config.format}{note}",
                field="storageConfig.compression",
            )
        # The api's asset cannot look for pyarrow (only the sink's holds it): the deployment says (SPOOL_PARQUET).
        available = self.parquet if config.format == "parquet" and self.parquet is not None else entry.available()
        if not available:
            raise InvalidInput(f"{config.format} is not available in this deployment", field="storageConfig.format")
        if config.manifests and keys.folder_part(config.keyTemplate) is None:
            raise InvalidInput(
                "must name a time part ({date}, {hour}, {minute}, ...) in its folder (before the last '/') for "
                "manifests: a folder is sealed when its time window has ended, and one without a time part never ends",
                field="storageConfig.keyTemplate",
            )
        if config.kmsKeyId is not None and config.serverSideEncryption != "aws:kms":
            raise InvalidInput("is used only with serverSideEncryption aws:kms", field="storageConfig.kmsKeyId")

    def _check_role(self, role_arn: str, settings: StorageConfigIn) -> None:
        if not takes_role(settings):
            raise InvalidInput(PROVIDERS[settings.provider].role_refused, field="storageConfig.roleArn")
        own = roles.role_account(self.sink_role_arn) if self.sink_role_arn else None
        if own is not None and roles.role_account(role_arn) == own:
            # The sink may not assume roles of its own account (infra/spool_infra/ingest.py says why).
            raise InvalidInput(
                "is a role in Spool's own AWS account; name a role in the account of your bucket",
                field="storageConfig.roleArn",
            )

    @staticmethod
    def _credentials_for(
        settings: StorageSettings, access_key_id: SecretStr | None, secret_access_key: SecretStr | None
    ) -> Credentials | None:
        """The access keys to seal, if the endpoint uses keys; a 422 for keys it must not have or lacks."""
        provider = PROVIDERS[settings.provider]
        kinds = provider.signs_with(settings)
        given = [
            n for n, v in (("accessKeyId", access_key_id), ("secretAccessKey", secret_access_key)) if v is not None
        ]
        if "keys" not in kinds:  # it signs with nothing; keys it does not take were refused with its settings
            return None
        if settings.roleArn is not None:
            if given:
                raise InvalidInput(
                    "give either roleArn or accessKeyId/secretAccessKey, not both", field="storageConfig.roleArn"
                )
            return None
        alternative = " (or roleArn, for Amazon S3)" if "role" in kinds else ""
        if access_key_id is None:
            raise InvalidInput(
                f"is required for provider {provider.name}{alternative}", field="storageConfig.accessKeyId"
            )
        if secret_access_key is None:
            raise InvalidInput(
                f"is required for provider {provider.name}{alternative}", field="storageConfig.secretAccessKey"
            )
        return Credentials(accessKeyId=access_key_id, secretAccessKey=secret_access_key)

    @staticmethod
    def _check_url_agrees(url: str, settings: StorageSettings) -> None:
        provider, bucket, prefix = parse_storage_url(url)
        expected = storage_url(settings)
        if (provider, bucket, prefix) != (settings.provider, settings.bucket, settings.prefix):
            raise InvalidInput(
                f"url {url!r} disagrees with storageConfig (provider, bucket and prefix give {expected!r})",
                field="url",
            )


def _later_timestamp(now: float, previous: str) -> str:
    """updatedAt must move forward even when two writes land in the same millisecond (it is the CAS token)."""
    earlier = datetime.fromisoformat(previous.replace("Z", "+00:00")).timestamp()
    return iso_timestamp(max(now, earlier + 0.0015))  # 1.5 ms: formatting truncates to whole milliseconds


def _encode_cursor(endpoint_id: str) -> str:
    return base64.urlsafe_b64encode(endpoint_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("is not a cursor this API returned", field="cursor") from None
    if not re.fullmatch(r"ep_[0-9a-f]{28}", value):
        raise InvalidInput("is not a cursor this API returned", field="cursor")
    return value
