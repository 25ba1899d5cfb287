"""SNS notification of every run's outcome (topic from ``SCHEMAGATE_NOTIFY_TOPIC_ARN``).

The message says what was applied, by which pipeline execution, from which bundle, how long it
took, and on failure the category, the file and the remedy.  Publishing is best effort: a run
that succeeded does not fail because the topic is unreachable (the failure is logged).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from executor.observability import logger, redact

SUBJECT_MAX = 100  # SNS limit for Subject


@dataclass
class RunReport:
    status: str  # "SUCCEEDED" | "FAILED" | "IN_PROGRESS" (continuation) | "NOTHING_TO_DO"
    invocation: str  # "codepipeline" | "direct" | "custom-resource"
    run_id: str
    database: str | None = None  # user@host:port/dbname, never the password
    bundle_sha256: str | None = None
    applied: Sequence[Mapping[str, Any]] = field(default_factory=list)  # {"script", "version", "duration_ms"}
    remaining: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    dry_run: bool = False
    category: str | None = None
    message: str | None = None
    remedy: str | None = None
    file: str | None = None

    def subject(self) -> str:
        if self.status == "FAILED":
            text = f"schemagate FAILED ({self.category}) run {self.run_id}"
        elif self.status == "IN_PROGRESS":
            text = f"schemagate applied {len(self.applied)}, {len(self.remaining)} to go, run {self.run_id}"
        elif self.dry_run:
            text = f"schemagate dry run: {len(self.remaining)} pending, run {self.run_id}"
        else:
            text = f"schemagate applied {len(self.applied)} migration(s), run {self.run_id}"
        text = redact(text)
        return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 1] + "…"

    def body(self) -> str:
        lines = [f"status: {self.status}", f"run: {self.run_id} ({self.invocation})"]
        if self.database:
            lines.append(f"database: {self.database}")
        if self.bundle_sha256:
            lines.append(f"bundle: {self.bundle_sha256}")
        lines.append(f"duration: {self.duration_ms / 1000:.1f} s")
        if self.applied:
            lines.append("applied:")
            lines += [f"  {a['script']} ({a.get('duration_ms', 0):.0f} ms)" for a in self.applied]
        if self.remaining:
            lines.append("pending:" if self.status != "FAILED" else "not applied:")
            lines += [f"  {name}" for name in self.remaining]
        if self.status == "FAILED":
            lines.append(f"category: {self.category}")
            if self.file:
                lines.append(f"file: {self.file}")
            lines.append(f"error: {self.message}")
            if self.remedy:
                lines.append(f"remedy: {self.remedy}")
        lines.append("")
        lines.append(json.dumps(asdict(self), default=str, sort_keys=True))
        return redact("\n".join(lines))


def publish(report: RunReport, topic_arn: str | None, sns_client: Any | None = None) -> str | None:
    """Publish to the topic; returns the message id, or None (no topic, or publishing failed)."""
    if not topic_arn:
        return None
    try:
        if sns_client is None:
            from executor import aws_clients

            sns_client = aws_clients.client("sns")
        response = sns_client.publish(
            TopicArn=topic_arn,
            Subject=report.subject(),
            Message=report.body(),
            MessageAttributes={
                "status": {"DataType": "String", "StringValue": report.status},
                "category": {"DataType": "String", "StringValue": report.category or "NONE"},
            },
        )
        return response.get("MessageId")
    except Exception as exc:  # best effort: the run's result stands
        logger.warning(
            f"could not notify {topic_arn}: {type(exc).__name__}", extra={"notify_error": str(exc)[:300]}
        )
        return None
