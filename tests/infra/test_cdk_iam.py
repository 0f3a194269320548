"""Least privilege: what each function's role may do, read from the synthesized policies."""

from __future__ import annotations

from typing import Any

from infra_synth import Synth
from tests.iam.policy import conditions_hold

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


def test_sink_reads_and_updates_the_table_and_writes_only_flush_leases_and_older_staging_items(synth: Synth) -> None:
    dynamo = {a for a in _actions(sink(synth)) if a.startswith("dynamodb:")}
    assert dynamo == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    }
    for action in ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"):
        (statement,) = _statements_with(sink(synth), action)
        assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["B#*"]}}
        assert _resource_type(synth, statement["Resource"]) == "AWS::DynamoDB::Table"


def test_api_table_access_is_item_level_without_transactions_scan_or_table_management(synth: Synth) -> None:
    dynamo = {a for a in _actions(api(synth)) if a.startswith("dynamodb:")}
    assert dynamo == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
    }


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


def test_api_reads_the_pepper_and_invokes_only_the_sink(synth: Synth) -> None:
    statements = api(synth)
    (secret,) = _statements_with(statements, "secretsmanager:GetSecretValue")
    assert secret["Action"] == "secretsmanager:GetSecretValue"
    assert _resource_type(synth, secret["Resource"]) == "AWS::SecretsManager::Secret"
    (invoke,) = _statements_with(statements, "lambda:InvokeFunction")
    assert invoke["Action"] == "lambda:InvokeFunction"
    target = invoke["Resource"]["Fn::GetAtt"][0]
    assert synth.json["Resources"][target]["Properties"]["Handler"] == "spool.handlers.sink.lambda_handler"
    assert not _statements_with(sink(synth), "secretsmanager:GetSecretValue")


def test_functions_write_only_their_own_log_group(synth: Synth) -> None:
    for handler in ("spool.handlers.api.lambda_handler", "spool.handlers.sink.lambda_handler"):
        function = next(
            f["Properties"]
            for f in synth.resources("AWS::Lambda::Function").values()
            if f["Properties"]["Handler"] == handler
        )
        own_group = function["LoggingConfig"]["LogGroup"]["Ref"]
        (logs,) = _statements_with(_role_statements(synth, handler), "logs:PutLogEvents")
        assert logs["Resource"] == {"Fn::GetAtt": [own_group, "Arn"]}


def test_only_the_sink_assumes_roles_of_other_accounts_with_a_spool_external_id_and_session(synth: Synth) -> None:
    assert not _statements_with(api(synth), "sts:AssumeRole")
    allow, deny = sorted(_statements_with(sink(synth), "sts:AssumeRole"), key=lambda s: s["Effect"])
    partition = {"Ref": "AWS::Partition"}
    assert (allow["Effect"], allow["Action"]) == ("Allow", "sts:AssumeRole")
    assert allow["Resource"] == {"Fn::Join": ["", ["arn:", partition, ":iam::*:role/*"]]}
    assert allow["Condition"] == {"StringLike": {"sts:ExternalId": "spool-*", "sts:RoleSessionName": "spool-ep_*"}}
    assert (deny["Effect"], deny["Action"]) == ("Deny", "sts:AssumeRole")
    own_account = ["arn:", partition, ":iam::", {"Ref": "AWS::AccountId"}, ":role/*"]
    assert deny["Resource"] == {"Fn::Join": ["", own_account]}
    assert "Condition" not in deny


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
