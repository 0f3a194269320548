"""Logger, Metrics and Tracer, created once per process and shared by the handlers.

Service names come from POWERTOOLS_SERVICE_NAME (set per function by the CDK app); the namespace defaults
to `spool.names.METRICS_NAMESPACE`, where the metric names are too. Domain modules log through the standard
`logging` module; their loggers get the same JSON formatting as `logger`.

What is logged is what an operator needs: warnings and errors (faults, failed deliveries) always, and debug
lines (the api's one line per request) only in the invocations Powertools' sampling picks, DEBUG_SAMPLE_RATE of
them unless POWERTOOLS_LOGGER_SAMPLE_RATE says otherwise. CloudWatch Logs bills every byte; a line per request
would cost more than the request's SQS share.

Tracing: Powertools' Tracer loads the X-Ray SDK when it is created, even with tracing off, and by default
patches every library it knows (importing `requests` to do so): about a third of a handler's import time
(make bench, B3). Here it is created only where tracing is on (`TRACING`), patches botocore alone (the only
client Spool's functions use), and is created on the first traced invocation or by `prime()`, which the
SnapStart hook calls before the snapshot (handlers/snapstart.py). With tracing off the SDK is never imported.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from spool.names import METRICS_NAMESPACE

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)

# Health checks and fully held-back batches publish no metric; Powertools warns on every such invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "spool")
DEBUG_SAMPLE_RATE = 0.01
logger = Logger(
    service=SERVICE,
    sampling_rate=float(os.environ.get("POWERTOOLS_LOGGER_SAMPLE_RATE", DEBUG_SAMPLE_RATE)),
)
# The sink's: it writes no debug lines, so sampling would buy it nothing, and Powertools draws the sample again
# on every warm invocation with a setLevel that clears the level cache of every logger in the process (boto3
# registers about a hundred). Powertools reuses the service's logger configured above: same handler, same JSON.
sink_logger = Logger(service=SERVICE, sampling_rate=0)
metrics = Metrics(namespace=NAMESPACE)

# What the X-Ray SDK instruments: the AWS calls. Everything else Spool's functions do is in-process.
TRACED_MODULES = ("botocore",)


def tracing_enabled(environ: Mapping[str, str]) -> bool:
    """Powertools' rule: tracing is on in a Lambda function (LAMBDA_TASK_ROOT set) unless POWERTOOLS_TRACE_DISABLED
    is true; the local runtime, tests and SAM/Chalice emulators run untraced."""
    if environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE"):
        return False
    disabled = environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on", "y", "t")
    return bool(environ.get("LAMBDA_TASK_ROOT")) and not disabled


TRACING = tracing_enabled(os.environ)


@functools.cache
def tracer() -> Tracer:
    """The process's Tracer (importing the X-Ray SDK and patching botocore); call it only where TRACING is on."""
    return Tracer(patch_modules=TRACED_MODULES)


def traced[Handler: Callable[..., Any]](handler: Handler) -> Handler:
    """`handler` under Powertools' `capture_lambda_handler` when tracing is on, the Tracer made on the first call
    (or earlier by `prime()`); `handler` itself when tracing is off."""
    if not TRACING:
        return handler
    wrapped: list[Callable[..., Any]] = []

    @functools.wraps(handler)
    def call(event: Any, context: Any) -> Any:
        if not wrapped:
            wrapped.append(tracer().capture_lambda_handler(handler))
        return wrapped[0](event, context)

    return call  # type: ignore[return-value]


def prime() -> None:
    """Do now what the first invocation would otherwise do: create the Tracer (when tracing is on)."""
    if TRACING:
        tracer()


def share_log_config() -> None:
    """Give the already imported `spool.*` standard loggers the same handler and JSON format as `logger`."""
    import logging

    names = {name for name in logging.root.manager.loggerDict if name.startswith("spool.")}
    if names:
        copy_config_to_registered_loggers(source_logger=logger, include=names)
