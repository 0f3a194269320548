"""Shared test helpers: sample events from events/, and the SPEC's example bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A sample Lambda event from events/ (a fresh copy each call)."""
    return json.loads((EVENTS_DIR / name).read_text())


SPEC_BODY: dict[str, Any] = {
    "url": "s3://my-webhook-archive/events/",
    "deliveryMode": "storage",
    "eventTypes": ["order.*"],
    "storageConfig": {
        "provider": "s3",
        "bucket": "my-webhook-archive",
        "prefix": "events/",
        "region": "us-east-1",
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "endpoint": "http://minio:9000",
        "batchSize": 100,
        "flushIntervalSeconds": 60,
    },
}


def spec_body(**storage: Any) -> dict[str, Any]:
    """The SPEC's endpoint body; keyword arguments replace storageConfig fields (None removes one)."""
    body = copy.deepcopy(SPEC_BODY)
    for name, value in storage.items():
        if value is None:
            body["storageConfig"].pop(name, None)
        else:
            body["storageConfig"][name] = value
    return body


@pytest.fixture
def spec_endpoint_body() -> dict[str, Any]:
    return spec_body()
