"""Least privilege: what each function's role may do, read from the synthesized policies."""

from __future__ import annotations

from typing import Any

from infra_synth import Synth
from tests.iam.calls import Place, Request
from tests.iam.policy import RolePolicy, StackPolicies, conditions_hold

from spool import names as shared
from spool.domain import roles
from spool_infra import names

CONTEXT_CONDITIONS = {
    "Null": {"kms:EncryptionContext:spool:tenantId": "false", "kms:EncryptionContext:spool:endpointId": "false"},
    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["spool:tenantId", "spool:endpointId"]},
}


def _role_statements(synth: Synth, handler: str) -> list[dict[str, Any]]:
    function = next(
        f["Properties"]
        for f in synth.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == handler
    )
    role_id = function["Role"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    assert "ManagedPolicyArns" not in synth.json["Resources"][role_id]["Properties"]
    return statements


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


def _resource_type(synth: Synth, resource: Any) -> str | None:
    """The CloudFormation type a statement's resource points at (Fn::GetAtt or Ref), if any."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return str(synth.json["Resources"][resource["Fn::GetAtt"][0]]["Type"])
    if isinstance(resource, dict) and "Ref" in resource:
        return str(synth.json["Resources"][resource["Ref"]]["Type"])
    return None


def _statements_with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]


def api(synth: Synth) -> list[dict[str, Any]]:
    return _role_statements(synth, "spool.handlers.api.lambda_handler")


def sink(synth: Synth) -> list[dict[str, Any]]:
    return _role_statements(synth, "spool.handlers.sink.lambda_handler")


def test_sink_may_decrypt_only_with_the_spool_encryption_context(synth: Synth) -> None:
    (statement,) = _statements_with(sink(synth), "kms:Decrypt")
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Condition"] == CONTEXT_CONDITIONS
    assert _resource_type(synth, statement["Resource"]) == "AWS::KMS::Key"


def test_api_may_encrypt_only_with_the_spool_encryption_context(synth: Synth) -> None:
    (statement,) = _statements_with(api(synth), "kms:Encrypt")
    assert statement["Action"] == "kms:Encrypt"
    assert statement["Condition"] == CONTEXT_CONDITIONS
    assert _resource_type(synth, statement["Resource"]) == "AWS::KMS::Key"


def test_only_sink_decrypts_and_only_api_encrypts(synth: Synth) -> None:
    assert not {a for a in _actions(api(synth)) if a.startswith("kms:") and a != "kms:Encrypt"}
    assert not {a for a in _actions(sink(synth)) if a.startswith("kms:") and a != "kms:Decrypt"}


def test_only_the_sink_gets_s3_and_only_on_its_staging_bucket(synth: Synth) -> None:
    assert not {a for a in _actions(api(synth)) if a.startswith("s3:")}
    s3 = [st for st in sink(synth) if any(a.startswith("s3:") for a in _actions([st]))]
    assert {a for st in s3 for a in _actions([st])} == {
        "s3:PutObject",
        "s3:GetObject",
        "s3:DeleteObject",
        "s3:ListBucket",
    }
    for statement in s3:
        resource = statement["Resource"]
        target = resource["Fn::GetAtt"][0] if "Fn::GetAtt" in resource else resource["Fn::Join"][1][0]["Fn::GetAtt"][0]
        assert synth.json["Resources"][target]["Type"] == "AWS::S3::Bucket"
    for statements in (api(synth), sink(synth)):
        for statement in statements:
            if statement["Resource"] == "*":
                # Lambda active tracing: X-Ray has no resource-level permissions.
                assert _actions([statement]) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_sink_writes_only_flush_leases_its_ledger_and_status_attributes(synth: Synth) -> None:
    dynamo = {a for a in _actions(sink(synth)) if a.startswith("dynamodb:")}
    assert dynamo == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    }
    leading = {"B#*": {"PutItem", "DeleteItem"}, "W#*": {"PutItem", "UpdateItem", "DeleteItem"}}
    for action in ("dynamodb:PutItem", "dynamodb:DeleteItem"):
        for statement in _statements_with(sink(synth), action):
            [prefix] = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            assert action.split(":")[1] in leading[prefix]
            assert _resource_type(synth, statement["Resource"]) == "AWS::DynamoDB::Table"
    for statement in _statements_with(sink(synth), "dynamodb:UpdateItem"):
        [prefix] = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        if prefix == "W#*":  # the ledger: whole items of its own
            continue
        assert prefix == "S#*"
        assert set(statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == {
            "pk",
            "sk",
            *shared.STATUS_ATTRIBUTES,
        }


def test_api_table_access_is_item_level_without_transactions_scan_or_table_management(synth: Synth) -> None:
    dynamo = {a for a in _actions(api(synth)) if a.startswith("dynamodb:")}
    assert dynamo == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
    }
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        (statement,) = _statements_with(api(synth), action)
        assert "dynamodb:LeadingKeys" in statement["Condition"]["ForAllValues:StringLike"]


# --- the roles evaluated as IAM does (tests/iam/policy.py), on requests the functions could make -------------
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/{}"


def _policy(synth: Synth, function: str) -> tuple[RolePolicy, str]:
    """`function`'s role resolved with each environment variable's `Ref` standing for its logical id (queues as
    URLs), and the table's ARN in that resolution."""
    handlers = {"api": shared.API_FUNCTION.handler, "sink": shared.SINK_FUNCTION.handler}
    stack = StackPolicies(synth.json, handlers)
    environment: dict[str, str] = {}
    for fn in handlers:
        variables = synth.json["Resources"][stack.function_id(fn)]["Properties"]["Environment"]["Variables"]
        for name, value in variables.items():
            if isinstance(value, dict) and "Ref" in value:
                kind = synth.json["Resources"][value["Ref"]]["Type"]
                logical = value["Ref"]
                environment[name] = f"http://sqs/123456789012/{logical}" if kind == "AWS::SQS::Queue" else logical
    (table,) = synth.resources("AWS::DynamoDB::Table")
    return stack.role_policy(function, environment, Place()), TABLE.format(table)


def _item(function: str, action: str, table: str, pk: str, *attributes: str, **keys: str) -> Request:
    context = [("dynamodb:LeadingKeys", (pk,)), ("dynamodb:Attributes", tuple(sorted({"pk", "sk", *attributes})))]
    context += [(f"dynamodb:{k}", (v,)) for k, v in keys.items()]
    return Request(function, action, table, tuple(sorted(context)))


def test_the_sink_may_update_only_status_items_and_only_their_status_attributes(synth: Synth) -> None:
    sink_role, table = _policy(synth, "sink")
    status = "S#ten_1#ep_1"

    def update(pk: str, *attributes: str, **keys: str) -> bool:
        return sink_role.allows(_item("sink", "dynamodb:UpdateItem", table, pk, *attributes, **keys))

    assert update(status, "lastFlushAt", "lastObjectKey", "eventsWritten", "objectsWritten")
    assert update(status, "failures", "parkedUntil", "probeUntil", ReturnValues="UPDATED_NEW")  # the probe lease
    assert not update(status, "lastError", "doc")  # an attribute that is not a status attribute
    assert not update(status, "failures", ReturnValues="ALL_NEW")  # would read the whole item
    assert not update("K#hash", "lastError")  # a key lookup
    assert not update("IDEMPOTENCY", "lastError")
    assert not update("T#ten_1", "doc")  # an endpoint's settings
    assert not update("T#ten_1", "keyHash", "revoked")  # an API key
    assert not update("T#ten_1", "lastFlushAt", "eventsWritten")  # status lives in S# items only
    assert not sink_role.allows(_item("sink", "dynamodb:PutItem", table, status, "lastError"))  # whole items
    assert not sink_role.allows(_item("sink", "dynamodb:DeleteItem", table, status))


def test_the_sink_reads_only_endpoints_status_and_flush_leases(synth: Synth) -> None:
    sink_role, table = _policy(synth, "sink")
    for pk in ("T#ten_1", "S#ten_1#ep_1", "B#ep_1#1700000000"):
        assert sink_role.allows(_item("sink", "dynamodb:GetItem", table, pk))
    assert not sink_role.allows(_item("sink", "dynamodb:Query", table, "B#ep_1#1700000000"))
    for pk in ("K#hash", "IDEMPOTENCY", "V#ten_1#ep_1", "R#arn:aws:iam::111122223333:role/r"):
        assert not sink_role.allows(_item("sink", "dynamodb:GetItem", table, pk))
        assert not sink_role.allows(_item("sink", "dynamodb:Query", table, pk))


def test_the_api_cannot_write_key_lookups_status_items_or_flush_leases(synth: Synth) -> None:
    api_role, table = _policy(synth, "api")
    writes = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
    allowed = ("T#ten_1", "R#arn:aws:iam::111122223333:role/r", "IDEMPOTENCY#spool-api#ab12", "V#ten_1#ep_1", "Q#dlq")
    for action in writes:
        for pk in allowed:
            assert api_role.allows(_item("api", action, table, pk, "doc")), (action, pk)
        for pk in ("K#hash", "S#ten_1#ep_1", "B#ep_1#1700000000"):
            assert not api_role.allows(_item("api", action, table, pk, "doc")), (action, pk)
    # Reads stay open: the api looks keys up by hash.
    assert api_role.allows(_item("api", "dynamodb:GetItem", table, "K#hash"))


def test_a_transaction_that_writes_one_key_lookup_is_refused_item_by_item(synth: Synth) -> None:
    from tests.iam.calls import CallLog

    api_role, table = _policy(synth, "api")
    log = CallLog()
    put = {"Put": {"TableName": table.rsplit("/", 1)[1], "Item": {"pk": {"S": "T#ten_1"}, "sk": {"S": "EP#ep_1"}}}}
    key = {"Put": {"TableName": table.rsplit("/", 1)[1], "Item": {"pk": {"S": "K#hash"}, "sk": {"S": "KEY"}}}}
    requests = log.requests("api", "dynamodb", "TransactWriteItems", {"TransactItems": [put, key]}, {})
    assert [api_role.allows(r) for r in requests] == [True, False]


def test_sink_consumes_the_ingest_queue_and_sends_only_to_it(synth: Synth) -> None:
    actions = {a for a in _actions(sink(synth)) if a.startswith("sqs:")}
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage"} <= actions
    for action in ("sqs:ReceiveMessage", "sqs:SendMessage"):  # flush triggers go to the ingest queue
        for statement in _statements_with(sink(synth), action):
            queue = synth.json["Resources"][statement["Resource"]["Fn::GetAtt"][0]]
            assert "RedrivePolicy" in queue["Properties"]  # the ingest queue, not the DLQ


def test_api_sends_to_ingest_and_consumes_only_the_dlq(synth: Synth) -> None:
    statements = api(synth)
    (send,) = _statements_with(statements, "sqs:SendMessage")
    assert send["Action"] == "sqs:SendMessage"
    assert "RedrivePolicy" in synth.json["Resources"][send["Resource"]["Fn::GetAtt"][0]]["Properties"]
    (receive,) = _statements_with(statements, "sqs:ReceiveMessage")
    assert set(receive["Action"]) == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}
    assert "RedrivePolicy" not in synth.json["Resources"][receive["Resource"]["Fn::GetAtt"][0]]["Properties"]


def test_api_reads_the_pepper_and_invokes_only_the_verify_function(synth: Synth) -> None:
    statements = api(synth)
    (secret,) = _statements_with(statements, "secretsmanager:GetSecretValue")
    assert secret["Action"] == "secretsmanager:GetSecretValue"
    assert _resource_type(synth, secret["Resource"]) == "AWS::SecretsManager::Secret"
    (invoke,) = _statements_with(statements, "lambda:InvokeFunction")
    assert invoke["Action"] == "lambda:InvokeFunction"
    # Its `live` alias (Ref: the alias's ARN), nothing wider
    alias = synth.json["Resources"][invoke["Resource"]["Ref"]]
    assert alias["Type"] == "AWS::Lambda::Alias"
    target = alias["Properties"]["FunctionName"]["Ref"]
    assert synth.json["Resources"][target]["Properties"]["Handler"] == shared.VERIFY_FUNCTION.handler
    assert not _statements_with(sink(synth), "secretsmanager:GetSecretValue")


def test_functions_write_only_their_own_log_groups(synth: Synth) -> None:
    # The verify function runs with the sink's role, which so writes to both their groups.
    groups: dict[str, set[str]] = {}
    for entry in (shared.API_FUNCTION, shared.SINK_FUNCTION, shared.VERIFY_FUNCTION):
        function = next(
            f["Properties"]
            for f in synth.resources("AWS::Lambda::Function").values()
            if f["Properties"]["Handler"] == entry.handler
        )
        groups.setdefault(function["Role"]["Fn::GetAtt"][0], set()).add(function["LoggingConfig"]["LogGroup"]["Ref"])
    for handler in (shared.API_FUNCTION.handler, shared.SINK_FUNCTION.handler):
        function = next(
            f["Properties"]
            for f in synth.resources("AWS::Lambda::Function").values()
            if f["Properties"]["Handler"] == handler
        )
        statements = _statements_with(_role_statements(synth, handler), "logs:PutLogEvents")
        resources = [
            r for st in statements for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])
        ]
        written = {r["Fn::GetAtt"][0] for r in resources}
        assert written == groups[function["Role"]["Fn::GetAtt"][0]]


def test_only_the_sink_assumes_roles_of_other_accounts_with_a_spool_external_id_and_session(synth: Synth) -> None:
    assert not _statements_with(api(synth), "sts:AssumeRole")
    allow, deny, deny_org = sorted(
        _statements_with(sink(synth), "sts:AssumeRole"), key=lambda s: (s["Effect"], "Condition" in s)
    )
    partition = {"Ref": "AWS::Partition"}
    any_role = {"Fn::Join": ["", ["arn:", partition, ":iam::*:role/*"]]}
    assert (allow["Effect"], allow["Action"]) == ("Allow", "sts:AssumeRole")
    assert allow["Resource"] == any_role
    assert allow["Condition"] == {"StringLike": {"sts:ExternalId": "spool-*", "sts:RoleSessionName": "spool-ep_*"}}
    assert (deny["Effect"], deny["Action"]) == ("Deny", "sts:AssumeRole")
    own_account = ["arn:", partition, ":iam::", {"Ref": "AWS::AccountId"}, ":role/*"]
    assert deny["Resource"] == {"Fn::Join": ["", own_account]}
    assert "Condition" not in deny
    assert (deny_org["Effect"], deny_org["Action"], deny_org["Resource"]) == ("Deny", "sts:AssumeRole", any_role)
    assert deny_org["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}


def test_the_sink_may_not_assume_roles_of_its_own_organization(synth: Synth) -> None:
    sink_role, _ = _policy(synth, "sink")
    tenant_role = "arn:aws:iam::111122223333:role/delivery"
    sent = {"sts:ExternalId": ("spool-abc",), "sts:RoleSessionName": ("spool-ep_1",)}

    def assume(**orgs: str) -> bool:
        keys = {**sent, **{f"aws:{k}": (v,) for k, v in orgs.items()}}
        return sink_role.allows(Request("sink", "sts:AssumeRole", tenant_role, tuple(sorted(keys.items()))))

    assert not assume(PrincipalOrgID="o-operator", ResourceOrgID="o-operator")  # the operator's other account
    assert assume(PrincipalOrgID="o-operator", ResourceOrgID="o-tenant")  # a tenant in an organization of its own
    assert assume(PrincipalOrgID="o-operator")  # a tenant account in no organization
    assert assume(ResourceOrgID="o-tenant")  # Spool's account in no organization: nothing to compare


def test_the_sinks_assume_role_conditions_cover_every_session_name_and_external_id_it_sends() -> None:
    conditions = {
        "StringLike": {
            "sts:ExternalId": names.EXTERNAL_ID_PATTERN,
            "sts:RoleSessionName": names.ROLE_SESSION_NAME_PATTERN,
        }
    }
    sent = {
        "sts:ExternalId": (roles.new_external_id(),),
        "sts:RoleSessionName": (roles.session_name("ep_0123456789ab0123456789abcdef"),),
    }
    assert conditions_hold(conditions, sent)
    assert not conditions_hold(conditions, {**sent, "sts:ExternalId": ("chosen-elsewhere",)})


# --- the credentials key's own policy --------------------------------------------------------------------
CRYPTO_ACTIONS = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:CreateGrant",
)


def _key_statements(synth: Synth) -> list[dict[str, Any]]:
    (key,) = synth.resources("AWS::KMS::Key").values()
    statements: list[dict[str, Any]] = key["Properties"]["KeyPolicy"]["Statement"]
    return statements


def _principals(statement: dict[str, Any]) -> list[Any]:
    principal = statement["Principal"]["AWS"]
    return principal if isinstance(principal, list) else [principal]


def _who_may(synth: Synth, action: str) -> list[Any]:
    """Every principal an Allow statement of the key policy gives `action` (wildcards as IAM reads them)."""
    from tests.iam.policy import Statement

    found = []
    for raw in _key_statements(synth):
        actions = raw["Action"] if isinstance(raw["Action"], list) else [raw["Action"]]
        if raw["Effect"] == "Allow" and Statement("Allow", actions, ["*"]).covers_action(action):
            found += _principals(raw)
    return found


def _role_of(synth: Synth, handler: str) -> dict[str, Any]:
    function = next(
        f for f in synth.resources("AWS::Lambda::Function").values() if f["Properties"]["Handler"] == handler
    )
    return {"Fn::GetAtt": [function["Properties"]["Role"]["Fn::GetAtt"][0], "Arn"]}


def test_the_credentials_key_lets_only_the_sink_decrypt_and_only_the_api_encrypt(synth: Synth) -> None:
    assert _who_may(synth, "kms:Decrypt") == [_role_of(synth, shared.SINK_FUNCTION.handler)]
    assert _who_may(synth, "kms:Encrypt") == [_role_of(synth, shared.API_FUNCTION.handler)]
    for action in ("kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:CreateGrant"):
        assert _who_may(synth, action) == [], action
    for statement in _key_statements(synth):
        if statement["Action"] in ("kms:Decrypt", "kms:Encrypt"):
            assert statement["Condition"] == CONTEXT_CONDITIONS


def test_the_account_administers_the_credentials_key_without_using_it(synth: Synth) -> None:
    root = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
    for action in ("kms:PutKeyPolicy", "kms:DescribeKey", "kms:ScheduleKeyDeletion", "kms:EnableKeyRotation"):
        assert root in _who_may(synth, action), action  # no lock-out: the account can always change the policy
    for action in CRYPTO_ACTIONS:
        assert root not in _who_may(synth, action), action
    assert not [s for s in _key_statements(synth) if s["Effect"] == "Allow" and s["Action"] == "kms:*"]
