"""Logger, Metrics and Tracer, created once per process and shared by the handlers.

Service names come from POWERTOOLS_SERVICE_NAME (set per function by the CDK app); the namespace defaults
to `spool.names.METRICS_NAMESPACE`, where the metric names are too. Domain modules log through the standard
`logging` module; their loggers get the same JSON formatting as `logger`.

What is logged is what an operator needs: warnings and errors (faults, failed deliveries) always, and debug
lines (the api's one line per request) only in the invocations Powertools' sampling picks, DEBUG_SAMPLE_RATE of
them unless POWERTOOLS_LOGGER_SAMPLE_RATE says otherwise. CloudWatch Logs bills every byte; a line per request
would cost more than the request's SQS share.
"""

from __future__ import annotations

import os
import warnings

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
tracer = Tracer()


def share_log_config() -> None:
    """Give the already imported `spool.*` standard loggers the same handler and JSON format as `logger`."""
    import logging

    names = {name for name in logging.root.manager.loggerDict if name.startswith("spool.")}
    if names:
        copy_config_to_registered_loggers(source_logger=logger, include=names)
