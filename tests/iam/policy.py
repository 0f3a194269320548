"""Each function's role policy from the synthesized template, with IAM's evaluation of a request against it.

Why our own evaluator: no emulator here enforces IAM (MiniStack has no such option, moto's enforcement is
partial and its condition handling is written for trust policies), and the template's resources are
CloudFormation intrinsics that only make sense once tied to the resources the local runtime created. The
evaluation follows IAM's rules for what Spool's policies use: Allow/Deny, Action/NotAction and
Resource/NotResource with `*` and `?` wildcards (`${*}`, `${?}`, `${$}` stand for the characters themselves;
actions case-insensitive), policy variables in condition values (`${aws:PrincipalOrgID}`), and the condition
operators listed in `_OPERATORS` with the `ForAllValues:`/`ForAnyValue:` set qualifiers. An operator it does not know
fails the check instead of being skipped.

Logical ids become local resources through the template's own wiring: a function's environment variable that
is `{"Ref": X}` in the template holds X's physical value in the local runtime, under the same name.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.iam.calls import Place, Request

# Permissions the Lambda service uses on the function's behalf (writing its logs and traces), not calls of
# the function's code: they are never missing from a call log, and never "unused".
SERVICE_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords")


class UnknownCondition(Exception):
    """A policy condition operator the evaluator does not implement."""


# IAM's wildcards, and its spelling of the characters themselves inside a pattern.
_TOKENS = {"*": ".*", "?": ".", "${*}": re.escape("*"), "${?}": re.escape("?"), "${$}": re.escape("$")}


def _match(pattern: str, value: str, *, case: bool) -> bool:
    parts = re.split(r"(\$\{[*?$]\}|[*?])", pattern)
    regex = "".join(_TOKENS.get(part, re.escape(part)) for part in parts)
    return re.fullmatch(regex, value, re.DOTALL | (0 if case else re.IGNORECASE)) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_OPERATORS = {
    "StringEquals": lambda value, wanted: value == wanted,
    "StringLike": lambda value, wanted: _match(wanted, value, case=True),
    "StringEqualsIgnoreCase": lambda value, wanted: value.lower() == wanted.lower(),
    "ArnEquals": lambda value, wanted: value == wanted,
    "ArnLike": lambda value, wanted: _match(wanted, value, case=True),
    "Bool": lambda value, wanted: value.lower() == wanted.lower(),
}


_VARIABLE = re.compile(r"\$\{([^}*?$][^}]*)\}")


def _substitute(wanted: str, keys: Mapping[str, tuple[str, ...]]) -> str | None:
    """`wanted` with each policy variable replaced by the request's value of that key; None if one is missing."""
    missing = False

    def value(found: re.Match[str]) -> str:
        nonlocal missing
        values = keys.get(found.group(1))
        if not values:
            missing = True
            return ""
        return values[0]

    result = _VARIABLE.sub(value, wanted)
    return None if missing else result


def _condition_holds(operator: str, key: str, wanted: Any, keys: Mapping[str, tuple[str, ...]]) -> bool:
    present = keys.get(key)
    if operator == "Null":
        # "true": the key must be absent; "false": it must be present.
        return (present is None) == (str(wanted).lower() == "true")
    qualifier, _, base = operator.rpartition(":")
    negated = base.startswith("StringNot") or base.startswith("ArnNot")
    if negated:
        base = base.replace("Not", "", 1)
    if base.endswith("IfExists"):
        if present is None:
            return True
        base = base.removesuffix("IfExists")
    test = _OPERATORS.get(base)
    if test is None or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise UnknownCondition(operator)
    # Policy variables (`${aws:PrincipalOrgID}`) take the request's value; one the request lacks matches nothing.
    options = [o for o in (_substitute(str(w), keys) for w in _as_list(wanted)) if o is not None]

    def one(value: str) -> bool:
        hit = any(test(value, w) for w in options)
        return not hit if negated else hit

    values = list(present or ())
    if qualifier == "ForAllValues":
        return all(one(v) for v in values)  # true for no values at all, as in IAM
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    if not values:
        return negated  # a missing key fails a positive operator and passes a negated one
    return any(one(v) for v in values)


def conditions_hold(conditions: Mapping[str, Mapping[str, Any]], keys: Mapping[str, tuple[str, ...]]) -> bool:
    return all(
        _condition_holds(operator, key, wanted, keys)
        for operator, block in conditions.items()
        for key, wanted in block.items()
    )


@dataclass
class Statement:
    effect: str
    actions: list[str]
    resources: list[str]
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_actions: bool = False
    not_resources: bool = False

    def covers_action(self, action: str) -> bool:
        hit = any(_match(a, action, case=False) for a in self.actions)
        return not hit if self.not_actions else hit

    def covers_resource(self, resource: str) -> bool:
        hit = any(_match(r, resource, case=True) for r in self.resources)
        return not hit if self.not_resources else hit

    def applies(self, request: Request) -> bool:
        return (
            self.covers_action(request.action)
            and self.covers_resource(request.resource)
            and conditions_hold(self.conditions, request.keys())
        )


@dataclass
class RolePolicy:
    """The statements of one function's role, resolved to local ARNs."""

    function: str
    statements: list[Statement]

    def allows(self, request: Request) -> bool:
        if any(s.effect == "Deny" and s.applies(request) for s in self.statements):
            return False
        return any(s.effect == "Allow" and s.applies(request) for s in self.statements)


# --- the template -------------------------------------------------------------------------------------------
class Resolver:
    """CloudFormation intrinsics -> strings, for the resources the local runtime stands in for."""

    def __init__(self, template: Mapping[str, Any], physical: Mapping[str, str], place: Place) -> None:
        self._resources = template["Resources"]
        self._physical = physical  # logical id -> the value its Ref has locally
        self._place = place

    def value(self, node: Any) -> str | None:
        """The string `node` stands for; None for AWS::NoValue."""
        if isinstance(node, str):
            return node
        if not isinstance(node, dict) or len(node) != 1:
            raise ValueError(f"not a string or one intrinsic: {node!r}")
        ((name, arg),) = node.items()
        if name == "Ref":
            return self.ref(arg)
        if name == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            if attribute != "Arn":
                raise ValueError(f"Fn::GetAtt {logical}.{attribute} is not resolved here")
            return self.arn(logical)
        if name == "Fn::Join":
            separator, parts = arg
            return separator.join(v for v in (self.value(p) for p in parts) if v is not None)
        raise ValueError(f"intrinsic {name} is not resolved here")

    def ref(self, logical: str) -> str | None:
        p = self._place
        pseudo = {
            "AWS::Partition": p.partition,
            "AWS::Region": p.region,
            "AWS::AccountId": p.account,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if logical == "AWS::NoValue":
            return None
        if logical in pseudo:
            return pseudo[logical]
        if logical not in self._physical:
            # A resource the local runtime has no counterpart for: a name that matches nothing.
            return f"unresolved:{logical}"
        if self._resources[logical]["Type"] == "AWS::Lambda::Alias":  # Ref is the ARN; locally `{name}:{alias}`
            return f"arn:{p.partition}:lambda:{p.region}:{p.account}:function:{self._physical[logical]}"
        return self._physical[logical]

    def arn(self, logical: str) -> str:
        p = self._place
        kind = self._resources[logical]["Type"]
        ref = self.ref(logical) or ""
        if ref.startswith("unresolved:") or ref.startswith("arn:"):
            return ref
        if kind == "AWS::DynamoDB::Table":
            return f"arn:{p.partition}:dynamodb:{p.region}:{p.account}:table/{ref}"
        if kind == "AWS::SQS::Queue":  # Ref is the queue URL
            account, name = ref.rstrip("/").split("/")[-2:]
            return f"arn:{p.partition}:sqs:{p.region}:{account}:{name}"
        if kind == "AWS::KMS::Key":
            return f"arn:{p.partition}:kms:{p.region}:{p.account}:key/{ref}"
        if kind == "AWS::Lambda::Function":
            return f"arn:{p.partition}:lambda:{p.region}:{p.account}:function:{ref}"
        if kind == "AWS::S3::Bucket":
            return f"arn:{p.partition}:s3:::{ref}"
        return f"unresolved:{logical}"


@dataclass
class StackPolicies:
    """The synthesized template's role policies per function (named by the function's handler module)."""

    template: dict[str, Any]
    functions: dict[str, str]  # function name (api, sink) -> handler, e.g. spool.handlers.sink.lambda_handler

    def function_id(self, function: str) -> str:
        handler = self.functions[function]
        return next(
            logical
            for logical, r in self.template["Resources"].items()
            if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler
        )

    def role_id(self, function: str) -> str:
        role = self.template["Resources"][self.function_id(function)]["Properties"]["Role"]
        return str(role["Fn::GetAtt"][0])

    def physical_ids(self, environment: Mapping[str, str]) -> dict[str, str]:
        """Logical id -> local value, read off every function's `{"Ref": X}` environment variables, and off
        those naming an alias (`{function name}:{alias}`, joined from a Ref to the alias's ARN)."""
        found: dict[str, str] = {}
        resources = self.template["Resources"]
        for function in self.functions:
            variables = resources[self.function_id(function)]["Properties"]["Environment"]
            for name, value in variables["Variables"].items():
                if name not in environment or not isinstance(value, dict):
                    continue
                if "Ref" in value:
                    found[value["Ref"]] = environment[name]
                elif "Fn::Join" in value:
                    refs = re.findall(r'\{"Ref": "([^"]+)"\}', json.dumps(value))
                    for ref in refs:
                        if resources[ref]["Type"] == "AWS::Lambda::Alias":
                            found[ref] = environment[name]
        return found

    def policy_documents(self, function: str) -> list[dict[str, Any]]:
        role = self.role_id(function)
        documents = [
            r["Properties"]["PolicyDocument"]
            for r in self.template["Resources"].values()
            if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        ]
        inline = self.template["Resources"][role]["Properties"].get("Policies", [])
        documents += [p["PolicyDocument"] for p in inline]
        if self.template["Resources"][role]["Properties"].get("ManagedPolicyArns"):
            raise ValueError(f"{function}'s role has managed policies, which this check cannot read")
        return documents

    def role_policy(self, function: str, environment: Mapping[str, str], place: Place) -> RolePolicy:
        resolver = Resolver(self.template, self.physical_ids(environment), place)
        statements: list[Statement] = []
        for document in self.policy_documents(function):
            for raw in _as_list(document["Statement"]):
                resources = raw.get("Resource", raw.get("NotResource", "*"))
                statements.append(
                    Statement(
                        effect=raw["Effect"],
                        actions=_as_list(raw.get("Action", raw.get("NotAction"))),
                        resources=[v for v in (resolver.value(r) for r in _as_list(resources)) if v is not None],
                        conditions=raw.get("Condition", {}),
                        not_actions="NotAction" in raw,
                        not_resources="NotResource" in raw,
                    )
                )
        return RolePolicy(function, statements)

    def without(self, function: str, action: str) -> StackPolicies:
        """A copy whose `function` role no longer grants `action` (for proving the check fails)."""
        template = copy.deepcopy(self.template)
        role = self.role_id(function)
        for r in template["Resources"].values():
            if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]:
                for statement in _as_list(r["Properties"]["PolicyDocument"]["Statement"]):
                    actions = [a for a in _as_list(statement["Action"]) if a.lower() != action.lower()]
                    statement["Action"] = actions or ["none:Nothing"]
        return StackPolicies(template, self.functions)


# --- the check -------------------------------------------------------------------------------------------
@dataclass
class Verdict:
    missing: list[Request]  # called, not allowed
    unused: dict[str, list[tuple[str, str]]]  # function -> (action, resource) granted, never called

    @property
    def ok(self) -> bool:
        return not self.missing

    def failure(self) -> str:
        lines = ["calls the function's role does not allow (the deployed function would get AccessDenied):"]
        for r in sorted(self.missing, key=lambda r: (r.function, r.action, r.resource)):
            keys = f" with {dict(r.context)}" if r.context else ""
            lines.append(f"  {r.function}: {r.action} on {r.resource}{keys}")
        return "\n".join(lines)


def check(policies: Iterable[RolePolicy], requests: Iterable[Request]) -> Verdict:
    """Hold every request against its function's policy; list what nothing called."""
    by_function = {p.function: p for p in policies}
    seen = list(requests)
    missing = [r for r in seen if r.function not in by_function or not by_function[r.function].allows(r)]
    unused: dict[str, list[tuple[str, str]]] = {}
    for function, policy in by_function.items():
        mine = [r for r in seen if r.function == function]
        for statement in policy.statements:
            if statement.effect != "Allow" or statement.not_actions:
                continue
            for action in statement.actions:
                if action in SERVICE_ACTIONS:
                    continue
                for resource in statement.resources:
                    used = any(
                        _match(action, r.action, case=False)
                        and _match(resource, r.resource, case=True)
                        and statement.applies(r)
                        for r in mine
                    )
                    if not used:
                        unused.setdefault(function, []).append((action, resource))
    return Verdict(missing, unused)


__all__ = ["SERVICE_ACTIONS", "RolePolicy", "StackPolicies", "Statement", "Verdict", "check", "conditions_hold"]
