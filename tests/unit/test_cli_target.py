"""The admin CLI finds the local runtime through the description the runtime writes (RuntimeDescription)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spool.cli import CliError, resolve_target
from spool.local.runtime import RuntimeDescription

DESCRIBED = RuntimeDescription(
    awsEndpointUrl="http://127.0.0.1:5000",
    apiUrl="http://127.0.0.1:8080",
    region="eu-west-1",
    tableName="spool-local",
    queueUrl="http://127.0.0.1:5000/123456789012/spool-local-ingest",
    dlqUrl="http://127.0.0.1:5000/123456789012/spool-local-dlq",
    stagingBucket="spool-local-staging",
    pepperSecretId="spool-local/api-key-pepper",
    sinkRoleArn="arn:aws:iam::123456789012:role/spool-local-sink",
)


def test_the_cli_targets_the_resources_the_runtime_described(tmp_path: Path) -> None:
    (tmp_path / RuntimeDescription.FILE_NAME).write_text(DESCRIBED.model_dump_json())

    target = resolve_target(None, None, tmp_path)

    assert (target.table_name, target.pepper_secret_id) == ("spool-local", "spool-local/api-key-pepper")
    assert (target.queue_url, target.dlq_url) == (DESCRIBED.queueUrl, DESCRIBED.dlqUrl)
    assert target.endpoint_url == "http://127.0.0.1:5000"
    assert target.session.region_name == "eu-west-1"


def test_a_description_without_a_resource_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / RuntimeDescription.FILE_NAME).write_text(DESCRIBED.model_dump_json(exclude={"dlqUrl"}))

    with pytest.raises(CliError, match="dlqUrl"):
        resolve_target(None, None, tmp_path)


def test_no_description_says_to_start_the_runtime(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="make dev"):
        resolve_target(None, None, tmp_path)
