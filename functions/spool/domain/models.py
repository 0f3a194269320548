"""The endpoint resource: what a client sends to create or change one, what is stored, and what the endpoint
routes answer (the endpoint, a page of them, verify's and redrive's results). Field names are the JSON names of
the SPEC (camelCase); the fields' types are domain/fields.py's, `storageConfig` is domain/storage.py's.
"""

from __future__ import annotations

from typing import Literal

from spool.domain.base import Model
from spool.domain.fields import STRICT, Description, EndpointUrl, EventTypes
from spool.domain.status import DeliveryStatus
from spool.domain.storage import StorageConfigIn, StorageConfigOut, StorageConfigPatch, StorageSettings


class EndpointCreate(Model):
    """Body of `POST /api/v1/endpoints`."""

    model_config = STRICT

    url: EndpointUrl
    deliveryMode: Literal["storage"]
    eventTypes: EventTypes
    storageConfig: StorageConfigIn
    description: Description | None = None


class EndpointPatch(Model):
    """Body of `PATCH /api/v1/endpoints/{id}`."""

    model_config = STRICT

    url: EndpointUrl | None = None
    deliveryMode: Literal["storage"] | None = None
    eventTypes: EventTypes | None = None
    storageConfig: StorageConfigPatch | None = None
    description: Description | None = None


class Endpoint(Model):
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


class EndpointOut(Model):
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


class EndpointPage(Model):
    items: list[EndpointOut]
    nextCursor: str | None = None


class RedriveResult(Model):
    """`complete` is false when time ran out before the DLQ was drained: call again to move the rest."""

    moved: int
    complete: bool


class VerifyResult(Model):
    """What a probe write (and removal) with the stored credentials gave."""

    ok: bool
    probeKey: str | None = None
    elapsedMs: int | None = None
    error: str | None = None
