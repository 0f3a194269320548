"""Template audits by linters made for them: parliament on every IAM policy document of the synthesized
template, and cfn-lint with AWS's serverless rules (cfn-lint-serverless).

As with cdk-nag, a finding is fixed or accepted here with its reason. A finding not in the lists fails, and
so does an accepted finding that no longer occurs, so the lists cannot go stale.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from infra_synth import Synth

with warnings.catch_warnings():
    # parliament 1.6.4 finds its data files with pkg_resources, which warns about its own deprecation.
    warnings.simplefilter("ignore")
    import parliament

# (resource's construct path below the stack, policy document's property path, parliament issue) -> reason
PARLIAMENT_ACCEPTED: dict[tuple[str, str, str], str] = {
    ("State/CredentialsKey/Resource", "KeyPolicy", "RESOURCE_STAR"): (
        "In a key policy, Resource `*` means the key the policy is attached to; no other resource can be named."
    ),
    ("State/CredentialsKey/Resource", "KeyPolicy", "PERMISSIONS_MANAGEMENT_ACTIONS"): (
        "The account root keeps the key's administration (kms:PutKeyPolicy among it), delegated to IAM, so the key "
        "can never become unmanageable (KMS's lock-out check); it gets no cryptographic action and no CreateGrant. "
        "Only the api's role may kms:Encrypt and only the sink's kms:Decrypt, under the encryption-context condition."
    ),
    ("Ingest/Sink/Role/Resource", "AssumeRolePolicyDocument", "CREDENTIALS_EXPOSURE"): (
        "The trust policy lets lambda.amazonaws.com assume the sink's execution role, which is what an "
        "execution role is for; the auditor flags every sts:AssumeRole."
    ),
    ("Ingest/Sink/Role/DefaultPolicy/Resource", "PolicyDocument", "CREDENTIALS_EXPOSURE"): (
        "The sink assumes tenants' roles for endpoints with a roleArn: that is the feature (no static keys). The "
        "temporary credentials stay inside the store client; the statement needs a Spool ExternalId and session "
        "name, and roles of Spool's own account are denied."
    ),
    ("Api/Handler/Role/Resource", "AssumeRolePolicyDocument", "CREDENTIALS_EXPOSURE"): (
        "The trust policy lets lambda.amazonaws.com assume the api's execution role, which is what an "
        "execution role is for; the auditor flags every sts:AssumeRole."
    ),
}

# (resource's construct path below the stack, rule id) -> reason
SERVERLESS_ACCEPTED: dict[tuple[str, str], str] = {
    ("Ingest/Sink/Live/SqsEventSource:SpooltestIngestQueue232BBD6C/Resource", "ES1001"): (
        "Lambda supports OnFailure destinations on stream and Kafka mappings only, not on SQS ones: for SQS the "
        "failure destination is the queue's redrive policy (the DLQ after 8 receives), which Spool has."
    ),
    ("Ingest/Dlq/Resource", "ES6000"): (
        "This queue is the DLQ itself (the ingest queue's RedrivePolicy.deadLetterTargetArn). The rule exempts "
        "DLQs only when a RedrivePolicy refers to them through an intrinsic at the top level, not the "
        "deadLetterTargetArn field inside the object CDK writes."
    ),
    ("Ingest/Sink/Function/Resource", "WS1004"): (
        "The function writes to its own log group (LoggingConfig.LogGroup) with retention from context "
        "logRetentionDays; the rule only recognises a group named /aws/lambda/<function name>."
    ),
    ("Verify/Function/Function/Resource", "WS1004"): (
        "The function writes to its own log group (LoggingConfig.LogGroup) with retention from context "
        "logRetentionDays; the rule only recognises a group named /aws/lambda/<function name>."
    ),
    ("Api/Handler/Function/Resource", "WS1004"): (
        "The function writes to its own log group (LoggingConfig.LogGroup) with retention from context "
        "logRetentionDays; the rule only recognises a group named /aws/lambda/<function name>."
    ),
}

# Parliament checks each action against the ARN formats AWS documents for it, so the template's intrinsics
# become ARNs of the form the resource really has, in a made-up account and region: `Fn::GetAtt [X, attr]`,
# and `Ref X` where X's Ref is an ARN, by ARN_FORMATS for X's type (the logical id stands for the physical
# name); pseudo parameters by PSEUDO_PARAMETERS; `Fn::Join` by the joined parts. Any other intrinsic or type
# fails the audit, so a reference is never audited as if it were a literal string.
ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::URLSuffix": "amazonaws.com",
}
ARN_FORMATS: dict[tuple[str, str], str] = {
    ("AWS::DynamoDB::Table", "Arn"): "arn:aws:dynamodb:{region}:{account}:table/{name}",
    ("AWS::IAM::Role", "Arn"): "arn:aws:iam::{account}:role/{name}",
    ("AWS::KMS::Key", "Arn"): "arn:aws:kms:{region}:{account}:key/{key_id}",
    ("AWS::Lambda::Function", "Arn"): "arn:aws:lambda:{region}:{account}:function:{name}",
    # An alias's Ref is its ARN: the function's, qualified by the alias's name.
    ("AWS::Lambda::Alias", "Ref"): "arn:aws:lambda:{region}:{account}:function:{name}:live",
    # A log group's Arn attribute ends in `:*` (all of its streams).
    ("AWS::Logs::LogGroup", "Arn"): "arn:aws:logs:{region}:{account}:log-group:{name}:*",
    # Bucket names are global: an S3 ARN names neither region nor account.
    ("AWS::S3::Bucket", "Arn"): "arn:aws:s3:::{name}",
    # A secret's Ref is its ARN: the name and six characters Secrets Manager appends.
    ("AWS::SecretsManager::Secret", "Ref"): "arn:aws:secretsmanager:{region}:{account}:secret:{name}-a1B2c3",
    ("AWS::SNS::Topic", "Ref"): "arn:aws:sns:{region}:{account}:{name}",
    ("AWS::SQS::Queue", "Arn"): "arn:aws:sqs:{region}:{account}:{name}",
}


class _Resolver:
    """Replaces the intrinsics of a policy document by plausible values (see ARN_FORMATS)."""

    def __init__(self, resources: dict[str, dict[str, Any]]) -> None:
        self.resources = resources

    def arn(self, logical_id: str, attribute: str) -> str:
        cfn_type = self.resources[logical_id]["Type"]
        if (cfn_type, attribute) not in ARN_FORMATS:
            raise AssertionError(f"no ARN format for {cfn_type} {attribute} ({logical_id}): add one to ARN_FORMATS")
        return ARN_FORMATS[cfn_type, attribute].format(
            region=REGION, account=ACCOUNT, name=logical_id, key_id=uuid.uuid5(uuid.NAMESPACE_OID, logical_id)
        )

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            name = value["Ref"]
            return PSEUDO_PARAMETERS[name] if name.startswith("AWS::") else self.arn(name, "Ref")
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return self.arn(logical_id, attribute)
        if set(value) == {"Fn::Join"}:
            delimiter, parts = value["Fn::Join"]
            return delimiter.join(self(parts))
        unresolved = [key for key in value if key.startswith("Fn::")]
        if unresolved:
            raise AssertionError(f"cannot resolve {unresolved} in a policy document: teach _Resolver")
        return {key: self(item) for key, item in value.items()}


def _policy_documents(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy document below a resource's properties (any object with a Statement), with its path."""
    if isinstance(node, dict):
        if "Statement" in node:
            yield "/".join(path), node
            return
        for key, value in node.items():
            yield from _policy_documents(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _policy_documents(value, (*path, str(index)))


def _construct_paths(synth: Synth) -> dict[str, str]:
    """Logical id -> construct path below the stack (a name that survives changes of CDK's id hashes), read
    from the cloud assembly's metadata file rather than by walking the construct tree through jsii."""
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    metadata_file = manifest["artifacts"][synth.stack.artifact_id]["additionalMetadataFile"]
    metadata: dict[str, list[dict[str, Any]]] = json.loads((synth.outdir / metadata_file).read_text())
    prefix = f"/{synth.stack.node.path}/"
    return {
        entry["data"]: path.removeprefix(prefix)
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == "aws:cdk:logicalId"
    }


def _parliament_findings(synth: Synth) -> dict[tuple[str, str, str], list[str]]:
    resources = synth.json["Resources"]
    resolve, paths = _Resolver(resources), _construct_paths(synth)
    found: dict[tuple[str, str, str], list[str]] = {}
    for logical_id, resource in resources.items():
        for where, document in _policy_documents(resource.get("Properties", {})):
            resolved = resolve(document)
            if where == "AssumeRolePolicyDocument":
                # A trust policy is the role's resource policy and has no Resource element. Parliament reads
                # every document as an identity policy and stops at a statement without a Resource (MALFORMED),
                # so the role's own ARN, which the trust policy governs, is filled in.
                statements = resolved["Statement"]
                for statement in statements if isinstance(statements, list) else [statements]:
                    statement.setdefault("Resource", resolve.arn(logical_id, "Arn"))
            policy = parliament.analyze_policy_string(json.dumps(resolved), include_community_auditors=True)
            for finding in policy.findings:
                key = (paths[logical_id], where, finding.issue)
                found.setdefault(key, []).append(f"{finding.detail} {finding.location}")
    return found


def _serverless_findings(synth: Synth) -> dict[tuple[str, str], list[str]]:
    paths = _construct_paths(synth)
    matches = lint_file(
        synth.template_file,
        config=ManualArgs(regions=[REGION], append_rules=["cfn_lint_serverless.rules"]),
    )
    found: dict[tuple[str, str], list[str]] = {}
    for match in matches:
        # cfn-lint's own rules are test_cdk_checks.py's business; here only the appended serverless rules count.
        if not type(match.rule).__module__.startswith("cfn_lint_serverless."):
            continue
        resource = paths.get(match.path[1], match.path[1]) if match.path[:1] == ["Resources"] else "/".join(match.path)
        found.setdefault((resource, match.rule.id), []).append(match.message)
    return found


def _assert_exactly_accepted(found: dict[Any, list[str]], accepted: dict[Any, str]) -> None:
    unaccepted = [f"{key}: {details}" for key, details in sorted(found.items()) if key not in accepted]
    assert not unaccepted, "fix these findings, or accept them with a reason:\n" + "\n".join(unaccepted)
    stale = [str(key) for key in accepted if key not in found]
    assert not stale, "these accepted findings no longer occur, remove them:\n" + "\n".join(stale)


def test_parliament_finds_only_the_accepted_findings(synth: Synth) -> None:
    _assert_exactly_accepted(_parliament_findings(synth), PARLIAMENT_ACCEPTED)


def test_cfn_lint_serverless_rules_find_only_the_accepted_findings(synth: Synth) -> None:
    _assert_exactly_accepted(_serverless_findings(synth), SERVERLESS_ACCEPTED)


@pytest.mark.parametrize("accepted", [PARLIAMENT_ACCEPTED, SERVERLESS_ACCEPTED], ids=["parliament", "serverless"])
def test_every_accepted_finding_has_a_reason(accepted: dict[Any, str]) -> None:
    assert all(len(reason) > 60 for reason in accepted.values())


def test_resolved_arns_let_parliament_match_actions_to_resources(synth: Synth) -> None:
    # The audit is only as good as the resolution: an action on the wrong kind of resource must show.
    resolve = _Resolver(synth.json["Resources"])

    def issues(logical_id: str) -> list[str]:
        statement = {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": [logical_id, "Arn"]}}
        document = resolve({"Version": "2012-10-17", "Statement": [statement]})
        return [finding.issue for finding in parliament.analyze_policy_string(json.dumps(document)).findings]

    (table,) = synth.resources("AWS::DynamoDB::Table")
    queue = next(iter(synth.resources("AWS::SQS::Queue")))
    assert (issues(table), issues(queue)) == ([], ["RESOURCE_MISMATCH"])
