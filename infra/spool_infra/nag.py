"""cdk-nag: the AwsSolutions pack runs as a CDK validation plugin; findings are acknowledged next to the
construct they concern, each with its reason (docs/infrastructure.md lists them all)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept finding `rule` (e.g. `AwsSolutions-IAM5[Resource::*]`) on `scope` and its children."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def add_checks(app: App) -> None:
    """Run AwsSolutionsChecks on every synth; an unacknowledged finding fails it."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
