"""Shared helpers: interleaved CPU-time ratios, percentiles, machine facts, and settings read from the CDK app."""

from __future__ import annotations

import ast
import contextlib
import gc
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / ".bench" / "results.json"
INFRA = REPO / "infra" / "spool_infra"


@dataclass(frozen=True)
class Ratio:
    """Subject against reference: medians over rounds, each round timing both `reps` times back to back."""

    ratio: float
    subject_seconds: float
    reference_seconds: float
    rounds: int
    reps: int

    def as_dict(self, per: int = 1) -> dict[str, float | int]:
        """Figures per call, or per item when one call handles `per` items (events)."""
        return {
            "ratio": round(self.ratio, 3),
            "subject_us": round(self.subject_seconds / per * 1e6, 2),
            "reference_us": round(self.reference_seconds / per * 1e6, 2),
            "rounds": self.rounds,
            "reps": self.reps,
        }


def measure_ratio(
    subject: Callable[[], object],
    reference: Callable[[], object],
    *,
    rounds: int,
    sample_seconds: float = 0.05,
    clock: Callable[[], float] = time.thread_time,
) -> Ratio:
    """CPU time of `subject` over `reference`, interleaved so that noise from other processes hits both alike.

    Each round times `reps` calls of one, then `reps` of the other (the order alternates between rounds) and
    yields one ratio; the result is the median of those ratios. `reps` is chosen so that one sample of the
    subject takes about `sample_seconds` of CPU.
    """
    for _ in range(3):  # warm caches on both sides (endpoint directory, pydantic, ids)
        subject()
        reference()
    start = clock()
    subject()
    once = max(clock() - start, 1e-6)
    reps = max(1, math.ceil(sample_seconds / once))
    ratios: list[float] = []
    subject_times: list[float] = []
    reference_times: list[float] = []
    for n in range(rounds):
        order = [(subject, subject_times), (reference, reference_times)]
        if n % 2:
            order.reverse()
        for fn, out in order:
            gc.collect()
            start = clock()
            for _ in range(reps):
                fn()
            out.append((clock() - start) / reps)
        ratios.append(subject_times[-1] / reference_times[-1])
    return Ratio(
        statistics.median(ratios), statistics.median(subject_times), statistics.median(reference_times), rounds, reps
    )


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolated percentile (pct in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def machine() -> dict[str, Any]:
    """Where the figures came from."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def infra_value(module: str, name: str) -> Any:
    """A constant (or a settings field's default) of the CDK app, read from its source.

    Importing the CDK app starts a jsii node process and takes seconds; the benchmarks only need a few numbers
    (memory sizes, the event source mapping's batch size and window), and must follow the app when they change.
    """
    tree = ast.parse((INFRA / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
        named = isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name
        if named and node.value is not None:
            return ast.literal_eval(node.value)
    raise KeyError(f"{name} not found in infra/spool_infra/{module}")


@dataclass(frozen=True)
class Deployed:
    """The deployed stack's defaults that the benchmarks mirror."""

    api_memory_mb: int
    sink_memory_mb: int
    esm_batch_size: int
    esm_window_seconds: int
    architecture: str


def deployed() -> Deployed:
    return Deployed(
        api_memory_mb=infra_value("api.py", "API_MEMORY_MB"),
        sink_memory_mb=infra_value("ingest.py", "SINK_MEMORY_MB"),
        esm_batch_size=infra_value("settings.py", "batch_size"),
        esm_window_seconds=infra_value("settings.py", "max_batching_window_seconds"),
        architecture=infra_value("settings.py", "architecture"),
    )
