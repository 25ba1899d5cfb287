"""The CodePipeline job protocol: the job event read, and the job's two answers.

- **The event** (``{"CodePipeline.job": {...}}``) is read through Powertools' ``CodePipelineJobEvent``
  data class (job id, ``UserParameters`` as JSON, the input and output artifacts' S3 locations, the
  artifact credentials, the continuation token, the artifact store's key) into a typed
  ``CodePipelineJob``.  Whatever the event lacks is a ``ConfigurationError`` naming the missing part,
  so even a malformed job is answered (``job_id`` finds the id of anything that looks like a job).
- **Success**: ``succeed`` sends ``PutJobSuccessResult`` with the execution details, the output
  variables (a Plan job's, a fleet job's: ``PlanVariables``, ``FleetReportVariables``,
  ``FleetInputVariables``) or a ``continuationToken`` (the next invocation goes on).
- **Failure**: ``fail`` sends ``PutJobFailureResult`` with the failure's category in the message
  (``[CATEGORY] file:line: message — remedy: ...``, ``failure_text``) and CodePipeline's failure type;
  every text that leaves is redacted of the registered secrets first.

The artifact credentials are temporary credentials of the pipeline's role: they are kept out of
``repr``, registered for masking (``job_secrets``) before the event is parsed, and used only for the
artifact bucket (``artifact_s3_client``, ``write_job_artifact``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypedDict

from executor import aws_clients
from executor import observability as obs
from executor.artifact import S3Location
from executor.errors import Category, ConfigurationError, PermissionDenied, SchemagateError, aws_error_code
from executor.options import RunOptions, require, text_param
from executor.vocabulary import FLEET_ACTIONS, JOB_ACTIONS, Action, RunStatus

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.code_pipeline_job_event import (
        CodePipelineArtifact,
        CodePipelineJobEvent,
    )

CODEPIPELINE_KEY = "CodePipeline.job"
JOB_KEYS = ("action", "environment", "snapshot", "execution_arn", "fleet_action")
FAILURE_MESSAGE_MAX = 1000  # PutJobFailureResult allows 5000; the console shows the start
SUMMARY_MAX = 2048  # executionDetails.summary
EXTERNAL_ID_MAX = 1500  # executionDetails.externalExecutionId


class FailureType(StrEnum):
    """CodePipeline's ``FailureDetails.type``."""

    JOB_FAILED = "JobFailed"
    CONFIGURATION_ERROR = "ConfigurationError"
    PERMISSION_ERROR = "PermissionError"

    @classmethod
    def of(cls, category: Category) -> FailureType:
        return {
            Category.CONFIGURATION_ERROR: cls.CONFIGURATION_ERROR,
            Category.PERMISSION_DENIED: cls.PERMISSION_ERROR,
        }.get(category, cls.JOB_FAILED)


class PlanVariables(TypedDict):
    """A Plan job's output variables (``#{<namespace>.pending}`` ... in the approval)."""

    pending: str
    summary: str
    drift: str
    plan_report: str
    plan_report_link: str


class FleetReportVariables(PlanVariables):
    """A fleet_report job's: a plan's, and how many targets the fleet has."""

    targets: str


class FleetInputVariables(TypedDict):
    targets: str


OutputVariables = PlanVariables | FleetReportVariables | FleetInputVariables


def plan_variables(values: Mapping[str, str]) -> PlanVariables:
    """``PlanReport.output_variables`` as its type."""
    return PlanVariables(
        pending=values["pending"],
        summary=values["summary"],
        drift=values["drift"],
        plan_report=values["plan_report"],
        plan_report_link=values["plan_report_link"],
    )


# --------------------------------------------------------------------------------------------
# the job


@dataclass(frozen=True)
class ArtifactCredentials:
    """The pipeline's temporary credentials for its artifact bucket; never printed."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.secret_access_key, self.session_token)


@dataclass(frozen=True)
class Continuation:
    """What one invocation hands to the next through CodePipeline's ``continuationToken``.

    The history table is the truth about what is applied; the token only ties the invocations of one
    pipeline execution together (same run id, same approved bundle)."""

    run_id: str
    bundle_sha256: str
    invocation: int = 1

    def to_token(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "run_id": self.run_id,
                "bundle_sha256": self.bundle_sha256,
                "invocation": self.invocation,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_token(cls, token: str) -> Continuation:
        try:
            data = json.loads(token)
            if data.get("v") != 1:
                raise ValueError("version")
            return cls(
                run_id=str(data["run_id"]),
                bundle_sha256=str(data["bundle_sha256"]),
                invocation=int(data.get("invocation", 1)),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ConfigurationError(
                "the job's continuationToken was not written by this executor",
                remedy="retry the pipeline stage; if it persists, the Execute action is wired to "
                "another function",
            ) from None


@dataclass(frozen=True)
class CodePipelineJob:
    job_id: str
    account_id: str
    bundle: S3Location | None  # None only for fleet_report (its input is the state machine's results)
    credentials: ArtifactCredentials | None
    options: RunOptions
    continuation: Continuation | None = None
    artifact_name: str | None = None
    action: Action = Action.APPLY  # JOB_ACTIONS
    environment: str | None = None
    snapshot: str | None = None  # name prefix of the snapshot taken before this Execute
    output: S3Location | None = None  # the action's first output artifact (the plan report)
    encryption_key_id: str | None = None  # the artifact store's KMS key, for what the job writes
    execution_arn: str | None = None  # fleet_report: the fleet state machine's execution
    fleet_action: Action | None = None  # fleet_report: plan or apply

    @property
    def run_id(self) -> str:
        """The run's id: the continued run's, else the pipeline execution's, else the job's."""
        return (
            (self.continuation.run_id if self.continuation else None)
            or self.options.pipeline_execution_id
            or f"codepipeline-job-{self.job_id}"
        )


def is_job(event: object) -> bool:
    return isinstance(event, Mapping) and isinstance(event.get(CODEPIPELINE_KEY), Mapping)


def job_id(event: object) -> str | None:
    """The job id, if the event looks like a CodePipeline job at all (to report even a bad event)."""
    if isinstance(event, Mapping) and is_job(event):
        found = event[CODEPIPELINE_KEY].get("id")
        return found if isinstance(found, str) and found else None
    return None


def job_secrets(event: object) -> tuple[str, ...]:
    """The artifact credentials' secret parts, to register for masking before anything is parsed."""
    if not isinstance(event, Mapping) or not is_job(event):
        return ()
    data = event[CODEPIPELINE_KEY].get("data")
    creds = data.get("artifactCredentials") if isinstance(data, Mapping) else None
    if not isinstance(creds, Mapping):
        return ()
    return tuple(str(v) for k, v in creds.items() if k != "accessKeyId" and v)


def parse_codepipeline_job(event: Mapping[str, Any]) -> CodePipelineJob:
    # only CodePipeline jobs need the data classes: kept out of the other invocations' cold start
    from aws_lambda_powertools.utilities.data_classes.code_pipeline_job_event import CodePipelineJobEvent

    where = "CodePipeline job"
    job = CodePipelineJobEvent(dict(event))
    raw_job = event[CODEPIPELINE_KEY]
    raw_data = require(raw_job, "data", where)
    configuration = require(require(raw_data, "actionConfiguration", where), "configuration", where)
    params = _user_parameters(job) if isinstance(configuration, Mapping) else {}
    job_params = _job_parameters(params)
    options = RunOptions.parse(params, where="UserParameters", ignore=JOB_KEYS)

    chosen = _input_artifact(job, options, fleet_report=job_params["action"] is Action.FLEET_REPORT)
    bundle = _artifact_location(chosen, "input artifact") if chosen is not None else None
    outputs = job.data.output_artifacts if raw_data.get("outputArtifacts") else []
    output = _artifact_location(outputs[0], "output artifact") if outputs else None
    key = job.data.encryption_key

    credentials = None
    creds = raw_data.get("artifactCredentials")
    if isinstance(creds, Mapping) and creds.get("accessKeyId"):
        given = job.data.artifact_credentials
        credentials = ArtifactCredentials(
            access_key_id=str(given.access_key_id),
            secret_access_key=str(given.get("secretAccessKey", "")),
            session_token=str(given.get("sessionToken", "")),
        )
    token = job.data.continuation_token
    require(raw_job, "id", where)
    return CodePipelineJob(
        job_id=str(job.get_id),
        account_id=str(raw_job.get("accountId", "")),
        bundle=bundle,
        credentials=credentials,
        options=options,
        continuation=Continuation.from_token(token) if token else None,
        artifact_name=chosen.get("name") if chosen is not None else None,
        output=output,
        encryption_key_id=str(key.get_id) if key is not None and key.get("id") else None,
        **job_params,
    )


def _user_parameters(job: CodePipelineJobEvent) -> Mapping[str, Any]:
    """``UserParameters`` as a JSON object (none: ``{}``)."""
    if job.user_parameters in (None, ""):
        return {}
    try:
        params = job.decoded_user_parameters
    except (TypeError, ValueError):
        raise ConfigurationError(
            "UserParameters of the Execute action is not JSON",
            remedy='write UserParameters as a JSON object, e.g. {"schema": "public", "dry_run": false}',
        ) from None
    if not isinstance(params, Mapping):
        raise ConfigurationError(
            "UserParameters of the Execute action is not a JSON object",
            remedy='write UserParameters as a JSON object, e.g. {"schema": "public"}',
        )
    return params


def _input_artifact(
    job: CodePipelineJobEvent, options: RunOptions, *, fleet_report: bool
) -> CodePipelineArtifact | None:
    """The artifact holding the bundle: the one UserParameters names, else the first."""
    if not job.data.get("inputArtifacts"):
        if fleet_report:
            return None
        raise ConfigurationError(
            "the Execute action has no input artifact",
            remedy="give the action the Validate stage's bundle artifact",
        )
    if not all(isinstance(a, Mapping) for a in job.data["inputArtifacts"]):
        raise ConfigurationError(
            "an input artifact of the CodePipeline job is not an object",
            remedy="invoke the executor from a CodePipeline Lambda invoke action",
        )
    artifacts = job.data.input_artifacts
    if not options.artifact:
        return artifacts[0]
    # by name (Powertools' find_input_artifact wants every artifact named)
    named = next((a for a in artifacts if a.get("name") == options.artifact), None)
    if named is None:
        names = ", ".join(str(a.get("name")) for a in artifacts)
        raise ConfigurationError(
            f"UserParameters names input artifact {options.artifact!r}, but the action's inputs are {names}",
            remedy="name one of the action's input artifacts in UserParameters.artifact",
        )
    return named


def _artifact_location(artifact: CodePipelineArtifact, what: str) -> S3Location:
    location = require(artifact.raw_event, "location", what)
    if location.get("type", "S3") != "S3":
        raise ConfigurationError(
            f"{what} {artifact.get('name')} is stored in {location.get('type')}, not S3",
            remedy="use an S3 artifact store for the pipeline",
        )
    require(location, "s3Location", f"{what} location")
    s3 = artifact.location.s3_location
    require(s3.raw_event, "bucketName", "s3Location")
    require(s3.raw_event, "objectKey", "s3Location")
    return S3Location(bucket=str(s3.bucket_name), key=str(s3.key))  # the key as CodePipeline wrote it


class JobParameters(TypedDict):
    """The UserParameters that say what the job is (JOB_KEYS)."""

    action: Action
    environment: str | None
    snapshot: str | None
    execution_arn: str | None
    fleet_action: Action | None


def _job_parameters(params: Mapping[str, Any]) -> JobParameters:
    """The UserParameters that say what the job is (JOB_KEYS), checked."""
    where = "UserParameters"
    action = text_param(params, "action", where) or Action.APPLY
    if action not in JOB_ACTIONS:
        raise ConfigurationError(
            f"unknown action {action!r} in UserParameters",
            remedy=f"use one of {', '.join(JOB_ACTIONS)} (the default is apply)",
        )
    found = {key: text_param(params, key, where) for key in JOB_KEYS if key != "action"}
    fleet_action = found["fleet_action"]
    if action == Action.FLEET_REPORT:
        if not found["execution_arn"]:
            raise ConfigurationError(
                "a fleet_report job needs execution_arn",
                remedy='pass the Step Functions action\'s variable: "execution_arn": "#{<ns>.ExecutionArn}"',
            )
        if fleet_action not in FLEET_ACTIONS:
            raise ConfigurationError(
                f"a fleet_report job needs fleet_action plan or apply, not {fleet_action!r}",
                remedy='add "fleet_action": "plan" (or "apply") to UserParameters',
            )
    return JobParameters(
        action=Action(action),
        environment=found["environment"],
        snapshot=found["snapshot"],
        execution_arn=found["execution_arn"],
        fleet_action=Action(fleet_action) if fleet_action in FLEET_ACTIONS else None,
    )


# --------------------------------------------------------------------------------------------
# the artifacts the job reads and writes


def artifact_s3_client(job: CodePipelineJob, config: Any = None) -> Any:
    """An S3 client with the job's artifact credentials (the function's own role without them)."""
    if job.credentials is None:  # fall back to the function's own role
        return aws_clients.client("s3", config=config)
    return aws_clients.client(
        "s3",
        aws_access_key_id=job.credentials.access_key_id,
        aws_secret_access_key=job.credentials.secret_access_key,
        aws_session_token=job.credentials.session_token,
        config=_artifact_config(),
    )


@functools.cache  # one object: executor.aws_clients keys by its identity
def _artifact_config() -> Any:
    from botocore.config import Config

    return Config(signature_version="s3v4", connect_timeout=5, read_timeout=20, retries={"max_attempts": 3})


def write_job_artifact(job: CodePipelineJob, s3: Any, body: bytes, content_type: str) -> str | None:
    """Write ``body`` to the job's output artifact (with the job's artifact credentials, encrypted
    with the artifact store's key); returns its ``s3://`` URL, None when the action has no output."""
    if job.output is None:
        return None
    extra: dict[str, Any] = {"ContentType": content_type}
    if job.encryption_key_id:
        extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=job.encryption_key_id)
    try:
        s3.put_object(Bucket=job.output.bucket, Key=job.output.key, Body=body, **extra)
    except Exception as exc:
        code = aws_error_code(exc)
        if "AccessDenied" in code or code in ("InvalidAccessKeyId", "ExpiredToken"):
            raise PermissionDenied(
                f"the job's artifact credentials may not write {job.output.url} ({code})",
                remedy="retry the action; the pipeline's role needs write access to its artifact bucket",
            ) from None
        raise
    return job.output.url


# --------------------------------------------------------------------------------------------
# the answers


def failure_text(error: SchemagateError, limit: int = FAILURE_MESSAGE_MAX) -> str:
    """``[CATEGORY] file:line:col: message — remedy: ...``, short and without secrets."""
    text = f"[{error.category.value}] {error}".replace("\n  remedy: ", " — remedy: ")
    text = obs.redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def succeed(
    codepipeline: Any,
    job_id: str,
    run_id: str,
    summary: str,
    *,
    percent_complete: int = 100,
    output_variables: OutputVariables | None = None,
    continuation_token: str | None = None,
) -> dict[str, str]:
    """``PutJobSuccessResult``; returns the output variables as sent (redacted)."""
    variables = {k: obs.redact(str(v)) for k, v in (output_variables or {}).items()}
    params: dict[str, Any] = {"jobId": job_id}
    if output_variables is not None:
        params["outputVariables"] = variables
    if continuation_token is not None:
        params["continuationToken"] = continuation_token
    params["executionDetails"] = {
        "summary": obs.redact(summary)[:SUMMARY_MAX],
        "externalExecutionId": run_id[:EXTERNAL_ID_MAX],
        "percentComplete": percent_complete,
    }
    codepipeline.put_job_success_result(**params)
    return variables


def fail(codepipeline: Any, job_id: str, error: SchemagateError, run_id: str | None = None) -> dict[str, str]:
    """``PutJobFailureResult`` with the categorized, redacted message; returns the handler's answer."""
    details = {"type": FailureType.of(error.category).value, "message": failure_text(error)}
    if run_id is not None:
        details["externalExecutionId"] = run_id[:EXTERNAL_ID_MAX]
    codepipeline.put_job_failure_result(jobId=job_id, failureDetails=details)
    return {"status": RunStatus.FAILED, "category": error.category.value, "message": failure_text(error)}
