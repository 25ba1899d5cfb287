"""The three ways the executor Lambda is invoked, parsed into typed values at the edge.

- ``CodePipelineJob``: the Lambda invoke action's event (``{"CodePipeline.job": {...}}``).  Its
  ``artifactCredentials`` are temporary credentials: they are kept out of ``repr`` and registered
  for masking by the handler; the event is never logged whole.
- ``DirectInvocation``: ``{"action": "info" | "plan" | "apply", "bundle": "s3://bucket/key", ...options}``
  for operators (``aws lambda invoke``); ``{"action": "import", "from": "flyway", "bundle": "s3://...",
  "table": "schema.table" (optional), "dry_run": true (optional)}`` takes the database over from
  another migration tool (``executor.adopt``).
- ``CustomResourceRequest``: a CloudFormation custom resource request (``RequestType`` Create,
  Update or Delete, ``ResponseURL``, ``ResourceProperties.Bundle`` = ``s3://...``).

Options (CodePipeline ``UserParameters`` JSON, direct invocation keys, or custom resource properties
in PascalCase): ``dry_run``, ``allow_out_of_order``, ``allow_missing``, ``schema``, ``lock_timeout``,
``statement_timeout``, ``search_path``, ``pipeline_execution_id`` (set it to
``#{codepipeline.PipelineExecutionId}``: the job event itself does not carry the execution id),
``artifact`` (which input artifact holds the bundle, by name; default the first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from executor.artifact import S3Location
from executor.errors import ConfigurationError

CODEPIPELINE_KEY = "CodePipeline.job"
ACTIONS = ("info", "plan", "apply", "import")
REQUEST_TYPES = ("Create", "Update", "Delete")

_BOOL_OPTIONS = ("dry_run", "allow_out_of_order", "allow_missing")
_TEXT_OPTIONS = (
    "schema",
    "lock_timeout",
    "statement_timeout",
    "search_path",
    "pipeline_execution_id",
    "artifact",
)
KNOWN_OPTIONS = _BOOL_OPTIONS + _TEXT_OPTIONS
_SETTINGS_OPTIONS = (
    "dry_run",
    "allow_out_of_order",
    "allow_missing",
    "schema",
    "lock_timeout",
    "statement_timeout",
    "search_path",
)


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    allow_out_of_order: bool | None = None
    allow_missing: bool | None = None
    schema: str | None = None
    lock_timeout: str | None = None
    statement_timeout: str | None = None
    search_path: str | None = None
    pipeline_execution_id: str | None = None
    artifact: str | None = None

    def settings_overrides(self) -> dict[str, Any]:
        """Keyword arguments for ``ExecutorSettings.with_overrides`` (None = keep the default)."""
        return {name: getattr(self, name) for name in _SETTINGS_OPTIONS if getattr(self, name) is not None}

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, where: str, ignore: tuple[str, ...] = ()) -> RunOptions:
        unknown = sorted(set(data) - set(KNOWN_OPTIONS) - set(ignore))
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) in {where}: {', '.join(unknown)}",
                remedy=f"known options: {', '.join(KNOWN_OPTIONS)}",
            )
        values: dict[str, Any] = {}
        for name in _BOOL_OPTIONS:
            if name in data and data[name] is not None:
                values[name] = _as_bool(data[name], name=name, where=where)
        for name in _TEXT_OPTIONS:
            value = data.get(name)
            if value is None or value == "":
                continue
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ConfigurationError(
                    f"{name} in {where} must be a string", remedy=f'write it like "{name}": "..."'
                )
            values[name] = str(value)
        return cls(**values)


def _as_bool(value: Any, *, name: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"  # CloudFormation passes every property as a string
    raise ConfigurationError(
        f"{name} in {where} must be true or false, not {value!r}", remedy=f'"{name}": true'
    )


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
    bundle: S3Location
    credentials: ArtifactCredentials | None
    options: RunOptions
    continuation: Continuation | None = None
    artifact_name: str | None = None


@dataclass(frozen=True)
class DirectInvocation:
    action: str
    bundle: S3Location | None
    options: RunOptions
    tool: str | None = None  # import: the tool whose history table is taken over
    table: str | None = None  # import: that table, when it is not where the tool keeps it


@dataclass(frozen=True)
class CustomResourceRequest:
    request_type: str
    request_id: str
    response_url: str = field(repr=False)  # pre-signed: a credential of its own
    stack_id: str
    logical_resource_id: str
    physical_resource_id: str | None
    bundle: S3Location | None
    options: RunOptions


Invocation = CodePipelineJob | DirectInvocation | CustomResourceRequest


def codepipeline_job_id(event: Any) -> str | None:
    """The job id, if the event looks like a CodePipeline job at all (to report even a bad event)."""
    if isinstance(event, Mapping) and isinstance(event.get(CODEPIPELINE_KEY), Mapping):
        job_id = event[CODEPIPELINE_KEY].get("id")
        return job_id if isinstance(job_id, str) and job_id else None
    return None


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise ConfigurationError(
            f"the {where} has no {key}", remedy="invoke the executor from a CodePipeline Lambda invoke action"
        )
    return mapping[key]


def parse_codepipeline_job(event: Mapping[str, Any]) -> CodePipelineJob:
    job = event[CODEPIPELINE_KEY]
    where = "CodePipeline job"
    data = _require(job, "data", where)
    config = _require(_require(data, "actionConfiguration", where), "configuration", where)
    raw_params = config.get("UserParameters") if isinstance(config, Mapping) else None
    params: Any = {}
    if raw_params not in (None, ""):
        try:
            params = json.loads(raw_params)
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
    options = RunOptions.parse(params, where="UserParameters")

    artifacts = data.get("inputArtifacts") or []
    if not artifacts:
        raise ConfigurationError(
            "the Execute action has no input artifact",
            remedy="give the action the Validate stage's bundle artifact",
        )
    chosen = artifacts[0]
    if options.artifact:
        named = [a for a in artifacts if isinstance(a, Mapping) and a.get("name") == options.artifact]
        if not named:
            names = ", ".join(str(a.get("name")) for a in artifacts if isinstance(a, Mapping))
            raise ConfigurationError(
                f"UserParameters names input artifact {options.artifact!r}, "
                f"but the action's inputs are {names}",
                remedy="name one of the action's input artifacts in UserParameters.artifact",
            )
        chosen = named[0]
    location = _require(chosen, "location", "input artifact")
    if location.get("type", "S3") != "S3":
        raise ConfigurationError(
            f"input artifact {chosen.get('name')} is stored in {location.get('type')}, not S3",
            remedy="use an S3 artifact store for the pipeline",
        )
    s3 = _require(location, "s3Location", "input artifact location")
    bundle = S3Location(
        bucket=str(_require(s3, "bucketName", "s3Location")), key=str(_require(s3, "objectKey", "s3Location"))
    )

    creds = data.get("artifactCredentials")
    credentials = None
    if isinstance(creds, Mapping) and creds.get("accessKeyId"):
        credentials = ArtifactCredentials(
            access_key_id=str(creds["accessKeyId"]),
            secret_access_key=str(creds.get("secretAccessKey", "")),
            session_token=str(creds.get("sessionToken", "")),
        )
    token = data.get("continuationToken")
    return CodePipelineJob(
        job_id=str(_require(job, "id", where)),
        account_id=str(job.get("accountId", "")),
        bundle=bundle,
        credentials=credentials,
        options=options,
        continuation=Continuation.from_token(token) if token else None,
        artifact_name=chosen.get("name"),
    )


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def parse_custom_resource(event: Mapping[str, Any]) -> CustomResourceRequest:
    request_type = event["RequestType"]
    if request_type not in REQUEST_TYPES:
        raise ConfigurationError(
            f"unknown custom resource RequestType {request_type!r}",
            remedy=f"expected one of {', '.join(REQUEST_TYPES)}",
        )
    where = "custom resource request"
    props = event.get("ResourceProperties") or {}
    if not isinstance(props, Mapping):
        raise ConfigurationError("ResourceProperties is not an object", remedy="set Bundle: s3://bucket/key")
    snake = {_snake(k): v for k, v in props.items()}
    bundle_url = snake.pop("bundle", None)
    options = RunOptions.parse(snake, where="ResourceProperties", ignore=("service_token", "service_timeout"))
    bundle = None
    if request_type != "Delete":
        if not bundle_url:
            raise ConfigurationError(
                "the custom resource has no Bundle property",
                remedy="set Bundle: s3://bucket/key of the bundle zip",
            )
        bundle = S3Location.parse(str(bundle_url))
    return CustomResourceRequest(
        request_type=request_type,
        request_id=str(_require(event, "RequestId", where)),
        response_url=str(_require(event, "ResponseURL", where)),
        stack_id=str(_require(event, "StackId", where)),
        logical_resource_id=str(_require(event, "LogicalResourceId", where)),
        physical_resource_id=event.get("PhysicalResourceId"),
        bundle=bundle,
        options=options,
    )


def parse_direct(event: Mapping[str, Any]) -> DirectInvocation:
    action = event.get("action")
    if action not in ACTIONS:
        raise ConfigurationError(
            f"unknown action {action!r}",
            remedy=f'invoke with {{"action": one of {", ".join(ACTIONS)}, "bundle": "s3://..."}}',
        )
    bundle_url = event.get("bundle")
    if action != "info" and not bundle_url:
        raise ConfigurationError(
            f"action {action} needs a bundle",
            remedy=f'invoke with {{"action": "{action}", "bundle": "s3://bucket/key"}}',
        )
    tool = table = None
    if action == "import":
        from executor.adopt import TOOLS

        tool, table = event.get("from"), event.get("table")
        if tool not in TOOLS:
            raise ConfigurationError(
                f'import needs "from": one of {", ".join(TOOLS)} (got {tool!r})',
                remedy='invoke with {"action": "import", "from": "flyway", "bundle": "s3://bucket/key"}',
            )
        if table is not None and not isinstance(table, str):
            raise ConfigurationError("table must be a string: SCHEMA.TABLE", remedy='"table": "public.x"')
    options = RunOptions.parse(
        {k: v for k, v in event.items() if k not in ("action", "bundle", "from", "table")},
        where="the invocation",
    )
    return DirectInvocation(
        action=action,
        bundle=S3Location.parse(bundle_url) if bundle_url else None,
        options=options,
        tool=tool,
        table=table,
    )


def parse_event(event: Any) -> Invocation:
    """Tell the three kinds apart and parse; ConfigurationError for anything else."""
    if isinstance(event, Mapping):
        if isinstance(event.get(CODEPIPELINE_KEY), Mapping):
            return parse_codepipeline_job(event)
        if "RequestType" in event and "ResponseURL" in event:
            return parse_custom_resource(event)
        if "action" in event:
            return parse_direct(event)
    raise ConfigurationError(
        "the executor cannot tell what kind of invocation this is",
        remedy="invoke it from a CodePipeline Lambda action, a CloudFormation custom resource, or with "
        '{"action": "info" | "plan" | "apply", "bundle": "s3://bucket/key"}',
    )
