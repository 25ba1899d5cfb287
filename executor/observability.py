"""Structured logs and CloudWatch metrics of the Lambda executor (Powertools Logger and Metrics).

One JSON object per line on stdout.  Every line of a run carries ``pipeline_execution_id`` and
``bundle_sha256`` (``bind_run``); every failure line carries ``category`` (``executor.errors.Category``).
Everything written passes through ``redact``: values registered with ``register_secret`` (the
database password, an IAM token, the pipeline's artifact credentials) are replaced by ``***``
even if some message quotes them by accident.

Metrics use the CloudWatch embedded metric format (printed to stdout, extracted by CloudWatch
Logs): ``MigrationsApplied`` and ``Duration`` per run, ``Failures`` with a ``Category``
dimension per failed run.  Logger and metrics are created once, at import.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from executor.errors import SchemagateError

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "schemagate-executor"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "schemagate"
MASK = "***"

_secrets: set[str] = set()


def register_secret(*values: str | None) -> None:
    """Mask these values in every log line, metric, notification and failure message from now on."""
    for value in values:
        if value and len(value) >= 4:  # masking 1-3 characters would shred ordinary text
            _secrets.add(value)
            _secrets.add(json.dumps(value)[1:-1])  # as it appears inside a JSON string


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _serialize(log: dict[str, Any]) -> str:
    return redact(json.dumps(log, default=str, ensure_ascii=False, separators=(",", ":")))


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of the call (the Lambda runtime's, or a test's)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:  # logging.StreamHandler assigns it in __init__
        pass


logger = Logger(service=SERVICE, logger_handler=_StdoutHandler(), json_serializer=_serialize)
# one line per event: the Lambda runtime's root handler would print every record a second time,
# unformatted and unredacted
logging.getLogger(SERVICE).propagate = False
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

RUN_KEYS = ("pipeline_execution_id", "bundle_sha256", "invocation", "job_id", "database", "lambda_request_id")


def bind_run(**keys: Any) -> None:
    """Add keys to every following log line (``pipeline_execution_id``, ``bundle_sha256``, ...)."""
    logger.append_keys(**{k: v for k, v in keys.items() if v is not None})


def clear_run() -> None:
    logger.remove_keys(list(RUN_KEYS))


def log_failure(error: SchemagateError, message: str | None = None, **extra: Any) -> None:
    """One ERROR line with the category, the location, the rule and the remedy."""
    fields: dict[str, Any] = {
        "category": error.category.value,
        "file": error.file,
        "line": error.line,
        "column": error.column,
        "rule": error.rule,
        "remedy": error.remedy,
    }
    fields.update(extra)
    logger.error(message or error.message, extra={k: v for k, v in fields.items() if v is not None})


def record_success(*, applied: int, duration_ms: float) -> None:
    metrics.add_metric(name="MigrationsApplied", unit=MetricUnit.Count, value=applied)
    metrics.add_metric(name="Duration", unit=MetricUnit.Milliseconds, value=round(duration_ms, 1))


def record_failure(category: str, *, applied: int = 0, duration_ms: float | None = None) -> None:
    if applied:
        metrics.add_metric(name="MigrationsApplied", unit=MetricUnit.Count, value=applied)
    if duration_ms is not None:
        metrics.add_metric(name="Duration", unit=MetricUnit.Milliseconds, value=round(duration_ms, 1))
    with single_metric(
        name="Failures",
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE, "Category": category},
    ):
        pass


def flush() -> None:
    """Print the collected metrics as one EMF object (nothing when there are none)."""
    if metrics.metric_set:
        metrics.flush_metrics()
    else:
        metrics.clear_metrics()
