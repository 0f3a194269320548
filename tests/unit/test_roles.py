"""Endpoints that deliver by assuming the tenant's role (issue 13): `roleArn` instead of access keys, the
ExternalId Spool generates, PATCH between keys and a role, and GET .../aws-role with policies that allow exactly
what Spool needs (checked by evaluating them as IAM does, tests/iam/policy.py, not by string match)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from spool.domain import roles
from spool.domain.endpoints import unseal
from spool.domain.models import Endpoint
from spool.domain.storage import StorageSettings
from tests.conftest import SPEC_BODY
from tests.iam.calls import Request
from tests.iam.policy import RolePolicy, Statement
from tests.iam.trust import trust_allows
from tests.unit.conftest import SINK_ROLE_ARN, ApiHarness

ENDPOINTS = "/api/v1/endpoints"
ROLE_ARN = "arn:aws:iam::111122223333:role/spool-delivery"
OTHER_ROLE_ARN = "arn:aws:iam::111122223333:role/team/spool-other"
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EXTERNAL_ID_RE = re.compile(r"^spool-[0-9a-f]{32}$")
KEYS = {"accessKeyId": SPEC_BODY["storageConfig"]["accessKeyId"], "secretAccessKey": "rotated/Secret+Value/0001"}


def role_body(prefix: str = "events/", **storage: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "provider": "s3",
        "bucket": "my-webhook-archive",
        "prefix": prefix,
        "region": "us-east-1",
        "roleArn": ROLE_ARN,
    }
    for name, value in storage.items():
        if value is None:
            config.pop(name, None)
        else:
            config[name] = value
    return {
        "url": f"s3://my-webhook-archive/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": ["order.*"],
        "storageConfig": config,
    }


def create(harness: ApiHarness, body: dict[str, Any]) -> dict[str, Any]:
    reply = harness.call("POST", ENDPOINTS, body)
    assert reply.status == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def patch(harness: ApiHarness, endpoint_id: str, storage: dict[str, Any]) -> Any:
    return harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", {"storageConfig": storage})


def stored(harness: ApiHarness, endpoint_id: str) -> Endpoint:
    endpoint: Endpoint = harness.repo.endpoints[(harness.tenant_id, endpoint_id)]
    return endpoint


def holds_one_kind(endpoint: Endpoint) -> bool:
    """The stored item holds access keys (ciphertext) or a roleArn, never both."""
    return endpoint.credentials is None or endpoint.storage.roleArn is None


def field_error(reply: Any) -> tuple[str, str]:
    assert reply.status == 422, reply.text
    (found,) = reply.json()["error"]["fields"]
    return found["field"], found["message"]


def aws_role(harness: ApiHarness, endpoint_id: str, query: str = "") -> dict[str, Any]:
    reply = harness.call("GET", f"{ENDPOINTS}/{endpoint_id}/aws-role{query}")
    assert reply.status == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def policy_of(document: dict[str, Any]) -> RolePolicy:
    statements = [
        Statement(s["Effect"], [s["Action"]], [s["Resource"]], s.get("Condition", {})) for s in document["Statement"]
    ]
    return RolePolicy("tenant-role", statements)


def s3(action: str, resource: str) -> Request:
    return Request("tenant-role", action, resource)


def kms(action: str, via: str | None = "s3.us-east-1.amazonaws.com", key: str = KEY_ARN) -> Request:
    return Request("tenant-role", action, key, (("kms:ViaService", (via,)),) if via else ())


# --- create -------------------------------------------------------------------------------------------------


def test_an_endpoint_with_a_role_stores_no_credentials_and_shows_its_external_id(harness: ApiHarness) -> None:
    created = create(harness, role_body())

    config = created["storageConfig"]
    assert config["roleArn"] == ROLE_ARN
    assert EXTERNAL_ID_RE.match(config["externalId"])
    assert config["credentialsConfigured"] is False
    endpoint = stored(harness, created["id"])
    assert endpoint.credentials is None
    assert endpoint.storage.externalId == config["externalId"]


def test_every_amazon_s3_endpoint_gets_its_own_external_id_and_other_stores_none(harness: ApiHarness) -> None:
    with_role = [create(harness, role_body(f"r{n}/")) for n in range(3)]
    with_keys = create(harness, role_body("keys/", roleArn=None, **KEYS))
    compatible = create(harness, role_body("minio/", roleArn=None, endpoint="http://minio:9000", **KEYS))

    ids = [e["storageConfig"]["externalId"] for e in [*with_role, with_keys]]
    assert len(set(ids)) == 4
    assert all(EXTERNAL_ID_RE.match(i) for i in ids)
    assert compatible["storageConfig"]["externalId"] is None


@pytest.mark.parametrize(
    ("storage", "field", "words"),
    [
        ({"accessKeyId": KEYS["accessKeyId"]}, "storageConfig.roleArn", "not both"),
        (KEYS, "storageConfig.roleArn", "not both"),
        ({"endpoint": "http://minio:9000"}, "storageConfig.roleArn", "Amazon S3 only"),
        ({"roleArn": "arn:aws:iam::111122223333:user/someone"}, "storageConfig.roleArn", "IAM role ARN"),
        ({"roleArn": "arn:aws:iam::1234:role/short-account"}, "storageConfig.roleArn", "IAM role ARN"),
        ({"roleArn": "arn:aws:iam::123456789012:role/in-spools-account"}, "storageConfig.roleArn", "own AWS account"),
        ({"externalId": "spool-chosen-by-the-tenant"}, "storageConfig.externalId", "not permitted"),
    ],
    ids=["one key", "both keys", "endpoint", "user arn", "short account", "spools account", "external id"],
)
def test_a_role_is_refused_where_it_cannot_work_with_a_422_naming_the_field(
    harness: ApiHarness, storage: dict[str, Any], field: str, words: str
) -> None:
    found, message = field_error(harness.call("POST", ENDPOINTS, role_body(**storage)))

    assert found == field
    assert words in message


def test_provider_local_takes_no_role(harness: ApiHarness) -> None:
    body = {
        "url": "local://archive/events/",
        "deliveryMode": "storage",
        "eventTypes": ["*"],
        "storageConfig": {"provider": "local", "bucket": "archive", "prefix": "events/", "roleArn": ROLE_ARN},
    }

    assert field_error(harness.call("POST", ENDPOINTS, body)) == (
        "storageConfig.roleArn",
        "is not used by provider local",
    )


def test_amazon_s3_without_keys_or_role_names_both_ways(harness: ApiHarness) -> None:
    found, message = field_error(harness.call("POST", ENDPOINTS, role_body(roleArn=None)))

    assert found == "storageConfig.accessKeyId"
    assert "roleArn" in message


def test_the_sink_assumes_the_role_with_its_external_id_and_a_session_naming_the_endpoint(
    harness: ApiHarness,
) -> None:
    created = create(harness, role_body())

    credentials = unseal(harness.cipher, stored(harness, created["id"]))

    assert credentials is not None and credentials.role is not None
    assert credentials.role.roleArn == ROLE_ARN
    assert credentials.role.externalId == created["storageConfig"]["externalId"]
    assert credentials.role.sessionName == f"spool-{created['id']}"
    assert credentials.accessKeyId is None
    assert harness.cipher.decrypts == 0  # nothing to decrypt: no KMS call for a role


# --- PATCH --------------------------------------------------------------------------------------------------


def test_patch_from_keys_to_a_role_and_back_never_stores_both(harness: ApiHarness) -> None:
    endpoint_id = create(harness, role_body(roleArn=None, **KEYS))["id"]
    external_id = stored(harness, endpoint_id).storage.externalId
    assert stored(harness, endpoint_id).credentials is not None

    to_role = patch(harness, endpoint_id, {"roleArn": ROLE_ARN})
    assert to_role.status == 200, to_role.text
    assert to_role.json()["storageConfig"] | {"credentialsConfigured": False} == to_role.json()["storageConfig"]
    assert (stored(harness, endpoint_id).credentials, stored(harness, endpoint_id).storage.roleArn) == (None, ROLE_ARN)

    other_role = patch(harness, endpoint_id, {"roleArn": OTHER_ROLE_ARN})
    assert other_role.json()["storageConfig"]["roleArn"] == OTHER_ROLE_ARN

    to_keys = patch(harness, endpoint_id, KEYS)
    assert to_keys.status == 200, to_keys.text
    config = to_keys.json()["storageConfig"]
    assert (config["roleArn"], config["credentialsConfigured"]) == (None, True)
    endpoint = stored(harness, endpoint_id)
    assert endpoint.storage.roleArn is None
    assert json.loads(harness.cipher.decrypt(endpoint.credentials or b"", _context(harness, endpoint_id))) == KEYS
    # One ExternalId for the endpoint's life as an Amazon S3 endpoint, whichever way it signs.
    assert {e.json()["storageConfig"]["externalId"] for e in (to_role, other_role, to_keys)} == {external_id}


def test_each_step_of_a_switch_leaves_one_kind_of_credentials(harness: ApiHarness) -> None:
    endpoint_id = create(harness, role_body())["id"]
    steps: list[dict[str, Any]] = [
        KEYS,
        {"roleArn": ROLE_ARN},
        {"roleArn": None, **KEYS},
        {"batchSize": 5},
        {"roleArn": OTHER_ROLE_ARN},
        {"prefix": "moved/"},
    ]
    for step in steps:
        body = {"storageConfig": step}
        if "prefix" in step:
            body["url"] = f"s3://my-webhook-archive/{step['prefix']}"
        reply = harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", body)
        assert reply.status == 200, (step, reply.text)
        assert holds_one_kind(stored(harness, endpoint_id)), step
    assert stored(harness, endpoint_id).storage.roleArn == OTHER_ROLE_ARN


@pytest.mark.parametrize(
    ("storage", "field"),
    [
        ({"roleArn": OTHER_ROLE_ARN, **KEYS}, "storageConfig.roleArn"),
        ({"roleArn": None}, "storageConfig.accessKeyId"),
        ({"endpoint": "http://minio:9000"}, "storageConfig.roleArn"),
        ({"accessKeyId": KEYS["accessKeyId"]}, "storageConfig.secretAccessKey"),
    ],
    ids=["role and keys", "role cleared without keys", "endpoint with a role", "one key"],
)
def test_a_patch_that_would_leave_both_or_neither_is_a_422_and_changes_nothing(
    harness: ApiHarness, storage: dict[str, Any], field: str
) -> None:
    endpoint_id = create(harness, role_body())["id"]
    before = stored(harness, endpoint_id)

    assert field_error(patch(harness, endpoint_id, storage))[0] == field
    assert stored(harness, endpoint_id) == before


def test_moving_to_an_s3_compatible_store_with_keys_drops_the_role_and_the_external_id(harness: ApiHarness) -> None:
    endpoint_id = create(harness, role_body())["id"]

    reply = patch(harness, endpoint_id, {"endpoint": "http://minio:9000", **KEYS})

    assert reply.status == 200, reply.text
    config = reply.json()["storageConfig"]
    assert (config["roleArn"], config["externalId"], config["credentialsConfigured"]) == (None, None, True)


def test_moving_to_provider_local_drops_the_role_as_it_drops_keys(harness: ApiHarness) -> None:
    endpoint_id = create(harness, role_body())["id"]

    body = {"url": "local://archive/events/", "storageConfig": {"region": None}}
    reply = harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", body)

    assert reply.status == 200, reply.text
    config = reply.json()["storageConfig"]
    assert (config["provider"], config["roleArn"], config["externalId"]) == ("local", None, None)


def test_a_stored_endpoint_with_a_role_and_no_external_id_is_refused_when_read(harness: ApiHarness) -> None:
    endpoint_id = create(harness, role_body())["id"]
    old = stored(harness, endpoint_id)

    with pytest.raises(ValidationError, match="externalId"):
        StorageSettings.model_validate(old.storage.model_dump() | {"externalId": None})


# --- GET .../aws-role -------------------------------------------------------------------------------------


def test_aws_role_trusts_only_the_sink_role_and_only_with_the_endpoints_external_id(harness: ApiHarness) -> None:
    created = create(harness, role_body())
    external_id = created["storageConfig"]["externalId"]

    answer = aws_role(harness, created["id"])

    assert (answer["roleArn"], answer["externalId"], answer["sinkRoleArn"]) == (ROLE_ARN, external_id, SINK_ROLE_ARN)
    trust = answer["trustPolicy"]
    session = {"sts:RoleSessionName": (f"spool-{created['id']}",)}
    assert trust_allows(trust, SINK_ROLE_ARN, {**session, "sts:ExternalId": (external_id,)})
    assert not trust_allows(trust, SINK_ROLE_ARN, {**session, "sts:ExternalId": ("spool-" + "0" * 32,)})
    assert not trust_allows(trust, SINK_ROLE_ARN, session)  # no ExternalId at all
    other_principal = "arn:aws:iam::444455556666:role/someone-else"
    assert not trust_allows(trust, other_principal, {**session, "sts:ExternalId": (external_id,)})
    assert (
        answer["cloudFormationTemplate"]["Resources"]["SpoolDeliveryRole"]["Properties"]["AssumeRolePolicyDocument"]
        == trust
    )


def test_aws_role_allows_putobject_under_the_prefix_and_deleting_only_verify_probes(harness: ApiHarness) -> None:
    policy = policy_of(aws_role(harness, create(harness, role_body())["id"])["permissionPolicy"])
    objects = "arn:aws:s3:::my-webhook-archive"

    assert policy.allows(s3("s3:PutObject", f"{objects}/events/2026-04-14/1713091800-001.ndjson"))
    assert policy.allows(s3("s3:DeleteObject", f"{objects}/events/.spool-verify-probe_1"))
    for action, resource in [
        ("s3:PutObject", f"{objects}/other/2026-04-14/1713091800-001.ndjson"),  # outside the prefix
        ("s3:PutObject", "arn:aws:s3:::another-bucket/events/x.ndjson"),
        ("s3:DeleteObject", f"{objects}/events/2026-04-14/1713091800-001.ndjson"),  # a delivered object
        ("s3:GetObject", f"{objects}/events/2026-04-14/1713091800-001.ndjson"),
        ("s3:PutObjectAcl", f"{objects}/events/x.ndjson"),
        ("s3:ListBucket", objects),
        ("kms:GenerateDataKey", KEY_ARN),  # no key given: no KMS at all
    ]:
        assert not policy.allows(s3(action, resource)), (action, resource)


def test_aws_role_with_the_buckets_kms_key_may_generate_data_keys_with_it_through_s3_only(
    harness: ApiHarness,
) -> None:
    endpoint_id = create(harness, role_body())["id"]

    policy = policy_of(aws_role(harness, endpoint_id, f"?kmsKeyArn={KEY_ARN}")["permissionPolicy"])

    assert policy.allows(kms("kms:GenerateDataKey"))
    assert not policy.allows(kms("kms:GenerateDataKey", via=None))  # called directly, not by S3
    assert not policy.allows(kms("kms:GenerateDataKey", via="s3.eu-west-1.amazonaws.com"))
    assert not policy.allows(kms("kms:GenerateDataKey", key=KEY_ARN.replace("1234abcd", "9999abcd")))
    assert not policy.allows(kms("kms:Decrypt"))
    assert policy.allows(s3("s3:PutObject", "arn:aws:s3:::my-webhook-archive/events/x.ndjson"))


def test_a_prefix_with_a_star_is_that_character_in_the_policy_not_a_wildcard(harness: ApiHarness) -> None:
    policy = policy_of(aws_role(harness, create(harness, role_body("a*b/"))["id"])["permissionPolicy"])

    assert policy.allows(s3("s3:PutObject", "arn:aws:s3:::my-webhook-archive/a*b/x.ndjson"))
    assert not policy.allows(s3("s3:PutObject", "arn:aws:s3:::my-webhook-archive/aXYZb/x.ndjson"))


def test_aws_role_template_names_the_role_of_the_arn_and_asserts_its_account(harness: ApiHarness) -> None:
    endpoint_id = create(harness, role_body(roleArn=OTHER_ROLE_ARN))["id"]

    answer = aws_role(harness, endpoint_id)

    template = answer["cloudFormationTemplate"]
    role = template["Resources"]["SpoolDeliveryRole"]["Properties"]
    assert (role["RoleName"], role["Path"]) == ("spool-other", "/team/")
    assert role["Policies"] == [{"PolicyName": "spool-delivery", "PolicyDocument": answer["permissionPolicy"]}]
    (assertion,) = template["Rules"]["TheEndpointsAccount"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::AccountId"}, "111122223333"]}
    assert template["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["SpoolDeliveryRole", "Arn"]}
    stack = f"spool-role-{endpoint_id.replace('_', '-')}"
    assert answer["deployCommand"] == (
        f"aws cloudformation deploy --template-file {stack}.json --stack-name {stack} "
        "--capabilities CAPABILITY_NAMED_IAM"
    )


def test_an_endpoint_on_keys_gets_a_template_to_create_its_role_before_switching(harness: ApiHarness) -> None:
    created = create(harness, role_body(roleArn=None, **KEYS))

    answer = aws_role(harness, created["id"])

    assert answer["roleArn"] is None
    assert answer["roleName"] == f"spool-{created['id']}"
    assert answer["externalId"] == created["storageConfig"]["externalId"]
    assert "Rules" not in answer["cloudFormationTemplate"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?kmsKeyArn=alias/my-key", "KMS key ARN"),
        ("?kmsKeyArn=arn:aws:kms:us-east-1:111122223333:alias/my-key", "KMS key ARN"),
        (f"?kmsKeyArn={KEY_ARN.replace('us-east-1', 'eu-west-1')}", "bucket's region"),
    ],
    ids=["alias", "alias arn", "other region"],
)
def test_aws_role_refuses_a_kms_key_s3_could_not_use_with_a_422(harness: ApiHarness, query: str, words: str) -> None:
    endpoint_id = create(harness, role_body())["id"]

    found, message = field_error(harness.call("GET", f"{ENDPOINTS}/{endpoint_id}/aws-role{query}"))

    assert found == "kmsKeyArn"
    assert words in message


def test_aws_role_of_an_s3_compatible_store_is_a_409(harness: ApiHarness) -> None:
    created = create(harness, role_body(roleArn=None, endpoint="http://minio:9000", **KEYS))

    reply = harness.call("GET", f"{ENDPOINTS}/{created['id']}/aws-role")

    assert reply.status == 409
    assert "Amazon S3" in reply.json()["error"]["message"]


def _context(harness: ApiHarness, endpoint_id: str) -> dict[str, str]:
    return {"spool:tenantId": harness.tenant_id, "spool:endpointId": endpoint_id}


def test_role_settings_round_trip_through_the_stored_model() -> None:
    settings = StorageSettings(
        provider="s3", bucket="b-1", region="us-east-1", roleArn=ROLE_ARN, externalId=roles.new_external_id()
    )

    assert StorageSettings.model_validate_json(settings.model_dump_json()) == settings
