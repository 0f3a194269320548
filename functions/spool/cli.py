"""`spool admin ...`: tenants, API keys and DLQ redrive, against the local runtime or a deployed stack.

Target selection: `--stack NAME` reads a deployed stack's CloudFormation outputs, with the credentials and
region of the usual AWS configuration (`--region` overrides the region). Without it, the CLI uses the local
runtime that `make dev` describes in `.spool/runtime.json`: its emulator URL, region and resource names, and
the emulator's fixed credentials, so it needs no AWS configuration at all. Every client comes from the
target's session with the target's endpoint; nothing is read from or written to the AWS environment
variables for the local runtime. Every command prints, as its last line, one JSON object, so scripts can
read `tail -n 1`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError
from pydantic import ValidationError

from spool.adapters.redrive import CLI_PASS_SECONDS, ScanLease, belonging_to, redrive
from spool.domain.errors import SpoolError, location
from spool.domain.limits import ENDPOINTS_PER_TENANT_DEFAULT
from spool.domain.tenants import Tenants
from spool.handlers.wiring import build_tenants
from spool.local.runtime import EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY, LocalSettings, RuntimeDescription
from spool.names import StackOutput


class CliError(Exception):
    """A clear, user-facing error; printed without a traceback."""


@dataclass(frozen=True)
class Target:
    table_name: str
    pepper_secret_id: str
    queue_url: str
    dlq_url: str
    session: boto3.session.Session
    endpoint_url: str | None = None

    @classmethod
    def named(
        cls, found: Mapping[str, Any], keys: Mapping[str, str], session: boto3.session.Session, endpoint_url: str | None
    ) -> Target:
        """The target whose resources `found` names under `keys` (a Target field: its key); a missing key raises
        KeyError."""
        return cls(**{field: found[key] for field, key in keys.items()}, session=session, endpoint_url=endpoint_url)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]


# The outputs a deployed stack names its resources under (the local runtime describes its own: RuntimeDescription).
_STACK_KEYS = {
    "table_name": StackOutput.TABLE_NAME.value,
    "pepper_secret_id": StackOutput.PEPPER_SECRET_ARN.value,
    "queue_url": StackOutput.QUEUE_URL.value,
    "dlq_url": StackOutput.DLQ_URL.value,
}


def resolve_target(stack: str | None, region: str | None, state_dir: Path) -> Target:
    """The deployed stack `stack` (in `region`, default the AWS configuration's), else the local runtime
    described in `state_dir`."""
    if stack:
        return _stack_target(stack, region)
    if region:
        raise CliError("--region goes with --stack; the local runtime's region is in its runtime.json")
    return _local_target(state_dir / RuntimeDescription.FILE_NAME)


def _stack_target(stack: str, region: str | None) -> Target:
    session = boto3.session.Session(region_name=region)
    try:
        cloudformation = session.client("cloudformation")
    except NoRegionError:
        raise CliError(f"no AWS region for stack {stack!r}: set AWS_REGION or use --region") from None
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except (ClientError, BotoCoreError) as exc:
        raise CliError(f"cannot read stack {stack!r} in {session.region_name}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    try:
        return Target.named(outputs, _STACK_KEYS, session, endpoint_url=None)
    except KeyError as missing:
        raise CliError(f"stack {stack!r} has no output {missing}; is it a Spool stack?") from None


def _local_target(described: Path) -> Target:
    if not described.exists():
        raise CliError(f"no --stack given and no local runtime found ({described}); start one with `make dev`")
    try:
        local = RuntimeDescription.model_validate_json(described.read_text())
    except ValidationError as exc:
        missing = ", ".join(location(error) for error in exc.errors())
        raise CliError(f"{described} does not describe a runtime ({missing}); restart it (`make dev`)") from None
    session = boto3.session.Session(
        aws_access_key_id=EMULATOR_ACCESS_KEY_ID,
        aws_secret_access_key=EMULATOR_SECRET_ACCESS_KEY,
        region_name=local.region,
    )
    return Target(
        table_name=local.tableName,
        pepper_secret_id=local.pepperSecretId,
        queue_url=local.queueUrl,
        dlq_url=local.dlqUrl,
        session=session,
        endpoint_url=local.awsEndpointUrl,
    )


def tenants_for(target: Target) -> Tenants:
    return build_tenants(
        target.client("dynamodb"), target.client("secretsmanager"), target.table_name, target.pepper_secret_id
    )


def run(args: argparse.Namespace, state_dir: Path) -> dict[str, Any]:
    target = resolve_target(getattr(args, "stack", None), getattr(args, "region", None), state_dir)
    if args.area == "redrive":
        moved, complete = 0, False
        lease = ScanLease(target.client("dynamodb"), target.table_name)
        keep = belonging_to(args.tenant, args.endpoint)
        while not complete:  # passes of CLI_PASS_SECONDS until a scan found nothing left
            passed, complete = redrive(
                target.client("sqs"), target.dlq_url, target.queue_url, keep, lease, seconds=CLI_PASS_SECONDS
            )
            moved += passed
        print(f"moved {moved} message(s) from the DLQ back to the ingest queue")
        return {"moved": moved}
    tenants = tenants_for(target)
    repo = tenants.repo
    if args.area == "tenant" and args.action == "create":
        tenant, api_key = tenants.create_tenant(args.name)
        print(f"tenant {tenant.id} ({tenant.name}) created; its API key is shown once, keep it safe")
        return {"tenantId": tenant.id, "name": tenant.name, "apiKey": api_key}
    if args.area == "tenant" and args.action == "list":
        found = repo.list_tenants()
        for t in found:
            limit = t.endpointLimit or ENDPOINTS_PER_TENANT_DEFAULT
            print(f"{t.id}  {t.createdAt}  {t.endpointCount}/{limit} endpoints  {t.name}")
        return {
            "tenants": [
                {
                    "tenantId": t.id,
                    "name": t.name,
                    "createdAt": t.createdAt,
                    "endpoints": t.endpointCount,
                    "endpointLimit": t.endpointLimit or ENDPOINTS_PER_TENANT_DEFAULT,
                }
                for t in found
            ]
        }
    if args.area == "tenant" and args.action == "set-limit":
        tenants.set_endpoint_limit(args.tenant_id, args.endpoints)
        print(f"tenant {args.tenant_id} may have {args.endpoints} active endpoints")
        return {"tenantId": args.tenant_id, "endpointLimit": args.endpoints}
    if args.area == "key" and args.action == "create":
        record, api_key = tenants.create_key(args.tenant_id)
        print(f"key {record.keyId} created for {record.tenantId}; shown once, keep it safe")
        return {"tenantId": record.tenantId, "keyId": record.keyId, "apiKey": api_key}
    if args.area == "key" and args.action == "list":
        keys = repo.list_keys(args.tenant_id)
        for k in keys:
            print(f"{k.keyId}  {k.createdAt}  {'revoked' if k.revoked else 'active'}")
        return {"keys": [{"keyId": k.keyId, "createdAt": k.createdAt, "revoked": k.revoked} for k in keys]}
    if args.area == "key" and args.action == "revoke":
        tenants.revoke_key(args.tenant_id, args.key_id)
        print(f"key {args.key_id} revoked; the API refuses it within 30 seconds (its key cache)")
        return {"tenantId": args.tenant_id, "keyId": args.key_id, "revoked": True}
    raise CliError("unknown command")


def parser() -> argparse.ArgumentParser:
    # `--stack` and `--region` may stand before or after the subcommand (`spool admin --stack S tenant list`
    # or `spool admin tenant list --stack S`).
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument(
        "--stack",
        default=argparse.SUPPRESS,
        help="a deployed stack's name (default: the local runtime of `make dev`)",
    )
    target.add_argument(
        "--region",
        default=argparse.SUPPRESS,
        help="the stack's AWS region (default: AWS_REGION or the AWS configuration's)",
    )
    top = argparse.ArgumentParser(prog="spool", description="Spool administration")
    commands = top.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("admin", help="tenants, API keys, DLQ redrive", parents=[target])
    areas = admin.add_subparsers(dest="area", required=True)

    def leaf(group: Any, name: str, description: str) -> argparse.ArgumentParser:
        found: argparse.ArgumentParser = group.add_parser(name, help=description, parents=[target])
        return found

    tenant = areas.add_parser("tenant", help="create or list tenants").add_subparsers(dest="action", required=True)
    leaf(tenant, "create", "create a tenant and its first API key").add_argument("name")
    leaf(tenant, "list", "list tenants")
    limit = leaf(tenant, "set-limit", "set a tenant's limit on active endpoints (default 100)")
    limit.add_argument("tenant_id")
    limit.add_argument("--endpoints", type=int, required=True, help="most active endpoints, 1-10000")

    key = areas.add_parser("key", help="create, list or revoke API keys").add_subparsers(dest="action", required=True)
    leaf(key, "create", "create another API key for a tenant").add_argument("tenant_id")
    leaf(key, "list", "list a tenant's keys (never the keys themselves)").add_argument("tenant_id")
    revoke = leaf(key, "revoke", "revoke a key")
    revoke.add_argument("tenant_id")
    revoke.add_argument("key_id")

    again = leaf(areas, "redrive", "move DLQ messages back to the ingest queue")
    again.add_argument("--tenant", help="only this tenant's messages")
    again.add_argument("--endpoint", help="only this endpoint's messages")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = run(args, Path(LocalSettings.from_env().state_dir))
    except (CliError, SpoolError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS call failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
