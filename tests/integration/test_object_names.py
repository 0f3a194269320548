"""Names never collide: 20 flushes for one endpoint in the same second, from 20 concurrent sinks (as 20 Lambda
containers would), give 20 distinct keys and overwrite nothing, on the emulator's S3 (moto's or LocalStack's,
--emulator) and on SeaweedFS."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from spool.adapters.stores import Stores
from spool.domain.credentials import Credentials
from spool.domain.delivery import EndpointDirectory, Sink
from spool.domain.endpoints import seal
from spool.domain.models import Endpoint
from spool.domain.naming import ndjson_line
from spool.domain.planner import InboundRecord
from spool.domain.storage import StorageSettings
from spool.domain.urlpolicy import UrlPolicy
from spool.local.runtime import LocalRuntime
from tests.fakes import FakeCipher, FakeLedger, FakeQueue, FakeRepo
from tests.integration.conftest import Seaweed, read_objects

FROZEN = 1_776_162_600.25


def event_line(event_id: str) -> str:
    return ndjson_line(event_id, "order.created", {}, "2026-04-14T10:30:00.250Z")


def flush_twenty_in_one_second(
    settings: StorageSettings, credentials: Credentials, amazon_s3_url: str | None = None
) -> list[str]:
    repo, cipher = FakeRepo(), FakeCipher()
    endpoint = Endpoint(
        id="ep_names",
        tenantId="ten_names",
        url=f"s3://{settings.bucket}/{settings.prefix}",
        eventTypes=["*"],
        storage=settings,
        credentials=seal(cipher, "ten_names", "ep_names", credentials),
        createdAt="2026-04-14T00:00:00.000Z",
        updatedAt="2026-04-14T00:00:00.000Z",
    )
    repo.create_endpoint(endpoint)
    keys: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one_container(n: int) -> None:
        try:
            stores = Stores(UrlPolicy(allow_insecure=True), None, amazon_s3_url=amazon_s3_url)
            sink = Sink(
                EndpointDirectory(repo, cipher, stores),
                repo,
                FakeQueue(),
                repo,
                FakeQueue(),
                repo,
                ledger=FakeLedger(),
                clock=lambda: FROZEN,
            )
            records = [
                InboundRecord(
                    f"m{n}-{i}", f"r{n}-{i}", "ten_names", "ep_names", event_line(f"evt_{n}_{i}"), FROZEN, line_count=1
                )
                for i in range(settings.batchSize)
            ]
            report = sink.deliver(records)
            with lock:
                keys.extend(report.endpoints["ep_names"].keys)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=one_container, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return keys


def check(keys: list[str], objects: dict[str, list[dict[str, Any]]]) -> None:
    assert len(keys) == 20
    assert len(set(keys)) == 20
    assert sorted(keys) == sorted(objects)
    assert all(key.split("/")[-1].startswith(f"{int(FROZEN)}-") for key in keys)
    ids = [line["id"] for lines in objects.values() for line in lines]
    assert len(ids) == len(set(ids)) == 20 * 5  # every flush's lines survive: nothing overwritten


@pytest.mark.usefixtures("runtime")
def test_twenty_flushes_in_one_second_on_the_emulators_s3(runtime: LocalRuntime, emulator_s3: Any) -> None:
    emulator_s3.create_bucket(Bucket="names-emulator")
    settings = StorageSettings(provider="s3", bucket="names-emulator", prefix="n/", region="us-east-1", batchSize=5)
    credentials = Credentials(accessKeyId="test", secretAccessKey="testtesttest")
    keys = flush_twenty_in_one_second(settings, credentials, amazon_s3_url=runtime.aws_url)
    check(keys, read_objects(emulator_s3, "names-emulator", "n/"))


def test_twenty_flushes_in_one_second_on_seaweedfs(seaweed: Seaweed) -> None:
    seaweed.client().create_bucket(Bucket="names-seaweed")
    settings = StorageSettings(
        provider="s3", bucket="names-seaweed", prefix="n/", region="us-east-1", endpoint=seaweed.url, batchSize=5
    )
    credentials = Credentials(accessKeyId=seaweed.access_key, secretAccessKey=seaweed.secret_key)
    keys = flush_twenty_in_one_second(settings, credentials)
    check(keys, read_objects(seaweed.client(), "names-seaweed", "n/"))
