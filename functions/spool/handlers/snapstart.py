"""Lambda SnapStart runtime hooks for both functions (infra: context `snapStart`, docs/infrastructure.md).

With SnapStart, Lambda runs a function's init when a version is published, snapshots the execution
environment and resumes every new environment from that snapshot. So:

- before the snapshot, each handler's `prime` does the one-time work every first request would otherwise do
  (boto3 and the clients, the Tracer, the pydantic validators, the resolver), without calling AWS: nothing
  read from AWS (the API-key pepper above all) is ever in a snapshot, and no connection is opened that a
  restored environment would find dead. Clients made here resolve credentials from the container credentials
  Lambda gives SnapStart functions and refresh them after a restore.
- after each restore, `after_restore` gives back what a snapshot makes common to every environment resumed
  from it: the state of Python's `random` (retry jitter, Powertools' log sampling, botocore's back-off), which
  would otherwise draw the same numbers in all of them. Ids (`domain/ids.py`: `secrets`; staging keys:
  `uuid4`) are drawn per call from the operating system, never held from init, so they stay unique; caches
  (`TtlCache`, the API-key cache, the sink's endpoint directory) are empty at the snapshot, since no request
  ran.

The hooks come from `snapshot_restore_py`, which Lambda's Python 3.12+ runtimes include; where it is missing
(tests, the local runtime, MiniStack without it) nothing is registered and nothing changes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from spool.observability import logger


def _hooks() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return None
    return register_before_snapshot, register_after_restore


def install(prime: Callable[[], None]) -> bool:
    """Register `prime` to run before the snapshot and `after_restore` after every restore; False where the
    runtime has no SnapStart hooks."""
    hooks = _hooks()
    if hooks is None:
        return False
    before_snapshot, after_restore_ = hooks
    before_snapshot(_guarded(prime))
    after_restore_(after_restore)
    return True


def after_restore() -> None:
    random.seed()  # from the operating system's entropy, which differs per restored environment


def _guarded(prime: Callable[[], None]) -> Callable[[], None]:
    """Priming only moves work earlier: if it fails, the version still publishes and the first request does
    what is missing (a raising hook would fail the publish)."""

    def run() -> None:
        try:
            prime()
        except Exception as exc:
            logger.warning("priming before the snapshot failed", extra={"errorType": type(exc).__name__})

    return run
