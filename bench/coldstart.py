"""B3: the cold-start cost of each handler module, as whole-process import time against `import boto3`.

Each case is a fresh interpreter (`python -c "import ..."`) with the environment the CDK app gives the
function (Lambda's task root set, so Powertools Tracer is live and patches botocore as in a deployed function
with tracing on). Cases run interleaved, after one unmeasured warm-up each (so both sides find compiled
bytecode, as a deployed bundle does). CPU time (user + system of the child) is the figure, because it does
not move when the other core is busy; wall time is reported beside it.

A second set of runs imports with no bytecode cache at all (an empty PYTHONPYCACHEPREFIX, nothing written):
that is a cold start from Spool's asset as bundled today, which leaves out every .pyc (infra/spool_infra/
bundling.py) while Lambda's /var/task is read-only, so every module is compiled again on every cold start.

`sink_parquet` is the cold start of a sink whose first flush is for a Parquet endpoint: the handler module
and then pyarrow (imported only then, domain/encoding.py). Its ratio to `sink` is in more_figures
(B3_sink_parquet_vs_sink); B3 itself stays the worst of api and sink.

The first request after a cold start (`api_first`, `sink_first`, bench/first_request.py): a fresh process
imports the handler and serves one recorded request (a single event; the sink's invocation writing it) with
every AWS reply played back, so all that the module import leaves to the first request (boto3 and the
clients, the Tracer, validators) is in it. Beside it, the CPU of that first invocation alone after the
handler's SnapStart `prime()` ran: a restored environment's first request, less the restore.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO
from bench.first_request import record

CASES = {
    "python": "pass",
    "boto3": "import boto3",
    "api": "import spool.handlers.api",
    "sink": "import spool.handlers.sink",
    "sink_parquet": "import spool.handlers.sink, pyarrow, pyarrow.parquet",
}
HANDLERS = ("api", "sink")


def lambda_environment() -> dict[str, str]:
    env = dict(os.environ)
    # The warm cases must find compiled bytecode, as a deployed bundle would (the warm-up writes it): a shell
    # that sets PYTHONDONTWRITEBYTECODE would otherwise make every case compile its libraries again on every
    # run, boto3's most of all, and the ratios meaningless. The no-bytecode case sets it on purpose.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        {
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": "spool-bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "LAMBDA_TASK_ROOT": str(REPO / "functions"),
            "POWERTOOLS_SERVICE_NAME": "spool-bench",
            "POWERTOOLS_METRICS_NAMESPACE": "Spool",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_TRACE_DISABLED": "false",
        }
    )
    return env


def run_once(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one `python -c code`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        failed = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True)
        raise RuntimeError(f"`python -c {code!r}` failed: {failed.stderr[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall


def measure(cases: dict[str, str], env: dict[str, str], runs: int, *, warm_up: bool) -> dict[str, Any]:
    """Median CPU and wall milliseconds per case, and each handler's ratio to `import boto3`."""
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    wall: dict[str, list[float]] = {name: [] for name in cases}
    if warm_up:
        for code in cases.values():
            run_once(code, env)
    for n in range(runs):
        for name in list(cases) if n % 2 == 0 else list(reversed(cases)):
            spent, elapsed = run_once(cases[name], env)
            cpu[name].append(spent)
            wall[name].append(elapsed)
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    median_wall = {name: statistics.median(values) for name, values in wall.items()}
    return {
        "runs": runs,
        "cpu_ms": {name: round(value * 1000, 1) for name, value in median_cpu.items()},
        "wall_ms": {name: round(value * 1000, 1) for name, value in median_wall.items()},
        "ratio_cpu": {name: round(median_cpu[name] / median_cpu["boto3"], 3) for name in HANDLERS},
        "ratio_wall": {name: round(median_wall[name] / median_wall["boto3"], 3) for name in HANDLERS},
        "parquet_vs_sink_cpu": round(median_cpu["sink_parquet"] / median_cpu["sink"], 3),
        "parquet_vs_sink_wall": round(median_wall["sink_parquet"] / median_wall["sink"], 3),
    }


FIRST = ("api", "sink")


def first_request_code(role: str, recording: str, *, primed: bool = False) -> str:
    extra = ", '--primed'" if primed else ""
    return f"import sys; from bench.first_request import main; sys.exit(main([{role!r}, {recording!r}{extra}]))"


def primed_invocation_ms(role: str, recording: str, env: dict[str, str], runs: int) -> float:
    """Median CPU ms of the first invocation after `prime()`, as the child measures it."""
    spent = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", first_request_code(role, recording, primed=True)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        spent.append(json.loads(done.stdout.strip().splitlines()[-1])["invocation_cpu_ms"])
    return round(statistics.median(spent), 1)


def run_b3(*, runs: int) -> tuple[float, dict[str, Any]]:
    env = lambda_environment()
    with tempfile.TemporaryDirectory(prefix="spool-bench-b3-") as folder:
        recording = str(Path(folder) / "recording.json")
        record(Path(recording))
        cases = CASES | {f"{role}_first": first_request_code(role, recording) for role in FIRST}
        detail = measure(cases, env, runs, warm_up=True)
        detail["primed_invocation_cpu_ms"] = {role: primed_invocation_ms(role, recording, env, runs) for role in FIRST}
    boto3_ms = detail["cpu_ms"]["boto3"]
    detail["first_request_vs_boto3"] = {role: round(detail["cpu_ms"][f"{role}_first"] / boto3_ms, 3) for role in FIRST}
    with tempfile.TemporaryDirectory(prefix="spool-bench-nopyc-") as empty:
        uncached = env | {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty}
        cases = {name: code for name, code in CASES.items() if name != "python"}
        detail["without_bytecode_cache"] = measure(cases, uncached, max(3, runs // 2), warm_up=False)
    detail["figures"] = {
        "B3_sink_parquet_vs_sink": detail["parquet_vs_sink_cpu"],
        # Loading pyarrow's shared libraries is mostly reading files: wall time shows it more than CPU.
        "B3_sink_parquet_vs_sink_wall": detail["parquet_vs_sink_wall"],
        "B3_sink_parquet_import_cpu_ms": detail["cpu_ms"]["sink_parquet"],
        "B3_sink_parquet_vs_sink_without_bytecode_cache": detail["without_bytecode_cache"]["parquet_vs_sink_cpu"],
        "B3_api_first_request_vs_boto3": detail["first_request_vs_boto3"]["api"],
        "B3_sink_first_request_vs_boto3": detail["first_request_vs_boto3"]["sink"],
        "B3_api_first_request_cpu_ms": detail["cpu_ms"]["api_first"],
        "B3_sink_first_request_cpu_ms": detail["cpu_ms"]["sink_first"],
        "B3_api_primed_invocation_cpu_ms": detail["primed_invocation_cpu_ms"]["api"],
        "B3_sink_primed_invocation_cpu_ms": detail["primed_invocation_cpu_ms"]["sink"],
    }
    return max(detail["ratio_cpu"].values()), detail
