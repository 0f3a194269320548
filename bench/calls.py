"""Counting what a local run would cost on AWS (B6): every AWS API call with its billed units, and every
handler invocation with its duration.

`Meter.install()` wraps botocore's `Session.create_client` in this process so that each client, whoever
creates it (boto3's default session, the sink's store session, Powertools Parameters), gets two botocore
event handlers: `before-parameter-build` keeps the call's parameters, `after-call` counts the call with the
units AWS bills for it. `Meter.wrap()` times a Lambda handler and marks the calls made inside it. Calls on
the SQS poller threads outside a handler are the event source mapping's own (receive, delete); calls from
any other thread (the benchmark's own checks, provisioning) are not counted.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.session

from bench.prices import APIGW_STEP_BYTES, SQS_CHUNK_BYTES
from spool.local.provision import Names

Handler = Callable[[dict[str, Any], Any], Any]
POLLER_THREAD_PREFIX = "sqs-poller"  # spool.local.poller names its threads so


@dataclass
class Invocation:
    wall: float
    cpu: float
    records: int = 0


@dataclass
class Tally:
    calls: int = 0
    units: float = 0.0


@dataclass
class Meter:
    active: bool = False
    # (role, service, operation, unit, purpose) -> calls and billed units
    tallies: dict[tuple[str, str, str, str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    invocations: dict[str, list[Invocation]] = field(default_factory=lambda: defaultdict(list))
    apigw_units: int = 0
    _item_sizes: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)

    # --- wiring -----------------------------------------------------------------------------------------
    def install(self) -> None:
        original = botocore.session.Session.create_client
        meter = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-parameter-build", meter._keep_params)
            client.meta.events.register("after-call", meter._count)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]

    def wrap(self, role: str, handler: Handler) -> Handler:
        def metered(event: dict[str, Any], context: Any) -> Any:
            self._local.role = role
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return handler(event, context)
            finally:
                done = Invocation(time.perf_counter() - wall, time.thread_time() - cpu, len(event.get("Records", ())))
                self._local.role = None
                if self.active:
                    with self._lock:
                        self.invocations[role].append(done)
                        if role == "api":
                            size = len((event.get("body") or "").encode())
                            self.apigw_units += max(1, math.ceil(size / APIGW_STEP_BYTES))

        return metered

    def reset(self) -> None:
        with self._lock:
            self.tallies.clear()
            self.invocations.clear()
            self.apigw_units = 0

    # --- botocore event handlers ------------------------------------------------------------------------
    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = params

    def _count(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        role = getattr(self._local, "role", None)
        if role is None:
            if not threading.current_thread().name.startswith(POLLER_THREAD_PREFIX):
                return
            role = "esm"
        service = model.service_model.service_name
        operation = model.name
        params = context.get("bench_params", {})
        with self._lock:
            unit, amount, purpose, name = self._units(service, operation, params, parsed)
            tally = self.tallies[(role, service, name, unit, purpose)]
            tally.calls += 1
            tally.units += amount

    # --- billed units -----------------------------------------------------------------------------------
    def _units(
        self, service: str, operation: str, params: dict[str, Any], parsed: dict[str, Any]
    ) -> tuple[str, float, str, str]:
        """(unit, amount, purpose, operation label) for one call; the lock is held."""
        if service == "sqs":
            return sqs_units(operation, params, parsed)
        if service == "dynamodb":
            return self.dynamodb_units(operation, params, parsed)
        if service == "s3" and params.get("Bucket") == STAGING_BUCKET:
            return "request", 1.0, "staging", operation
        return "request", 1.0, "", operation

    def dynamodb_units(
        self, operation: str, params: dict[str, Any], parsed: dict[str, Any]
    ) -> tuple[str, float, str, str]:
        """On-demand write units per KB written or deleted (a delete costs the size of the item it removes,
        remembered from its put) and read units per 4 KB read; purpose "staging" for hold-back items."""
        table = params.get("TableName", "")
        if operation == "PutItem":
            item = params["Item"]
            size = item_size(item)
            self._item_sizes[(table, *_key(item))] = size
            return "WRU", _kb(size, 1024), _purpose(item), operation
        if operation == "UpdateItem":
            size = item_size(params["Key"]) + item_size(params.get("ExpressionAttributeValues", {}))
            return "WRU", _kb(size, 1024), _purpose(params["Key"]), operation
        if operation == "DeleteItem":
            size = self._item_sizes.pop((table, *_key(params["Key"])), 1024)
            return "WRU", _kb(size, 1024), _purpose(params["Key"]), operation
        if operation == "BatchWriteItem":
            units, purpose = 0.0, ""
            for name, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        size = item_size(item)
                        self._item_sizes[(name, *_key(item))] = size
                    else:
                        item = request["DeleteRequest"]["Key"]
                        size = self._item_sizes.pop((name, *_key(item)), 1024)
                    units += _kb(size, 1024)
                    purpose = _purpose(item)
            return "WRU", units, purpose, operation
        if operation == "TransactWriteItems":
            units, purpose = 0.0, ""
            for entry in params["TransactItems"]:
                item = entry.get("Put", {}).get("Item") or entry.get("Update", {}).get("Key") or {}
                units += 2 * _kb(item_size(item), 1024)
                purpose = purpose or _purpose(item)
            return "WRU", units, purpose, operation
        if operation in ("GetItem", "Query"):
            items = [parsed["Item"]] if parsed.get("Item") else list(parsed.get("Items", []))
            factor = 1.0 if params.get("ConsistentRead") else 0.5
            size = sum(item_size(item) for item in items)
            key = params.get("Key") or {"pk": params.get("ExpressionAttributeValues", {}).get(":pk", {"S": ""})}
            return "RRU", factor * _kb(size, 4096), _purpose(key), operation
        return "request", 1.0, "", operation


# The local runtime's staging bucket (spool.local.provision.Names): Spool's own hold-back requests, priced;
# every other bucket is a tenant's, whose PUTs the tenant pays.
STAGING_BUCKET = Names().staging_bucket


def sqs_units(operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> tuple[str, float, str, str]:
    """SQS bills each 64 KB chunk of a request's payload as one request."""
    if operation == "SendMessage":
        size = _message_size(params.get("MessageBody", ""), params.get("MessageAttributes", {}))
        return "request", _kb(size, SQS_CHUNK_BYTES), "", operation
    if operation == "SendMessageBatch":
        size = sum(_message_size(e.get("MessageBody", ""), e.get("MessageAttributes", {})) for e in params["Entries"])
        return "request", _kb(size, SQS_CHUNK_BYTES), "", operation
    if operation == "ReceiveMessage":
        messages = parsed.get("Messages", [])
        if not messages:
            return "request", 1.0, "", "ReceiveMessage (empty)"
        size = sum(_message_size(m.get("Body", ""), m.get("MessageAttributes", {})) for m in messages)
        return "request", _kb(size, SQS_CHUNK_BYTES), "", operation
    return "request", 1.0, "", operation


def _message_size(body: str, attributes: dict[str, Any]) -> int:
    size = len(body.encode())
    for name, value in attributes.items():
        size += len(name) + len(value.get("DataType", "")) + len(str(value.get("StringValue", "")).encode())
    return size


def _kb(size: int, step: int) -> float:
    return float(max(1, math.ceil(size / step)))


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return str(item.get("pk", {}).get("S", "")), str(item.get("sk", {}).get("S", ""))


def _purpose(item: dict[str, Any]) -> str:
    pk = str(item.get("pk", {}).get("S", ""))
    return "staging" if pk.startswith("B#") else "table"


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (numbers about one byte per two digits)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return len(str(data).lstrip("-").replace(".", "")) // 2 + 2
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: element}) for element in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(element) for name, element in data.items())
    return 1
