"""State: table, credentials key, pepper secret and their removal policies."""

from __future__ import annotations

from aws_cdk.assertions import Template
from infra_synth import SynthFactory


def test_table_is_single_table_pk_sk_on_demand(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    template.resource_count_is("AWS::DynamoDB::Table", 1)


def test_table_has_pitr_encryption_and_ttl(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True},
        },
    )


def test_credentials_key_rotates(template: Template) -> None:
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.resource_count_is("AWS::KMS::Key", 1)


def test_pepper_secret_is_generated_with_explicit_settings(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True, "IncludeSpace": False}},
    )


def test_data_is_retained_by_default(template: Template) -> None:
    for cfn_type in ("AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::SecretsManager::Secret"):
        template.has_resource(cfn_type, {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})
    template.has_resource_properties("AWS::DynamoDB::Table", {"DeletionProtectionEnabled": True})


def test_data_removal_policy_destroy_deletes_state(synth_with: SynthFactory) -> None:
    template = synth_with({"dataRemovalPolicy": "destroy"}).template
    for cfn_type in ("AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::SecretsManager::Secret"):
        template.has_resource(cfn_type, {"DeletionPolicy": "Delete"})
    template.has_resource_properties("AWS::DynamoDB::Table", {"DeletionProtectionEnabled": False})
    template.has_resource_properties("AWS::KMS::Key", {"PendingWindowInDays": 7})


def test_log_groups_go_with_the_stack_and_expire(template: Template) -> None:
    template.resource_count_is("AWS::Logs::LogGroup", 4)  # three functions' and the API's access log
    template.all_resources("AWS::Logs::LogGroup", {"DeletionPolicy": "Delete"})
    template.all_resources_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})
