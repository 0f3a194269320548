"""Integration tier: the fixtures (runtime, seaweed, api, emulator_s3, call_log) live in tests/servers.py and
are registered by tests/conftest.py; the helpers are re-exported here for the tests that import them."""

from __future__ import annotations

from tests.servers import Api, Seaweed, endpoint_drained, queue_drained, read_objects, wait_until, written_ids

__all__ = ["Api", "Seaweed", "endpoint_drained", "queue_drained", "read_objects", "wait_until", "written_ids"]
