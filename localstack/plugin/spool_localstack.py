"""A LocalStack provider that serves DynamoDB from moto, selected with `PROVIDER_OVERRIDE_DYNAMODB=moto`.

LocalStack's own DynamoDB provider forwards every call to DynamoDB Local, which it downloads (a JDK and a jar)
on first use: on a machine without that access each call fails after about 25 s. moto, which LocalStack
bundles as its fallback for other services, implements what Spool's table needs (conditional writes,
transactions, queries, TTL settings) in-process. This provider implements no operation itself, so every
operation falls through to moto.
"""

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.services.plugins import Service, ServiceLifecycleHook, aws_provider


class MotoDynamoDB(DynamodbApi, ServiceLifecycleHook):
    """Every operation raises NotImplementedError (DynamodbApi's default), which sends it to moto."""


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto() -> Service:
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(MotoDynamoDB(), dispatch_table_factory=MotoFallbackDispatcher)
