"""Start and stop the whole local runtime: emulator, resources, dev tenant, HTTP front and pollers."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

import boto3
from pydantic import BaseModel, Field

from spool.config import ApiSettings, EnvSettings, SinkSettings, VerifySettings
from spool.domain import limits
from spool.domain.errors import Unauthorized
from spool.local.invoke import serve_invoke
from spool.local.poller import Handler, PollerConfig, SqsPoller
from spool.local.provision import Names, Resources, ensure_bucket, provision

# The README's example bucket, created in the embedded S3 so the example works as written.
EXAMPLE_BUCKET = "my-webhook-archive"
SINK_FUNCTION_NAME = "spool-local-sink"
# Qualified by the alias, as the stack names it to the api (`{name}:live`, infra/spool_infra/api.py).
VERIFY_FUNCTION_NAME = "spool-local-verify:live"
DEV_TENANT_ENDPOINTS = 1_000
# The embedded emulator (moto server) and LocalStack accept any credentials; these are the conventional ones.
EMULATOR_ACCESS_KEY_ID = "test"
EMULATOR_SECRET_ACCESS_KEY = "test"  # noqa: S105 - the emulator's placeholder, not a secret
# What a process running the local runtime gives Powertools, which reads its settings from the environment:
# no CloudWatch to send metrics or traces to. Set by the entry points (`make dev`, bench), before the handler
# modules load; the runtime itself reads and writes no environment variable.
POWERTOOLS_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "spool-local",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


class LocalSettings(EnvSettings):
    """Knobs of `make dev`, all optional (environment variables, read by the entry point)."""

    host: Annotated[str, Field(alias="SPOOL_DEV_HOST")] = "127.0.0.1"
    port: Annotated[int, Field(alias="SPOOL_DEV_PORT", ge=0, le=65535)] = 3000
    aws_port: Annotated[int, Field(alias="SPOOL_DEV_AWS_PORT", ge=0, le=65535)] = 4566
    # An emulator that is already running (LocalStack, MiniStack, a moto server): no embedded one is started.
    aws_endpoint_url: Annotated[str | None, Field(alias="AWS_ENDPOINT_URL")] = None
    region: Annotated[str, Field(alias="AWS_DEFAULT_REGION", min_length=1)] = "us-east-1"
    state_dir: Annotated[str, Field(alias="SPOOL_DEV_STATE_DIR")] = ".spool"
    pollers: Annotated[int, Field(alias="SPOOL_DEV_POLLERS", ge=1, le=50)] = 5
    batch_size: Annotated[int, Field(alias="SPOOL_DEV_BATCH_SIZE", ge=1, le=10_000)] = 1000
    window_seconds: Annotated[float, Field(alias="SPOOL_DEV_WINDOW_SECONDS", ge=0, le=300)] = 1.0
    max_receive_count: Annotated[int, Field(alias="SPOOL_DEV_MAX_RECEIVE_COUNT", ge=2, le=1000)] = (
        limits.MAX_RECEIVE_COUNT
    )
    # The sink's own knobs, under the sink's variable names (config.py).
    retry_base_seconds: Annotated[int, Field(alias=SinkSettings.env_name("retry_base_seconds"), ge=1)] = (
        limits.RETRY_BASE_SECONDS
    )
    retry_max_seconds: Annotated[int, Field(alias=SinkSettings.env_name("retry_max_seconds"), ge=1)] = (
        limits.RETRY_MAX_SECONDS
    )
    endpoint_cache_seconds: Annotated[float, Field(alias=SinkSettings.env_name("endpoint_cache_seconds"), ge=0)] = (
        limits.ENDPOINT_CACHE_SECONDS
    )
    # Verify functions at once, as the stack's verifyReservedConcurrency: one more Invoke is refused (429).
    verify_concurrency: Annotated[int, Field(alias="SPOOL_DEV_VERIFY_CONCURRENCY", ge=1, le=100)] = 5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RuntimeDescription(BaseModel):
    """Where a running local runtime's resources are: written to `{state dir}/runtime.json` for the admin CLI
    (cli.py) and scripts, removed when it stops."""

    FILE_NAME: ClassVar[str] = "runtime.json"

    awsEndpointUrl: str
    apiUrl: str
    region: str
    tableName: str
    queueUrl: str
    dlqUrl: str
    stagingBucket: str
    pepperSecretId: str
    sinkRoleArn: str


class EmulatorSession(boto3.session.Session):
    """A boto3 session whose clients talk to the emulator at `endpoint_url` with the emulator's credentials,
    whatever the process environment says (nothing is read from or written to AWS_* variables)."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        super().__init__(
            aws_access_key_id=EMULATOR_ACCESS_KEY_ID,
            aws_secret_access_key=EMULATOR_SECRET_ACCESS_KEY,
            region_name=region,
        )
        self.endpoint_url = endpoint_url

    def client(self, service_name: str, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        return super().client(service_name, **kwargs)  # type: ignore[call-overload]


@dataclass
class FunctionSessions:
    """One boto3 session per function, as each Lambda function has its role: every call the api, the sink or
    the verify function makes (the sink's SQS polling included, which Lambda's event source mapping does with the
    sink's role) goes through its function's session. Tests hook these (before `start`) to attribute calls to a
    function and its role (verify runs with the sink's role on AWS)."""

    api: boto3.session.Session
    sink: boto3.session.Session
    verify: boto3.session.Session

    @classmethod
    def for_emulator(cls, endpoint_url: str, region: str) -> FunctionSessions:
        return cls(
            api=EmulatorSession(endpoint_url, region),
            sink=EmulatorSession(endpoint_url, region),
            verify=EmulatorSession(endpoint_url, region),
        )


@dataclass
class LocalRuntime:
    """The local runtime. Everything it builds comes from `settings` and the emulator's address: it reads and
    writes no environment variable, so tests and benchmarks can run it in their own process."""

    settings: LocalSettings
    sessions: FunctionSessions = field(init=False)
    # The operator's session (the admin CLI's, not a function's): provisioning, the dev tenant, and tests that
    # look at or change the emulator's state (`client`).
    operator: EmulatorSession = field(init=False)
    aws_url: str = field(init=False)
    resources: Resources | None = None
    api_settings: ApiSettings | None = None
    sink_settings: SinkSettings | None = None
    verify_settings: VerifySettings | None = None
    api_key: str = ""
    tenant_id: str = ""
    api_url: str = ""
    # The services the handlers run on, and the handlers (built by `start`); tests inject faults into the
    # services' clients and call the handlers as Lambda would.
    api_services: Any = None
    sink_services: Any = None
    verify_services: Any = None
    api_handler: Handler | None = None
    sink_handler: Handler | None = None
    verify_handler: Handler | None = None
    # Tenants and keys as the operator manages them (the admin CLI's part, with the operator's session,
    # not the api function's: the api never creates tenants or keys).
    admin: Any = None
    _moto: Any = None
    _front: Any = None
    _poller: SqsPoller | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        self.aws_url = s.aws_endpoint_url or f"http://127.0.0.1:{s.aws_port or free_port()}"
        self.sessions = FunctionSessions.for_emulator(self.aws_url, s.region)
        self.operator = EmulatorSession(self.aws_url, s.region)

    @property
    def state(self) -> Path:
        return Path(self.settings.state_dir)

    def client(self, service: str, **kwargs: Any) -> Any:
        """A client of the emulator with the operator's session."""
        return self.operator.client(service, **kwargs)

    def start(self) -> LocalRuntime:
        s = self.settings
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "data").mkdir(exist_ok=True)
        if s.aws_endpoint_url is None:
            self._start_moto()
        self.resources = provision(Names(max_receive_count=s.max_receive_count), self.operator)
        ensure_bucket(self.client("s3"), EXAMPLE_BUCKET)
        self.api_settings, self.sink_settings, self.verify_settings = self._function_settings(self.resources)
        self._wire_handlers()
        self.tenant_id, self.api_key = self._dev_tenant()
        self._start_front()
        self.restart_pollers()
        self._describe()
        return self

    def environment(self) -> dict[str, str]:
        """The functions' environment variables as the stack would set them, with this runtime's values."""
        assert self.api_settings is not None
        assert self.sink_settings is not None
        assert self.verify_settings is not None
        return (
            self.api_settings.as_environment()
            | self.sink_settings.as_environment()
            | self.verify_settings.as_environment()
        )

    def restart_pollers(self, handler: Handler | None = None) -> SqsPoller:
        """Stop the SQS pollers (if running) and start new ones calling `handler` (default: the sink's), as
        Lambda does when an execution environment dies: messages in flight come back after their visibility
        timeout."""
        assert self.resources is not None
        assert self.sink_handler is not None
        self.stop_pollers()
        s = self.settings
        self._poller = SqsPoller(
            self.sessions.sink.client("sqs"),
            self.resources.queue_url,
            handler or self.sink_handler,
            PollerConfig(batch_size=s.batch_size, window_seconds=s.window_seconds, pollers=s.pollers),
        )
        self._poller.start()
        return self._poller

    def stop_pollers(self) -> None:
        """No more receives from the ingest queue until `restart_pollers` (a test then plays the poller)."""
        if self._poller is not None:
            self._poller.stop()
            self._poller = None

    def _describe(self) -> None:
        """Where the admin CLI finds this runtime's resources."""
        assert self.resources is not None
        described = RuntimeDescription(
            awsEndpointUrl=self.aws_url,
            apiUrl=self.api_url,
            region=self.settings.region,
            tableName=self.resources.table_name,
            queueUrl=self.resources.queue_url,
            dlqUrl=self.resources.dlq_url,
            stagingBucket=self.resources.staging_bucket,
            pepperSecretId=self.resources.pepper_secret_id,
            sinkRoleArn=self.resources.sink_role_arn,
        )
        (self.state / RuntimeDescription.FILE_NAME).write_text(described.model_dump_json(indent=2) + "\n")

    def stop(self) -> None:
        (self.state / RuntimeDescription.FILE_NAME).unlink(missing_ok=True)
        if self._front is not None:
            self._front.shutdown()
            self._front.server_close()
        self.stop_pollers()
        if self._moto is not None:
            self._moto.stop()

    # --- steps -----------------------------------------------------------------------------------------
    def _start_moto(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        from spool.local import moto_speedups

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto_speedups.apply()

        port = int(self.aws_url.rsplit(":", 1)[1])
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()

    def _function_settings(self, resources: Resources) -> tuple[ApiSettings, SinkSettings, VerifySettings]:
        """The functions' settings as the stack gives them, with the resources just provisioned."""
        s = self.settings
        common: dict[str, Any] = {
            "table_name": resources.table_name,
            "queue_url": resources.queue_url,
            "allow_insecure_endpoints": True,
            "local_root": str((self.state / "data").resolve()),
        }
        api = ApiSettings.model_validate(
            common
            | {
                "dlq_url": resources.dlq_url,
                "kms_key_id": resources.kms_key_id,
                "pepper_secret_id": resources.pepper_secret_id,
                "verify_function_name": VERIFY_FUNCTION_NAME,
                "sink_role_arn": resources.sink_role_arn,
            }
        )
        sink = SinkSettings.model_validate(
            common
            | {
                "staging_bucket": resources.staging_bucket,
                "endpoint_cache_seconds": s.endpoint_cache_seconds,
                "retry_base_seconds": s.retry_base_seconds,
                "retry_max_seconds": s.retry_max_seconds,
                "batching_window_seconds": s.window_seconds,
            }
        )
        verify = VerifySettings.model_validate(
            {k: common[k] for k in ("table_name", "allow_insecure_endpoints", "local_root")}
        )
        return api, sink, verify

    def _wire_handlers(self) -> None:
        # Imported only now: importing the handler modules configures Powertools' logging.
        from spool.handlers import api, sink, verify
        from spool.handlers.wiring import build_api, build_sink, build_tenants, build_verify
        from spool.observability import metrics

        def discarding_metrics(handler: Any) -> Any:
            # There is no CloudWatch to read metrics locally: drop what an invocation kept in memory (all of it
            # when POWERTOOLS_METRICS_DISABLED is set, as `make dev` does).
            def call(event: dict[str, Any], context: Any) -> Any:
                try:
                    return handler(event, context)
                finally:
                    metrics.clear_metrics()

            return call

        assert self.api_settings is not None
        assert self.sink_settings is not None
        assert self.verify_settings is not None
        assert self.resources is not None
        self.sink_services = build_sink(self.sink_settings, session=self.sessions.sink, amazon_s3_url=self.aws_url)
        self.sink_handler = discarding_metrics(sink.make_handler(lambda: self.sink_services))
        self.verify_services = build_verify(
            self.verify_settings, session=self.sessions.verify, amazon_s3_url=self.aws_url
        )
        self.verify_handler = verify.make_handler(lambda: self.verify_services)
        # The api invokes the verify function through a real Lambda client; the local stand-in answers that
        # Invoke by calling the verify handler in this process, as many at once as its reserved concurrency.
        serve_invoke(
            self.sessions.api, VERIFY_FUNCTION_NAME, self.verify_handler, concurrency=self.settings.verify_concurrency
        )
        self.api_services = build_api(self.api_settings, session=self.sessions.api)
        self.api_handler = discarding_metrics(api.make_handler(lambda: self.api_services))
        self.admin = build_tenants(
            self.client("dynamodb"),
            self.client("secretsmanager"),
            self.resources.table_name,
            self.resources.pepper_secret_id,
        )

    def _dev_tenant(self) -> tuple[str, str]:
        key_file = self.state / "dev-api-key"
        tenants = self.admin
        api_key = key_file.read_text().strip() if key_file.exists() else ""
        if api_key:
            # A key this (fresh) emulator does not know yet is registered again below.
            with contextlib.suppress(Unauthorized):
                return tenants.authenticate(api_key), api_key
        tenant, new_key = tenants.create_tenant("dev")
        # The dev tenant is for trying things out (and the test tiers share it): more endpoints than a default.
        tenants.set_endpoint_limit(tenant.id, DEV_TENANT_ENDPOINTS)
        if api_key:
            tenants.adopt_key(tenant.id, api_key)
        else:
            api_key = new_key
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(api_key + "\n")
        os.chmod(key_file, 0o600)
        return tenant.id, api_key

    def _start_front(self) -> None:
        from spool.local.front import ApiFront

        assert self.api_handler is not None
        self._front = ApiFront((self.settings.host, self.settings.port), self.api_handler)
        port = self._front.server_address[1]
        self.api_url = f"http://{self.settings.host}:{port}"
        thread = threading.Thread(target=self._front.serve_forever, name="api-front", daemon=True)
        thread.start()
        self._threads.append(thread)
