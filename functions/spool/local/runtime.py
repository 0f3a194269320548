"""Start and stop the whole local runtime: emulator, resources, dev tenant, HTTP front and pollers."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import boto3
from pydantic import Field

from spool.adapters.dynamo import DynamoRepository
from spool.config import _Env
from spool.domain.errors import Unauthorized
from spool.domain.tenants import Tenants
from spool.handlers.wiring import pepper_loader
from spool.local.invoke import serve_invoke
from spool.local.poller import PollerConfig, SqsPoller
from spool.local.provision import Names, Resources, ensure_bucket, provision

# The README's example bucket, created in the embedded S3 so the example works as written.
EXAMPLE_BUCKET = "my-webhook-archive"
SINK_FUNCTION_NAME = "spool-local-sink"


class LocalSettings(_Env):
    """Knobs of `make dev`, all optional (environment variables)."""

    host: Annotated[str, Field(alias="SPOOL_DEV_HOST")] = "127.0.0.1"
    port: Annotated[int, Field(alias="SPOOL_DEV_PORT", ge=0, le=65535)] = 3000
    aws_port: Annotated[int, Field(alias="SPOOL_DEV_AWS_PORT", ge=0, le=65535)] = 4566
    # An emulator that is already running (LocalStack, MiniStack, a moto server): no embedded one is started.
    aws_endpoint_url: Annotated[str | None, Field(alias="AWS_ENDPOINT_URL")] = None
    state_dir: Annotated[str, Field(alias="SPOOL_DEV_STATE_DIR")] = ".spool"
    pollers: Annotated[int, Field(alias="SPOOL_DEV_POLLERS", ge=1, le=50)] = 5
    batch_size: Annotated[int, Field(alias="SPOOL_DEV_BATCH_SIZE", ge=1, le=10_000)] = 1000
    window_seconds: Annotated[float, Field(alias="SPOOL_DEV_WINDOW_SECONDS", ge=0, le=300)] = 1.0
    max_receive_count: Annotated[int, Field(alias="SPOOL_DEV_MAX_RECEIVE_COUNT", ge=2, le=1000)] = 8
    retry_base_seconds: Annotated[int, Field(alias="SPOOL_RETRY_BASE_SECONDS", ge=1)] = 10
    retry_max_seconds: Annotated[int, Field(alias="SPOOL_RETRY_MAX_SECONDS", ge=1)] = 900
    endpoint_cache_seconds: Annotated[float, Field(alias="SPOOL_ENDPOINT_CACHE_SECONDS", ge=0)] = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class FunctionSessions:
    """One boto3 session per function, as each Lambda function has its own role: every call the api or the
    sink makes (the sink's SQS polling included, which Lambda's event source mapping does with the sink's
    role) goes through its function's session. Tests hook these to attribute calls to a role."""

    api: boto3.session.Session
    sink: boto3.session.Session

    @classmethod
    def new(cls) -> FunctionSessions:
        return cls(api=boto3.session.Session(), sink=boto3.session.Session())


@dataclass
class LocalRuntime:
    settings: LocalSettings
    sessions: FunctionSessions | None = None
    resources: Resources | None = None
    api_key: str = ""
    tenant_id: str = ""
    api_url: str = ""
    aws_url: str = ""
    # The services the handlers run on (built by `start`); tests inject faults into their clients.
    api_services: Any = None
    sink_services: Any = None
    # Tenants and keys as the operator manages them (the admin CLI's part, with the runtime's own session,
    # not the api function's: the api never creates tenants or keys).
    admin: Any = None
    _moto: Any = None
    _front: Any = None
    _poller: SqsPoller | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return Path(self.settings.state_dir)

    def start(self) -> LocalRuntime:
        s = self.settings
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "data").mkdir(exist_ok=True)
        self.aws_url = s.aws_endpoint_url or self._start_moto()
        self._set_environment()
        self.resources = provision(Names(max_receive_count=s.max_receive_count))
        os.environ.update(self.resources.env())
        ensure_bucket(boto3.client("s3"), EXAMPLE_BUCKET)
        self.sessions = self.sessions or FunctionSessions.new()
        self._wire_handlers(self.sessions)
        self.tenant_id, self.api_key = self._dev_tenant()
        self._start_front()
        self._start_pollers()
        self._describe()
        return self

    def _describe(self) -> None:
        """Where the admin CLI finds this runtime's resources."""
        assert self.resources is not None
        info = {
            "awsEndpointUrl": self.aws_url,
            "apiUrl": self.api_url,
            "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "tableName": self.resources.table_name,
            "queueUrl": self.resources.queue_url,
            "dlqUrl": self.resources.dlq_url,
            "pepperSecretId": self.resources.pepper_secret_id,
            "sinkRoleArn": self.resources.sink_role_arn,
        }
        (self.state / "runtime.json").write_text(json.dumps(info, indent=2) + "\n")

    def stop(self) -> None:
        (self.state / "runtime.json").unlink(missing_ok=True)
        if self._front is not None:
            self._front.shutdown()
            self._front.server_close()
        if self._poller is not None:
            self._poller.stop()
        if self._moto is not None:
            self._moto.stop()

    # --- steps -----------------------------------------------------------------------------------------
    def _start_moto(self) -> str:
        import logging

        from moto.server import ThreadedMotoServer

        from spool.local import moto_speedups

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto_speedups.apply()

        port = self.settings.aws_port or free_port()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()
        return f"http://127.0.0.1:{port}"

    def _set_environment(self) -> None:
        s = self.settings
        defaults = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        for name, value in defaults.items():
            os.environ.setdefault(name, value)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.aws_url,
                "SPOOL_ALLOW_INSECURE_ENDPOINTS": "true",
                "SPOOL_LOCAL_ROOT": str((self.state / "data").resolve()),
                "SPOOL_SINK_FUNCTION_NAME": SINK_FUNCTION_NAME,
                "SPOOL_RETRY_BASE_SECONDS": str(s.retry_base_seconds),
                "SPOOL_RETRY_MAX_SECONDS": str(s.retry_max_seconds),
                "SPOOL_ENDPOINT_CACHE_SECONDS": str(s.endpoint_cache_seconds),
                "SPOOL_BATCHING_WINDOW_SECONDS": str(s.window_seconds),
                "POWERTOOLS_SERVICE_NAME": os.environ.get("POWERTOOLS_SERVICE_NAME", "spool-local"),
                "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )

    def _wire_handlers(self, sessions: FunctionSessions) -> None:
        # Imported only now: the handler modules read their environment when first used.
        from spool.config import ApiSettings, SinkSettings
        from spool.handlers import api, sink
        from spool.handlers.wiring import build_api, build_sink
        from spool.observability import metrics

        def discarding_metrics(handler: Any) -> Any:
            # Metrics are disabled locally (no CloudWatch to read them) and Powertools then keeps them in
            # memory; drop them after each invocation.
            def call(event: dict[str, Any], context: Any) -> Any:
                try:
                    return handler(event, context)
                finally:
                    metrics.clear_metrics()

            return call

        self.sink_services = build_sink(SinkSettings.from_env(), session=sessions.sink)
        self._sink_handler = discarding_metrics(sink.make_handler(lambda: self.sink_services))
        # The api invokes the sink for `verify` through a real Lambda client; the local stand-in answers
        # that Invoke by calling the sink handler in this process.
        serve_invoke(sessions.api, SINK_FUNCTION_NAME, self._sink_handler)
        services = build_api(ApiSettings.from_env(), session=sessions.api)
        self._api_handler = discarding_metrics(api.make_handler(lambda: services))
        self.api_services = services
        assert self.resources is not None
        operator = boto3.session.Session()
        self.admin = Tenants(
            DynamoRepository(operator.client("dynamodb"), self.resources.table_name),
            pepper_loader(self.resources.pepper_secret_id, operator.client("secretsmanager")),
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

        self._front = ApiFront((self.settings.host, self.settings.port), self._api_handler)
        port = self._front.server_address[1]
        self.api_url = f"http://{self.settings.host}:{port}"
        thread = threading.Thread(target=self._front.serve_forever, name="api-front", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_pollers(self) -> None:
        assert self.resources is not None
        s = self.settings
        assert self.sessions is not None
        self._poller = SqsPoller(
            self.sessions.sink.client("sqs"),
            self.resources.queue_url,
            self._sink_handler,
            PollerConfig(batch_size=s.batch_size, window_seconds=s.window_seconds, pollers=s.pollers),
        )
        self._poller.start()
