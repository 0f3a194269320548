"""The walking skeleton through the local runtime over real HTTP: endpoint created, events sent, NDJSON lands."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from spool.local.runtime import LocalRuntime
from tests.conftest import spec_body
from tests.integration.conftest import Api, endpoint_drained, read_objects, wait_until

LINE_KEYS = ["id", "eventType", "payload", "createdAt"]
KEY_RE = r"{prefix}\d{{4}}-\d{{2}}-\d{{2}}/\d{{10}}-\d{{3}}\.ndjson"


def readme_body(prefix: str, interval: int = 2) -> dict[str, Any]:
    body = spec_body(endpoint=None, flushIntervalSeconds=interval, prefix=prefix)
    body["url"] = f"s3://my-webhook-archive/{prefix}"
    return body


def test_health_answers_ok(runtime: LocalRuntime) -> None:
    import requests

    assert requests.get(runtime.api_url + "/health", timeout=5).json() == {"status": "ok"}


def test_matching_events_land_in_one_object_in_spec_format(api: Api, runtime: LocalRuntime, emulator_s3: Any) -> None:
    prefix = "skeleton-s3/"
    endpoint = api.create_endpoint(readme_body(prefix))
    started = time.monotonic()
    accepted = [api.send(t, {"orderId": "ord_123"}) for t in ("order.created", "order.paid", "order.shipped")]
    api.send("user.created", {"userId": "usr_1"})

    wait_until(
        lambda: read_objects(emulator_s3, "my-webhook-archive", prefix),
        timeout=endpoint["storageConfig"]["flushIntervalSeconds"] + 5,
        what="the NDJSON object",
    )
    assert time.monotonic() - started <= 2 + 5
    wait_until(lambda: endpoint_drained(runtime, endpoint["id"]), timeout=30, what="the endpoint's messages")
    objects = read_objects(emulator_s3, "my-webhook-archive", prefix)
    assert len(objects) == 1
    key, lines = next(iter(objects.items()))
    assert re.fullmatch(KEY_RE.format(prefix=prefix), key)
    assert key.endswith("-001.ndjson")
    assert sorted(line["id"] for line in lines) == sorted(a["id"] for a in accepted)
    for line in lines:
        assert list(line) == LINE_KEYS
        assert line["eventType"].startswith("order.")
        assert line["payload"] == {"orderId": "ord_123"}
    raw = emulator_s3.get_object(Bucket="my-webhook-archive", Key=key)["Body"].read().decode()
    assert raw == "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)


def test_provider_local_writes_below_the_root(api: Api, runtime: LocalRuntime) -> None:
    body = {
        "url": "local://archive/skeleton-local/",
        "deliveryMode": "storage",
        "eventTypes": ["order.*"],
        "storageConfig": {
            "provider": "local",
            "bucket": "archive",
            "prefix": "skeleton-local/",
            "flushIntervalSeconds": 2,
        },
    }
    endpoint = api.create_endpoint(body)
    assert endpoint["storageConfig"]["credentialsConfigured"] is False
    # One request, so the three are accepted at one time and share a flush window (three requests may straddle
    # a 2 s boundary on a busy machine, and each window is an object of its own).
    accepted = api.send_batch([{"eventType": "order.created", "payload": {"n": n}} for n in range(3)])
    api.send("user.created", {"n": 99})
    root = Path(runtime.settings.state_dir) / "data" / "archive" / "skeleton-local"

    wait_until(lambda: list(root.glob("*/*.ndjson")), timeout=2 + 5, what="the local NDJSON file")
    wait_until(lambda: endpoint_drained(runtime, endpoint["id"]), timeout=30, what="the endpoint's messages")
    files = list(root.glob("*/*.ndjson"))
    assert len(files) == 1
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(a["id"] for a in accepted)
    assert not list(root.rglob("*.tmp"))


def test_get_and_list_show_no_credentials(api: Api) -> None:
    body = readme_body("skeleton-secrets/", interval=60)
    endpoint = api.create_endpoint(body)
    secret = body["storageConfig"]["secretAccessKey"]
    access = body["storageConfig"]["accessKeyId"]
    for reply in (api.call("GET", f"/api/v1/endpoints/{endpoint['id']}"), api.call("GET", "/api/v1/endpoints")):
        assert reply.status_code == 200
        assert secret not in reply.text and access not in reply.text
        assert "secretAccessKey" not in reply.text and "accessKeyId" not in reply.text
        assert '"credentialsConfigured":true' in reply.text.replace(" ", "")


def test_dev_key_file_is_private(runtime: LocalRuntime) -> None:
    key_file = Path(runtime.settings.state_dir) / "dev-api-key"
    assert key_file.read_text().strip() == runtime.api_key
    assert key_file.stat().st_mode & 0o777 == 0o600
