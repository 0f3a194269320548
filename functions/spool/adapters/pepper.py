"""The API-key pepper, from Secrets Manager through Powertools Parameters (cached)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

# A rotated pepper is picked up within this many seconds.
PEPPER_CACHE_SECONDS = 300


def pepper_loader(secret_id: str, client: Any) -> Callable[[], bytes]:
    """The pepper, read with `client` (a Secrets Manager client of the caller's session, so its region and
    endpoint are the caller's, not the environment's)."""
    provider = SecretsProvider(boto3_client=client)

    def pepper() -> bytes:
        value = provider.get(secret_id, max_age=PEPPER_CACHE_SECONDS)
        if not value:
            raise RuntimeError("the API-key pepper secret is empty")
        return str(value).encode()

    return pepper
