"""`make bench`: run B1..B7, print a table, write .bench/results.json (docs/benchmarks.md explains them).

python -m bench                 # everything (about 5.5 minutes on 2 cores)
python -m bench --only B1,B3    # some of them
python -m bench --quick         # fewer rounds and shorter local runs, for trying changes out
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS, deployed, machine

TARGETS: dict[str, tuple[str, float | None, str]] = {
    # key: (comparison, target, what)
    "B1_sink_vs_reference": ("<=", 3.0, "sink CPU/event vs bare reference, 1,000 events in 100-event bundles"),
    "B2_ingest_vs_reference": ("<=", 2.0, "api CPU/event, batch of 100, vs bare reference"),
    "B3_coldstart_vs_boto3": ("<=", 1.6, "handler module import vs `import boto3`, worst"),
    "B4_objects_vs_ideal": ("<=", 1.05, "objects for 10,000 events vs ceil(N/batchSize)"),
    "B5_p99_latency_minus_interval_s": ("<=", 2.0, "p99(visible - accepted) - flushInterval, s"),
    "B6_cost_vs_firehose": ("<=", 0.5, "cost per 1M 1 KB events vs Amazon Data Firehose (stretch 0.34)"),
    "B7_sink_peak_rss_mb": ("report", None, "sink peak RSS for a 6 MB batch, MB"),
}


@dataclass
class LocalRun:
    """One `python -m bench.local` process and the file it writes its figures to."""

    process: subprocess.Popen[bytes]
    out: Path

    @classmethod
    def start(cls, name: str, quick: bool, *extra: str) -> LocalRun:
        handle, path = tempfile.mkstemp(prefix=f"spool-bench-{name}-", suffix=".json")
        os.close(handle)
        command = [sys.executable, "-m", "bench.local", name, path, *extra, *(["--quick"] if quick else [])]
        return cls(subprocess.Popen(command, cwd=REPO), Path(path))

    def result(self) -> dict[str, Any]:
        try:
            if self.process.wait() != 0:
                raise RuntimeError(f"{' '.join(map(str, self.process.args))} failed ({self.process.returncode})")
            return dict(json.loads(self.out.read_text()))
        finally:
            self.out.unlink(missing_ok=True)


def b1(quick: bool) -> tuple[float, dict[str, Any]]:
    from bench.cpu import run_b1

    return run_b1(rounds=5 if quick else 21)


def b2(quick: bool) -> tuple[float, dict[str, Any]]:
    from bench.cpu import run_b2

    return run_b2(rounds=5 if quick else 21)


def b3(quick: bool) -> tuple[float, dict[str, Any]]:
    from bench.coldstart import run_b3

    return run_b3(runs=3 if quick else 9)


def b4(quick: bool) -> tuple[float, dict[str, Any]]:
    detail = LocalRun.start("b4", quick).result()
    detail["figures"] = {"B4_objects_vs_ideal_without_hold_back": detail["no_hold_back"]["ratio"]}
    return detail.pop("value"), detail


def b5(quick: bool) -> tuple[float, dict[str, Any]]:
    # Low traffic barely loads the machine, so the two windows run side by side in separate processes.
    runs = [
        LocalRun.start("b5", quick, "--window", "1.0"),  # the local runtime's default
        LocalRun.start("b5", quick, "--window", str(deployed().esm_window_seconds)),
    ]
    outcomes: list[dict[str, Any] | RuntimeError] = []
    for run in runs:  # wait for both, even when one failed
        try:
            outcomes.append(run.result())
        except RuntimeError as exc:
            outcomes.append(exc)
    detail, deployed_window = outcomes
    for outcome in outcomes:
        if isinstance(outcome, RuntimeError):
            raise outcome
    assert isinstance(detail, dict)
    assert isinstance(deployed_window, dict)
    detail["with_deployed_window"] = deployed_window
    detail["figures"] = {
        "B5_p99_latency_minus_interval_s_deployed_window": detail["with_deployed_window"]["p99_minus_interval_s"]
    }
    return detail.pop("value"), detail


def b6(quick: bool) -> tuple[float, dict[str, Any]]:
    from bench.cost import price_table
    from bench.prices import RECORDED, REGION

    detail = LocalRun.start("b6", quick).result()
    detail["prices"] = {"region": REGION, "recorded": RECORDED, "table": price_table()}
    detail["figures"] = {
        "B6_batch_ingest_usd_per_million": round(detail["batch"]["total_usd_per_million"], 4),
        "B6_single_event_ingest_usd_per_million": round(detail["single"]["total_usd_per_million"], 4),
        "B6_firehose_usd_per_million": round(detail["batch"]["firehose_usd_per_million"], 4),
        "B6_single_event_cost_vs_firehose": round(detail["single"]["ratio_to_firehose"], 3),
        "B6_manifests_usd_per_million": round(detail["manifests"]["total_usd_per_million"], 4),
        "B6_manifests_cost_vs_firehose": round(detail["manifests"]["ratio_to_firehose"], 3),
    }
    return detail.pop("value"), detail


def b7(quick: bool) -> tuple[float, dict[str, Any]]:
    figures: dict[str, Any] = {}
    # Import once first, so a module edited since its last import is not compiled inside the measurement.
    warm_up = "import bench.memory, bench.stubs, spool.handlers.sink, pyarrow.parquet"
    subprocess.run([sys.executable, "-c", warm_up], cwd=REPO, check=True)
    runs = {"plain": [], "trace": ["--trace"], "parquet": ["--parquet"], "parquet_trace": ["--parquet", "--trace"]}
    for name, extra in runs.items():
        done = subprocess.run(
            [sys.executable, "-m", "bench.memory", *extra], cwd=REPO, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"bench.memory failed: {done.stderr[-2000:]}")
        figures[name] = json.loads(done.stdout.strip().splitlines()[-1])
    detail = figures["plain"] | {"handler_heap_peak_mb": figures["trace"]["handler_heap_peak_mb"]}
    detail["parquet"] = figures["parquet"] | {"handler_heap_peak_mb": figures["parquet_trace"]["handler_heap_peak_mb"]}
    detail["figures"] = {"B7_sink_peak_rss_mb_parquet": figures["parquet"]["peak_rss_mb"]}
    return detail["peak_rss_mb"], detail


BENCHMARKS: dict[str, tuple[str, Callable[[bool], tuple[float, dict[str, Any]]]]] = {
    "B1": ("B1_sink_vs_reference", b1),
    "B2": ("B2_ingest_vs_reference", b2),
    "B3": ("B3_coldstart_vs_boto3", b3),
    "B4": ("B4_objects_vs_ideal", b4),
    "B5": ("B5_p99_latency_minus_interval_s", b5),
    "B6": ("B6_cost_vs_firehose", b6),
    "B7": ("B7_sink_peak_rss_mb", b7),
}


def verdict(key: str, value: float) -> str:
    _, target, _ = TARGETS[key]
    if target is None:
        return "report"
    return "met" if value <= target else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated benchmark names, e.g. B1,B3")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and shorter local runs")
    args = parser.parse_args(argv)
    chosen = [name.strip().upper() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    started = time.monotonic()
    results: dict[str, Any] = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
    }
    # With --only, the other benchmarks keep their last figures (each detail says when it was measured).
    previous = json.loads(RESULTS.read_text()) if args.only and RESULTS.exists() else {}
    figures: dict[str, float] = {key: previous[key] for key in TARGETS if key in previous}
    details: dict[str, Any] = dict(previous.get("details", {}))
    seconds: dict[str, float] = {k: v for k, v in previous.get("seconds", {}).items() if k != "total"}
    extra: dict[str, float] = dict(previous.get("more_figures", {}))
    for name in chosen:
        key, run = BENCHMARKS[name]
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        began = time.monotonic()
        value, detail = run(args.quick)
        seconds[name] = round(time.monotonic() - began, 1)
        figures[key] = round(value, 3)
        extra.update(detail.pop("figures", {}))
        details[name] = detail | {"measured": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick}
        print(f"[bench] {name} {key} = {figures[key]} ({seconds[name]} s)", file=sys.stderr, flush=True)

    results.update(figures)
    results["more_figures"] = extra
    results["targets"] = {key: {"comparison": c, "target": t, "what": w} for key, (c, t, w) in TARGETS.items()}
    results["verdicts"] = {key: verdict(key, value) for key, value in figures.items()}
    results["rerun"] = chosen
    results["details"] = details
    results["seconds"] = seconds | {"total": round(time.monotonic() - started, 1)}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")

    from bench.report import render

    print(render(results))
    print(f"\nFigures written to {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
