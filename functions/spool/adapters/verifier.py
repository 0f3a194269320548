"""`Verifier` for the api: `verify` runs in the sink function, the only place store credentials are decrypted."""

from __future__ import annotations

import json
from typing import Any


class LambdaVerifier:
    """Implements `Verifier` by invoking the sink function (handlers/sink.py answers `{"spool": "verify"}`)."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._lambda = client
        self._function = function_name

    def verify(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        response = self._lambda.invoke(
            FunctionName=self._function,
            Payload=json.dumps({"spool": "verify", "tenantId": tenant_id, "endpointId": endpoint_id}).encode(),
        )
        result: dict[str, Any] = json.loads(response["Payload"].read())
        if response.get("FunctionError"):
            return {"ok": False, "error": "verification could not run; try again later"}
        return result
