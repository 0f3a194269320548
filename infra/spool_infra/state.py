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
from spool.domain.credentials import ENCRYPTION_CONTEXT_KEYS
from spool_infra.nag import acknowledge
from spool_infra.settings import Settings

# What the sink's status updates may name: the table's key attributes (fine-grained access control needs them
# listed) and the status attributes; and what an update may return (not the whole item).
STATUS_UPDATE_ATTRIBUTES = (shared.TABLE_PARTITION_KEY, shared.TABLE_SORT_KEY, *shared.STATUS_ATTRIBUTES)
STATUS_RETURN_VALUES = ("NONE", "UPDATED_OLD", "UPDATED_NEW")
# The credentials key's administration, which its policy leaves to the account (to IAM, as with any key): everything
# but the cryptographic actions (Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*) and grants (CreateGrant, another
# way to Decrypt), so an IAM administrator policy alone does not read tenants' credentials. No lock-out: the account
# keeps PutKeyPolicy (KMS's lock-out check needs the caller of CreateKey/PutKeyPolicy to keep it), so the policy can
# always be changed, which CloudTrail records (docs/deploy.md, The credentials key).
KEY_ADMIN_ACTIONS = (
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:ListResourceTags",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:UpdateKeyDescription",
    "kms:CreateAlias",
    "kms:UpdateAlias",
    "kms:DeleteAlias",
    "kms:ListGrants",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
)


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
            # Instead of CDK's default (`kms:*` for the account, so any IAM administrator could decrypt): the
            # account administers the key, and only the functions' roles use it (`grant_*_credentials` add them).
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="AccountAdministersTheKey",
                        principals=[iam.AccountRootPrincipal()],
                        actions=list(KEY_ADMIN_ACTIONS),
                        resources=["*"],
                    )
                ]
            ),
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

    def grant_items(self, grantee: iam.IGrantable, prefixes: tuple[str, ...], *actions: str) -> None:
        """Item calls on the table limited to partitions that start with one of `prefixes` (names.py):
        `dynamodb:LeadingKeys` is every partition key a request touches, BatchWriteItem's and each item of a
        TransactWriteItems included, so one item outside them refuses the whole request."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(actions),
                resources=[self.table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{p}*" for p in prefixes]}},
            )
        )

    def grant_status_updates(self, grantee: iam.IGrantable, prefix: str = shared.STATUS_KEY_PREFIX) -> None:
        """UpdateItem of delivery-status items only (partition `S#...`), and of their status attributes only.

        DynamoDB's fine-grained access control: `dynamodb:Attributes` lists every top-level attribute a request
        names (key, update, condition and projection expressions), so the table's key attributes must be in the
        list (AWS: otherwise DynamoDB cannot use them), and the update can write nothing but STATUS_ATTRIBUTES.
        An UpdateItem also reads the item it updates: `dynamodb:ReturnValues` must be NONE, UPDATED_OLD or
        UPDATED_NEW (what the update names), never ALL_OLD/ALL_NEW (the whole item). PutItem and DeleteItem are
        not granted: they replace or remove whole items."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"],
                resources=[self.table.table_arn],
                conditions={
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{prefix}*"]},
                    "ForAllValues:StringEquals": {"dynamodb:Attributes": list(STATUS_UPDATE_ATTRIBUTES)},
                    "StringEqualsIfExists": {"dynamodb:ReturnValues": list(STATUS_RETURN_VALUES)},
                },
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
        # this is one tightly scoped statement: the context must carry exactly the two Spool keys. The key
        # policy names the role for the same action and condition: the account's part of it (above) allows no
        # cryptographic action, so without this the role's own policy would not be enough.
        conditions = {
            "Null": {f"kms:EncryptionContext:{key}": "false" for key in ENCRYPTION_CONTEXT_KEYS},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(ENCRYPTION_CONTEXT_KEYS)},
        }
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=[action], resources=[self.credentials_key.key_arn], conditions=conditions)
        )
        self.credentials_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[grantee.grant_principal], actions=[action], resources=["*"], conditions=conditions
            )
        )
