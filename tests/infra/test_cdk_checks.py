"""Stack-wide checks: cdk-nag, cfn-lint, outputs, context validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import Validations
from cfnlint.api import ManualArgs, lint_file
from infra_synth import REPO, Synth, SynthFactory
from pydantic import ValidationError

from spool_infra.settings import Settings

# CDK adds an explicit DependsOn from each function to its role's policy and role; the warning that one of
# them is already implied by a GetAtt is about CDK's output, not about this stack.
CFN_LINT_IGNORED = ["W3005"]
CDK_NAG_ACKNOWLEDGED = {
    "AwsSolutions-APIG4",
    "AwsSolutions-IAM5[Resource::*]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/*]",
    "AwsSolutions-IAM5[Resource::<IngestStaging6CCA8472.Arn>/*]",
    "AwsSolutions-L1",
    "AwsSolutions-S1",
    "AwsSolutions-SMG4",
}


def test_cdk_nag_reports_no_unacknowledged_finding(synth: Synth) -> None:
    # Synthesis raises on an unacknowledged error; the report must also hold no warning.
    for plugin in synth.validation_report()["pluginReports"]:
        assert plugin["conclusion"] == "success", plugin["violations"]
        assert plugin["violations"] == []


def test_every_cdk_nag_acknowledgement_has_a_reason(synth: Synth) -> None:
    found: dict[str, str] = {}
    for node in synth.stack.node.find_all():
        for entry in node.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    found[rule.removeprefix("Annotation::")] = reason
    assert set(found) == CDK_NAG_ACKNOWLEDGED
    assert all(len(reason) > 60 for reason in found.values())


@pytest.mark.parametrize("context", [{}, {"dataRemovalPolicy": "destroy", "tracing": False}], ids=str)
def test_cfn_lint_finds_nothing(synth_with: SynthFactory, context: dict[str, object]) -> None:
    synth = synth_with(context)
    matches = lint_file(
        Path(synth.template_file), config=ManualArgs(regions=["us-east-1"], ignore_checks=CFN_LINT_IGNORED)
    )
    assert [str(m) for m in matches] == []


def test_outputs_name_what_the_admin_cli_needs(synth: Synth) -> None:
    assert synth.stack.stack_name == "Spool-test"
    assert {
        "ApiUrl",
        "ApiId",
        "TableName",
        "QueueUrl",
        "DlqUrl",
        "KmsKeyId",
        "PepperSecretArn",
        "SinkFunctionName",
        "SinkRoleArn",
        "VerifyFunctionName",
    } <= set(synth.json["Outputs"])


def test_cdk_json_context_is_valid_and_matches_the_defaults() -> None:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    assert Settings.model_validate(context) == Settings()
    assert json.loads((REPO / "cdk.json").read_text())["app"] == ".venv/bin/python infra/app.py"


@pytest.mark.parametrize(
    "context",
    [
        {"batchSize": 0},
        {"batchSize": 100, "maxBatchingWindowSeconds": 0},
        {"maxConcurrency": 1},
        {"logRetentionDays": 31},
        {"domainName": "spool.example.com"},
        {"stage": "bad stage"},
        {"dataRemovalPolicy": "keep"},
        {"maxConcurrency": 20, "sinkReservedConcurrency": 10},
        {"verifyReservedConcurrency": 0},
        {"apiReservedConcurrency": -1},
    ],
    ids=str,
)
def test_bad_context_is_refused(context: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate(context)


def test_context_strings_from_the_command_line_are_parsed() -> None:
    settings = Settings.model_validate({"batchSize": "250", "allowInsecureEndpoints": "true", "tracing": "false"})
    assert (settings.batch_size, settings.allow_insecure_endpoints, settings.tracing) == (250, True, False)
