"""Synthesizes the Spool app once per session and per distinct context."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template
from infra_synth import Synth, SynthFactory


@pytest.fixture(scope="session")
def synth_with(tmp_path_factory: pytest.TempPathFactory) -> SynthFactory:
    """Synthesize with extra context; each distinct context is synthesized once per session."""
    cache: dict[str, Synth] = {}

    def make(context: dict[str, Any]) -> Synth:
        key = json.dumps(context, sort_keys=True)
        if key not in cache:
            cache[key] = Synth(tmp_path_factory.mktemp("cdk.out"), context)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def synth(synth_with: SynthFactory) -> Synth:
    return synth_with({})


@pytest.fixture(scope="session")
def template(synth: Synth) -> Template:
    return synth.template
