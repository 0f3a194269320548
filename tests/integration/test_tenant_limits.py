"""The endpoint limit per tenant and the claims on roles, on the emulator's DynamoDB through the local runtime
(issue 20, items 3 and 6): the counts and claims are conditions of the same transactions that write the
endpoints (adapters/endpoint_table.py), so a create past the limit or onto another tenant's role writes
nothing."""

from __future__ import annotations

import uuid
from typing import Any

from spool.local.runtime import LocalRuntime
from tests.servers import Api


def new_tenant(runtime: LocalRuntime, api: Api, limit: int | None = None) -> Api:
    tenant, key = runtime.admin.create_tenant(f"limits-{uuid.uuid4().hex[:6]}")
    if limit is not None:
        runtime.admin.set_endpoint_limit(tenant.id, limit)
    return Api(api.base, key)


def body(prefix: str, role_arn: str | None = None) -> dict[str, Any]:
    credentials: dict[str, str] = (
        {"roleArn": role_arn}
        if role_arn
        else {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
    )
    return {
        "url": f"s3://my-webhook-archive/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": ["limits.*"],
        "storageConfig": {
            "provider": "s3",
            "bucket": "my-webhook-archive",
            "prefix": prefix,
            "region": "us-east-1",
            **credentials,
        },
    }


def test_a_create_past_the_tenants_limit_is_a_422_naming_it_and_a_delete_makes_room(
    runtime: LocalRuntime, api: Api
) -> None:
    tenant = new_tenant(runtime, api, limit=2)
    first = tenant.create_endpoint(body("l1/"))
    tenant.create_endpoint(body("l2/"))

    refused = tenant.call("POST", "/api/v1/endpoints", body("l3/"))

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "limit_exceeded"
    assert "endpointsPerTenant" in refused.json()["error"]["message"]
    assert len(tenant.call("GET", "/api/v1/endpoints").json()["items"]) == 2
    assert tenant.call("DELETE", f"/api/v1/endpoints/{first['id']}").status_code == 204
    assert tenant.call("POST", "/api/v1/endpoints", body("l3/")).status_code == 201


def test_a_role_serves_one_tenants_endpoints(runtime: LocalRuntime, api: Api) -> None:
    role = f"arn:aws:iam::111122223333:role/limits-{uuid.uuid4().hex[:8]}"
    owner, other = new_tenant(runtime, api), new_tenant(runtime, api)
    created = owner.create_endpoint(body("r1/", role))
    owner.create_endpoint(body("r2/", role))

    refused = other.call("POST", "/api/v1/endpoints", body("r3/", role))

    assert refused.status_code == 422, refused.text
    assert [f["field"] for f in refused.json()["error"]["fields"]] == ["storageConfig.roleArn"]
    assert other.call("GET", "/api/v1/endpoints").json()["items"] == []
    for endpoint in (created, owner.call("GET", "/api/v1/endpoints").json()["items"][-1]):
        assert owner.call("DELETE", f"/api/v1/endpoints/{endpoint['id']}").status_code == 204
    assert other.call("POST", "/api/v1/endpoints", body("r3/", role)).status_code == 201
