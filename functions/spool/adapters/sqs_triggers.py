"""The sink's `Triggers` on SQS: a delayed flush trigger on the ingest queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spool.domain import messages as fmt

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsTriggers:
    """Implements `Triggers`: one SendMessage with the trigger's delay, flush and seal triggers alike."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send_flush(self, tenant_id: str, endpoint_id: str, flush_at: int, delay_seconds: int) -> None:
        self._send(tenant_id, fmt.flush_trigger(tenant_id, endpoint_id, flush_at, delay_seconds))

    def send_seal(self, tenant_id: str, endpoint_id: str, window: int, seal_at: int, delay_seconds: int) -> None:
        self._send(tenant_id, fmt.seal_trigger(tenant_id, endpoint_id, window, seal_at, delay_seconds))

    def _send(self, tenant_id: str, trigger: fmt.Message) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=trigger.body,
            DelaySeconds=trigger.delay_seconds,
            MessageAttributes=fmt.sqs_attributes(trigger),  # type: ignore[arg-type]
            **fmt.fair_group(tenant_id),  # type: ignore[arg-type]
        )
