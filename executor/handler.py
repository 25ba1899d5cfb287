"""The Lambda entry point: ``executor.handler.handle(event, context)``.

A thin edge that dispatches the actions: the event is parsed into a typed invocation
(``executor.events``; a CodePipeline job by ``executor.pipeline_job``, through Powertools'
``CodePipelineJobEvent``), one core function (``executor.run.execute``) fetches and verifies the
bundle, resolves the database and runs ``executor.apply``, and each kind of invocation turns the
typed outcome into its own answer:

- CodePipeline job    -> ``PutJobSuccessResult`` (with a ``continuationToken`` when the Lambda's
                         time ran short between migrations) or ``PutJobFailureResult``, both sent
                         by ``executor.pipeline_job``; a Plan job
                         (UserParameters ``{"action": "plan"}``) changes nothing, writes the plan
                         report as its output artifact and answers with output variables; a fleet's
                         ``fleet_input`` / ``fleet_report`` jobs are ``executor.fleet_pipeline``'s;
- direct invocation   -> a JSON document returned to the caller;
- custom resource     -> a ``PUT`` of the response document to the pre-signed ``ResponseURL``.

Every failure carries a category (``executor.errors.Category``), is logged once with it, counted in
the metrics, and told to the SNS topic.  The event is never logged whole: it carries the pipeline's
temporary artifact credentials (and the custom resource's pre-signed URL).

Environment, besides the documented ``SCHEMAGATE_DB_SECRET_ARN``, ``SCHEMAGATE_SIGNING_KEY_ID``,
``SCHEMAGATE_NOTIFY_TOPIC_ARN``, ``SCHEMAGATE_SCHEMA`` and ``executor.credentials``' variables:
``SCHEMAGATE_CONTINUATION_MARGIN_MS`` (default 120000): when less than this is left of the
Lambda's time after a migration, the run stops and continues in the next invocation, and no
statement may run into that margin (each migration's ``statement_timeout`` is capped by the time
left); ``SCHEMAGATE_ALLOW_UNSIGNED_BUNDLES`` (default false): without
``SCHEMAGATE_SIGNING_KEY_ID`` every bundle is refused (``SECURITY_VIOLATION``: anyone who can write
the S3 object could rewrite its SQL and its hashes) unless this is ``true``, which is for
development setups and logs a warning on every bundle it lets through; ``SCHEMAGATE_ENVIRONMENT``
(the pipeline environment's name, shown in reports); ``SCHEMAGATE_FLEET_TARGETS_PARAMETER`` (a
fleet: the SSM parameter listing its targets).

Where the Plan job writes its report: to the job's output artifact location, **with the job's
artifact credentials**, not the function's role.  The executor's role can read its database
secrets; it gets no write access to the artifact bucket (where the approved bundles lie), the
object key is CodePipeline's (a report can never overwrite another environment's or a bundle),
and the report lives and expires with the execution's other artifacts.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from executor import aws_clients, fleet_pipeline, notify
from executor import credentials as db_credentials
from executor import observability as obs
from executor import pipeline_job as job_protocol
from executor.errors import Category, ConfigurationError, MigrationRefused, SchemagateError
from executor.events import CustomResourceRequest, DirectInvocation, RequestType, parse_event
from executor.pipeline_job import CodePipelineJob, Continuation, failure_text
from executor.run import AWS_CONFIG, Outcome, as_schemagate_error, execute, target_environ
from executor.vocabulary import Action, InvocationKind, RunStatus

logger = obs.logger


class LambdaContext(Protocol):
    """What the handler reads of the Lambda context (the runtime's object, or a test's)."""

    @property
    def aws_request_id(self) -> str: ...

    def get_remaining_time_in_millis(self) -> int: ...


def _redacted(body: Mapping[str, Any]) -> dict[str, Any]:
    """The answer as JSON values, every registered secret masked."""
    answer: dict[str, Any] = json.loads(obs.redact(json.dumps(body, default=str)))
    return answer


DEFAULT_CONTINUATION_MARGIN_MS = 120_000
CFN_REASON_MAX = 1000  # the whole response document must stay under 4096 bytes


def _succeeded(invocation: InvocationKind, outcome: Outcome) -> notify.RunReport:
    applied = outcome.applied()
    status = (
        RunStatus.IN_PROGRESS
        if outcome.stopped_early
        else (RunStatus.SUCCEEDED if applied else RunStatus.NOTHING_TO_DO)
    )
    report = notify.RunReport(
        status=status,
        invocation=invocation,
        run_id=outcome.run_id,
        database=outcome.target.describe(),
        bundle_sha256=outcome.bundle.bundle_sha256 if outcome.bundle else None,
        applied=applied,
        remaining=outcome.remaining(),
        duration_ms=outcome.duration_ms,
        dry_run=outcome.dry_run or outcome.action is not Action.APPLY,
    )
    logger.info(
        outcome.result.summary() if outcome.result else f"{outcome.action} done",
        extra={
            "status": status,
            "applied": [a["script"] for a in applied],
            "remaining": report.remaining,
            "duration_ms": round(outcome.duration_ms, 1),
        },
    )
    if outcome.action is Action.APPLY and not outcome.dry_run:
        obs.record_success(applied=len(applied), duration_ms=outcome.duration_ms)
    if status is not RunStatus.IN_PROGRESS:  # the continuation's last invocation reports the whole run
        notify.publish(report, os.environ.get("SCHEMAGATE_NOTIFY_TOPIC_ARN"))
    return report


def _failed(
    invocation: InvocationKind, run_id: str, error: SchemagateError, started: float
) -> notify.RunReport:
    duration_ms = (time.monotonic() - started) * 1000
    applied = list(error.context.get("applied_before_failure", []))
    obs.log_failure(error, applied_before_failure=applied or None)
    obs.record_failure(error.category.value, applied=len(applied), duration_ms=duration_ms)
    known = logger.get_current_keys()  # what the run had established before it failed
    report = notify.RunReport(
        status=RunStatus.FAILED,
        invocation=invocation,
        run_id=run_id,
        database=known.get("database"),
        bundle_sha256=known.get("bundle_sha256"),
        duration_ms=duration_ms,
        applied=[{"script": f, "duration_ms": 0} for f in applied],
        category=error.category.value,
        message=error.message,
        remedy=error.remedy,
        file=error.location(),
    )
    notify.publish(report, os.environ.get("SCHEMAGATE_NOTIFY_TOPIC_ARN"))
    return report


# --------------------------------------------------------------------------------------------
# the three adapters


def _margin_ms() -> int:
    try:
        return int(os.environ.get("SCHEMAGATE_CONTINUATION_MARGIN_MS") or DEFAULT_CONTINUATION_MARGIN_MS)
    except ValueError:
        return DEFAULT_CONTINUATION_MARGIN_MS


def _time_left(context: LambdaContext | None) -> Callable[[], bool] | None:
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return None
    margin = _margin_ms()
    return lambda: context.get_remaining_time_in_millis() > margin


def _deadline(context: LambdaContext | None) -> float | None:
    """When every statement must have ended (time.monotonic()): the Lambda's end minus the margin."""
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return None
    return time.monotonic() + (context.get_remaining_time_in_millis() - _margin_ms()) / 1000


def _codepipeline_client() -> Any:
    return aws_clients.client("codepipeline", config=AWS_CONFIG)


def _region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def _fail_job(
    codepipeline: Any, job: CodePipelineJob, error: SchemagateError, started: float
) -> dict[str, str]:
    _failed(InvocationKind.CODEPIPELINE, job.run_id, error, started)
    return job_protocol.fail(codepipeline, job.job_id, error, job.run_id)


def _artifact_s3_client(job: CodePipelineJob) -> Any:
    return job_protocol.artifact_s3_client(job, AWS_CONFIG)


def handle_plan_job(job: CodePipelineJob, context: LambdaContext | None) -> dict[str, Any]:
    """A Plan action: verify the bundle against this environment's database, change nothing, write
    the plan report, answer with the output variables the approval reads.  Drift or any other
    refusal fails the job, so nobody is asked to approve what cannot run."""
    started = time.monotonic()
    run_id = job.run_id
    obs.bind_run(invocation=InvocationKind.CODEPIPELINE, job_id=job.job_id, pipeline_execution_id=run_id)
    logger.info(f"CodePipeline job {job.job_id}: plan of {job.bundle.url if job.bundle else '?'}")
    codepipeline = _codepipeline_client()
    s3 = _artifact_s3_client(job)
    try:
        outcome = execute(Action.PLAN, job.bundle, s3, job.options, run_id, environment=job.environment)
        report = outcome.plan_report
        assert report is not None
        url = job_protocol.write_job_artifact(
            job, s3, obs.redact(report.to_text()).encode(), "text/plain; charset=utf-8"
        )
    except Exception as exc:
        return _fail_job(codepipeline, job, as_schemagate_error(exc), started)
    logger.info(
        f"plan: {report.summary()}",
        extra={"pending": [p.file for p in report.pending], "drift": report.drift(), "plan_report": url},
    )
    if report.refusals:
        first = report.refusals[0]
        error = type(first)(
            f"the plan refuses this bundle on {report.database}: {report.drift()}"
            + (f"; the full plan: {url}" if url else ""),
            remedy=first.remedy,
            file=first.file,
            rule=first.rule,
            category=first.category,
        )
        return _fail_job(codepipeline, job, error, started)
    variables = job_protocol.plan_variables(report.output_variables(url, region=_region()))
    sent = job_protocol.succeed(
        codepipeline, job.job_id, run_id, variables["summary"], output_variables=variables
    )
    return {"status": RunStatus.PLANNED, **sent}


def _fleet_input(job: CodePipelineJob, s3: Any) -> tuple[job_protocol.FleetInputVariables, str]:
    """Freeze the fleet's targets (read once from SSM) into the stage's FleetInput artifact."""
    parameter = os.environ.get("SCHEMAGATE_FLEET_TARGETS_PARAMETER", "").strip()
    if not parameter or job.bundle is None:
        raise ConfigurationError(
            "a fleet_input job needs SCHEMAGATE_FLEET_TARGETS_PARAMETER and the bundle as its input",
            remedy="deploy the environment with fleet.targetsParameter (the CDK app wires both)",
        )
    targets = fleet_pipeline.read_targets(parameter, aws_clients.client("ssm", config=AWS_CONFIG))
    document = fleet_pipeline.fleet_input(
        bundle_url=job.bundle.url,
        run_id=job.run_id,
        environment=job.environment,
        snapshot=job.snapshot,
        targets=targets,
    )
    url = job_protocol.write_job_artifact(job, s3, fleet_pipeline.input_zip(document), "application/zip")
    summary = f"{len(targets)} target(s) from {parameter} frozen for this execution"
    logger.info(summary, extra={"fleet_input": url})
    return {"targets": str(len(targets))}, summary


def _fleet_report(job: CodePipelineJob, s3: Any) -> tuple[job_protocol.FleetReportVariables, str]:
    """Report the fleet state machine's summary; drift or a failed target refuses the stage."""
    states = aws_clients.client("stepfunctions", config=AWS_CONFIG)
    execution = states.describe_execution(executionArn=job.execution_arn)
    if execution.get("status") != "SUCCEEDED":
        raise ConfigurationError(
            f"the fleet's {job.fleet_action} state machine execution is {execution.get('status')}",
            remedy="open the execution in the Step Functions console",
        )
    report = fleet_pipeline.FleetReport(json.loads(execution.get("output") or "{}"))
    url = job_protocol.write_job_artifact(
        job, s3, obs.redact(report.to_text()).encode(), "text/plain; charset=utf-8"
    )
    variables = report.output_variables(url, region=_region())
    if report.refused:
        drift = report.drift()
        problem = f"drift: {drift}" if drift != "none" else variables["summary"]
        raise MigrationRefused(
            f"fleet {job.fleet_action} refused: {problem}" + (f"; the full report: {url}" if url else ""),
            rule="fleet-drift" if drift != "none" else "fleet-target-failed",
            remedy="fix the targets named in the report; nothing was applied anywhere"
            if job.fleet_action is Action.PLAN
            else "fix the targets named in the report, then retry the stage",
            category=Category.CHECKSUM_MISMATCH if drift != "none" else None,
        )
    return variables, variables["summary"]


def handle_fleet_job(job: CodePipelineJob, context: LambdaContext | None) -> dict[str, Any]:
    """A fleet environment's ``fleet_input`` (freeze the targets) or ``fleet_report`` job."""
    started = time.monotonic()
    obs.bind_run(invocation=InvocationKind.CODEPIPELINE, job_id=job.job_id, pipeline_execution_id=job.run_id)
    logger.info(f"CodePipeline job {job.job_id}: {job.action} for {job.environment or 'the fleet'}")
    codepipeline = _codepipeline_client()
    s3 = _artifact_s3_client(job)
    variables: job_protocol.OutputVariables
    try:
        if job.action is Action.FLEET_INPUT:
            variables, summary = _fleet_input(job, s3)
        else:
            variables, summary = _fleet_report(job, s3)
    except Exception as exc:
        return _fail_job(codepipeline, job, as_schemagate_error(exc), started)
    sent = job_protocol.succeed(codepipeline, job.job_id, job.run_id, summary, output_variables=variables)
    return {"status": RunStatus.SUCCEEDED, **sent}


def _snapshot_note(job: CodePipelineJob) -> str:
    """`` after snapshot <name>`` for an Execute that a Snapshot step preceded."""
    if not job.snapshot:
        return ""
    from executor.snapshot import snapshot_name, snapshot_source

    arn = os.environ.get("SCHEMAGATE_DB_SECRET_ARN", "")
    try:
        secret = db_credentials.read_secret(arn) if arn else {}
        name = snapshot_name(job.snapshot, snapshot_source(secret, os.environ).identifier)
    except Exception:  # only a note in the summary: the snapshot step itself reported any problem
        name = f"{job.snapshot}-*"
    return f" after snapshot {name}"


def handle_codepipeline(job: CodePipelineJob, context: LambdaContext | None) -> dict[str, Any]:
    if job.action is Action.PLAN:
        return handle_plan_job(job, context)
    if job.action.is_fleet_job:
        return handle_fleet_job(job, context)
    started = time.monotonic()
    run_id = job.run_id
    invocation_no = job.continuation.invocation + 1 if job.continuation else 1
    obs.bind_run(invocation=InvocationKind.CODEPIPELINE, job_id=job.job_id, pipeline_execution_id=run_id)
    assert job.bundle is not None  # only fleet_report jobs have none, and they were handled above
    logger.info(
        f"CodePipeline job {job.job_id}: bundle {job.bundle.url}"
        + (f" (continuing, invocation {invocation_no})" if job.continuation else ""),
        extra={"artifact": job.artifact_name, "dry_run": job.options.dry_run},
    )
    codepipeline = _codepipeline_client()
    try:
        outcome = execute(
            Action.APPLY,
            job.bundle,
            _artifact_s3_client(job),
            job.options,
            run_id,
            should_continue=_time_left(context),
            expected_bundle_sha256=job.continuation.bundle_sha256 if job.continuation else None,
            deadline=_deadline(context),
        )
    except Exception as exc:
        return _fail_job(codepipeline, job, as_schemagate_error(exc), started)

    report = _succeeded(InvocationKind.CODEPIPELINE, outcome)
    applied = len(report.applied)
    assert outcome.bundle is not None  # an apply always has its bundle
    if outcome.stopped_early:
        token = Continuation(
            run_id=run_id, bundle_sha256=outcome.bundle.bundle_sha256, invocation=invocation_no
        ).to_token()
        done = applied / max(1, applied + len(report.remaining))
        job_protocol.succeed(
            codepipeline,
            job.job_id,
            run_id,
            f"applied {applied}, {len(report.remaining)} left: continuing",
            percent_complete=int(done * 100),
            continuation_token=token,
        )
        return {"status": RunStatus.IN_PROGRESS, "applied": report.applied, "remaining": report.remaining}
    summary = outcome.result.summary() if outcome.result else "done"
    if job.options.dry_run:
        summary = f"dry run: {len(report.remaining)} migration(s) would be applied"
    summary += _snapshot_note(job)
    job_protocol.succeed(
        codepipeline, job.job_id, run_id, f"{summary} (bundle {outcome.bundle.bundle_sha256[:12]})"
    )
    return {"status": report.status, "applied": report.applied, "remaining": report.remaining}


def _direct_failure(request: DirectInvocation, run_id: str, error: SchemagateError) -> dict[str, Any]:
    return {
        "ok": False,
        "action": request.action,
        "run_id": run_id,
        **{
            k: (obs.redact(v) if isinstance(v, str) else v)
            for k, v in error.to_dict().items()
            if k != "context"
        },
        "applied": list(error.context.get("applied_before_failure") or []),
    }


def handle_fleet_step(request: DirectInvocation, run_id: str) -> dict[str, Any]:
    """The fleet state machine's own steps: ``snapshot`` (one target's instance or cluster) and
    ``fleet_summary`` (the Map's results, read back from S3)."""
    if request.action is Action.SNAPSHOT:
        from executor.snapshot import snapshot_source, take_snapshot

        environ = target_environ(request.target_secret_arn) or os.environ
        arn = environ.get("SCHEMAGATE_DB_SECRET_ARN", "")
        secret = db_credentials.read_secret(arn) if arn else {}
        state = take_snapshot(
            request.snapshot or "",
            snapshot_source(secret, environ),
            aws_clients.client("rds", config=AWS_CONFIG),
            environment=request.environment or os.environ.get("SCHEMAGATE_ENVIRONMENT") or None,
            run_id=run_id,
        )
        logger.info(f"snapshot {state.snapshot} of {state.kind} {state.source}: {state.status}")
        return {"ok": True, "action": Action.SNAPSHOT, "run_id": run_id, **state.to_dict()}
    entries = fleet_pipeline.read_map_results(
        request.results or {}, aws_clients.client("s3", config=AWS_CONFIG)
    )
    fleet_action = request.fleet_action or Action.APPLY
    outcomes = [fleet_pipeline.outcome_from_result(e, fleet_action) for e in entries]
    summary = fleet_pipeline.summarize(
        outcomes,
        fleet_action=fleet_action,
        environment=request.environment or os.environ.get("SCHEMAGATE_ENVIRONMENT") or None,
    )
    logger.info(
        f"fleet {fleet_action}: {summary['text']}", extra={"failed": [f["target"] for f in summary["failed"]]}
    )
    return {"ok": not summary["failed"], "action": Action.FLEET_SUMMARY, "run_id": run_id, **summary}


def handle_direct(request: DirectInvocation, context: LambdaContext | None) -> dict[str, Any]:
    started = time.monotonic()
    run_id = request.options.pipeline_execution_id or f"lambda-{getattr(context, 'aws_request_id', 'local')}"
    obs.bind_run(invocation=InvocationKind.DIRECT, pipeline_execution_id=run_id)
    fleet_target = request.target_secret_arn is not None
    try:
        if request.action.is_fleet_step:
            return _redacted(handle_fleet_step(request, run_id))
        outcome = execute(
            request.action,
            request.bundle,
            aws_clients.client("s3", config=AWS_CONFIG),
            request.options,
            run_id,
            should_continue=_time_left(context),
            deadline=_deadline(context),
            target_secret_arn=request.target_secret_arn,
            environment=request.environment,
            tool=request.tool,
            table=request.table,
        )
    except Exception as exc:
        error = as_schemagate_error(exc)
        if request.action is Action.APPLY and not fleet_target:
            _failed(InvocationKind.DIRECT, run_id, error, started)
        else:  # a fleet is told of once, by its summary; its targets still count in the metrics
            obs.log_failure(error)
            if request.action is Action.APPLY:
                obs.record_failure(error.category.value, duration_ms=(time.monotonic() - started) * 1000)
        return _direct_failure(request, run_id, error)
    body: dict[str, Any] = {
        "ok": True,
        "action": request.action,
        "run_id": run_id,
        "database": outcome.target.describe(),
        "bundle_sha256": outcome.bundle.bundle_sha256 if outcome.bundle else None,
        "duration_ms": round(outcome.duration_ms, 1),
    }
    if outcome.infos is not None:
        body["migrations"] = [i.to_dict() for i in outcome.infos]
    if outcome.takeover is not None:
        t = outcome.takeover
        logger.info(t.summary(), extra={"tool": t.tool, "imported": len(t.to_write) if t.written else 0})
        body.update(
            summary=t.summary(),
            tool=t.tool,
            table=t.table,
            written=t.written,
            imported=[{"script": r.script, "version": r.version, "type": r.type} for r in t.to_write],
            already_imported=len(t.already),
            notes=t.notes,
        )
    if outcome.result is not None:
        if request.action is Action.APPLY and not fleet_target:
            _succeeded(InvocationKind.DIRECT, outcome)
        elif request.action is Action.APPLY and not outcome.dry_run:
            obs.record_success(applied=len(outcome.applied()), duration_ms=outcome.duration_ms)
        applying = request.action is Action.APPLY and not outcome.dry_run
        body.update(
            summary=outcome.result.summary() if applying else outcome.result.plan.summary(),
            applied=outcome.applied(),
            pending=outcome.remaining(),
            stopped_early=outcome.stopped_early,
            refusals=[failure_text(r) for r in outcome.result.plan.refusals],
        )
    if outcome.plan_report is not None:
        body["plan_report"] = outcome.plan_report.to_dict()
    return _redacted(body)


def _physical_id(request: CustomResourceRequest) -> str:
    if request.physical_resource_id:
        return request.physical_resource_id
    stack_name = (
        request.stack_id.split(":stack/")[-1].split("/")[0] if ":stack/" in request.stack_id else "stack"
    )
    return f"schemagate:{stack_name}:{request.logical_resource_id}"[:1024]


def send_cfn_response(response_url: str, document: dict[str, Any]) -> None:
    """PUT the response document to the pre-signed URL (no Content-Type: it is not signed)."""
    import urllib.request  # only custom resources need it: kept out of the cold start

    body = json.dumps(document).encode("utf-8")
    if urlsplit(response_url).scheme not in ("https", "http"):
        logger.error(
            "the custom resource ResponseURL is not an http(s) URL", extra={"category": "CONFIGURATION_ERROR"}
        )
        return
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        response_url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    last: Exception | None = None
    for attempt in range(3):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                logger.info(f"custom resource response sent: {document['Status']} (HTTP {response.status})")
                return
        except Exception as exc:
            last = exc
            time.sleep(0.5 * (attempt + 1))
    logger.error(
        f"could not send the custom resource response: {type(last).__name__}",
        extra={"category": Category.CONNECTION_ERROR.value},
    )


def handle_custom_resource(request: CustomResourceRequest, context: LambdaContext | None) -> dict[str, Any]:
    started = time.monotonic()
    run_id = request.options.pipeline_execution_id or f"cloudformation-{request.request_id}"
    obs.bind_run(invocation=InvocationKind.CUSTOM_RESOURCE, pipeline_execution_id=run_id)
    document: dict[str, Any] = {
        "Status": "SUCCESS",
        "PhysicalResourceId": _physical_id(request),
        "StackId": request.stack_id,
        "RequestId": request.request_id,
        "LogicalResourceId": request.logical_resource_id,
        "NoEcho": False,
    }
    if request.request_type is RequestType.DELETE:
        logger.info("custom resource Delete: migrations are never reverted by a stack deletion")
        send_cfn_response(request.response_url, document)
        return document
    try:
        outcome = execute(
            Action.APPLY,
            request.bundle,
            aws_clients.client("s3", config=AWS_CONFIG),
            request.options,
            run_id,
            should_continue=_time_left(context),
            deadline=_deadline(context),
        )
        if outcome.stopped_early:
            raise ConfigurationError(
                f"the Lambda ran short of time: {len(outcome.applied())} migration(s) applied, "
                f"{len(outcome.remaining())} left",
                remedy="raise the function's timeout, or deploy again (applied migrations stay applied)",
                context={"applied_before_failure": [a["script"] for a in outcome.applied()]},
            )
        report = _succeeded(InvocationKind.CUSTOM_RESOURCE, outcome)
        document["Data"] = {
            "BundleSha256": outcome.bundle.bundle_sha256 if outcome.bundle else "",
            "Applied": str(len(report.applied)),
        }
    except Exception as exc:
        error = as_schemagate_error(exc)
        _failed(InvocationKind.CUSTOM_RESOURCE, run_id, error, started)
        document.update(Status="FAILED", Reason=failure_text(error, CFN_REASON_MAX))
    send_cfn_response(request.response_url, document)
    return document


# --------------------------------------------------------------------------------------------
# the entry point


def _unparseable(event: object, error: SchemagateError) -> dict[str, Any]:
    """The event could not be parsed: still answer whoever waits for an answer."""
    started = time.monotonic()
    job_id = job_protocol.job_id(event)
    if job_id:
        obs.bind_run(invocation=InvocationKind.CODEPIPELINE, job_id=job_id)
        _failed(InvocationKind.CODEPIPELINE, f"codepipeline-job-{job_id}", error, started)
        return job_protocol.fail(_codepipeline_client(), job_id, error)
    if isinstance(event, dict) and isinstance(event.get("ResponseURL"), str) and "RequestId" in event:
        obs.log_failure(error)
        send_cfn_response(
            event["ResponseURL"],
            {
                "Status": "FAILED",
                "Reason": failure_text(error, CFN_REASON_MAX),
                "PhysicalResourceId": str(
                    event.get("PhysicalResourceId") or f"schemagate:{event.get('LogicalResourceId')}"
                ),
                "StackId": event.get("StackId"),
                "RequestId": event.get("RequestId"),
                "LogicalResourceId": event.get("LogicalResourceId"),
            },
        )
        return {"Status": "FAILED"}
    obs.log_failure(error)
    return {"ok": False, **{k: v for k, v in error.to_dict().items() if k != "context"}}


def handle(event: dict[str, Any], context: LambdaContext | None = None) -> dict[str, Any]:
    """Lambda handler.  Never logs ``event``; always answers CodePipeline / CloudFormation."""
    try:
        obs.bind_run(lambda_request_id=getattr(context, "aws_request_id", None))
        obs.register_secret(*job_protocol.job_secrets(event))
        if isinstance(event, dict) and isinstance(event.get("ResponseURL"), str):
            obs.register_secret(event["ResponseURL"])
        try:
            invocation = parse_event(event)
        except SchemagateError as error:
            return _unparseable(event, error)
        if isinstance(invocation, CodePipelineJob):
            return handle_codepipeline(invocation, context)
        if isinstance(invocation, CustomResourceRequest):
            return handle_custom_resource(invocation, context)
        return handle_direct(invocation, context)
    finally:
        obs.flush()
        obs.clear_run()
