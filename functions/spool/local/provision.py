"""Create the stack's resources in an emulator, idempotently (what `cdk deploy` creates on AWS)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from spool.domain import limits
from spool.names import TABLE_PARTITION_KEY, TABLE_SORT_KEY


@dataclass(frozen=True)
class Names:
    table: str = "spool-local"
    queue: str = "spool-local-ingest"
    dlq: str = "spool-local-dlq"
    key_alias: str = "alias/spool-local-credentials"
    pepper_secret: str = "spool-local/api-key-pepper"  # noqa: S105 - the secret's name, not its value
    sink_role: str = "spool-local-sink"
    staging_bucket: str = "spool-local-staging"
    max_receive_count: int = limits.MAX_RECEIVE_COUNT
    visibility_timeout: int = 60


@dataclass(frozen=True)
class Resources:
    table_name: str
    queue_url: str
    dlq_url: str
    kms_key_id: str
    pepper_secret_id: str
    sink_role_arn: str
    staging_bucket: str


def provision(names: Names, session: boto3.session.Session | None = None) -> Resources:
    session = session or boto3.session.Session()
    return Resources(
        table_name=_table(session.client("dynamodb"), names.table),
        **_queues(session.client("sqs"), names),
        kms_key_id=_key(session.client("kms"), names.key_alias),
        pepper_secret_id=_secret(session.client("secretsmanager"), names.pepper_secret),
        sink_role_arn=_sink_role(session.client("iam"), names.sink_role),
        staging_bucket=_bucket(session.client("s3"), names.staging_bucket),
    )


def _table(db: Any, name: str) -> str:
    try:
        db.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": TABLE_PARTITION_KEY, "AttributeType": "S"},
                {"AttributeName": TABLE_SORT_KEY, "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": TABLE_PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": TABLE_SORT_KEY, "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        db.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    return name


def _queues(sqs: Any, names: Names) -> dict[str, str]:
    dlq_url = sqs.create_queue(QueueName=names.dlq, Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {
        "VisibilityTimeout": str(names.visibility_timeout),
        "MessageRetentionPeriod": "1209600",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(names.max_receive_count)}),
    }
    try:
        queue_url = sqs.create_queue(QueueName=names.queue, Attributes=attributes)["QueueUrl"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
            raise
        queue_url = sqs.get_queue_url(QueueName=names.queue)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    return {"queue_url": queue_url, "dlq_url": dlq_url}


def _key(kms: Any, alias: str) -> str:
    try:
        return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NotFoundException":
            raise
    key_id = kms.create_key(Description="Spool store credentials (local)")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return str(key_id)


def _secret(sm: Any, name: str) -> str:
    """The secret's ARN, as the stack hands the api (`Ref` of a secret is its ARN)."""
    try:
        return str(sm.describe_secret(SecretId=name)["ARN"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    return str(sm.create_secret(Name=name, SecretString=secrets.token_urlsafe(48))["ARN"])


def _sink_role(iam: Any, name: str) -> str:
    """A stand-in for the sink's execution role, so tenants' trust policies have a principal to name. The
    local sink does not run as it (moto's STS trusts every caller); its ARN is what the api hands out."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def _bucket(s3: Any, bucket: str) -> str:
    ensure_bucket(s3, bucket)
    return bucket


def ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
