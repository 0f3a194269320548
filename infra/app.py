"""CDK entry point (cdk.json "app"): `cdk synth`, `cdk deploy -c stage=prod`, ...

Synthesis is offline: it calls no AWS API.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python infra/app.py` puts infra/ on sys.path already; this also covers `python -m` and other launchers.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aws_cdk import App

from spool_infra.stack import build


def main() -> None:
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
