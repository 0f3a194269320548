"""API fuzzing with schemathesis against the OpenAPI document the runtime serves (SPEC: bad input gets a 4xx
with a JSON error body, never a 5xx).

Valid and invalid requests (schemathesis' positive and negative modes) for every operation, sent over HTTP to
the local runtime with a key of a tenant of its own. Path ids are generated or, half the time, ids of that
tenant's real endpoints, so the routes behind the 404 are reached too. `make test` runs a bounded number of
examples per operation; `make fuzz` sets SPOOL_FUZZ_EXAMPLES=500.

Methods no route takes (TRACE, CONNECT, WebDAV's, made-up tokens, a lowercase `get`) are sent to every
documented path as well: on AWS the catch-all `$default` route hands every method to the api function, so the
answer is the API's own JSON (a 404 for a method no route takes), never a 5xx or an HTML page.
"""

from __future__ import annotations

import json
import os
import re
import string
from collections import Counter
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from spool.local.runtime import EXAMPLE_BUCKET, LocalRuntime, free_port
from tests.reliability.ledger import FIGURES

EXAMPLES = int(os.environ.get("SPOOL_FUZZ_EXAMPLES", "20"))
STATUSES: Counter[int] = Counter()
# Methods of the routes; the unusual-method cases leave them out (even in lower case, which Powertools
# upper-cases), so they never create or delete anything.
ROUTE_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
UNUSUAL_METHODS = ["TRACE", "CONNECT", "PROPFIND", "MKCOL", "FOO", "get"]
# RFC 9110 token characters, what a method name is made of.
TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"


@schemathesis.check
def error_answers_are_json_error_bodies(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is `{"error": {"code", "message"}}` as application/json."""
    STATUSES[response.status_code] += 1
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type") or response.headers.get("Content-Type") or [""]
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/json"), f"{response.status_code} answered as {content_type!r}"
    error = response.json().get("error")
    assert isinstance(error, dict), f"no error object: {response.text[:200]}"
    assert isinstance(error.get("code"), str) and error["code"], f"no error code: {response.text[:200]}"
    assert isinstance(error.get("message"), str) and error["message"], f"no error message: {response.text[:200]}"
    return True


def endpoint(name: str, provider: str, **config: Any) -> dict[str, Any]:
    bucket = f"fuzz-{name}" if provider == "local" else EXAMPLE_BUCKET
    scheme = "local" if provider == "local" else "s3"
    return {
        "url": f"{scheme}://{bucket}/fuzz/{name}/",
        "deliveryMode": "storage",
        "eventTypes": ["*"],
        "storageConfig": {
            "provider": provider,
            "bucket": bucket,
            "prefix": f"fuzz/{name}/",
            "flushIntervalSeconds": 1,
            **config,
        },
    }


@pytest.fixture(scope="module")
def fuzz_tenant(runtime: LocalRuntime) -> tuple[str, list[str]]:
    """A tenant of the fuzzer's own with three real endpoints (local, the emulator's S3, a dead store)."""
    import requests

    # Tenants and keys are the operator's (the admin CLI's): the api's role may not write key lookups (K#).
    _, key = runtime.admin.create_tenant("fuzz")
    s3 = {"region": "us-east-1", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "fuzz-secret-0123"}
    bodies = [
        endpoint("local", "local"),
        endpoint("s3", "s3", **s3),
        endpoint("dead", "s3", endpoint=f"http://127.0.0.1:{free_port()}", **s3),
    ]
    ids = []
    for body in bodies:
        reply = requests.post(f"{runtime.api_url}/api/v1/endpoints", json=body, headers={"X-API-Key": key}, timeout=10)
        assert reply.status_code == 201, reply.text
        ids.append(reply.json()["id"])
    return key, ids


@pytest.fixture(scope="module")
def api_schema(runtime: LocalRuntime, fuzz_tenant: tuple[str, list[str]]) -> Any:
    key, endpoint_ids = fuzz_tenant
    schema = schemathesis.openapi.from_url(f"{runtime.api_url}/api/v1/openapi.json", timeout=10)
    schema.config.update(base_url=runtime.api_url, headers={"X-API-Key": key})
    schema.config.generation.update(with_security_parameters=False)

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        if "endpoint_id" not in (path_parameters or {}):
            return st.just(path_parameters)
        real = [dict(path_parameters, endpoint_id=i) for i in endpoint_ids]
        return st.sampled_from([path_parameters, path_parameters, *real])

    return schema


@pytest.fixture(scope="module")
def documented_paths(api_schema: Any, fuzz_tenant: tuple[str, list[str]]) -> list[str]:
    """Every path of the served OpenAPI document, with a real endpoint of the fuzz tenant in it."""
    _, endpoint_ids = fuzz_tenant
    return [re.sub(r"\{[^}]+\}", endpoint_ids[0], path) for path in api_schema.raw_schema["paths"]]


def send_method(runtime: LocalRuntime, key: str, method: str, path: str) -> tuple[int, str, str]:
    """One request with this exact method (requests would upper-case it)."""
    url = urlsplit(runtime.api_url)
    connection = HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        connection.putrequest(method, path)
        connection.putheader("X-API-Key", key)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        reply = connection.getresponse()
        return reply.status, reply.getheader("content-type") or "", reply.read().decode()
    finally:
        connection.close()


def assert_api_answer(status: int, content_type: str, text: str, what: str) -> None:
    """Not a 5xx, and the API's JSON (with the error shape for a 4xx)."""
    assert status < 500, f"{what}: {status} {text[:200]}"
    assert content_type.startswith("application/json"), f"{what}: {status} as {content_type!r}: {text[:200]}"
    body = json.loads(text)
    if 400 <= status < 500:
        error = body.get("error") if isinstance(body, dict) else None
        assert isinstance(error, dict) and error.get("code") and error.get("message"), f"{what}: {text[:200]}"


@pytest.mark.parametrize("method", UNUSUAL_METHODS)
def test_unusual_methods_on_every_documented_path_get_json_and_no_5xx(
    runtime: LocalRuntime, fuzz_tenant: tuple[str, list[str]], documented_paths: list[str], method: str
) -> None:
    key, _ = fuzz_tenant
    for path in documented_paths:
        status, content_type, text = send_method(runtime, key, method, path)
        assert_api_answer(status, content_type, text, f"{method} {path}")
        if method.upper() not in ROUTE_METHODS:
            assert status == 404, f"{method} {path}: {status} {text[:200]}"


def test_made_up_methods_on_documented_paths_get_json_and_no_5xx(
    runtime: LocalRuntime, fuzz_tenant: tuple[str, list[str]], documented_paths: list[str]
) -> None:
    key, _ = fuzz_tenant
    methods = st.text(alphabet=TOKEN, min_size=1, max_size=16).filter(lambda m: m.upper() not in ROUTE_METHODS)

    @given(method=methods, path=st.sampled_from(documented_paths))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(method: str, path: str) -> None:
        status, content_type, text = send_method(runtime, key, method, path)
        assert_api_answer(status, content_type, text, f"{method} {path}")
        assert status == 404, f"{method} {path}: {status} {text[:200]}"

    run()


def test_the_api_never_answers_5xx_and_every_4xx_is_a_json_error(api_schema: Any, subtests: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            with subtests.test(msg=f"{operation.label} ({mode.value})"):
                fuzz(operation, mode)


def fuzz(operation: Any, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode, hooks=operation.schema.hooks))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=True,
    )
    def run(case: Any) -> None:
        case.call_and_validate(checks=[not_a_server_error, error_answers_are_json_error_bodies], timeout=30)

    run()


def test_the_fuzzer_reached_the_routes_behind_authentication() -> None:
    """The run above means something only if requests got past the key check into validation and routing."""
    if not STATUSES:
        pytest.skip("the fuzz run did not run in this session")
    FIGURES.append(
        {
            "case": "fuzz",
            "examples per operation and mode": EXAMPLES,
            "requests": sum(STATUSES.values()),
            "statuses": dict(sorted(STATUSES.items())),
        }
    )
    assert not [s for s in STATUSES if s >= 500]
    assert STATUSES[422] > 0 and STATUSES[404] > 0
    assert sum(STATUSES[s] for s in (200, 201, 202, 204)) > 0
