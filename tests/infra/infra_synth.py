"""The Spool app synthesized for assertions: stack, template, cloud assembly directory."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "infra"))

from aws_cdk import App  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from spool_infra.stack import SpoolStack, build  # noqa: E402

# Feature flags exactly as `cdk synth` sees them (they change what CDK emits, e.g. merged IAM statements).
FEATURE_FLAGS: dict[str, Any] = {
    key: value
    for key, value in json.loads((REPO / "cdk.json").read_text())["context"].items()
    if key.startswith("@aws-cdk/")
}
# No bundling: the assertions read the template, not the zip. Values the tests rely on are spelled out
# so a change of cdk.json does not silently change what is tested.
BASE_CONTEXT: dict[str, Any] = {
    **FEATURE_FLAGS,
    "bundle": False,
    "stage": "test",
    "batchSize": 1000,
    "maxConcurrency": 10,
}


class Synth:
    """One synthesized app: its stack, template and the cloud assembly directory."""

    def __init__(self, outdir: Path, context: dict[str, Any]) -> None:
        self.app = App(outdir=str(outdir), context={**BASE_CONTEXT, **context})
        self.stack: SpoolStack = build(self.app)
        self.assembly = self.app.synth()
        self.outdir = outdir
        self.template = Template.from_stack(self.stack)
        self.json: dict[str, Any] = dict(self.template.to_json())

    @property
    def template_file(self) -> Path:
        return self.outdir / f"{self.stack.stack_name}.template.json"

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.json["Resources"].items() if v["Type"] == cfn_type}

    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report


SynthFactory = Callable[[dict[str, Any]], Synth]
