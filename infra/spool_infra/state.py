"""State: the single DynamoDB table, the credentials KMS key and the API-key pepper secret.

These three hold or unlock user data, so they share one removal policy (context `dataRemovalPolicy`):
`retain` (the default) keeps all three on `cdk destroy`. They only make sense together: the table's
credential ciphertexts need the key, its API-key hashes need the pepper.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from spool import names as shared
from spool_infra import names
from spool_infra.nag import acknowledge
from spool_infra.settings import Settings


class State(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY

        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=shared.TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=shared.TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # The AWS managed key (aws/dynamodb): encrypted at rest, usage visible in CloudTrail, no key
            # policy to keep in step. Storage credentials are encrypted again with `credentials_key`.
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=shared.TABLE_TTL_ATTRIBUTE,
            deletion_protection=settings.retain_data,
            removal_policy=removal,
        )

        self.credentials_key = kms.Key(
            self,
            "CredentialsKey",
            description=f"Spool {settings.stage}: encrypts endpoint storage credentials",
            enable_key_rotation=True,
            # Only used when dataRemovalPolicy=destroy; the shortest window AWS allows.
            pending_window=Duration.days(7),
            removal_policy=removal,
        )

        self.pepper_secret = secretsmanager.Secret(
            self,
            "PepperSecret",
            description=f"Spool {settings.stage}: pepper for HMAC-SHA256 hashes of tenant API keys",
            # Explicit settings: an empty generator template leaves the secret empty on some emulators.
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True, include_space=False
            ),
            removal_policy=removal,
        )
        acknowledge(
            self.pepper_secret,
            "AwsSolutions-SMG4",
            "The pepper is not rotated automatically: every stored API-key hash depends on it, so a "
            "rotation would revoke all keys at once. Rotating it means issuing new keys to tenants "
            "(docs/deploy.md, Rotating the pepper).",
        )

    def grant_staging_writes(self, grantee: iam.IGrantable, *actions: str) -> None:
        """Item writes on the table limited to flush leases and the lines older sinks staged there (partition
        key `B#...`, adapters/leases.py and adapters/staged_items.py):
        `dynamodb:LeadingKeys` is every partition key a request touches, BatchWriteItem's included."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(actions),
                resources=[self.table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{shared.STAGING_KEY_PREFIX}*"]}},
            )
        )

    def grant_read_pepper(self, grantee: iam.IGrantable) -> None:
        """secretsmanager:GetSecretValue on the pepper (Powertools Parameters reads nothing else). The
        secret's `grant_read` would add DescribeSecret, which nothing calls; its key is the AWS managed one,
        so no KMS grant is needed."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[self.pepper_secret.secret_arn])
        )

    def grant_encrypt_credentials(self, grantee: iam.IGrantable) -> None:
        """kms:Encrypt, and only with an encryption context naming a tenant and an endpoint."""
        self._grant_key(grantee, "kms:Encrypt")

    def grant_decrypt_credentials(self, grantee: iam.IGrantable) -> None:
        """kms:Decrypt, and only with an encryption context naming a tenant and an endpoint."""
        self._grant_key(grantee, "kms:Decrypt")

    def _grant_key(self, grantee: iam.IGrantable, action: str) -> None:
        # `Key.grant_encrypt/grant_decrypt` take no conditions (and add ReEncrypt*/GenerateDataKey*), so
        # this is one tightly scoped statement: the context must carry exactly the two Spool keys.
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[action],
                resources=[self.credentials_key.key_arn],
                conditions={
                    "Null": {f"kms:EncryptionContext:{key}": "false" for key in names.ENCRYPTION_CONTEXT_KEYS},
                    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(names.ENCRYPTION_CONTEXT_KEYS)},
                },
            )
        )
