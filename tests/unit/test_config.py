"""Settings: one definition (config.py) and, in Lambda, parsed when the handler module loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from spool.config import ApiSettings, SinkSettings
from spool.handlers.wiring import lambda_settings
from spool.names import API_FUNCTION, SINK_FUNCTION

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
SINK_ENV = {
    "SPOOL_TABLE_NAME": "spool",
    "SPOOL_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/ingest",
    "SPOOL_STAGING_BUCKET": "spool-staging",
}
IN_LAMBDA = {"AWS_LAMBDA_FUNCTION_NAME": "Spool-unit-Sink", "_HANDLER": SINK_FUNCTION.handler}


def test_environment_names_come_from_the_settings_fields() -> None:
    env = SinkSettings.environment(table_name="t", allow_insecure_endpoints=True, batching_window_seconds=5)
    assert env == {
        "SPOOL_TABLE_NAME": "t",
        "SPOOL_ALLOW_INSECURE_ENDPOINTS": "true",
        "SPOOL_BATCHING_WINDOW_SECONDS": "5",
    }
    with pytest.raises(KeyError):
        SinkSettings.environment(tabel_name="t")


def test_settings_written_as_an_environment_parse_back_to_the_same_settings() -> None:
    settings = SinkSettings.from_env(SINK_ENV | {"SPOOL_RETRY_BASE_SECONDS": "3"})
    assert SinkSettings.from_env(settings.as_environment()) == settings


def test_outside_lambda_nothing_is_parsed_at_import() -> None:
    assert lambda_settings({}) is None
    # bench B3 sets the Lambda variables without a Spool handler: nothing is parsed there either.
    assert lambda_settings({"AWS_LAMBDA_FUNCTION_NAME": "spool-bench"}) is None


def test_in_lambda_the_running_handlers_settings_are_parsed() -> None:
    parsed = lambda_settings(IN_LAMBDA | SINK_ENV)
    assert isinstance(parsed, SinkSettings)
    assert parsed.staging_bucket == "spool-staging"


def test_in_lambda_a_missing_setting_fails_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="SPOOL_KMS_KEY_ID"):
        lambda_settings({"AWS_LAMBDA_FUNCTION_NAME": "Spool-unit-Api", "_HANDLER": API_FUNCTION.handler} | SINK_ENV)
    assert ApiSettings.env_name("kms_key_id") == "SPOOL_KMS_KEY_ID"


def test_in_lambda_the_handler_module_fails_to_load_without_its_settings() -> None:
    # The init phase fails, not the first request: the module import itself raises.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(FUNCTIONS), "AWS_DEFAULT_REGION": "us-east-1"} | IN_LAMBDA
    broken = subprocess.run(
        [sys.executable, "-c", "import spool.handlers.sink"], env=env, capture_output=True, text=True, check=False
    )
    assert broken.returncode != 0
    assert "SPOOL_STAGING_BUCKET" in broken.stderr
    fine = subprocess.run(
        [sys.executable, "-c", "import spool.handlers.sink"],
        env=env | SINK_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert fine.returncode == 0, fine.stderr[-2000:]
