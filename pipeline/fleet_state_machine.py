"""A fleet's Plan or Execute: a Distributed Map that invokes the executor once per target.

Input (the stage's ``FleetInput`` artifact, ``input.json``, written by the ``fleet_input`` job)::

    {"bundle": "s3://...", "run_id": "<pipeline execution>", "environment": "tenants",
     "snapshot": "schemagate-tenants-<execution>", "targets": [{"name": ..., "secret_arn": ...}]}

Per target (a STANDARD child execution: a snapshot can take longer than an express one may run):
[``snapshot`` until available ->] ``plan`` | ``apply`` (invoked again while the executor stopped
early for lack of time) -> the executor's answer; an answer that is not ``ok`` fails the child with
``Error`` = its category and ``Cause`` = the answer as JSON.  The Map stops the rollout when more
than ``tolerated_failure_percentage`` of the children failed, and writes every child's result to
``results_bucket/results_prefix`` (ResultWriter).  Then the executor's ``fleet_summary`` reads
them back; Execute fails when any target failed, naming them (a retry re-runs every target: the
ones already done are up to date).  Plan's output is the summary, which the ``fleet_report`` job
turns into the approval's variables.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline.nag_policy import (
    acknowledge,
    acknowledge_key_grants,
    acknowledge_state_machine_grants,
    finding_partition,
    logical_id,
)
from pipeline.snapshot_state_machine import snapshot_steps

RUN_ID = "$$.Execution.Input.run_id"


def invoke(
    scope: Construct, construct_id: str, function: lambda_.IFunction, payload: dict, *, result_path: str
) -> tasks.LambdaInvoke:
    """The executor, synchronously; its answer at ``result_path`` (the state's input is kept)."""
    return tasks.LambdaInvoke(
        scope,
        construct_id,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(payload),
        payload_response_only=True,
        result_path=result_path,
    )


def fail_unless_ok(scope: Construct, construct_id: str, answer: str) -> sfn.Fail:
    """A child that failed: Error = the executor's category, Cause = its whole answer (no secrets)."""
    return sfn.Fail(
        scope,
        construct_id,
        error_path=f"{answer}.category",
        cause_path=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at(answer)),
    )


class FleetStateMachine(Construct):
    """Exposes ``state_machine`` and ``map_state``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine_name: str,
        function: lambda_.IFunction,
        action: str,  # "plan" | "apply"
        environment: str,
        max_concurrency: int,
        tolerated_failure_percentage: int,
        results_bucket: s3.IBucket,
        results_key: kms.IKey,
        results_prefix: str,
        snapshot: bool,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.state_machine_name = state_machine_name
        verb = action.capitalize()
        run = invoke(
            self,
            verb,
            function,
            {
                "action": action,
                "bundle.$": "$.bundle",
                "target_secret_arn.$": "$.target.secret_arn",
                "environment": environment,
                "pipeline_execution_id.$": "$.run_id",
            },
            result_path="$.answer",
        )
        done: sfn.IChainable = sfn.Succeed(self, f"{verb}Done", output_path="$.answer")
        if snapshot:  # the target's result names the snapshot taken before it
            done = sfn.Pass(
                self,
                "NameTheSnapshot",
                parameters={"answer.$": "States.JsonMerge($.answer, $.snapshot_named, false)"},
            ).next(done)
        run.next(
            sfn.Choice(self, f"{verb}Answered")
            .when(
                sfn.Condition.boolean_equals("$.answer.ok", False),
                fail_unless_ok(self, f"{verb}Failed", "$.answer"),
            )
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.answer.stopped_early"),
                    sfn.Condition.boolean_equals("$.answer.stopped_early", True),
                ),
                run,  # the Lambda ran short of time between migrations: the next invocation continues
            )
            .otherwise(done)
        )
        per_target: sfn.IChainable = run
        if snapshot:
            named = sfn.Pass(
                self,
                "SnapshotTaken",
                parameters={"snapshot.$": "$.snapshot_state.snapshot"},
                result_path="$.snapshot_named",
            )
            named.next(run)
            per_target = snapshot_steps(self, function, fleet=True, environment=environment, then=named)

        self.map_state = sfn.DistributedMap(
            self,
            f"{verb}EachTarget",
            items_path="$.targets",
            item_selector={
                "target.$": "$$.Map.Item.Value",
                "bundle.$": "$.bundle",
                "run_id.$": "$.run_id",
                "snapshot.$": "$.snapshot",
            },
            max_concurrency=max_concurrency,
            tolerated_failure_percentage=tolerated_failure_percentage,
            map_execution_type=sfn.StateMachineType.STANDARD,
            result_writer_v2=sfn.ResultWriterV2(
                bucket=results_bucket,
                prefix=results_prefix,
                writer_config=sfn.WriterConfig(
                    output_type=sfn.OutputType.JSON, transformation=sfn.Transformation.NONE
                ),
            ),
        )
        self.map_state.item_processor(per_target)
        summary = invoke(
            self,
            "Summarize",
            function,
            {
                "action": "fleet_summary",
                "results.$": "$.ResultWriterDetails",
                "fleet_action": action,
                "environment": environment,
                "pipeline_execution_id.$": RUN_ID,
            },
            result_path="$",
        )
        chain = sfn.Chain.start(self.map_state).next(summary)
        if action == "apply":
            chain = chain.next(
                sfn.Choice(self, "AllApplied")
                .when(
                    sfn.Condition.boolean_equals("$.ok", False),
                    sfn.Fail(self, "TargetsFailed", error="FleetTargetsFailed", cause_path="$.text"),
                )
                .otherwise(sfn.Succeed(self, "Applied"))
            )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            comment=f"schemagate {environment}: {action} on every target of the fleet",
            definition_body=sfn.DefinitionBody.from_chainable(chain),
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "Logs", retention=log_retention),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,  # answers carry no secrets, but they stay in the results
            ),
            tracing_enabled=True,
            timeout=Duration.days(7),  # the pipeline's Step Functions action waits at most that long
        )
        results_key.grant_encrypt_decrypt(self.state_machine)  # ResultWriter writes into the KMS bucket
        self._acknowledge(function, results_bucket, results_prefix)

    def _acknowledge(self, function: lambda_.IFunction, bucket: s3.IBucket, prefix: str) -> None:
        acknowledge(
            self.state_machine,
            f"AwsSolutions-IAM5[Resource::<{logical_id(function)}.Arn>:*]",
            "CDK's LambdaInvoke grant: the executor function's versions and aliases.",
        )
        acknowledge(
            self.state_machine,
            f"AwsSolutions-IAM5[Resource::arn:{finding_partition(self)}:s3:::<{logical_id(bucket)}>/*]",
            f"The Map's ResultWriter writes the results under {prefix}/ of the artifact bucket.",
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions' X-Ray tracing and log delivery APIs have no resource-level permissions.",
        )
        acknowledge_key_grants(self.state_machine, who="the fleet state machine (ResultWriter)")
        # the Distributed Map starts and stops child executions of this very state machine
        acknowledge_state_machine_grants(self, self.state_machine, who="the Distributed Map's children")
