"""Every AWS call a function makes, as the IAM requests AWS would authorize against that function's role.

`CallLog.attach(session, function)` hooks a boto3 session (the local runtime gives each function its own, see
`spool.local.runtime.FunctionSessions`): each call made by a client of that session is recorded with the
function's name. `requests()` turns a call into what IAM evaluates: an action (`dynamodb:PutItem`), the
resource ARN it is on and the condition keys the service supplies (`kms:EncryptionContext:...`,
`dynamodb:LeadingKeys`, `dynamodb:Attributes`, `dynamodb:ReturnValues`). One API call can be several requests
(TransactWriteItems is authorized per item).

Calls made with a tenant's own store credentials, or with the temporary credentials of a tenant's role the
sink assumed, go through a session of their own (adapters/stores.py, role_session.py) and are never seen here:
they are not the role's. The AssumeRole call itself is the sink role's, and is.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3


@dataclass(frozen=True)
class Place:
    """Partition, region and account the ARNs are built in (the emulator's defaults in the local runtime; moto's
    account unless told)."""

    partition: str = "aws"
    region: str = "us-east-1"
    account: str = "123456789012"


@dataclass(frozen=True)
class Request:
    """One IAM authorization: `function`'s role doing `action` on `resource`, with condition keys."""

    function: str
    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def keys(self) -> dict[str, tuple[str, ...]]:
        return dict(self.context)


class UnknownCall(Exception):
    """A call this module cannot map to IAM requests: teach `_requests` about it rather than skip it."""


# API operations authorized as another action (the AWS service authorization reference).
_ACTION_OF = {
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    ("lambda", "Invoke"): "InvokeFunction",
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "HeadObject"): "GetObject",
}
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


class CallLog:
    """Calls seen on the attached sessions, counted; thread-safe (the pollers and the front run in threads)."""

    def __init__(self, place: Place | None = None, partition_keys: dict[str, str] | None = None) -> None:
        self.place = place or Place()
        # Table name -> its partition key attribute, for dynamodb:LeadingKeys (default "pk").
        self.partition_keys = partition_keys or {}
        self.counts: Counter[Request] = Counter()
        self.unknown: Counter[str] = Counter()
        # Set by the grant check once the roles are known: checks everything recorded, at the end.
        self.verify_at_end: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def attach(self, session: boto3.session.Session, function: str) -> boto3.session.Session:
        """Record every call of clients `session` creates from now on as made by `function`."""

        def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["spool_iam_params"] = dict(params)

        def record(model: Any, context: dict[str, Any], parsed: dict[str, Any] | None = None, **_: Any) -> None:
            service = model.service_model.signing_name
            params = context.get("spool_iam_params", {})
            try:
                found = self.requests(function, service, model.name, params, parsed or {})
            except UnknownCall as exc:
                with self._lock:
                    self.unknown[f"{function}: {exc}"] += 1
                return
            with self._lock:
                self.counts.update(found)

        session.events.register("provide-client-params", remember)
        session.events.register("after-call", record)
        session.events.register("after-call-error", record)
        return session

    def clear(self) -> None:
        with self._lock:
            self.counts.clear()
            self.unknown.clear()

    def snapshot(self) -> Counter[Request]:
        with self._lock:
            return Counter(self.counts)

    # --- mapping ----------------------------------------------------------------------------------------
    def requests(
        self, function: str, service: str, operation: str, params: dict[str, Any], response: dict[str, Any]
    ) -> list[Request]:
        if service == "dynamodb":
            return self._dynamodb(function, operation, params)
        action = f"{service}:{_ACTION_OF.get((service, operation), operation)}"
        resource, context = self._resource(service, operation, params, response)
        return [Request(function, action, resource, context)]

    def _resource(
        self, service: str, operation: str, params: dict[str, Any], response: dict[str, Any]
    ) -> tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]:
        p = self.place
        if service == "sqs" and "QueueUrl" in params:
            account, name = urlsplit(params["QueueUrl"]).path.strip("/").split("/")[-2:]
            return f"arn:{p.partition}:sqs:{p.region}:{account}:{name}", ()
        if service == "kms":
            key = str(response.get("KeyId") or params.get("KeyId") or "")
            if not key:
                raise UnknownCall(f"kms:{operation} without a key in its request or answer")
            arn = key if key.startswith("arn:") else f"arn:{p.partition}:kms:{p.region}:{p.account}:key/{key}"
            context = params.get("EncryptionContext") or {}
            keys: list[tuple[str, tuple[str, ...]]] = [(f"kms:EncryptionContext:{k}", (v,)) for k, v in context.items()]
            if context:
                keys.append(("kms:EncryptionContextKeys", tuple(context)))
            return arn, tuple(sorted(keys))
        if service == "secretsmanager":
            secret = str(response.get("ARN") or params.get("SecretId") or "")
            if not secret.startswith("arn:"):
                raise UnknownCall(f"secretsmanager:{operation} of {secret!r}: no ARN in the answer")
            return secret, ()
        if service == "sts" and operation == "AssumeRole":
            # The role is the resource; STS supplies the caller-side keys the sink's policy conditions on.
            keys = [("sts:RoleSessionName", (str(params["RoleSessionName"]),))]
            if "ExternalId" in params:
                keys.append(("sts:ExternalId", (str(params["ExternalId"]),)))
            return str(params["RoleArn"]), tuple(sorted(keys))
        if service == "s3" and "Bucket" in params:
            # Object calls act on the object's ARN; listing acts on the bucket, with the prefix as a key.
            if "Key" in params:
                return f"arn:{p.partition}:s3:::{params['Bucket']}/{params['Key']}", ()
            prefix = (("s3:prefix", (str(params["Prefix"]),)),) if "Prefix" in params else ()
            return f"arn:{p.partition}:s3:::{params['Bucket']}", prefix
        if service == "lambda" and "FunctionName" in params:
            name = params["FunctionName"]
            arn = (
                name if name.startswith("arn:") else f"arn:{p.partition}:lambda:{p.region}:{p.account}:function:{name}"
            )
            return arn, ()
        raise UnknownCall(f"{service}:{operation} (no resource rule)")

    def _dynamodb(self, function: str, operation: str, params: dict[str, Any]) -> list[Request]:
        found: list[Request] = []
        if operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((kind, item),) = entry.items()
                found.append(self._item(function, _TRANSACT_ACTIONS[kind], item["TableName"], item))
            return found
        if operation == "TransactGetItems":
            return [self._item(function, "GetItem", e["Get"]["TableName"], e["Get"]) for e in params["TransactItems"]]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            for table, entries in params["RequestItems"].items():
                pk = self.partition_keys.get(table, "pk")
                if operation == "BatchWriteItem":
                    values = [
                        (e.get("PutRequest", {}).get("Item") or e.get("DeleteRequest", {}).get("Key"))[pk]
                        for e in entries
                    ]
                else:
                    values = [key[pk] for key in entries["Keys"]]
                found.append(self._on_table(function, operation, table, [_scalar(v) for v in values]))
            return found
        if "TableName" not in params:
            raise UnknownCall(f"dynamodb:{operation} without a TableName")
        return [self._item(function, operation, params["TableName"], params)]

    def _item(self, function: str, operation: str, table: str, params: dict[str, Any]) -> Request:
        pk = self.partition_keys.get(table, "pk")
        item = params.get("Item") or params.get("Key")
        extra = _item_keys(params)
        if item is not None:
            return self._on_table(function, operation, table, [_scalar(item[pk])], extra)
        if operation == "Query":
            return self._on_table(function, operation, table, [_query_key(params, pk)], extra)
        return self._on_table(function, operation, table, None, extra)  # Scan and table-level operations

    def _on_table(
        self,
        function: str,
        operation: str,
        table: str,
        leading: list[str] | None,
        extra: tuple[tuple[str, tuple[str, ...]], ...] = (),
    ) -> Request:
        p = self.place
        arn = f"arn:{p.partition}:dynamodb:{p.region}:{p.account}:table/{table}"
        context = () if leading is None else (("dynamodb:LeadingKeys", tuple(sorted(set(leading)))),)
        return Request(function, f"dynamodb:{operation}", arn, tuple(sorted(context + extra)))


# Words of DynamoDB's expression grammar that are not attribute names (function names are told by the `(` after).
_EXPRESSION_WORDS = frozenset({"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN"})
_EXPRESSIONS = (
    "UpdateExpression",
    "ConditionExpression",
    "ProjectionExpression",
    "FilterExpression",
    "KeyConditionExpression",
)
_TOKEN = re.compile(r"(\.\s*)?([#:]?[A-Za-z_][A-Za-z0-9_]*)(\s*\()?")


def _item_keys(params: dict[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """DynamoDB's fine-grained access keys of one item request: `dynamodb:Attributes` (the top-level attribute
    names it names: the key's or item's, and every name in its expressions), and `dynamodb:ReturnValues` and
    `dynamodb:Select` when the request sets them."""
    names = set(params.get("Item") or params.get("Key") or {})
    names.update(params.get("AttributesToGet") or [])
    names.update(params.get("AttributeUpdates") or {})
    names.update(params.get("Expected") or {})
    placeholders = dict(params.get("ExpressionAttributeNames") or {})
    for field in _EXPRESSIONS:
        for nested, token, call in _TOKEN.findall(params.get(field) or ""):
            if nested or call or token.startswith(":") or token.upper() in _EXPRESSION_WORDS:
                continue
            names.add(placeholders.get(token, token))
    found: list[tuple[str, tuple[str, ...]]] = []
    if names:
        found.append(("dynamodb:Attributes", tuple(sorted(names))))
    for key in ("ReturnValues", "Select"):
        if key in params:
            found.append((f"dynamodb:{key}", (str(params[key]),)))
    return tuple(found)


def _scalar(value: dict[str, Any]) -> str:
    ((_, found),) = value.items()
    return str(found)


def _query_key(params: dict[str, Any], pk: str) -> str:
    """The partition key value of a Query's `pk = :value` key condition."""
    names = dict(params.get("ExpressionAttributeNames") or {})
    for name, placeholder in re.findall(r"(#?\w+)\s*=\s*(:\w+)", params.get("KeyConditionExpression", "")):
        if names.get(name, name) == pk:
            return _scalar(params["ExpressionAttributeValues"][placeholder])
    raise UnknownCall(f"dynamodb:Query whose key condition names no {pk}")
