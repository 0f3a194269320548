"""Names shared across the constructs, the tests and the deploy scripts, kept in one place."""

from __future__ import annotations

from typing import Final

from spool.domain import ids, roles

# The names the Lambda code owns (its functions' handlers and services, the table's keys, metrics, the stack's
# outputs the admin CLI reads) are in functions/spool/names.py; the constructs import them from there as `shared`.

APP_NAME: Final = "Spool"


# The admin CLI and scripts/test-deployed.sh read the outputs of this stack by name.
def stack_name(stage: str) -> str:
    """CloudFormation stack name for a stage, e.g. `Spool-dev`."""
    return f"{APP_NAME}-{stage}"


# Lambda code: assets rooted at functions/ holding the `spool` package. The sink's adds pyarrow (Parquet).
FUNCTIONS_DIR: Final = "functions"
PACKAGE_DIR: Final = "spool"
REQUIREMENTS_FILE: Final = "requirements.txt"
PARQUET_REQUIREMENTS_FILE: Final = "requirements-parquet.txt"

# Environment variables: the aliases of functions/spool/config.py's settings models; the constructs write
# them with `ApiSettings.environment(...)` / `SinkSettings.environment(...)` by field name.

# Tenants' roles the sink assumes (functions/spool/domain/roles.py): every AssumeRole names a session
# `spool-{endpoint id}` and carries the endpoint's ExternalId `spool-{random}`; the sink's policy matches both.
ROLE_SESSION_NAME_PATTERN: Final = f"{roles.SESSION_NAME_PREFIX}{ids.ENDPOINT_ID_PREFIX}_*"
EXTERNAL_ID_PATTERN: Final = f"{roles.EXTERNAL_ID_PREFIX}*"
