"""Snapshot before apply: the executor starts an RDS instance or Aurora cluster snapshot, and the
state machine asks again every minute until it is available, before Execute runs.

The executor's ``snapshot`` action is idempotent (it finds the snapshot it already started), so the
loop is: invoke -> available? -> wait 60 s -> invoke.  ``snapshot_steps`` is that loop; a single
database's environment runs it alone (``SnapshotStateMachine``, started by the pipeline's Step
Functions action), a fleet's Execute runs it per target before applying
(``pipeline.fleet_state_machine``), and the tenants on one instance share its one snapshot.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline.nag_policy import acknowledge, logical_id

POLL = Duration.seconds(60)


def snapshot_steps(
    scope: Construct, function: lambda_.IFunction, *, fleet: bool, environment: str, then: sfn.IChainable
) -> sfn.IChainable:
    """invoke ``snapshot`` -> available? -> (wait, again) -> ``then``; the answer at ``$.snapshot_state``."""
    payload = {
        "action": "snapshot",
        "snapshot.$": "$.snapshot",
        "environment": environment,
        "pipeline_execution_id.$": "$.run_id",
    }
    if fleet:
        payload["target_secret_arn.$"] = "$.target.secret_arn"  # noqa: S105 (a JSON path)
    take = tasks.LambdaInvoke(
        scope,
        "Snapshot",
        lambda_function=function,
        payload=sfn.TaskInput.from_object(payload),
        payload_response_only=True,
        result_path="$.snapshot_state",
    )
    wait = sfn.Wait(scope, "SnapshotNotYetAvailable", time=sfn.WaitTime.duration(POLL))
    wait.next(take)
    take.next(
        sfn.Choice(scope, "SnapshotAvailable")
        .when(
            sfn.Condition.boolean_equals("$.snapshot_state.ok", False),
            sfn.Fail(
                scope,
                "SnapshotFailed",
                error_path="$.snapshot_state.category",
                cause_path=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.snapshot_state")),
            ),
        )
        .when(sfn.Condition.boolean_equals("$.snapshot_state.available", True), then)
        .otherwise(wait)
    )
    return take


class SnapshotStateMachine(Construct):
    """One database's snapshot before Execute.  Input ``{"snapshot": prefix, "run_id", ...}``;
    output the snapshot's state (name, source, status).  Exposes ``state_machine``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine_name: str,
        function: lambda_.IFunction,
        environment: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        done = sfn.Succeed(self, "SnapshotTaken", output_path="$.snapshot_state")
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            comment=f"schemagate {environment}: snapshot the database before migrations are applied",
            definition_body=sfn.DefinitionBody.from_chainable(
                snapshot_steps(self, function, fleet=False, environment=environment, then=done)
            ),
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "Logs", retention=log_retention), level=sfn.LogLevel.ALL
            ),
            tracing_enabled=True,
            timeout=Duration.hours(6),
        )
        acknowledge(
            self.state_machine,
            f"AwsSolutions-IAM5[Resource::<{logical_id(function)}.Arn>:*]",
            "CDK's LambdaInvoke grant: the executor function's versions and aliases.",
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions' X-Ray tracing and log delivery APIs have no resource-level permissions.",
        )
