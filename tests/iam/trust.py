"""STS's side of AssumeRole, which moto leaves out: the assumed role's trust policy.

moto's STS issues credentials for any role ARN (its IAM enforcement covers identity policies, never trust
policies). `TrustPolicies.attach(session, caller)` hooks a function's boto3 session before its clients are
made: before an AssumeRole is sent, the role's trust policy is read from the emulator's IAM, in the role's
account, and evaluated as STS does for the caller (the function's role, whose calls that session makes):
statements whose Principal names the caller, its account (`arn:...:root` or the bare id) or `*`, whose Action
covers sts:AssumeRole, and whose Condition holds for the request's keys (`sts:ExternalId`,
`sts:RoleSessionName`, `aws:PrincipalArn`, `aws:PrincipalAccount`; evaluated by tests/iam/policy.py); an
explicit Deny wins. When the policy does not allow the call, or the role does not exist, the hook answers as
STS does (HTTP 403, an `ErrorResponse` with code AccessDenied and STS's message), so moto never sees the call.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict
from botocore.exceptions import ClientError

from tests.iam.calls import Request
from tests.iam.policy import Statement

# STS's answer to a refused AssumeRole (Query protocol, XML), as AWS sends it.
ACCESS_DENIED = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role}</Message>
  </Error>
  <RequestId>{request_id}</RequestId>
</ErrorResponse>
"""


def in_account(client: Any, account: str) -> Any:
    """Make `client`'s calls in another moto account (moto's `x-moto-account-id` header)."""

    def mark(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("before-sign", mark)
    return client


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def names_caller(principal: Any, caller: str) -> bool:
    """Does a trust statement's Principal name `caller` (a role ARN)?"""
    if principal == "*":
        return True
    partition, account = caller.split(":")[1], caller.split(":")[4]
    accepted = {caller, account, f"arn:{partition}:iam::{account}:root", "*"}
    return any(p in accepted for p in _as_list(principal.get("AWS", [])))


def trust_allows(document: dict[str, Any], caller: str, keys: dict[str, tuple[str, ...]]) -> bool:
    """STS's evaluation of a trust policy for one AssumeRole by `caller` with request keys `keys`."""
    request = Request("sts", "sts:AssumeRole", "*", tuple(sorted(keys.items())))
    verdicts = []
    for raw in _as_list(document.get("Statement", [])):
        if "NotPrincipal" in raw or "NotAction" in raw:
            raise ValueError("trust statements with NotPrincipal or NotAction are not evaluated here")
        statement = Statement(raw["Effect"], _as_list(raw["Action"]), ["*"], raw.get("Condition", {}))
        if names_caller(raw.get("Principal", {}), caller) and statement.applies(request):
            verdicts.append(statement.effect)
    return "Allow" in verdicts and "Deny" not in verdicts


class TrustPolicies:
    """Answers AssumeRole calls the role's trust policy refuses (see the module docstring)."""

    def __init__(self) -> None:
        # Makes a client of the emulator (the local runtime's `client`), set once the runtime is up.
        self.emulator: Callable[[str], Any] | None = None
        self.refused: list[tuple[str, str]] = []  # (role ARN, ExternalId or "") of each refused call
        self._lock = threading.Lock()

    def attach(self, session: boto3.session.Session, caller: Callable[[], str]) -> None:
        """Check every AssumeRole of clients `session` creates from now on, made as the role `caller()`."""

        def check(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
            params = {k: v[0] for k, v in parse_qs(_text(request.body)).items()}
            role, me = params["RoleArn"], caller()
            keys = {"aws:PrincipalArn": (me,), "aws:PrincipalAccount": (me.split(":")[4],)}
            keys["sts:RoleSessionName"] = (params["RoleSessionName"],)
            if "ExternalId" in params:
                keys["sts:ExternalId"] = (params["ExternalId"],)
            document = self.trust_policy(role)
            if document is not None and trust_allows(document, me, keys):
                return None
            with self._lock:
                self.refused.append((role, params.get("ExternalId", "")))
            body = ACCESS_DENIED.format(caller=me, role=role, request_id=uuid.uuid4()).encode()
            headers: Any = HeadersDict({"Content-Type": "text/xml", "Content-Length": str(len(body))})
            return AWSResponse(request.url, 403, headers, _Body(body))

        session.events.register("before-send.sts.AssumeRole", check)  # type: ignore[arg-type]

    def trust_policy(self, role_arn: str) -> dict[str, Any] | None:
        """The role's trust policy in the emulator, read in the role's account; None if there is no such role."""
        account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
        assert self.emulator is not None, "the emulator is not up yet"
        iam = in_account(self.emulator("iam"), account)
        try:
            document: dict[str, Any] = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchEntity":
                return None
            raise
        return document


def _text(body: Any) -> str:
    if body is None:
        return ""
    return body.decode() if isinstance(body, bytes) else str(body)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data
