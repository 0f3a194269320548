"""`Verifier` for the api: `verify` runs in the verify function (handlers/verify.py), where store credentials may
be decrypted, under a reserved concurrency of its own."""

from __future__ import annotations

import json
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from spool.domain import limits
from spool.domain.verification import busy

# The api's Lambda client for the verify function: one attempt (a throttled Invoke is the concurrency cap
# answering, which the client hears as a 429, not a wait), and a read that lasts the function's timeout plus a
# cold start's allowance, so the api waits a bounded time whatever the store does.
INVOKE_CONFIG = Config(
    connect_timeout=limits.STORE_CONNECT_SECONDS,
    read_timeout=limits.VERIFY_TIMEOUT_SECONDS + limits.VERIFY_COLD_START_SECONDS,
    # total_max_attempts counts the first call; botocore's `max_attempts` counts it too in its config but adds one.
    retries={"total_max_attempts": 1, "mode": "standard"},
)
# What Lambda answers an Invoke when the function's reserved concurrency is used up.
THROTTLED = "TooManyRequestsException"


class LambdaVerifier:
    """Implements `Verifier` by invoking the verify function (handlers/verify.py answers `{"spool": "verify"}`)."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._lambda = client
        self._function = function_name

    def verify(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        try:
            response = self._lambda.invoke(
                FunctionName=self._function,
                Payload=json.dumps({"spool": "verify", "tenantId": tenant_id, "endpointId": endpoint_id}).encode(),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == THROTTLED:
                raise busy() from None
            raise
        result: dict[str, Any] = json.loads(response["Payload"].read())
        if response.get("FunctionError"):
            return {"ok": False, "error": "verification could not run; try again later"}
        return result
