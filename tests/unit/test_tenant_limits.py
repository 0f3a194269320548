"""Per-tenant limits and what one tenant may claim (issue 20, items 3 and 6): a cap on active endpoints per tenant
(default in domain/limits.py, changeable per tenant by the operator), a 422 naming the limit past it, and a
roleArn that serves the endpoints of one tenant only. Over the api harness's fakes; the DynamoDB transactions
that keep the counts and claims are tested on the emulator in tests/integration/test_tenant_limits.py."""

from __future__ import annotations

from typing import Any

import pytest

from spool.domain import limits
from spool.domain.errors import InvalidInput, NotFound
from tests.conftest import spec_body
from tests.unit.conftest import ApiHarness, Reply
from tests.unit.test_api_errors import field_names
from tests.unit.test_roles import KEYS, ROLE_ARN, role_body

ENDPOINTS = "/api/v1/endpoints"


def create(harness: ApiHarness, key: str | None = None, body: dict[str, Any] | None = None) -> Reply:
    return harness.call("POST", ENDPOINTS, body or spec_body(), key=key or harness.key)


def test_a_tenant_has_at_most_its_limit_of_active_endpoints(harness: ApiHarness) -> None:
    harness.services.tenants.set_endpoint_limit(harness.tenant_id, 2)
    made = [create(harness) for _ in range(2)]

    refused = create(harness)

    assert [r.status for r in made] == [201, 201]
    assert refused.status == 422
    error = refused.json()["error"]
    assert error["code"] == "limit_exceeded"
    assert "endpointsPerTenant" in error["message"] and "2 endpoints" in error["message"]


def test_a_deleted_endpoint_makes_room_for_another(harness: ApiHarness) -> None:
    harness.services.tenants.set_endpoint_limit(harness.tenant_id, 1)
    first = create(harness).json()["id"]
    assert create(harness).status == 422

    assert harness.call("DELETE", f"{ENDPOINTS}/{first}").status == 204
    assert create(harness).status == 201


def test_without_a_limit_of_its_own_a_tenant_has_the_default(harness: ApiHarness) -> None:
    for _ in range(limits.ENDPOINTS_PER_TENANT_DEFAULT):
        assert create(harness).status == 201

    assert create(harness).status == 422


def test_one_tenants_limit_is_not_anothers(harness: ApiHarness) -> None:
    harness.services.tenants.set_endpoint_limit(harness.tenant_id, 1)
    _, other_key = harness.new_tenant()
    create(harness)

    assert create(harness, other_key).status == 201


@pytest.mark.parametrize("limit", [0, limits.ENDPOINTS_PER_TENANT_MAX + 1])
def test_the_operator_sets_a_limit_within_range(harness: ApiHarness, limit: int) -> None:
    with pytest.raises(InvalidInput):
        harness.services.tenants.set_endpoint_limit(harness.tenant_id, limit)


def test_the_limit_of_an_unknown_tenant_cannot_be_set(harness: ApiHarness) -> None:
    with pytest.raises(NotFound):
        harness.services.tenants.set_endpoint_limit("ten_nobody", 5)


# --- roles -----------------------------------------------------------------------------------------------------


def test_a_role_used_by_another_tenants_endpoint_is_refused_naming_role_arn(harness: ApiHarness) -> None:
    assert create(harness, body=role_body()).status == 201
    _, other_key = harness.new_tenant()

    refused = create(harness, other_key, role_body())

    assert refused.status == 422
    assert field_names(refused.json()["error"]) == ["storageConfig.roleArn"]


def test_a_tenant_may_use_its_role_for_several_endpoints(harness: ApiHarness) -> None:
    assert create(harness, body=role_body("a/")).status == 201
    assert create(harness, body=role_body("b/")).status == 201


def test_a_role_no_endpoint_uses_any_more_is_free_for_another_tenant(harness: ApiHarness) -> None:
    endpoint_id = create(harness, body=role_body()).json()["id"]
    harness.call("DELETE", f"{ENDPOINTS}/{endpoint_id}")
    _, other_key = harness.new_tenant()

    assert create(harness, other_key, role_body()).status == 201


def test_patching_onto_another_tenants_role_is_refused_and_changes_nothing(harness: ApiHarness) -> None:
    create(harness, body=role_body())
    other_id, other_key = harness.new_tenant()
    mine = create(harness, other_key, role_body(roleArn=None, **KEYS)).json()["id"]

    refused = harness.call(
        "PATCH",
        f"{ENDPOINTS}/{mine}",
        {"storageConfig": {"roleArn": ROLE_ARN}},
        key=other_key,
    )

    assert refused.status == 422, refused.text
    assert field_names(refused.json()["error"]) == ["storageConfig.roleArn"]
    assert harness.repo.endpoints[(other_id, mine)].storage.roleArn is None


def test_a_role_patched_away_is_free_for_another_tenant(harness: ApiHarness) -> None:
    endpoint_id = create(harness, body=role_body()).json()["id"]
    moved = harness.call(
        "PATCH",
        f"{ENDPOINTS}/{endpoint_id}",
        {"storageConfig": {"roleArn": "arn:aws:iam::111122223333:role/another"}},
    )
    assert moved.status == 200, moved.text
    _, other_key = harness.new_tenant()

    assert create(harness, other_key, role_body()).status == 201
