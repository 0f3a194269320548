"""The CloudFormation template GET /api/v1/endpoints/{id}/aws-role hands the tenant passes cfn-lint, in each of
its shapes: for an endpoint's roleArn (the role's name, path and account), for an endpoint still on access keys,
with the bucket's KMS key. (What its policies allow is tests/unit/test_roles.py's, by evaluating them.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

from spool.domain import roles
from spool.domain.models import Endpoint
from spool.domain.storage import StorageSettings

SINK_ROLE_ARN = "arn:aws:iam::123456789012:role/Spool-prod-IngestSinkRole-1A2B3C4D5E6F"
KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def endpoint(role_arn: str | None, prefix: str = "events/production/") -> Endpoint:
    storage = StorageSettings(
        provider="s3",
        bucket="my-webhook-archive",
        prefix=prefix,
        region="eu-west-1",
        roleArn=role_arn,
        externalId=roles.new_external_id(),
    )
    return Endpoint(
        id="ep_0195f0a1b2c3d4e5f6a7b8c9d0e1",
        tenantId="ten_1",
        url=f"s3://my-webhook-archive/{prefix}",
        eventTypes=["*"],
        storage=storage,
        createdAt="2026-04-14T10:30:00.000Z",
        updatedAt="2026-04-14T10:30:00.000Z",
    )


@pytest.mark.parametrize(
    ("role_arn", "kms_key_arn", "prefix"),
    [
        ("arn:aws:iam::111122223333:role/spool-delivery", None, "events/production/"),
        ("arn:aws:iam::111122223333:role/teams/data/spool-delivery", KEY_ARN, "events/"),
        (None, None, ""),
        (None, KEY_ARN, "odd*prefix(1)/"),
    ],
    ids=["role arn", "role arn with a path and a kms key", "on keys, no prefix", "on keys, kms key, odd prefix"],
)
def test_the_tenants_role_template_passes_cfn_lint(
    tmp_path: Path, role_arn: str | None, kms_key_arn: str | None, prefix: str
) -> None:
    answer = roles.aws_role(endpoint(role_arn, prefix), SINK_ROLE_ARN, kms_key_arn)
    template = tmp_path / answer.templateFile
    template.write_text(json.dumps(answer.cloudFormationTemplate, indent=2))

    matches = lint_file(template, config=ManualArgs(regions=["eu-west-1", "us-east-1"]))

    assert [str(m) for m in matches] == []
