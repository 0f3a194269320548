"""Infrastructure fixtures: the synthesized app comes from tests/conftest.py (`synth_with`, `synth`), shared
with the integration tier's grant check so one pytest session synthesizes once."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template
from infra_synth import Synth


@pytest.fixture(scope="session")
def template(synth: Synth) -> Template:
    return synth.template
