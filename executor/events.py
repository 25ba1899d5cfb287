"""The three ways the executor Lambda is invoked, parsed into typed values at the edge.

- ``CodePipelineJob``: the Lambda invoke action's event (``{"CodePipeline.job": {...}}``), read by
  ``executor.pipeline_job`` through Powertools' ``CodePipelineJobEvent``.  Its
  ``artifactCredentials`` are temporary credentials: they are kept out of ``repr`` and registered
  for masking by the handler; the event is never logged whole.
- ``DirectInvocation``: ``{"action": "info" | "plan" | "apply", "bundle": "s3://bucket/key", ...options}``
  for operators (``aws lambda invoke``); ``{"action": "import", "from": "flyway", "bundle": "s3://...",
  "table": "schema.table" (optional), "dry_run": true (optional)}`` takes the database over from
  another migration tool (``executor.adopt``).  A fleet's Step Functions state machine adds
  ``target_secret_arn`` (the one fleet target this invocation works on), ``environment`` and the
  state machine's own steps ``snapshot`` (``snapshot``: the name prefix) and ``fleet_summary``
  (``results``: the Distributed Map's ResultWriterDetails, ``fleet_action``).
- ``CustomResourceRequest``: a CloudFormation custom resource request (``RequestType`` Create,
  Update or Delete, ``ResponseURL``, ``ResourceProperties.Bundle`` = ``s3://...``).

Options (``executor.options``; CodePipeline ``UserParameters`` JSON, direct invocation keys, or custom
resource properties in PascalCase): ``dry_run``, ``allow_out_of_order``, ``allow_missing``, ``schema``,
``lock_timeout``, ``statement_timeout``, ``search_path``, ``pipeline_execution_id`` (set it to
``#{codepipeline.PipelineExecutionId}``: the job event itself does not carry the execution id),
``artifact`` (which input artifact holds the bundle, by name; default the first).

CodePipeline ``UserParameters`` also say what the job is (``executor.pipeline_job.JOB_KEYS``): ``action``
(``apply``, the default; ``plan``: plan against this environment's database and answer with output variables;
``fleet_input``: freeze a fleet's targets into the stage's input artifact; ``fleet_report``: report
a fleet plan state machine's summary, with ``execution_arn`` and ``fleet_action``), ``environment``
(its name, shown in reports) and ``snapshot`` (the name prefix of the snapshot taken before this
Execute, named in its result).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from executor.artifact import S3Location
from executor.errors import ConfigurationError
from executor.options import RunOptions, require, text_param
from executor.pipeline_job import CodePipelineJob, is_job, parse_codepipeline_job
from executor.vocabulary import DIRECT_ACTIONS, FLEET_ACTIONS, Action

ACTIONS = DIRECT_ACTIONS
DIRECT_KEYS = (
    "action",
    "bundle",
    "from",
    "table",
    "target_secret_arn",
    "environment",
    "snapshot",
    "results",
    "fleet_action",
)


class RequestType(StrEnum):
    """A CloudFormation custom resource request's ``RequestType``."""

    CREATE = "Create"
    UPDATE = "Update"
    DELETE = "Delete"


REQUEST_TYPES = tuple(RequestType)


@dataclass(frozen=True)
class DirectInvocation:
    action: Action
    bundle: S3Location | None
    options: RunOptions
    tool: str | None = None  # import: the tool whose history table is taken over
    table: str | None = None  # import: that table, when it is not where the tool keeps it
    target_secret_arn: str | None = None  # a fleet target: its secret instead of the function's own
    environment: str | None = None
    snapshot: str | None = None  # action snapshot: the snapshot name prefix
    results: dict[str, Any] | None = None  # fleet_summary: the Map's ResultWriterDetails
    fleet_action: Action | None = None  # fleet_summary: plan or apply


@dataclass(frozen=True)
class CustomResourceRequest:
    request_type: RequestType
    request_id: str
    response_url: str = field(repr=False)  # pre-signed: a credential of its own
    stack_id: str
    logical_resource_id: str
    physical_resource_id: str | None
    bundle: S3Location | None
    options: RunOptions


Invocation = CodePipelineJob | DirectInvocation | CustomResourceRequest


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
    if request_type != RequestType.DELETE:
        if not bundle_url:
            raise ConfigurationError(
                "the custom resource has no Bundle property",
                remedy="set Bundle: s3://bucket/key of the bundle zip",
            )
        bundle = S3Location.parse(str(bundle_url))
    return CustomResourceRequest(
        request_type=RequestType(request_type),
        request_id=str(require(event, "RequestId", where)),
        response_url=str(require(event, "ResponseURL", where)),
        stack_id=str(require(event, "StackId", where)),
        logical_resource_id=str(require(event, "LogicalResourceId", where)),
        physical_resource_id=event.get("PhysicalResourceId"),
        bundle=bundle,
        options=options,
    )


def parse_direct(event: Mapping[str, Any]) -> DirectInvocation:
    given = event.get("action")
    if given not in ACTIONS:
        raise ConfigurationError(
            f"unknown action {given!r}",
            remedy=f'invoke with {{"action": one of {", ".join(ACTIONS)}, "bundle": "s3://..."}}',
        )
    action = Action(given)
    bundle_url = event.get("bundle")
    if action.needs_bundle and not bundle_url:
        raise ConfigurationError(
            f"action {action} needs a bundle",
            remedy=f'invoke with {{"action": "{action}", "bundle": "s3://bucket/key"}}',
        )
    tool = table = None
    if action is Action.IMPORT:
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
        {k: v for k, v in event.items() if k not in DIRECT_KEYS}, where="the invocation"
    )
    where = "the invocation"
    snapshot = text_param(event, "snapshot", where)
    if action is Action.SNAPSHOT and not snapshot:
        raise ConfigurationError(
            "action snapshot needs the snapshot name prefix",
            remedy='invoke with {"action": "snapshot", "snapshot": "schemagate-production-<execution id>"}',
        )
    results = event.get("results")
    fleet_action = text_param(event, "fleet_action", where)
    if action is Action.FLEET_SUMMARY and (
        not isinstance(results, Mapping) or fleet_action not in FLEET_ACTIONS
    ):
        raise ConfigurationError(
            "action fleet_summary needs results (the Map's ResultWriterDetails) and fleet_action "
            "plan or apply",
            remedy='invoke with {"action": "fleet_summary", "results": {"Bucket": ..., "Key": ...}, '
            '"fleet_action": "apply"}',
        )
    return DirectInvocation(
        action=action,
        bundle=S3Location.parse(bundle_url) if bundle_url else None,
        options=options,
        tool=tool,
        table=table,
        target_secret_arn=text_param(event, "target_secret_arn", where),
        environment=text_param(event, "environment", where),
        snapshot=snapshot,
        results=dict(results) if isinstance(results, Mapping) else None,
        fleet_action=Action(fleet_action) if fleet_action in FLEET_ACTIONS else None,
    )


def parse_event(event: object) -> Invocation:
    """Tell the three kinds apart and parse; ConfigurationError for anything else."""
    if isinstance(event, Mapping):
        if is_job(event):
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
