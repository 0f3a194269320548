"""B3's first request after a cold start: a fresh process imports a handler and serves one request, with every
AWS reply played back, so the figure is CPU spent in the process (imports, boto3 and its clients, the Tracer,
validators, the request) and no network.

`record(path)` (the benchmark's process) runs the real api and sink once against an in-process moto: one tenant,
one S3 endpoint (`batchSize` 1, so the sink writes an object at once), a single-event POST /api/v1/events, and
the sink invocation for the message the api sent. It keeps every AWS reply, by service and operation, and the
two Lambda events. `python -m bench.first_request api|sink PATH [--primed]` (a fresh process) sets the
function's environment (Lambda's, tracing on), installs the playback on every botocore client, imports the
handler and calls its `lambda_handler` with the recorded event: what Lambda's init and first invocation do.
With `--primed` it runs the handler's SnapStart `prime()` first and prints the CPU of the invocation alone: the
first request of an environment restored from a snapshot (less the restore itself, which Lambda does outside
the process).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

TABLE, QUEUE, DLQ, STAGING, BUCKET = "spool-bench", "spool-bench-ingest", "spool-bench-dlq", "bench-staging", "bench-b3"
API_KEY = "spool_" + "b3" * 20


def function_environment(role: str, recording: dict[str, Any]) -> dict[str, str]:
    """The settings the CDK app gives the function, pointing at what the recording created."""
    names = recording["names"]
    common = {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIABENCHFIRSTREQ000",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "SPOOL_TABLE_NAME": names["table"],
        "SPOOL_QUEUE_URL": names["queue_url"],
        "SPOOL_ALLOW_INSECURE_ENDPOINTS": "true",
    }
    if role == "api":
        return common | {
            "SPOOL_KMS_KEY_ID": names["kms_key_id"],
            "SPOOL_PEPPER_SECRET_ID": names["pepper_secret_id"],
            "SPOOL_DLQ_URL": names["dlq_url"],
            "SPOOL_VERIFY_FUNCTION_NAME": "spool-verify:live",
            "SPOOL_SINK_ROLE_ARN": "arn:aws:iam::123456789012:role/spool-sink",
            "SPOOL_PARQUET": "false",
        }
    return common | {"SPOOL_STAGING_BUCKET": names["staging_bucket"]}


# --- recording (the benchmark's process) ---------------------------------------------------------------
def record(path: Path) -> None:
    import boto3
    import botocore.session
    from moto import mock_aws

    from spool.config import ApiSettings, SinkSettings
    from spool.domain.models import EndpointCreate
    from spool.handlers import api, sink
    from spool.handlers.wiring import build_api, build_sink
    from spool.local.front import to_event
    from spool.local.lambda_context import FakeContext
    from spool.local.poller import to_lambda_record
    from spool.local.provision import Names, ensure_bucket, provision

    replies: dict[str, dict[str, list[dict[str, Any]]]] = {"api": {}, "sink": {}}
    sent: list[dict[str, Any]] = []
    recording: list[str | None] = [None]
    original = botocore.session.Session.create_client

    def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(session, *args, **kwargs)
        client.meta.events.register("after-call", keep)
        client.meta.events.register("before-parameter-build.sqs.SendMessageBatch", keep_sent)
        return client

    def keep(http_response: Any, model: Any, **_: Any) -> None:
        if recording[0] is not None:
            key = f"{model.service_model.service_name}.{model.name}"
            replies[recording[0]].setdefault(key, []).append(
                {
                    "status": http_response.status_code,
                    "headers": dict(http_response.headers),
                    "body": base64.b64encode(http_response.content).decode(),
                }
            )

    def keep_sent(params: dict[str, Any], **_: Any) -> None:
        sent.extend(params["Entries"])

    env = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    env |= {"AWS_ACCESS_KEY_ID": "AKIABENCHFIRSTREQ000", "AWS_SECRET_ACCESS_KEY": "bench"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        with mock_aws():
            session = boto3.session.Session()
            names = Names(table=TABLE, queue=QUEUE, dlq=DLQ, staging_bucket=STAGING)
            made = provision(names, session)
            ensure_bucket(session.client("s3"), BUCKET)
            api_settings = ApiSettings(
                table_name=made.table_name,
                queue_url=made.queue_url,
                dlq_url=made.dlq_url,
                kms_key_id=made.kms_key_id,
                pepper_secret_id=made.pepper_secret_id,
                verify_function_name="spool-verify:live",
                sink_role_arn=made.sink_role_arn,
                allow_insecure_endpoints=True,
                parquet=False,
            )
            services = build_api(api_settings, session)
            tenant, _ = services.tenants.create_tenant("bench")
            services.tenants.adopt_key(tenant.id, API_KEY)
            body = {
                "url": f"s3://{BUCKET}/b3/",
                "deliveryMode": "storage",
                "eventTypes": ["order.*"],
                "storageConfig": {
                    "provider": "s3",
                    "bucket": BUCKET,
                    "prefix": "b3/",
                    "region": "us-east-1",
                    "accessKeyId": "AKIABENCHFIRSTREQ001",
                    "secretAccessKey": "bench-secret",
                    "batchSize": 1,
                },
            }
            services.endpoints.create(tenant.id, EndpointCreate.model_validate(body))
            # Recorded: what a fresh api and sink do, each over services of its own.
            recording[0] = "api"
            event_body = json.dumps({"eventType": "order.created", "payload": {"orderId": "ord_123"}}).encode()
            headers = {"x-api-key": API_KEY, "content-type": "application/json"}
            api_event = to_event("POST", "/api/v1/events", headers, event_body, "127.0.0.1")
            fresh_api = build_api(api_settings, boto3.session.Session())
            answer = api.make_handler(lambda: fresh_api)(json.loads(json.dumps(api_event)), FakeContext("spool-api"))
            assert answer["statusCode"] == 202, answer
            (entry,) = sent
            message = {
                "MessageId": "b3-message",
                "ReceiptHandle": "b3-receipt",
                "Body": entry["MessageBody"],
                "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
                "MessageAttributes": entry.get("MessageAttributes", {}),
            }
            queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{QUEUE}"
            sink_event = {"Records": [to_lambda_record(message, queue_arn, "us-east-1")]}
            sink_settings = SinkSettings(
                table_name=made.table_name,
                queue_url=made.queue_url,
                staging_bucket=made.staging_bucket,
                allow_insecure_endpoints=True,
            )
            recording[0] = "sink"
            fresh_sink = build_sink(sink_settings, boto3.session.Session())
            reply = sink.make_handler(lambda: fresh_sink)(sink_event, FakeContext("spool-sink", timeout_seconds=60))
            assert reply == {"batchItemFailures": []}, reply
            recording[0] = None
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    names_out = {
        "table": made.table_name,
        "queue_url": made.queue_url,
        "dlq_url": made.dlq_url,
        "kms_key_id": made.kms_key_id,
        "pepper_secret_id": made.pepper_secret_id,
        "staging_bucket": made.staging_bucket,
    }
    path.write_text(
        json.dumps({"names": names_out, "replies": replies, "events": {"api": api_event, "sink": sink_event}})
    )


# --- playback (a fresh process) ------------------------------------------------------------------------
def install_playback(replies: dict[str, list[dict[str, Any]]]) -> None:
    """Answer every botocore call of this process from `replies` (by service and operation, in order)."""
    import botocore.session
    from botocore.awsrequest import AWSResponse

    class Raw:
        def __init__(self, body: bytes) -> None:
            self._body = body

        def stream(self, **_: Any) -> Any:
            yield self._body

    queues = {key: list(values) for key, values in replies.items()}
    original = botocore.session.Session.create_client

    def answer(service: str, request: Any, event_name: str) -> AWSResponse:
        key = f"{service}.{event_name.rsplit('.', 1)[-1]}"
        if key not in replies:
            raise RuntimeError(f"no recorded reply for {key}")
        pending = queues[key]
        reply = pending.pop(0) if pending else replies[key][-1]
        return AWSResponse(request.url, reply["status"], reply["headers"], Raw(base64.b64decode(reply["body"])))

    def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(session, *args, **kwargs)
        service = client.meta.service_model.service_name  # event names spell some services otherwise

        def reply(request: Any, event_name: str, **_: Any) -> AWSResponse:
            return answer(service, request, event_name)

        client.meta.events.register("before-send", reply)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    role, path = argv[0], Path(argv[1])
    primed = "--primed" in argv
    recording = json.loads(path.read_text())
    os.environ.update(function_environment(role, recording))
    # As Lambda names the handler: wiring parses the function's settings from the environment at import.
    os.environ["_HANDLER"] = f"spool.handlers.{role}.lambda_handler"
    install_playback(recording["replies"][role])
    from spool.local.lambda_context import FakeContext

    handler_module = __import__(f"spool.handlers.{role}", fromlist=["lambda_handler", "prime"])
    if primed:
        handler_module.prime()
    started = time.process_time()
    answer = handler_module.lambda_handler(recording["events"][role], FakeContext(f"spool-{role}", 60))
    spent = time.process_time() - started
    ok = answer.get("statusCode") == 202 if role == "api" else answer == {"batchItemFailures": []}
    if not ok:
        print(json.dumps(answer)[:2000], file=sys.stderr)
        return 1
    print(json.dumps({"invocation_cpu_ms": round(spent * 1000, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
