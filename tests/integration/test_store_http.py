"""The store clients' HTTP over real sockets (adapters/store_http.py; issue 20, "Hard deadlines" and "Pinned
addresses"): every call ends at its total deadline against a store that drips its answer (tests/drip.py),
connections go only to addresses the endpoint policy checked, resolved again for every connection (DNS
rebinding refused), with SNI, certificate check and Host kept on the name; and ordinary stores (SeaweedFS,
the moto server) answer through it as before.

Timing asserts are generous on purpose: a call must not end before its deadline (nothing else cut it) and must
end within a few seconds after it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from spool.adapters.store_http import DeadlineSession, fixed_seconds, with_deadlines
from spool.adapters.stores import Stores
from spool.domain import limits
from spool.domain.credentials import Credentials, RoleToAssume
from spool.domain.errors import DeadlineExceeded, StoreError
from spool.domain.storage import StorageSettings
from spool.domain.urlpolicy import UrlPolicy
from spool.local.runtime import LocalRuntime
from tests.drip import Certificate, DripServer, self_signed
from tests.servers import Seaweed

KEYS = Credentials(accessKeyId="AKIAIOSFODNN7EXAMPLE", secretAccessKey="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
ROLE = RoleToAssume(
    endpointId="ep_0123456789ab0123456789abcdef",
    roleArn="arn:aws:iam::111122223333:role/spool-delivery",
    externalId="spool-0123456789abcdef0123456789abcdef",
    sessionName="spool-ep_0123456789ab0123456789abcdef",
)
LOCAL = UrlPolicy(allow_insecure=True)
# How late after its deadline a call may end: botocore's back-off before a second attempt (at most 1 s), and a
# loaded machine.
MARGIN = 3.0


def settings(endpoint: str | None, bucket: str = "archive") -> StorageSettings:
    return StorageSettings(provider="s3", bucket=bucket, prefix="events/", region="us-east-1", endpoint=endpoint)


def put(store: Any, key: str = "events/x.ndjson", body: bytes = b'{"id":"evt_1"}\n') -> bool:
    return bool(store.put_new(key, body, content_type="application/x-ndjson", content_encoding=None))


def timed(call: Callable[[], object]) -> tuple[BaseException, float]:
    """What `call` raised, and after how many seconds."""
    started = time.monotonic()
    with pytest.raises(StoreError) as raised:
        call()
    return raised.value, time.monotonic() - started


def assert_deadline(error: BaseException, elapsed: float, seconds: float, what: str = "store") -> None:
    assert isinstance(error, DeadlineExceeded), error
    assert error.seconds == seconds
    assert error.message == f"{what} did not answer within {seconds:g} s (deadline exceeded)"
    assert seconds - 0.5 <= elapsed <= seconds + MARGIN, elapsed


# --- deadlines against a dripping store ------------------------------------------------------------------


def test_a_put_to_a_store_that_drips_its_answer_ends_at_the_put_deadline(drip_store: DripServer) -> None:
    store = Stores(LOCAL, None)(settings(drip_store.url), KEYS)
    body = b"x" * (2 * 1024 * 1024)

    error, elapsed = timed(lambda: put(store, body=body))

    assert_deadline(error, elapsed, limits.store_call_seconds(len(body)))
    assert KEYS.secretAccessKey is not None and KEYS.secretAccessKey.get_secret_value() not in str(error)
    assert drip_store.requests and drip_store.requests[0].method == "PUT"


def test_a_delete_whose_answer_body_drips_ends_at_its_deadline() -> None:
    with DripServer(headers_first=True) as server:
        store = Stores(LOCAL, None)(settings(server.url), KEYS)

        error, elapsed = timed(lambda: store.delete("events/x.ndjson"))

    assert_deadline(error, elapsed, limits.store_call_seconds(0))


def test_verifys_probe_to_a_dripping_store_ends_at_the_verify_deadline(drip_store: DripServer) -> None:
    store = Stores(LOCAL, None, verifying=True)(settings(drip_store.url), KEYS)

    error, elapsed = timed(lambda: put(store, "events/.spool-verify-ep_1", b"spool verify probe\n"))

    assert_deadline(error, elapsed, limits.VERIFY_CALL_SECONDS)


@pytest.mark.parametrize("verifying", [False, True], ids=["delivery", "verify"])
def test_an_assume_role_against_a_dripping_sts_ends_at_the_sts_deadline(
    drip_store: DripServer, verifying: bool
) -> None:
    sts = boto3.client(
        "sts",
        region_name="us-east-1",
        endpoint_url=drip_store.url,
        aws_access_key_id="AKIASINK",
        aws_secret_access_key="sink-secret",
    )
    stores = Stores(UrlPolicy(), None, sts=sts, verifying=verifying)

    # Building a role store probes the role's trust policy first: an AssumeRole with a wrong ExternalId.
    error, elapsed = timed(lambda: stores(settings(None, "tenant-bucket"), Credentials(role=ROLE)))

    assert_deadline(error, elapsed, limits.STS_CALL_SECONDS, "AWS STS")
    assert drip_store.requests[0].method == "POST"


def test_a_tls_store_that_drips_after_the_handshake_is_cut_at_the_deadline(tmp_path: Path) -> None:
    certificate = self_signed(tmp_path, "store.test")
    with DripServer(tls=certificate.server_context()) as server:
        client = pinned_client(server, certificate, UrlPolicy(allow_insecure=True, resolver=lambda _: ["127.0.0.1"]))

        error, elapsed = timed(lambda: client.delete_object(Bucket="archive", Key="x"))

    assert_deadline(error, elapsed, 2.0)
    assert server.server_names == ["store.test"]


def test_a_name_whose_resolution_hangs_is_abandoned_at_the_deadline(drip_store: DripServer) -> None:
    def hanging(host: str) -> list[str]:
        time.sleep(30)
        return ["127.0.0.1"]

    policy = UrlPolicy(allow_insecure=True, resolver=hanging)
    client = with_deadlines(
        plain_client(f"http://store.test:{drip_store.port}"),
        fixed_seconds(2.0),
        what="store",
        addresses=policy.addresses,
    )

    error, elapsed = timed(lambda: client.delete_object(Bucket="archive", Key="x"))

    assert_deadline(error, elapsed, 2.0)
    assert drip_store.accepted == 0


# --- pinned addresses -------------------------------------------------------------------------------------


class Rebinding:
    """A resolver whose answers change: the first when the endpoint is checked (create/PATCH), the second
    from then on (every connection the sink opens)."""

    def __init__(self, first: list[str], then: list[str]) -> None:
        self.answers = [first, then]
        self.asked: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        return self.answers[min(len(self.asked), 2) - 1]


@pytest.fixture
def listener() -> Iterator[DripServer]:
    """Counts the connections it gets (and answers them at once)."""
    with DripServer(answer="ok") as server:
        yield server


def test_a_name_rebound_to_loopback_after_the_check_is_refused_and_never_connected(listener: DripServer) -> None:
    resolver = Rebinding(["93.184.216.34"], ["127.0.0.1"])
    policy = UrlPolicy(allow_insecure=False, resolver=resolver)
    url = policy.check(f"https://store.test:{listener.port}")  # what create/PATCH checks: a public address

    store = Stores(policy, None)(settings(url), KEYS)
    with pytest.raises(StoreError) as raised:
        put(store)

    assert not isinstance(raised.value, DeadlineExceeded)
    assert (
        raised.value.message
        == "endpoint refused: points at a loopback or private address (not allowed by this deployment)"
    )
    assert listener.accepted == 0
    assert resolver.asked == ["store.test", "store.test"]  # checked at create, resolved again to connect


def test_a_name_rebound_to_the_metadata_address_is_refused_even_where_private_addresses_are_allowed(
    listener: DripServer,
) -> None:
    policy = UrlPolicy(allow_insecure=True, resolver=Rebinding(["127.0.0.1"], ["169.254.169.254"]))
    url = policy.check(f"http://store.test:{listener.port}")

    with pytest.raises(StoreError, match="endpoint refused: points at a link-local or cloud metadata address"):
        put(Stores(policy, None)(settings(url), KEYS))

    assert listener.accepted == 0


def test_a_name_that_stops_resolving_is_a_store_error_in_the_sink(listener: DripServer) -> None:
    policy = UrlPolicy(allow_insecure=True, resolver=Rebinding(["127.0.0.1"], []))
    url = policy.check(f"http://store.test:{listener.port}")

    with pytest.raises(StoreError, match="endpoint refused: does not resolve to any address"):
        put(Stores(policy, None)(settings(url), KEYS))


def test_every_new_connection_resolves_and_checks_again(listener: DripServer) -> None:
    asked: list[str] = []

    def resolver(host: str) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    store = Stores(UrlPolicy(allow_insecure=True, resolver=resolver), None)(
        settings(f"http://store.test:{listener.port}"), KEYS
    )
    assert put(store, "events/1.ndjson")
    assert put(store, "events/2.ndjson")  # the pooled connection: no new resolution
    assert len(asked) == listener.accepted == 1


def test_a_plain_http_connection_goes_to_the_checked_address_with_the_name_in_host(listener: DripServer) -> None:
    store = Stores(UrlPolicy(allow_insecure=True, resolver=lambda _: ["127.0.0.1"]), None)(
        settings(f"http://store.test:{listener.port}"), KEYS
    )

    assert put(store) is True

    [seen] = listener.requests
    assert seen.headers["host"] == f"store.test:{listener.port}"
    assert seen.path == "/archive/events/x.ndjson"


def test_a_tls_connection_goes_to_the_checked_address_with_sni_certificate_and_host_on_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate = self_signed(tmp_path, "store.test")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate.cert_file))  # kept by the deadline session
    with DripServer(answer="ok", tls=certificate.server_context()) as server:
        store = Stores(UrlPolicy(allow_insecure=True, resolver=lambda _: ["127.0.0.1"]), None)(
            settings(f"https://store.test:{server.port}"), KEYS
        )

        assert put(store) is True

    assert server.server_names == ["store.test"]
    assert server.requests[0].headers["host"] == f"store.test:{server.port}"


def test_a_tls_certificate_for_another_name_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    certificate = self_signed(tmp_path, "other.test")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate.cert_file))
    with DripServer(answer="ok", tls=certificate.server_context()) as server:
        store = Stores(UrlPolicy(allow_insecure=True, resolver=lambda _: ["127.0.0.1"]), None)(
            settings(f"https://store.test:{server.port}"), KEYS
        )

        with pytest.raises(StoreError, match="store unreachable: SSLError"):
            put(store)

    assert not server.requests


def pinned_client(server: DripServer, certificate: Certificate, policy: UrlPolicy) -> Any:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=f"https://{certificate.name}:{server.port}",
        aws_access_key_id="AKIAX",
        aws_secret_access_key="x",
        verify=str(certificate.cert_file),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    return with_deadlines(client, fixed_seconds(2.0), what="store", addresses=policy.addresses)


def plain_client(url: str) -> Any:
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIAX",
        aws_secret_access_key="x",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


# --- ordinary stores, through the same sessions ------------------------------------------------------------


def assert_writes_as_before(store: Any) -> None:
    """The ObjectStore contract: a new name is written; our own object again is ours (a lost answer retried);
    another object under a taken name is not; a delete removes."""
    key = f"events/{uuid.uuid4().hex}.ndjson"
    assert put(store, key, b'{"id":"evt_1"}\n') is True
    assert put(store, key, b'{"id":"evt_1"}\n') is True
    assert put(store, key, b'{"id":"evt_2"}\n') is False
    store.delete(key)
    assert put(store, key, b'{"id":"evt_3"}\n') is True


def test_seaweedfs_at_a_pinned_endpoint_writes_as_before(seaweed: Seaweed) -> None:
    bucket = f"pinned-{uuid.uuid4().hex[:8]}"
    seaweed.client().create_bucket(Bucket=bucket)
    keys = Credentials(accessKeyId=seaweed.access_key, secretAccessKey=seaweed.secret_key)
    store = Stores(LOCAL, None)(settings(seaweed.url, bucket), keys)

    assert_writes_as_before(store)
    assert isinstance(store._s3._endpoint.http_session, DeadlineSession)  # type: ignore[attr-defined]


def test_the_moto_server_as_amazon_s3_writes_as_before(runtime: LocalRuntime) -> None:
    bucket = f"amazon-{uuid.uuid4().hex[:8]}"
    runtime.client("s3").create_bucket(Bucket=bucket)
    keys = Credentials(accessKeyId="test", secretAccessKey="test-secret")
    store = Stores(LOCAL, None, amazon_s3_url=runtime.aws_url)(settings(None, bucket), keys)

    assert_writes_as_before(store)
