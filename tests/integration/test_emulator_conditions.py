"""The local runtime's emulator keeps conditional writes atomic, as AWS does (spool/local/moto_speedups.py).

Spool's written-once objects and its flush leases rest on two conditions: S3's PutObject with If-None-Match
(a name two sinks want: one gets it, the other a 412 and the next name) and DynamoDB's ConditionExpression.
moto checks a condition and then writes, in two steps; under load two sinks got through between them, the second
object replaced the first, and `make soak` lost the first one's events. Here several threads race for one name
or one item, with Python switching threads as often as it can; exactly one may win, and what is stored is the
winner's.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from spool.adapters.dynamo import PK, SK
from spool.local.runtime import LocalRuntime
from tests.servers import Emulator

RACERS, ROUNDS = 8, 25


@pytest.fixture(autouse=True)
def only_moto(emulator: Emulator) -> None:
    if emulator.name != "moto":
        pytest.skip("the patch under test is moto's (spool/local/moto_speedups.py)")


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Python switches threads every few microseconds instead of every 5 ms, so a gap between a check and a
    write in the emulator (it runs in this process) is hit within a few rounds."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def race(attempt: Callable[[int], None]) -> list[int]:
    """Run `attempt(n)` for every racer at once; the racers whose attempt was not refused by its condition."""
    gate = threading.Barrier(RACERS)
    won: list[int] = []
    errors: list[BaseException] = []

    def racer(n: int) -> None:
        gate.wait()
        try:
            attempt(n)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("PreconditionFailed", "ConditionalCheckFailedException"):
                errors.append(exc)
        except BaseException as exc:
            errors.append(exc)
        else:
            won.append(n)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return won


def test_one_of_several_conditional_puts_of_one_name_wins_and_its_body_stays(
    runtime: LocalRuntime, busy_switching: None
) -> None:
    s3 = runtime.client("s3", config=Config(max_pool_connections=RACERS, retries={"max_attempts": 1}))
    bucket = f"race-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    for round_ in range(ROUNDS):
        key = f"{round_:03d}-001.ndjson"

        def put(n: int, key: str = key) -> None:
            s3.put_object(Bucket=bucket, Key=key, Body=f"racer {n}\n".encode(), IfNoneMatch="*")

        won = race(put)
        stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        assert len(won) == 1, f"round {round_}: {len(won)} puts of {key} succeeded, the store holds {stored!r}"
        assert stored == f"racer {won[0]}\n"


def test_one_of_several_conditional_writes_of_one_item_wins(runtime: LocalRuntime, busy_switching: None) -> None:
    db: Any = runtime.client("dynamodb", config=Config(max_pool_connections=RACERS, retries={"max_attempts": 1}))
    assert runtime.resources is not None
    table = runtime.resources.table_name
    for round_ in range(ROUNDS):
        pk = f"RACE#{uuid.uuid4().hex}"

        def take(n: int, pk: str = pk) -> None:
            db.put_item(
                TableName=table,
                Item={PK: {"S": pk}, SK: {"S": "lease"}, "holder": {"N": str(n)}},
                ConditionExpression=f"attribute_not_exists({PK})",
            )

        won = race(take)
        stored = db.get_item(TableName=table, Key={PK: {"S": pk}, SK: {"S": "lease"}}, ConsistentRead=True)
        assert len(won) == 1, f"round {round_}: {len(won)} conditional writes of one item succeeded"
        assert stored["Item"]["holder"]["N"] == str(won[0])
