"""A fleet as the pipeline runs it: targets from SSM, one executor invocation per target from a
Step Functions Map state, the per-target results read back from S3.

How an environment with ``fleet`` runs (pipeline/fleet_state_machine.py builds the state machines):

1. **Targets** (a CodePipeline job, ``fleet_input``): the SSM parameter is read *once* and frozen
   into the stage's ``FleetInput`` artifact (``input.json``: the bundle's S3 location, the run id and
   the targets), so Execute applies to exactly the targets the approver saw planned.  The parameter
   holds a JSON list of secret ARNs (or ``{"secretArn": ..., "name": "tenant-17"}`` objects): adding
   a tenant needs no deploy.
2. **Plan** / **Execute** (the Step Functions invoke action, input ``input.json``): a Distributed Map
   invokes the executor per target (``{"action": "plan" | "apply", "target_secret_arn": ...}``) and
   writes each child's result to S3 (ResultWriter); a last state invokes the executor with
   ``fleet_summary``, which reads those results (``read_map_results``) into ``TargetOutcome`` values
   and summarises them (``summarize``).  Execute fails when any target failed, naming them;
   re-running it finishes what failed (the others are up to date).
3. **PlanReport** (a CodePipeline job, ``fleet_report``): reads the plan state machine's output
   (the summary), writes the full report as the action's artifact and answers with the output
   variables the approval reads; drift or a refusal on any target fails the stage.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict

from executor.errors import ConfigurationError, PermissionDenied, aws_error_code
from executor.fleet import FleetResult, FleetTarget, TargetOutcome, TargetStatus
from executor.pipeline_job import FleetReportVariables
from executor.plan_report import SUMMARY_MAX
from executor.vocabulary import Action

INPUT_FILE = "input.json"
MAX_INLINE_TARGETS = 2000  # the state machine's input (256 KiB) carries the list
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$")
_NAME = re.compile(r"^[\w.@:/-]{1,128}$")
FAILED_SHOWN = 100  # per-target lines kept in a summary (the state's output is limited to 256 KiB)


class ChildStatus(StrEnum):
    """A Distributed Map child execution's status, as the ResultWriter files it."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    PENDING = "PENDING"


# --------------------------------------------------------------------------------------------
# 1. the targets


class InputTarget(TypedDict):
    name: str
    secret_arn: str


class FleetInputDocument(TypedDict):
    """``input.json`` of the FleetInput artifact (the state machines' input)."""

    bundle: str
    run_id: str
    environment: str | None
    snapshot: str | None
    targets: list[InputTarget]


def parse_targets(value: str, *, parameter: str) -> list[FleetTarget]:
    """The SSM parameter's value: a JSON list of secret ARNs or ``{"secretArn", "name"}`` objects."""
    remedy = (
        f'store a JSON list in {parameter}, e.g. ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:'
        'tenants/acme-AbCdEf", {"secretArn": "arn:...", "name": "tenant-17"}]'
    )
    try:
        items = json.loads(value)
    except ValueError:
        raise ConfigurationError(f"the fleet parameter {parameter} is not JSON", remedy=remedy) from None
    if not isinstance(items, list) or not items:
        raise ConfigurationError(
            f"the fleet parameter {parameter} is not a non-empty JSON list", remedy=remedy
        )
    if len(items) > MAX_INLINE_TARGETS:
        raise ConfigurationError(
            f"the fleet parameter {parameter} lists {len(items)} targets; one environment takes at most "
            f"{MAX_INLINE_TARGETS}",
            remedy="split the fleet into several environments (each with its own parameter)",
        )
    targets: list[FleetTarget] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items, start=1):
        arn, name = (item, None) if isinstance(item, str) else (None, None)
        if isinstance(item, Mapping):
            arn, name = item.get("secretArn"), item.get("name")
        if not isinstance(arn, str) or not _SECRET_ARN.match(arn):
            raise ConfigurationError(
                f"item {index} of the fleet parameter {parameter} is not a Secrets Manager secret ARN: "
                f"{str(arn)[:120]!r}",
                remedy=remedy,
            )
        if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
            raise ConfigurationError(
                f"item {index} of the fleet parameter {parameter} has an invalid name {name!r}",
                remedy="names are 1-128 letters, digits and . @ : / - _",
            )
        if arn in seen:
            raise ConfigurationError(
                f"items {seen[arn]} and {index} of the fleet parameter {parameter} are the same secret",
                remedy="list each database once",
            )
        seen[arn] = index
        targets.append(FleetTarget(name=name or arn.rsplit(":", 1)[-1], url=arn))
    return targets


def read_targets(parameter: str, ssm: Any) -> list[FleetTarget]:
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except Exception as exc:
        code = aws_error_code(exc)
        if "AccessDenied" in code:
            raise PermissionDenied(
                f"not allowed to read the fleet parameter {parameter} ({code})",
                remedy="grant ssm:GetParameter on it to the executor's role (the CDK app does)",
            ) from None
        if code == "ParameterNotFound":
            raise ConfigurationError(
                f"the fleet parameter {parameter} does not exist",
                remedy=f"create it: aws ssm put-parameter --name {parameter} --type String --value "
                "'[\"arn:aws:secretsmanager:...\"]'",
            ) from None
        raise
    return parse_targets(value, parameter=parameter)


def fleet_input(
    *, bundle_url: str, run_id: str, environment: str | None, snapshot: str | None, targets: list[FleetTarget]
) -> FleetInputDocument:
    """``input.json``: what both of the stage's state machines start from."""
    return {
        "bundle": bundle_url,
        "run_id": run_id,
        "environment": environment,
        "snapshot": snapshot,
        "targets": [{"name": t.name, "secret_arn": t.url} for t in targets],
    }


def input_zip(document: FleetInputDocument) -> bytes:
    """The FleetInput artifact: a zip holding ``input.json`` (CodePipeline artifacts are zips)."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(INPUT_FILE, json.dumps(document, indent=2, sort_keys=True))
    return data.getvalue()


# --------------------------------------------------------------------------------------------
# 2. the Map's results


def read_map_results(details: Mapping[str, Any], s3: Any) -> list[dict[str, Any]]:
    """Every child execution's entry, from the ResultWriter's ``manifest.json`` and result files.

    ``details`` is the Map state's ``ResultWriterDetails`` (``{"Bucket", "Key"}`` of the manifest)."""
    bucket, key = details.get("Bucket"), details.get("Key")
    if not bucket or not key:
        raise ConfigurationError(
            "the fleet summary got no ResultWriterDetails",
            remedy="the summary state must receive the Distributed Map's output (ResultWriterDetails)",
        )
    manifest = _get_json(s3, bucket, key)
    entries: list[dict[str, Any]] = []
    files = manifest.get("ResultFiles") or {}
    for status in ChildStatus:
        for item in files.get(status) or []:
            for entry in _get_json(s3, manifest.get("DestinationBucket") or bucket, item["Key"]):
                entries.append({**entry, "Status": entry.get("Status") or status})
    return entries


def _get_json(s3: Any, bucket: str, key: str) -> Any:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        code = aws_error_code(exc)
        if "AccessDenied" in code:
            raise PermissionDenied(
                f"not allowed to read the fleet results s3://{bucket}/{key} ({code})",
                remedy="grant s3:GetObject on the fleet results prefix (and kms:Decrypt) to the executor",
            ) from None
        raise
    return json.loads(body)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _loads(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return {}
    return text or {}


def outcome_from_result(entry: Mapping[str, Any], fleet_action: Action) -> TargetOutcome:
    """One child execution's entry as the target's outcome."""
    item = _loads(entry.get("Input"))
    target = item.get("target") if isinstance(item, Mapping) else None
    name = (target or {}).get("name") or (target or {}).get("secret_arn") or entry.get("Name") or "?"
    if entry.get("Status") != ChildStatus.SUCCEEDED:
        cause = _loads(entry.get("Cause"))
        message = cause.get("message") if isinstance(cause, Mapping) else None
        return TargetOutcome(
            target=name,
            status=TargetStatus.FAILED,
            category=(cause.get("category") if isinstance(cause, Mapping) else None)
            or str(entry.get("Error") or ChildStatus.FAILED),
            message=message
            or str(entry.get("Cause") or entry.get("Status") or "the child execution failed")[:500],
            remedy=cause.get("remedy") if isinstance(cause, Mapping) else None,
            applied=list(cause.get("applied") or []) if isinstance(cause, Mapping) else [],
        )
    body = _loads(entry.get("Output"))
    if fleet_action == Action.PLAN:
        report = body.get("plan_report") or {}
        return TargetOutcome(
            target=name,
            status=TargetStatus.PLANNED,
            pending=list(body.get("pending") or []),
            drift=str(report.get("drift") or "none"),
            detail={"plan_report": report, "database": body.get("database")},
        )
    applied = [a["script"] if isinstance(a, Mapping) else str(a) for a in body.get("applied") or []]
    return TargetOutcome(
        target=name,
        status=TargetStatus.APPLIED if applied else TargetStatus.UP_TO_DATE,
        applied=applied,
        detail={"database": body.get("database"), "snapshot": body.get("snapshot")},
    )


# --------------------------------------------------------------------------------------------
# the summary (the state machine's output) and the report (what the pipeline shows)


def summarize(
    outcomes: Iterable[TargetOutcome], *, fleet_action: Action, environment: str | None
) -> dict[str, Any]:
    """A bounded summary of the fleet's outcomes: counts, the targets that failed or drifted, and
    for a plan the pending files with the largest table each would lock across the fleet."""
    outcomes = list(outcomes)
    result = FleetResult(outcomes=outcomes)
    failed = [o for o in outcomes if o.failed]
    drifted = [o for o in outcomes if o.drift not in (None, "none")]
    summary: dict[str, Any] = {
        "fleet_action": fleet_action,
        "environment": environment,
        "targets": len(outcomes),
        "counts": result.counts(),
        "text": result.summary(),
        "failed": [o.to_dict() for o in failed[:FAILED_SHOWN]],
        "drifted": [{"target": o.target, "drift": o.drift} for o in drifted[:FAILED_SHOWN]],
    }
    snapshots = sorted({str(o.detail["snapshot"]) for o in outcomes if o.detail.get("snapshot")})
    if snapshots:  # taken before Execute; the tenants of one instance share one
        summary["snapshots"] = snapshots[:FAILED_SHOWN]
    if fleet_action == Action.PLAN:
        pending: dict[str, int] = {}
        heaviest: dict[str, dict[str, Any]] = {}
        for o in outcomes:
            for file in o.pending:
                pending[file] = pending.get(file, 0) + 1
            for migration in (o.detail.get("plan_report") or {}).get("pending") or []:
                for line in migration.get("impact") or []:
                    key = f"{migration['file']}\t{line.get('relation')}"
                    if key not in heaviest or (line.get("bytes") or -1) > (heaviest[key].get("bytes") or -1):
                        heaviest[key] = {**line, "file": migration["file"], "target": o.target}
        summary["pending"] = [{"file": f, "targets": n} for f, n in pending.items()]
        summary["impact"] = sorted(heaviest.values(), key=lambda line: -(line.get("bytes") or 0))[:50]
    return summary


@dataclass
class FleetReport:
    summary: Mapping[str, Any]

    @property
    def fleet_action(self) -> str:
        return str(self.summary.get("fleet_action"))

    @property
    def refused(self) -> bool:
        """The stage must fail: a target failed (Execute), or failed to plan or drifted (Plan)."""
        return bool(self.summary.get("failed") or self.summary.get("drifted"))

    def drift(self) -> str:
        drifted = self.summary.get("drifted") or []
        if not drifted:
            return "none"
        return _shorten("; ".join(f"{d['target']}: {d['drift']}" for d in drifted), 200)

    def one_line(self) -> str:
        """The counts, the pending files (shortened first) and the heaviest lock on the largest table."""
        s = self.summary
        head = str(s.get("text") or "")
        if self.fleet_action == Action.PLAN and s.get("pending"):
            head += "; pending: " + ", ".join(p["file"] for p in s["pending"])
        heaviest = (s.get("impact") or [None])[0]
        tail = ""
        if heaviest:
            tail = _shorten(
                f"; heaviest: {heaviest.get('text')} on {heaviest.get('target')}", SUMMARY_MAX // 2 + 20
            )
        return _shorten(head, SUMMARY_MAX - len(tail)) + tail

    def output_variables(self, report_url: str | None, *, region: str | None) -> FleetReportVariables:
        from executor.plan_report import console_link

        return FleetReportVariables(
            pending=str(len(self.summary.get("pending") or [])),
            targets=str(self.summary.get("targets", 0)),
            summary=self.one_line(),
            drift=self.drift(),
            plan_report=report_url or "",
            plan_report_link=console_link(report_url, region) if report_url else "",
        )

    def to_text(self) -> str:
        s = self.summary
        env = s.get("environment")
        lines = [
            f"schemagate fleet {self.fleet_action}{f' for {env}' if env else ''}",
            str(s.get("text") or ""),
            "",
        ]
        if s.get("pending"):
            lines.append("pending migrations (on how many targets):")
            lines += [f"  {p['file']}  ({p['targets']} of {s.get('targets')})" for p in s["pending"]]
            lines.append("")
        if s.get("impact"):
            lines.append("what they lock, on the target where the table is largest:")
            lines += [f"  {i['file']}: {i.get('text')} on {i.get('target')}" for i in s["impact"]]
            lines.append("")
        if s.get("drifted"):
            lines.append("DRIFT (the stage fails; nothing is applied anywhere):")
            lines += [f"  {d['target']}: {d['drift']}" for d in s["drifted"]]
            lines.append("")
        if s.get("snapshots"):
            lines.append("snapshots taken before applying: " + ", ".join(s["snapshots"]))
            lines.append("")
        if s.get("failed"):
            lines.append("FAILED targets:")
            for f in s["failed"]:
                lines.append(f"  {f['target']}: [{f.get('category')}] {f.get('message')}")
                if f.get("remedy"):
                    lines.append(f"      remedy: {f['remedy']}")
            lines.append("")
            if self.fleet_action == Action.APPLY:
                lines.append(
                    "Retry the stage once they are fixed: the other targets are up to date and stay so."
                )
        return "\n".join(lines).rstrip() + "\n"
