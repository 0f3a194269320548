"""The OpenAPI document: generated from the models, served without a key, and committed under docs/."""

from __future__ import annotations

import json
from pathlib import Path

from spool.handlers import api
from tests.unit.conftest import ApiHarness

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_openapi_document_matches_the_code() -> None:
    generated = json.loads(api.openapi_json())
    assert json.loads(COMMITTED.read_text()) == generated, "docs/openapi.json drifted: run `make openapi`"


def test_openapi_document_is_served_without_a_key(harness: ApiHarness) -> None:
    reply = harness.call("GET", "/api/v1/openapi.json", key=None)
    assert reply.status == 200
    document = reply.json()
    assert document["openapi"].startswith("3.1")
    scheme = document["components"]["securitySchemes"]["apiKey"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "X-API-Key"}


def test_every_route_documents_its_success_and_error_answers() -> None:
    document = json.loads(COMMITTED.read_text())
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            codes = set(operation["responses"])
            assert {"401", "404", "422"} <= codes, (method, path)
            assert any(code.startswith("2") for code in codes), (method, path)
