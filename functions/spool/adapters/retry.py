"""Retrying what an AWS batch call reports as not done (SendMessageBatch's `Failed`, BatchWriteItem's
`UnprocessedItems`). botocore's retry configuration retries failed calls, not the refused parts of a call that
succeeded, so those get another go here, with the same capped exponential back-off and full jitter as
botocore's standard mode (there: 50 ms base, 20 s cap; here the cap is short, a caller is waiting)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

PARTIAL_ATTEMPTS = 4
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_MAX_SECONDS = 1.0


def backoff_seconds(retry: int) -> float:
    """How long to wait before retry number `retry` (1 for the first): rand(0, 1) * min(base * 2^(retry-1), cap)."""
    return random.random() * min(BACKOFF_BASE_SECONDS * 2 ** (retry - 1), BACKOFF_MAX_SECONDS)


def until_done[T](send: Callable[[T], T], pending: T, *, attempts: int = PARTIAL_ATTEMPTS) -> T:
    """Call `send(pending)`, which returns what is left, until nothing is (an empty value), at most `attempts`
    times, backing off between calls. Returns what is still left after the last attempt (empty: all went)."""
    for attempt in range(1, attempts + 1):
        pending = send(pending)
        if not pending or attempt == attempts:
            break
        time.sleep(backoff_seconds(attempt))
    return pending
