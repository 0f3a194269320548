"""STS's side of AssumeRole, which the emulators leave out: the assumed role's trust policy.

moto's STS issues credentials for any role ARN (its IAM enforcement covers identity policies, never trust
policies), and so does LocalStack's without IAM enforcement (a paid feature). `TrustPolicies.attach(session,
caller)` hooks a function's boto3 session before its clients are made: before an AssumeRole is sent, the role's
trust policy is read from the emulator's IAM, in the role's account, and evaluated as STS does for the caller
(the function's role, whose calls that session makes): statements whose Principal names the caller, its account
(`arn:...:root` or the bare id) or `*`, whose Action covers sts:AssumeRole, and whose Condition holds for the
request's keys (`sts:ExternalId`, `sts:RoleSessionName`, `aws:PrincipalArn`, `aws:PrincipalAccount`; evaluated
by tests/iam/policy.py); an explicit Deny wins. When the policy does not allow the call, or the role does not
exist, the hook answers as STS does (HTTP 403, an `ErrorResponse` with code AccessDenied and STS's message), so
the emulator never sees the call.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict
from botocore.exceptions import ClientError

from spool.local.runtime import EMULATOR_SECRET_ACCESS_KEY
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


# Where an AssumeRole's parameters wait, in botocore's request context, for the answer.
_ASKED = "spool-assume-role-request"


def account_client(emulator: Callable[..., Any], service: str, account: str) -> Any:
    """A client of the emulator (`emulator` makes clients, as the local runtime's `client`) whose calls are made
    in another of its accounts: LocalStack takes the account from a 12-digit access key id, moto from its
    `x-moto-account-id` header; the client sends both."""
    client = emulator(service, aws_access_key_id=account, aws_secret_access_key=EMULATOR_SECRET_ACCESS_KEY)

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


@dataclass(frozen=True)
class Issued:
    """What an AssumeRole that STS answered with credentials asked for."""

    role_arn: str
    external_id: str  # "" without one
    session_name: str


class TrustPolicies:
    """Answers AssumeRole calls the role's trust policy refuses (see the module docstring), and records the
    credentials STS issued for the others, so a test can tell which AssumeRole an access key id came from on
    any emulator."""

    def __init__(self) -> None:
        # Makes a client of the emulator (the local runtime's `client`), set once the runtime is up.
        self.emulator: Callable[..., Any] | None = None
        self.refused: list[tuple[str, str]] = []  # (role ARN, ExternalId or "") of each refused call
        self.issued: dict[str, Issued] = {}  # access key id -> the AssumeRole that issued it
        self._lock = threading.Lock()

    def attach(self, session: boto3.session.Session, caller: Callable[[], str]) -> None:
        """Check every AssumeRole of clients `session` creates from now on, made as the role `caller()`, and
        record what the allowed ones were issued."""

        def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context[_ASKED] = dict(params["body"])  # the Query protocol's parameters, before encoding

        def record(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            asked, credentials = context.get(_ASKED), parsed.get("Credentials")
            if asked and credentials:
                issued = Issued(asked["RoleArn"], asked.get("ExternalId", ""), asked["RoleSessionName"])
                with self._lock:
                    self.issued[credentials["AccessKeyId"]] = issued

        session.events.register("before-call.sts.AssumeRole", remember)
        session.events.register("after-call.sts.AssumeRole", record)

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
        iam = account_client(self.emulator, "iam", account)
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
