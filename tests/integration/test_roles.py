"""Delivery into the tenant's own AWS account by assuming its role (issue 13), through the local runtime.

The tenant's account is a second account of the emulator (its IAM, S3 and CloudFormation); the tenant creates its
role by deploying the template GET .../aws-role hands out. A recording proxy in front of the emulator's S3 (the
reliability suite's `StoreProxy`, reached through `AWS_ENDPOINT_URL_S3`) shows the access key id of every
request the store received, and the record of what STS issued (tests/iam/trust.py) tells which AssumeRole
issued it and with which ExternalId.

Neither emulator's STS evaluates trust policies; tests/iam/trust.py does, on the sink's session, and answers a
refused AssumeRole with STS's AccessDenied response (HTTP 403, STS's XML error shape and message). That is what
the trust-policy tests below run against. The tests run on moto and on LocalStack (--emulator).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from spool.adapters.stores import Stores
from spool.domain.credentials import Credentials, RoleToAssume
from spool.domain.errors import StoreError
from spool.domain.storage import StorageSettings
from spool.domain.urlpolicy import UrlPolicy
from spool.local.runtime import LocalRuntime
from tests.iam.calls import CallLog
from tests.iam.trust import Issued, TrustPolicies
from tests.reliability.faults import StoreProxy
from tests.servers import (
    Api,
    TenantAccount,
    amazon_s3_through,
    deploy_tenant_role,
    read_objects,
    role_endpoint_body,
    wait_until,
)

SINK_ACCESS_KEY = "test"  # the local runtime's own credentials (its functions' sessions use them)


@pytest.fixture
def recorded_s3(
    runtime: LocalRuntime, tenant_account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StoreProxy]:
    """Amazon S3 (no `endpoint`) is reached through a recording proxy: store clients made from now on."""
    proxy = StoreProxy(runtime.aws_url)
    amazon_s3_through(runtime, monkeypatch, proxy.url)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def run() -> str:
    return uuid.uuid4().hex[:8]


def new_bucket(account: TenantAccount, run: str) -> str:
    bucket = f"tenant-{run}"
    account.s3.create_bucket(Bucket=bucket)
    return bucket


def role_arn(account: TenantAccount, name: str) -> str:
    return f"arn:aws:iam::{account.id}:role/{name}"


def verify(api: Api, endpoint_id: str) -> dict[str, Any]:
    reply = api.call("POST", f"/api/v1/endpoints/{endpoint_id}/verify")
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def issued_by(trust_policies: TrustPolicies, access_key_id: str) -> Issued | None:
    """The AssumeRole of the sink that `access_key_id` was issued to (None: not an assumed role's key)."""
    return trust_policies.issued.get(access_key_id)


def writes(proxy: StoreProxy, bucket: str, prefix: str) -> dict[str, str]:
    """Object key -> access key id of each PutObject the store received under s3://bucket/prefix."""
    return {
        path.split("?")[0].removeprefix(f"/{bucket}/"): key
        for method, path, key in proxy.seen()
        if method == "PUT" and path.startswith(f"/{bucket}/{prefix}") and ".spool-verify-" not in path
    }


def events_in(account: TenantAccount, bucket: str, prefix: str) -> dict[str, list[str]]:
    return {key: [line["id"] for line in lines] for key, lines in read_objects(account.s3, bucket, prefix).items()}


def send(api: Api, event_type: str, count: int) -> list[str]:
    return [e["id"] for e in api.send_batch([{"eventType": event_type, "payload": {"n": n}} for n in range(count)])]


def trust(principal: str, condition: dict[str, Any] | None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if condition is not None:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_a_role_endpoint_writes_with_the_assumed_sessions_credentials_and_its_external_id(
    api: Api,
    tenant_account: TenantAccount,
    recorded_s3: StoreProxy,
    call_log: CallLog,
    trust_policies: TrustPolicies,
    run: str,
) -> None:
    bucket, prefix = new_bucket(tenant_account, run), f"role{run}/"
    arn = role_arn(tenant_account, f"spool-delivery-{run}")
    created = api.create_endpoint(role_endpoint_body(bucket, prefix, arn, [f"role{run}.*"], batch_size=3))
    external_id = created["storageConfig"]["externalId"]
    deploy_tenant_role(api, tenant_account, created["id"])

    assert verify(api, created["id"])["ok"] is True
    ids = send(api, f"role{run}.created", 6)

    def all_written() -> dict[str, list[str]] | None:
        found = events_in(tenant_account, bucket, prefix)
        return found if sorted(i for lines in found.values() for i in lines) == sorted(ids) else None

    written = wait_until(all_written, timeout=20, what="the role endpoint's objects")

    keys = writes(recorded_s3, bucket, prefix)
    assert set(keys) == set(written)  # every object went through the proxy, with the key it recorded
    assert SINK_ACCESS_KEY not in keys.values()
    for access_key in set(keys.values()):
        session = issued_by(trust_policies, access_key)
        assert session is not None, f"{access_key} is not an assumed role's key"
        assert (session.role_arn, session.external_id) == (arn, external_id)
        assert session.session_name == f"spool-{created['id']}"
    sent = [r for r in call_log.snapshot() if r.action == "sts:AssumeRole" and r.resource == arn]
    assert ("sts:ExternalId", (external_id,)) in {pair for r in sent for pair in r.context}
    assert ("sts:RoleSessionName", (f"spool-{created['id']}",)) in {pair for r in sent for pair in r.context}


@pytest.mark.parametrize(
    ("condition", "refused"),
    [
        (None, False),  # AWS lets any ExternalId through: verify's probe with another one is what catches it
        ({"StringEquals": {"sts:ExternalId": "spool-00000000000000000000000000000000"}}, True),
        ({"StringLike": {"sts:ExternalId": "spool-*"}}, False),  # any Spool ExternalId: any Spool tenant
    ],
    ids=["no external id condition", "another external id", "a wildcard external id"],
)
def test_a_trust_policy_that_does_not_require_the_endpoints_external_id_fails_verify(
    api: Api,
    runtime: LocalRuntime,
    tenant_account: TenantAccount,
    trust_policies: TrustPolicies,
    run: str,
    condition: dict[str, Any] | None,
    refused: bool,
) -> None:
    assert runtime.resources is not None
    bucket = new_bucket(tenant_account, run)
    name = f"spool-badtrust-{run}"
    tenant_account.iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=trust(runtime.resources.sink_role_arn, condition)
    )
    created = api.create_endpoint(role_endpoint_body(bucket, "x/", role_arn(tenant_account, name), [f"bad{run}.*"]))
    external_id = created["storageConfig"]["externalId"]

    result = verify(api, created["id"])

    assert result["ok"] is False
    assert "trust policy" in result["error"]
    assert f"sts:ExternalId = {external_id}" in result["error"]
    assert (role_arn(tenant_account, name), external_id) in trust_policies.refused or not refused
    assert tenant_account.s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # no probe was written


@pytest.mark.parametrize(
    "condition",
    [None, {"StringLike": {"sts:ExternalId": "spool-*"}}],
    ids=["no external id condition", "a wildcard external id"],
)
def test_delivery_refuses_a_role_whose_trust_policy_accepts_another_external_id(
    runtime: LocalRuntime, tenant_account: TenantAccount, trust_policies: TrustPolicies, run: str, condition: Any
) -> None:
    # What a role in another of the operator's accounts trusting Spool's sink looks like: any tenant naming it
    # could deliver with it, were delivery not to probe it as verify does. The delivery store factory with the
    # sink's own STS client (its AssumeRole calls held against the role's trust policy, tests/iam/trust.py); a
    # delivery through the pollers would leave its refused messages in the shared DLQ for later tests.
    assert runtime.resources is not None and runtime.sink_services.clients is not None
    bucket, name = new_bucket(tenant_account, run), f"spool-laxtrust-{run}"
    tenant_account.iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=trust(runtime.resources.sink_role_arn, condition)
    )
    endpoint_id = f"ep_{uuid.uuid4().hex[:28]}"
    role = RoleToAssume(
        endpointId=endpoint_id,
        roleArn=role_arn(tenant_account, name),
        externalId=f"spool-{uuid.uuid4().hex}",
        sessionName=f"spool-{endpoint_id}",
    )
    stores = Stores(UrlPolicy(), None, sts=runtime.sink_services.clients.sts, amazon_s3_url=runtime.aws_url)
    storage = StorageSettings(provider="s3", bucket=bucket, prefix="x/", region="us-east-1")

    with pytest.raises(StoreError) as raised:
        stores(storage, Credentials(role=role))

    assert raised.value.message.startswith(f"role {role.roleArn}: its trust policy does not require sts:ExternalId")
    assert f"GET /api/v1/endpoints/{endpoint_id}/aws-role" in raised.value.message
    assert not [r for r in trust_policies.refused if r[0] == role.roleArn]  # STS let the wrong ExternalId in
    assert tenant_account.s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_a_trust_policy_naming_another_principal_fails_verify_with_the_trust_message(
    api: Api, runtime: LocalRuntime, tenant_account: TenantAccount, run: str
) -> None:
    bucket = new_bucket(tenant_account, run)
    name = f"spool-otherprincipal-{run}"
    created = api.create_endpoint(role_endpoint_body(bucket, "x/", role_arn(tenant_account, name), [f"op{run}.*"]))
    condition = {"StringEquals": {"sts:ExternalId": created["storageConfig"]["externalId"]}}
    document = trust("arn:aws:iam::444455556666:role/another-vendor", condition)
    tenant_account.iam.create_role(RoleName=name, AssumeRolePolicyDocument=document)

    result = verify(api, created["id"])

    assert result["ok"] is False
    assert result["error"].startswith(f"role {role_arn(tenant_account, name)}: Spool cannot assume it (AccessDenied")
    assert "trust policy" in result["error"]


def test_verify_says_the_bucket_does_not_exist(api: Api, tenant_account: TenantAccount, run: str) -> None:
    arn = role_arn(tenant_account, f"spool-nobucket-{run}")
    created = api.create_endpoint(role_endpoint_body(f"missing-{run}", "x/", arn, [f"nb{run}.*"]))
    deploy_tenant_role(api, tenant_account, created["id"])

    result = verify(api, created["id"])

    assert result["ok"] is False
    assert result["error"] == f"bucket missing-{run} does not exist (NoSuchBucket, HTTP 404)"


def stored_item(runtime: LocalRuntime, endpoint_id: str) -> dict[str, Any]:
    """The endpoint's item as DynamoDB holds it (read with the test's own client)."""
    assert runtime.resources is not None
    tenant_id = runtime.api_services.tenants.authenticate(runtime.api_key)
    db = runtime.client("dynamodb")
    key = {"pk": {"S": f"T#{tenant_id}"}, "sk": {"S": f"EP#{endpoint_id}"}}
    item: dict[str, Any] = db.get_item(TableName=runtime.resources.table_name, Key=key)["Item"]
    return item


def test_patch_from_keys_to_a_role_and_back_delivers_each_way_and_the_table_never_holds_both(
    api: Api,
    runtime: LocalRuntime,
    tenant_account: TenantAccount,
    recorded_s3: StoreProxy,
    trust_policies: TrustPolicies,
    run: str,
) -> None:
    bucket, prefix, event_type = new_bucket(tenant_account, run), f"sw{run}/", f"sw{run}.x"
    user = f"spool-writer-{run}"
    tenant_account.iam.create_user(UserName=user)
    key = tenant_account.iam.create_access_key(UserName=user)["AccessKey"]
    keys = {"accessKeyId": key["AccessKeyId"], "secretAccessKey": key["SecretAccessKey"]}
    body = role_endpoint_body(bucket, prefix, "unused", [f"sw{run}.*"], batch_size=1)
    body["storageConfig"].pop("roleArn")
    created = api.create_endpoint(body | {"storageConfig": body["storageConfig"] | keys})
    endpoint_id, arn = created["id"], role_arn(tenant_account, f"spool-switch-{run}")

    def with_keys(access_key: str) -> bool:
        return access_key == key["AccessKeyId"]

    def with_role(access_key: str) -> bool:
        issued = issued_by(trust_policies, access_key)
        return issued is not None and issued.role_arn == arn

    def written_with(credentials: Callable[[str], bool]) -> None:
        """Events sent now end up in objects the store received with `credentials` (the sink sees a PATCH
        within its 1 s endpoint cache, so the first events may still go the old way)."""

        def one() -> bool:
            (event_id,) = send(api, event_type, 1)
            found = wait_until(
                lambda: [k for k, ids in events_in(tenant_account, bucket, prefix).items() if event_id in ids],
                timeout=10,
                what="the object",
            )
            return credentials(writes(recorded_s3, bucket, prefix)[found[0]])

        wait_until(one, timeout=20, interval=0, what=f"a write {credentials.__name__.replace('_', ' ')}")

    def holds(kind: str) -> None:
        item = stored_item(runtime, endpoint_id)
        storage = json.loads(item["doc"]["S"])["storage"]
        assert ("credentials" in item, storage["roleArn"] is not None) == (kind == "keys", kind == "role")

    written_with(with_keys)
    holds("keys")

    to_role = api.call("PATCH", f"/api/v1/endpoints/{endpoint_id}", {"storageConfig": {"roleArn": arn}})
    assert to_role.status_code == 200, to_role.text
    holds("role")
    deploy_tenant_role(api, tenant_account, endpoint_id)
    written_with(with_role)

    back = api.call("PATCH", f"/api/v1/endpoints/{endpoint_id}", {"storageConfig": keys})
    assert back.status_code == 200, back.text
    holds("keys")
    written_with(with_keys)
    assert {to_role.json()["storageConfig"]["externalId"], back.json()["storageConfig"]["externalId"]} == {
        created["storageConfig"]["externalId"]
    }
