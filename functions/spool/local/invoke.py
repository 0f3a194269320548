"""The local stand-in for Lambda's Invoke API: the api's real Lambda client, answered in this process.

moto's Lambda runs functions in Docker, which the local runtime does without. Instead, a `before-send` hook on
the api function's boto3 session answers `Invoke` of the verify function by calling its handler here and
shaping its result as Lambda does (a handler that raises answers 200 with `X-Amz-Function-Error: Unhandled`).
With `concurrency`, an Invoke beyond that many at once is refused as Lambda refuses one beyond a function's
reserved concurrency (429, TooManyRequestsException). The api's code path is the deployed one, and the call goes
through the api's session like any other.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict

from spool.local.lambda_context import FakeContext

Handler = Callable[[dict[str, Any], Any], Any]


class _Body(io.BytesIO):
    """A response body botocore can both stream and read whole."""

    def stream(self, amt: int = 1024, decode_content: bool | None = None) -> Any:
        while chunk := self.read(amt):
            yield chunk


# Lambda's answer to an Invoke beyond the function's reserved concurrency.
THROTTLED = {
    "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
    "Type": "User",
    "message": "Rate Exceeded.",
}


def serve_invoke(
    session: boto3.session.Session, function_name: str, handler: Handler, *, concurrency: int | None = None
) -> None:
    """Answer `Invoke` of `function_name` on clients `session` creates from now on with `handler`, at most
    `concurrency` at once (None: no limit)."""
    slots = threading.BoundedSemaphore(concurrency) if concurrency is not None else None

    def answer(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        # .../2015-03-31/functions/{name or ARN}/invocations
        target = unquote(request.url.split("/functions/", 1)[1].split("/", 1)[0])
        if target != function_name and not target.endswith(f":function:{function_name}"):
            return None
        if slots is not None and not slots.acquire(blocking=False):
            refused = json.dumps(THROTTLED).encode()
            found: Any = HeadersDict(
                {"x-amzn-ErrorType": "TooManyRequestsException", "Content-Length": str(len(refused))}
            )
            return AWSResponse(request.url, 429, found, _Body(refused))
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        try:
            body: Any = request.body or b"{}"
            result = handler(json.loads(body), FakeContext(function_name))
            payload = json.dumps(result).encode()
        except Exception as exc:
            headers["X-Amz-Function-Error"] = "Unhandled"
            payload = json.dumps({"errorType": type(exc).__name__, "errorMessage": "the function failed"}).encode()
        finally:
            if slots is not None:
                slots.release()
        headers["Content-Length"] = str(len(payload))
        return AWSResponse(request.url, 200, HeadersDict(headers), _Body(payload))  # type: ignore[arg-type]

    session.events.register("before-send.lambda.Invoke", answer)  # type: ignore[arg-type]
