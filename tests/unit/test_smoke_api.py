"""The api handler end to end over fakes: the SPEC's create/get/list/send flow."""

from __future__ import annotations

from tests.conftest import spec_body
from tests.unit.conftest import ApiHarness


def test_spec_body_is_created_with_201_and_no_credentials(harness: ApiHarness) -> None:
    reply = harness.call("POST", "/api/v1/endpoints", spec_body())
    assert reply.status == 201, reply.text
    body = reply.json()
    assert body["id"].startswith("ep_")
    assert body["storageConfig"]["credentialsConfigured"] is True
    assert "accessKeyId" not in reply.text and "secretAccessKey" not in reply.text
    assert "wJalrXUtnFEMI" not in reply.text and "AKIAIOSFODNN7EXAMPLE" not in reply.text
