"""Delivery into a tenant's AWS account without static keys: the sink assumes a role of the tenant's with an
ExternalId Spool generated for the endpoint (SPEC: roleArn; docs/deploy.md, "Deliver into your AWS account").

Why the ExternalId: Spool's sink role is one principal acting for every tenant, so a tenant could name another
tenant's role as its own roleArn (the confused deputy). The role's trust policy requires the ExternalId of the
endpoint it was made for, which Spool generates, shows only to that endpoint's tenant and never lets a tenant
choose, so Spool can assume a role only for the endpoint its owner created it for.

Here: the ids, and the policies and CloudFormation template handed to the tenant (`aws_role`, answered as
`AwsRole`). Pure: no AWS.
"""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import Field

from spool.domain.base import Model
from spool.domain.errors import CorruptRecord, InvalidInput
from spool.domain.fields import ROLE_ARN_RE
from spool.domain.ids import new_id
from spool.domain.models import Endpoint

# The role's session lasts this long: STS's minimum, which covers any flush (the sink runs 120 s at most).
# The store client renews it shortly before it expires (adapters/role_session.py).
ROLE_SESSION_SECONDS = 900
SESSION_NAME_PREFIX = "spool-"
EXTERNAL_ID_PREFIX = "spool-"
# Verify writes `{prefix}.spool-verify-{id}` and removes it: the only objects the role may delete.
PROBE_MARKER = ".spool-verify-"
TEMPLATE_ROLE_ID = "SpoolDeliveryRole"
_KMS_KEY_ARN_PREFIXES = ("arn:aws:kms:", "arn:aws-cn:kms:", "arn:aws-us-gov:kms:")
_DNS_SUFFIX = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn", "aws-us-gov": "amazonaws.com"}


class AwsRole(Model):
    """What the tenant needs to create the role Spool assumes, in their own AWS account."""

    roleArn: str | None = Field(
        description="The endpoint's roleArn; null when it has none yet: deploy the template, then PATCH its "
        "RoleArn output in as storageConfig.roleArn"
    )
    roleName: str = Field(description="The role's name in the template (roleArn's, or spool-{endpoint id})")
    externalId: str
    sinkRoleArn: str = Field(description="The principal the trust policy trusts: this deployment's sink role")
    trustPolicy: dict[str, Any]
    permissionPolicy: dict[str, Any]
    cloudFormationTemplate: dict[str, Any] = Field(description="Both policies as one AWS::IAM::Role")
    deployCommand: str = Field(description="Save the template as templateFile, then run this")
    templateFile: str


def new_external_id() -> str:
    """128 random bits, never reused: each Amazon S3 endpoint gets its own."""
    return f"{EXTERNAL_ID_PREFIX}{secrets.token_hex(16)}"


def session_name(endpoint_id: str) -> str:
    """The RoleSessionName: the tenant's CloudTrail shows Spool and the endpoint behind every write."""
    return f"{SESSION_NAME_PREFIX}{endpoint_id}"


def probe_key(prefix: str) -> str:
    return f"{prefix}{PROBE_MARKER}{new_id('probe')}"


def role_account(role_arn: str) -> str | None:
    found = ROLE_ARN_RE.match(role_arn)
    return found.group(2) if found else None


def trust_policy(sink_role_arn: str, external_id: str) -> dict[str, Any]:
    """Only this deployment's sink role, and only with this endpoint's ExternalId."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SpoolSinkWithThisEndpointsExternalId",
                "Effect": "Allow",
                "Principal": {"AWS": sink_role_arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def permission_policy(
    partition: str, bucket: str, prefix: str, region: str | None, kms_key_arn: str | None = None
) -> dict[str, Any]:
    """PutObject under the prefix; DeleteObject of verify's probe objects only; GenerateDataKey on the bucket's
    KMS key when it has one (SSE-KMS writes need it), and only through S3 in the bucket's region."""
    objects = f"arn:{partition}:s3:::{_literal(bucket)}/{_literal(prefix)}"
    statements: list[dict[str, Any]] = [
        {"Sid": "WriteObjects", "Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{objects}*"},
        {
            "Sid": "RemoveVerifyProbes",
            "Effect": "Allow",
            "Action": "s3:DeleteObject",
            "Resource": f"{objects}{PROBE_MARKER}*",
        },
    ]
    if kms_key_arn is not None:
        statements.append(
            {
                "Sid": "EncryptWithTheBucketsKey",
                "Effect": "Allow",
                "Action": "kms:GenerateDataKey",
                "Resource": kms_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.{_DNS_SUFFIX[partition]}"}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def check_kms_key_arn(value: str, region: str | None) -> str:
    """A KMS key ARN (not an alias) in the bucket's region: S3 encrypts only with keys of its own region."""
    parts = value.split(":")
    if len(value) > 2048 or not value.startswith(_KMS_KEY_ARN_PREFIXES) or len(parts) != 6:
        raise InvalidInput("must be a KMS key ARN: arn:aws:kms:{region}:{account}:key/{key id}", field="kmsKeyArn")
    key_region, account, resource = parts[3], parts[4], parts[5]
    if not (account.isdigit() and len(account) == 12 and resource.startswith("key/") and len(resource) > 4):
        raise InvalidInput("must be a KMS key ARN: arn:aws:kms:{region}:{account}:key/{key id}", field="kmsKeyArn")
    if key_region != region:
        raise InvalidInput(
            f"is a key in {key_region}; S3 encrypts with keys of the bucket's region ({region})", field="kmsKeyArn"
        )
    return value


def aws_role(endpoint: Endpoint, sink_role_arn: str, kms_key_arn: str | None = None) -> AwsRole:
    """The trust and permission policies of the endpoint's role, and one CloudFormation template with both.

    The role is the endpoint's roleArn (the template then asserts it is deployed in that account), or, for an
    endpoint still on access keys, `spool-{endpoint id}` in whatever account it is deployed to."""
    storage = endpoint.storage
    if storage.externalId is None:
        raise CorruptRecord("a stored Amazon S3 endpoint has no externalId", detail={"endpointId": endpoint.id})
    found = ROLE_ARN_RE.match(storage.roleArn) if storage.roleArn else None
    sink = ROLE_ARN_RE.match(sink_role_arn)
    partition = found.group(1) if found else (sink.group(1) if sink else "aws")
    name = found.group(4) if found else f"{SESSION_NAME_PREFIX}{endpoint.id}"
    path = f"/{found.group(3)}" if found else "/"
    if kms_key_arn is not None:
        check_kms_key_arn(kms_key_arn, storage.region)
    trust = trust_policy(sink_role_arn, storage.externalId)
    permissions = permission_policy(partition, storage.bucket, storage.prefix, storage.region, kms_key_arn)
    where = f"s3://{storage.bucket}/{storage.prefix}"
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Spool: the role Spool assumes to write endpoint {endpoint.id}'s objects to {where}",
        "Resources": {
            TEMPLATE_ROLE_ID: {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": name,
                    "Path": path,
                    "Description": f"Spool writes endpoint {endpoint.id}'s objects to {where} with this role",
                    "MaxSessionDuration": 3600,
                    "AssumeRolePolicyDocument": trust,
                    "Policies": [{"PolicyName": "spool-delivery", "PolicyDocument": permissions}],
                    "Tags": [{"Key": "spool:endpointId", "Value": endpoint.id}],
                },
            }
        },
        "Outputs": {
            "RoleArn": {
                "Description": "storageConfig.roleArn of the endpoint",
                "Value": {"Fn::GetAtt": [TEMPLATE_ROLE_ID, "Arn"]},
            }
        },
    }
    if found:
        account = found.group(2)
        template["Rules"] = {
            "TheEndpointsAccount": {
                "Assertions": [
                    {
                        "Assert": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, account]},
                        "AssertDescription": f"Deploy this template in account {account}, the account of the "
                        "endpoint's roleArn",
                    }
                ]
            }
        }
    stack = f"spool-role-{endpoint.id.replace('_', '-')}"
    file = f"{stack}.json"
    return AwsRole(
        roleArn=storage.roleArn,
        roleName=name,
        externalId=storage.externalId,
        sinkRoleArn=sink_role_arn,
        trustPolicy=trust,
        permissionPolicy=permissions,
        cloudFormationTemplate=template,
        templateFile=file,
        deployCommand=(
            f"aws cloudformation deploy --template-file {file} --stack-name {stack} --capabilities CAPABILITY_NAMED_IAM"
        ),
    )


def _literal(text: str) -> str:
    """`*` and `?` in a bucket prefix are characters, not IAM wildcards: IAM spells them `${*}` and `${?}`."""
    return text.replace("*", "${*}").replace("?", "${?}")
