"""Drive a deployed Spool stack the way the SPEC's curl flow does, and find the NDJSON object it writes.

Run by scripts/test-deployed.sh with the project venv's Python, against MiniStack (or LocalStack) on
AWS_ENDPOINT_URL, after `cdk deploy --outputs-file OUTPUTS`:

    python scripts/ministack/drive.py OUTPUTS STACK_NAME

Environment: AWS_ENDPOINT_URL (the emulator); SPOOL_API_BASE (the API's base URL; default the emulator's
path form `{AWS_ENDPOINT_URL}/_aws/execute-api/{ApiId}`); SPOOL_STORE_ENDPOINT (the endpoint's
`storageConfig.endpoint` as the sink reaches the emulator's S3; default AWS_ENDPOINT_URL, empty: left out).

Steps: health check; a tenant and API key (the admin CLI); a bucket in the emulator's S3; POST
/api/v1/endpoints with the SPEC body; three events; then poll S3 with a deadline until every event is a line of
an NDJSON object in the SPEC's format. A Parquet endpoint (the api accepts it because the stack says the sink's
asset holds pyarrow) gets two events of its own, which must come back as rows of `.parquet` objects the sink
wrote with the bundled pyarrow. Stack outputs are read by their `spool.names.StackOutput` names.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq

from spool.names import StackOutput

BUCKET = "spool-deployed-test"
PREFIX = "events/"
PARQUET_PREFIX = "parquet/"
FLUSH_SECONDS = 2
OBJECT_DEADLINE_SECONDS = 60
LINE_KEYS = ["id", "eventType", "payload", "createdAt"]


class Failed(Exception):
    """The deployed stack did not behave as the SPEC says."""


# The alias the stack's triggers invoke (infra/spool_infra/lambdas.py: LIVE_ALIAS).
LIVE_ALIAS = "live"


def log(message: str) -> None:
    print(f"[drive] {message}", flush=True)


def call(base: str, method: str, path: str, body: Any = None, api_key: str | None = None) -> tuple[int, Any]:
    """One HTTP request to the deployed API; returns (status, parsed JSON body or None)."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["X-API-Key"] = api_key
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the emulator on loopback)
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw) if raw else None


def expect(status: int, body: Any, wanted: int, what: str) -> Any:
    if status != wanted:
        raise Failed(f"{what}: expected HTTP {wanted}, got {status}: {body}")
    log(f"{what}: {status}")
    return body


def create_tenant(stack: str) -> str:
    """A fresh tenant's API key, through `spool admin` (the console script `make bootstrap` installs)."""
    name = f"deployed-test-{int(time.time())}"
    cli = Path(sys.executable).with_name("spool")
    result = subprocess.run(  # noqa: S603 (fixed arguments)
        [str(cli), "admin", "tenant", "create", name, "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise Failed(f"spool admin tenant create failed:\n{result.stdout}\n{result.stderr}")
    created = json.loads(result.stdout.strip().splitlines()[-1])
    log(f"tenant {created['tenantId']} created with the admin CLI")
    return str(created["apiKey"])


def parse_object(key: str, body: str) -> list[str]:
    """The event ids of one NDJSON object, after checking every line has the SPEC's form."""
    lines = body.split("\n")
    if lines[-1] != "":
        raise Failed(f"{key} does not end with a newline")
    ids = []
    for line in lines[:-1]:
        record = json.loads(line)
        if list(record) != LINE_KEYS:
            raise Failed(f"{key}: line keys {list(record)} are not {LINE_KEYS}")
        if line != json.dumps(record, separators=(",", ":"), ensure_ascii=False):
            raise Failed(f"{key}: line is not compact JSON: {line}")
        ids.append(record["id"])
    return ids


def parse_parquet(key: str, body: bytes) -> list[str]:
    """The event ids of one Parquet object, after checking its name and columns (docs/delivery.md)."""
    if not key.endswith(".parquet"):
        raise Failed(f"{key} is not named .parquet")
    table = pq.read_table(io.BytesIO(body))
    if table.column_names != ["id", "eventType", "createdAt", "payload"]:
        raise Failed(f"{key}: columns {table.column_names}")
    return [str(value) for value in table.column("id").to_pylist()]


def object_keys(s3: Any, prefix: str = PREFIX) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])}


def wait_for_objects(
    s3: Any, event_ids: list[str], existing: set[str], prefix: str = PREFIX, parquet: bool = False
) -> dict[str, list[str]]:
    """Poll the bucket with a deadline until every event is in an object; return {key: event ids}.

    The emulator hands the sink one message at a time (it ignores the batching window), so the events
    may land in more than one object; each object must still be well-formed.
    """
    deadline = time.monotonic() + OBJECT_DEADLINE_SECONDS
    objects: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        for key in object_keys(s3, prefix) - existing - set(objects):
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            objects[key] = parse_parquet(key, body) if parquet else parse_object(key, body.decode())
        written = [event_id for ids in objects.values() for event_id in ids]
        if sorted(written) == sorted(event_ids):
            return objects
        if len(written) > len(set(written)) or not set(written) <= set(event_ids):
            raise Failed(f"unexpected or duplicated lines: {objects}")
        time.sleep(0.5)
    raise Failed(f"not every event was written within {OBJECT_DEADLINE_SECONDS}s: {objects}")


def check_live_aliases(outputs: dict[str, str]) -> None:
    """Both functions run as their `live` alias (a published version; SnapStart's, with the stack's default
    context), and the event source mapping invokes the sink's alias."""
    lambda_ = boto3.client("lambda")
    for output in (StackOutput.API_FUNCTION_NAME, StackOutput.SINK_FUNCTION_NAME):
        name = outputs[output]
        config = lambda_.get_function_configuration(FunctionName=name, Qualifier=LIVE_ALIAS)
        snap = config.get("SnapStart", {})
        log(
            f"{name}:{LIVE_ALIAS} is version {config.get('Version')}, state {config.get('State')}, "
            f"SnapStart {snap.get('ApplyOn')}/{snap.get('OptimizationStatus')}"
        )
    mappings = lambda_.list_event_source_mappings(FunctionName=outputs[StackOutput.SINK_FUNCTION_NAME])
    targets = [m["FunctionArn"] for m in mappings.get("EventSourceMappings", [])]
    if not targets or not all(arn.endswith(f":{LIVE_ALIAS}") for arn in targets):
        raise SystemExit(f"the event source mapping should invoke the sink's {LIVE_ALIAS} alias: {targets}")


def main(outputs_file: str, stack: str) -> None:
    outputs: dict[str, str] = json.loads(Path(outputs_file).read_text())[stack]
    gateway = os.environ["AWS_ENDPOINT_URL"].rstrip("/")
    # The emulator's execute-api host names do not resolve for Python offline; its path form does.
    base = os.environ.get("SPOOL_API_BASE") or f"{gateway}/_aws/execute-api/{outputs[StackOutput.API_ID]}"
    store_endpoint = os.environ.get("SPOOL_STORE_ENDPOINT", gateway)
    started = time.monotonic()

    check_live_aliases(outputs)
    expect(*call(base, "GET", "/health"), 200, "GET /health")
    expect(*call(base, "GET", "/api/v1/endpoints"), 401, "GET /api/v1/endpoints without X-API-Key")
    api_key = create_tenant(stack)

    s3 = boto3.client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BUCKET)
    existing = object_keys(s3)
    existing_parquet = object_keys(s3, PARQUET_PREFIX)
    storage_config: dict[str, Any] = {
        "provider": "s3",
        "bucket": BUCKET,
        "prefix": PREFIX,
        "region": "us-east-1",
        # Any well-formed pair: the emulator accepts every credential for the default account.
        "accessKeyId": "AKIASPOOLDEPLOYTEST1",
        "secretAccessKey": "deployed-test-secret-access-key",
        "batchSize": 100,
        "flushIntervalSeconds": FLUSH_SECONDS,
    }
    if store_endpoint:
        storage_config["endpoint"] = store_endpoint
    endpoint_body = {
        "url": f"s3://{BUCKET}/{PREFIX}",
        "deliveryMode": "storage",
        "eventTypes": ["order.*"],
        "storageConfig": storage_config,
    }
    endpoint = expect(*call(base, "POST", "/api/v1/endpoints", endpoint_body, api_key), 201, "POST /api/v1/endpoints")
    text = json.dumps(endpoint)
    if "secretAccessKey" in text or "accessKeyId" in text or not endpoint["id"].startswith("ep_"):
        raise Failed(f"endpoint answer leaks credentials or lacks an id: {endpoint}")
    path = f"/api/v1/endpoints/{endpoint['id']}"
    expect(*call(base, "GET", path, None, api_key), 200, "GET the endpoint")
    # The api invokes the verify function (SPOOL_VERIFY_FUNCTION_NAME), which decrypts the credentials and writes
    # a probe; the same endpoint again at once is refused by verify's rate (429, Retry-After).
    verified = expect(*call(base, "POST", f"{path}/verify", None, api_key), 200, "POST .../verify")
    if verified.get("ok") is not True:
        raise Failed(f"verification through the verify function failed: {verified}")
    expect(*call(base, "POST", f"{path}/verify", None, api_key), 429, "POST .../verify again at once")
    # The api reads the DLQ (SPOOL_DLQ_URL); nothing is there yet.
    moved = expect(*call(base, "POST", f"{path}/redrive", None, api_key), 200, "POST .../redrive")
    if moved != {"moved": 0, "complete": True}:
        raise Failed(f"unexpected redrive answer: {moved}")

    # A role endpoint's aws-role answer names the deployed sink role (SPOOL_SINK_ROLE_ARN, the SinkRoleArn output).
    # (No events match it; it is not deleted: MiniStack fails on the 204 answer's null body.)
    role_body = {
        "url": f"s3://{BUCKET}/roles/",
        "deliveryMode": "storage",
        "eventTypes": ["audit.*"],
        "storageConfig": {
            "provider": "s3",
            "bucket": BUCKET,
            "prefix": "roles/",
            "region": "us-east-1",
            "roleArn": "arn:aws:iam::111122223333:role/spool-delivery",
        },
    }
    with_role = expect(*call(base, "POST", "/api/v1/endpoints", role_body, api_key), 201, "POST a role endpoint")
    role_path = f"/api/v1/endpoints/{with_role['id']}"
    role = expect(*call(base, "GET", f"{role_path}/aws-role", None, api_key), 200, "GET .../aws-role")
    sink_role = outputs[StackOutput.SINK_ROLE_ARN]
    if role["sinkRoleArn"] != sink_role or role["externalId"] != with_role["storageConfig"]["externalId"]:
        raise Failed(f"aws-role does not name the deployed sink role {sink_role}: {role['sinkRoleArn']}")

    # Parquet: accepted by the api (SPOOL_PARQUET=true), written by the sink's bundled pyarrow.
    parquet_config = storage_config | {"prefix": PARQUET_PREFIX, "format": "parquet", "parquetCodec": "zstd"}
    parquet_body = endpoint_body | {
        "url": f"s3://{BUCKET}/{PARQUET_PREFIX}",
        "eventTypes": ["invoice.*"],
        "storageConfig": parquet_config,
    }
    expect(*call(base, "POST", "/api/v1/endpoints", parquet_body, api_key), 201, "POST a Parquet endpoint")

    parquet_ids = []
    for n in range(2):
        event = {"eventType": "invoice.paid", "payload": {"invoiceId": f"inv_{n}"}}
        accepted = expect(*call(base, "POST", "/api/v1/events", event, api_key), 202, f"POST an invoice event #{n}")
        parquet_ids.append(accepted["id"])
    event_ids = []
    for n in range(3):
        event = {"eventType": "order.created", "payload": {"orderId": f"ord_{n}"}}
        accepted = expect(*call(base, "POST", "/api/v1/events", event, api_key), 202, f"POST /api/v1/events #{n}")
        event_ids.append(accepted["id"])

    objects = wait_for_objects(s3, event_ids, existing)
    for key, ids in sorted(objects.items()):
        log(f"s3://{BUCKET}/{key}: {len(ids)} event(s)")
    parquet_objects = wait_for_objects(s3, parquet_ids, existing_parquet, PARQUET_PREFIX, parquet=True)
    for key, ids in sorted(parquet_objects.items()):
        log(f"s3://{BUCKET}/{key}: {len(ids)} row(s)")
    log(f"passed in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except Failed as failure:
        log(f"FAILED: {failure}")
        sys.exit(1)
