"""The grant check itself (tests/iam): IAM's evaluation rules on a small template, and that it fails when a
grant is taken away. The real check over the real template is tests/integration/test_grants.py."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from tests.iam.calls import CallLog, Place, Request
from tests.iam.policy import StackPolicies, Statement, UnknownCondition, check, conditions_hold
from tests.iam.trust import trust_allows

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/spool-t"
QUEUE_URL = "http://127.0.0.1:4566/123456789012/spool-q"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:spool-q"
KEY = "arn:aws:kms:us-east-1:123456789012:key/k-1"
CONTEXT = {
    "Null": {"kms:EncryptionContext:spool:tenantId": "false", "kms:EncryptionContext:spool:endpointId": "false"},
    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["spool:tenantId", "spool:endpointId"]},
}


def template() -> dict[str, Any]:
    """A function, its role and one policy: the shapes CDK synthesizes."""
    statements = [
        {"Action": ["dynamodb:GetItem", "dynamodb:Query"], "Effect": "Allow", "Resource": {"Fn::GetAtt": ["T", "Arn"]}},
        {
            "Action": "dynamodb:PutItem",
            "Effect": "Allow",
            "Resource": [{"Fn::GetAtt": ["T", "Arn"]}, {"Ref": "AWS::NoValue"}],
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["B#*"]}},
        },
        {"Action": "sqs:Send*", "Effect": "Allow", "Resource": {"Fn::GetAtt": ["Q", "Arn"]}},
        {"Action": "kms:Decrypt", "Effect": "Allow", "Resource": {"Fn::GetAtt": ["K", "Arn"]}, "Condition": CONTEXT},
        {"Action": "logs:PutLogEvents", "Effect": "Allow", "Resource": {"Fn::GetAtt": ["L", "Arn"]}},
    ]
    return {
        "Resources": {
            "T": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
            "Q": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "K": {"Type": "AWS::KMS::Key", "Properties": {}},
            "L": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"Roles": [{"Ref": "Role"}], "PolicyDocument": {"Statement": statements}},
            },
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Handler": "spool.handlers.sink.lambda_handler",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Environment": {
                        "Variables": {"TABLE": {"Ref": "T"}, "QUEUE": {"Ref": "Q"}, "KEY": {"Ref": "K"}, "X": "1"}
                    },
                },
            },
        }
    }


ENV = {"TABLE": "spool-t", "QUEUE": QUEUE_URL, "KEY": "k-1"}
STACK = StackPolicies(template(), {"sink": "spool.handlers.sink.lambda_handler"})


def sink_policy(stack: StackPolicies = STACK) -> Any:
    return stack.role_policy("sink", ENV, Place())


def staged(pk: str = "B#ep_1#100") -> Request:
    return Request("sink", "dynamodb:PutItem", TABLE, (("dynamodb:LeadingKeys", (pk,)),))


def decrypt(context: dict[str, str]) -> Request:
    keys: list[tuple[str, tuple[str, ...]]] = [(f"kms:EncryptionContext:{k}", (v,)) for k, v in context.items()]
    if context:
        keys.append(("kms:EncryptionContextKeys", tuple(context)))
    return Request("sink", "kms:Decrypt", KEY, tuple(sorted(keys)))


def test_the_templates_wiring_ties_logical_ids_to_local_resources() -> None:
    assert STACK.physical_ids(ENV) == {"T": "spool-t", "Q": QUEUE_URL, "K": "k-1"}
    resources = {r for s in sink_policy().statements for r in s.resources}
    assert {TABLE, QUEUE, KEY, "unresolved:L"} == resources  # AWS::NoValue dropped, the log group unknown here


def test_a_granted_action_on_its_resource_is_allowed_and_elsewhere_not() -> None:
    policy = sink_policy()
    assert policy.allows(Request("sink", "dynamodb:GetItem", TABLE))
    assert policy.allows(Request("sink", "DynamoDB:getitem", TABLE))  # actions are case-insensitive
    assert not policy.allows(Request("sink", "dynamodb:GetItem", TABLE + "-other"))
    assert not policy.allows(Request("sink", "dynamodb:Scan", TABLE))


def test_action_wildcards_match_as_iam_does() -> None:
    policy = sink_policy()
    assert policy.allows(Request("sink", "sqs:SendMessage", QUEUE))
    assert not policy.allows(Request("sink", "sqs:ReceiveMessage", QUEUE))


def test_leading_keys_condition_limits_writes_to_staging_items() -> None:
    policy = sink_policy()
    assert policy.allows(staged())
    assert not policy.allows(staged("T#ten_1"))
    mixed = Request("sink", "dynamodb:PutItem", TABLE, (("dynamodb:LeadingKeys", ("B#x", "T#y")),))
    assert not policy.allows(mixed)  # ForAllValues: every key must match


def test_encryption_context_conditions() -> None:
    policy = sink_policy()
    assert policy.allows(decrypt({"spool:tenantId": "t", "spool:endpointId": "e"}))
    assert not policy.allows(decrypt({"spool:tenantId": "t"}))  # Null: endpointId must be present
    assert not policy.allows(decrypt({"spool:tenantId": "t", "spool:endpointId": "e", "other": "x"}))
    assert not policy.allows(decrypt({}))


def test_explicit_deny_wins() -> None:
    stack = StackPolicies(template(), STACK.functions)
    statements = stack.template["Resources"]["Policy"]["Properties"]["PolicyDocument"]["Statement"]
    statements.append({"Action": "dynamodb:*", "Effect": "Deny", "Resource": "*"})
    assert not sink_policy(stack).allows(Request("sink", "dynamodb:GetItem", TABLE))


def test_an_unknown_condition_operator_fails_loudly() -> None:
    with pytest.raises(UnknownCondition):
        conditions_hold({"NumericLessThan": {"aws:x": "3"}}, {"aws:x": ("1",)})


def test_taking_away_a_called_grant_fails_the_check_naming_function_and_action() -> None:
    calls = [Request("sink", "dynamodb:GetItem", TABLE), staged(), Request("sink", "sqs:SendMessage", QUEUE)]
    assert check([sink_policy()], calls).ok
    for action in ("dynamodb:PutItem", "dynamodb:GetItem"):
        verdict = check([sink_policy(STACK.without("sink", action))], calls)
        assert not verdict.ok
        assert f"  sink: {action} on {TABLE}" in verdict.failure()


def test_grants_nothing_called_are_listed_and_the_services_own_are_not() -> None:
    verdict = check([sink_policy()], [Request("sink", "dynamodb:GetItem", TABLE)])
    unused = verdict.unused["sink"]
    assert ("dynamodb:Query", TABLE) in unused
    assert ("dynamodb:GetItem", TABLE) not in unused
    assert not [a for a, _ in unused if a.startswith("logs:")]


def test_a_function_without_a_role_policy_is_refused_everything() -> None:
    assert not check([sink_policy()], [Request("api", "dynamodb:GetItem", TABLE)]).ok


def test_calls_become_the_requests_iam_authorizes() -> None:
    log = CallLog()
    (put,) = log.requests("sink", "dynamodb", "PutItem", {"TableName": "spool-t", "Item": {"pk": {"S": "B#1"}}}, {})
    assert put.keys() == {"dynamodb:LeadingKeys": ("B#1",), "dynamodb:Attributes": ("pk",)}
    (batch,) = log.requests(
        "sink",
        "dynamodb",
        "BatchWriteItem",
        {"RequestItems": {"spool-t": [{"DeleteRequest": {"Key": {"pk": {"S": "B#2"}, "sk": {"S": "x"}}}}]}},
        {},
    )
    assert batch.action == "dynamodb:BatchWriteItem"
    assert batch.keys() == {"dynamodb:LeadingKeys": ("B#2",)}
    parts = log.requests(
        "api",
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "spool-t", "Item": {"pk": {"S": "T#1"}}}},
                {"ConditionCheck": {"TableName": "spool-t", "Key": {"pk": {"S": "T#1"}}}},
            ]
        },
        {},
    )
    assert [p.action for p in parts] == ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"]
    (query,) = log.requests(
        "sink",
        "dynamodb",
        "Query",
        {
            "TableName": "spool-t",
            "KeyConditionExpression": "#p = :pk",
            "ExpressionAttributeNames": {"#p": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": "B#3"}},
        },
        {},
    )
    assert query.keys() == {"dynamodb:LeadingKeys": ("B#3",), "dynamodb:Attributes": ("pk",)}
    (send,) = log.requests("sink", "sqs", "SendMessageBatch", {"QueueUrl": QUEUE_URL, "Entries": []}, {})
    assert (send.action, send.resource) == ("sqs:SendMessage", QUEUE)
    (invoke,) = log.requests("api", "lambda", "Invoke", {"FunctionName": "spool-sink"}, {})
    assert invoke == Request(
        "api", "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:123456789012:function:spool-sink"
    )
    (decrypted,) = log.requests(
        "sink",
        "kms",
        "Decrypt",
        {"EncryptionContext": {"spool:tenantId": "t", "spool:endpointId": "e"}},
        {"KeyId": KEY},
    )
    assert decrypted == decrypt({"spool:tenantId": "t", "spool:endpointId": "e"})


def test_assume_role_is_authorized_on_the_role_with_the_external_id_and_session_name() -> None:
    role = "arn:aws:iam::111122223333:role/tenant"
    params = {"RoleArn": role, "RoleSessionName": "spool-ep_1", "ExternalId": "spool-abc", "DurationSeconds": 900}

    (assume,) = CallLog().requests("sink", "sts", "AssumeRole", params, {})

    keys = (("sts:ExternalId", ("spool-abc",)), ("sts:RoleSessionName", ("spool-ep_1",)))
    assert assume == Request("sink", "sts:AssumeRole", role, keys)
    without = {k: v for k, v in params.items() if k != "ExternalId"}
    assert CallLog().requests("sink", "sts", "AssumeRole", without, {})[0].keys() == {
        "sts:RoleSessionName": ("spool-ep_1",)
    }


def test_iam_spells_a_literal_star_question_mark_and_dollar_inside_a_pattern() -> None:
    statement = Statement("Allow", ["s3:PutObject"], ["arn:aws:s3:::b/a${*}b${?}${$}/*"])

    assert statement.covers_resource("arn:aws:s3:::b/a*b?$/x")
    assert not statement.covers_resource("arn:aws:s3:::b/aXXb?$/x")
    assert not statement.covers_resource("arn:aws:s3:::b/a*bZ$/x")
    assert Statement("Allow", ["s3:Put?bject"], ["*"]).covers_action("s3:PutObject")


def test_trust_policies_are_evaluated_as_sts_does_for_the_caller() -> None:
    sink = "arn:aws:iam::123456789012:role/sink"
    with_id = {"sts:ExternalId": ("spool-1",)}

    def trust(principal: Any, condition: dict[str, Any] | None = None, effect: str = "Allow") -> dict[str, Any]:
        statement = {"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole"}
        return {"Statement": [statement | ({"Condition": condition} if condition else {})]}

    required = {"StringEquals": {"sts:ExternalId": "spool-1"}}
    assert trust_allows(trust({"AWS": sink}, required), sink, with_id)
    assert not trust_allows(trust({"AWS": sink}, required), sink, {"sts:ExternalId": ("spool-2",)})
    assert trust_allows(trust({"AWS": sink}), sink, {"sts:ExternalId": ("anything",)})  # no condition: any id
    assert trust_allows(trust({"AWS": "arn:aws:iam::123456789012:root"}), sink, with_id)  # the caller's account
    assert trust_allows(trust({"AWS": ["123456789012"]}), sink, with_id)
    assert not trust_allows(trust({"AWS": "arn:aws:iam::999999999999:root"}), sink, with_id)
    assert not trust_allows(trust({"Service": "lambda.amazonaws.com"}), sink, with_id)
    both = {"Statement": trust({"AWS": sink})["Statement"] + trust("*", effect="Deny")["Statement"]}
    assert not trust_allows(both, sink, with_id)  # an explicit Deny wins


ROLE_CLIENT_MAKERS = {"client", "resource", "Session"}
# Where role clients may be made: the composition root (from the session it is given), and the modules that
# make clients for something other than a function's role (the tenant's store credentials, the operator's
# CLI, the local runtime's emulator set-up). adapters/stores.py builds the store clients (a role store's
# botocore session is adapters/role_session.py's, and never the function's).
ALLOWED = {"handlers/wiring.py", "adapters/stores.py", "cli.py"}


def test_only_the_composition_root_makes_clients_of_a_functions_role() -> None:
    """The grant check sees the calls of the session each function is given; a client made from the default
    session elsewhere would slip past it. Every allowed module still makes one: an entry left behind when
    the code moves would let a new client there slip past."""
    root = Path(__file__).resolve().parents[2] / "functions" / "spool"
    makers: dict[str, list[str]] = {}
    for path in root.rglob("*.py"):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("local/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = ast.unparse(node.func.value)
                if node.func.attr in ROLE_CLIENT_MAKERS and target.startswith("boto3"):
                    makers.setdefault(relative, []).append(f"{relative}:{node.lineno} {ast.unparse(node.func)}")
    offenders = [call for relative, calls in makers.items() if relative not in ALLOWED for call in calls]
    assert not offenders
    assert not ALLOWED - makers.keys()


def test_an_item_request_names_its_attributes_and_return_values_as_dynamodb_authorizes_them() -> None:
    params = {
        "TableName": "spool-t",
        "Key": {"pk": {"S": "S#t#e"}, "sk": {"S": "STATUS"}},
        "UpdateExpression": "SET lastError = :m, #s.nested = :x ADD failures :one REMOVE probeUntil",
        "ConditionExpression": "attribute_not_exists(probeUntil) OR probeUntil < :now",
        "ExpressionAttributeNames": {"#s": "status"},
        "ReturnValues": "UPDATED_NEW",
    }
    (request,) = CallLog().requests("sink", "dynamodb", "UpdateItem", params, {})
    assert request.keys() == {
        "dynamodb:Attributes": ("failures", "lastError", "pk", "probeUntil", "sk", "status"),
        "dynamodb:LeadingKeys": ("S#t#e",),
        "dynamodb:ReturnValues": ("UPDATED_NEW",),
    }


def test_a_policy_variable_takes_the_requests_value_and_a_missing_one_matches_nothing() -> None:
    same_org = {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}
    assert conditions_hold(same_org, {"aws:ResourceOrgID": ("o-1",), "aws:PrincipalOrgID": ("o-1",)})
    assert not conditions_hold(same_org, {"aws:ResourceOrgID": ("o-2",), "aws:PrincipalOrgID": ("o-1",)})
    assert not conditions_hold(same_org, {"aws:ResourceOrgID": ("o-1",)})  # the caller is in no organization
    assert not conditions_hold(same_org, {"aws:PrincipalOrgID": ("o-1",)})  # the role's account is in none
    assert conditions_hold({"StringLike": {"s3:prefix": "${*}x*"}}, {"s3:prefix": ("*xy",)})  # escapes stay
