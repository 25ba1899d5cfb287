"""One environment of the promotion: its executor and its stage, Plan -> Approve -> Execute.

The one signed bundle the Validate stage built goes through every environment in order; each
environment's stage (named after it) is, with ``runOrder``:

- one database: ``Plan`` (the executor, ``{"action": "plan"}``: output variables, plan report
  artifact) -> ``Approve`` (unless ``approval: false``) -> ``Snapshot`` (``snapshotBeforeApply``:
  a Step Functions state machine) -> ``Execute`` (the executor Lambda, or a CodeBuild build in the
  VPC with ``"executor": "codebuild"``);
- a fleet: ``Targets`` (the targets frozen from SSM into ``FleetInput_<env>``) -> ``Plan`` (a
  Distributed Map state machine) -> ``PlanReport`` (output variables, report artifact) ->
  ``Approve`` -> ``Execute`` (a Distributed Map state machine, snapshot first if asked).

Each environment has its own executor function and role: it reads only its own database secret (a
fleet: the secrets tagged with its name), verifies with the signing key, and may snapshot only its
own instance.  Exposes ``executor``, ``actions`` (the stage's), ``plan_namespace``,
``state_machines``.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from pipeline.approval_gate import ApprovalGate
from pipeline.artifact_store import ArtifactStore
from pipeline.codebuild_executor import CodeBuildExecutor
from pipeline.config import EnvironmentConfig, ExecutorKind
from pipeline.executor_function import DatabaseTarget, ExecutorFunction
from pipeline.fleet_state_machine import FleetStateMachine
from pipeline.schemagate_wheel import SchemagateWheel
from pipeline.snapshot_state_machine import SnapshotStateMachine

EXECUTION_ID = codepipeline.GlobalVariables.EXECUTION_ID
FLEET_INPUT_FILE = "input.json"  # executor.fleet_pipeline.INPUT_FILE


def snapshot_prefix(environment: EnvironmentConfig) -> str:
    """What every snapshot of this environment's name starts with (the IAM grant's pattern)."""
    return f"schemagate-{environment.slug}"


class DeploymentEnvironment(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: EnvironmentConfig,
        target: DatabaseTarget,
        pipeline_name: str,
        signing_key: kms.IKey,
        topic: sns.ITopic,
        store: ArtifactStore,
        bundle: codepipeline.Artifact,
        source_namespace: str,
        validate_namespace: str,
        validate_exports: tuple[str, ...],
        approval_timeout: Duration,
        executor_timeout: Duration,
        architecture: str,
        log_retention: logs.RetentionDays,
        prebuilt_code_dir: str | None,
        wheel: SchemagateWheel,
    ) -> None:
        super().__init__(scope, construct_id)
        env = environment
        self.environment = env
        self.executor = ExecutorFunction(
            self,
            "Executor",
            target=target,
            signing_key=signing_key,
            topic=topic,
            schema=env.schema,
            timeout=executor_timeout,
            architecture=architecture,
            log_retention=log_retention,
            environment_name=env.name,
            prebuilt_code_dir=prebuilt_code_dir,
        )
        function = self.executor.function
        self.plan_namespace = f"Plan-{env.name}"
        self.plan_report = codepipeline.Artifact(f"PlanReport_{env.name}")
        self.state_machines: dict[str, sfn.StateMachine] = {}
        named_snapshot = f"{snapshot_prefix(env)}-{EXECUTION_ID}"
        self.actions: list[actions.Action] = []
        # action index -> the file a Step Functions action reads from its input artifact (see
        # DeliveryPipeline: CDK renders FilePath inputs as "artifact::file", CodePipeline wants the path)
        self.input_files: dict[int, str] = {}
        run_order = 1

        def add(action: actions.Action) -> None:
            nonlocal run_order
            self.actions.append(action)
            run_order += 1

        if env.fleet is not None:
            fleet_input = codepipeline.Artifact(f"FleetInput_{env.name}")
            plan_name = f"{pipeline_name}-{env.slug}-plan"
            fleet = env.fleet

            def state_machine(construct_id: str, name: str, action: str, snapshot: bool) -> FleetStateMachine:
                return FleetStateMachine(
                    self,
                    construct_id,
                    state_machine_name=name,
                    action=action,
                    results_prefix=f"fleet-results/{env.slug}/{action}",
                    snapshot=snapshot,
                    function=function,
                    environment=env.name,
                    max_concurrency=fleet.max_concurrency,
                    tolerated_failure_percentage=fleet.tolerated_failure_percentage,
                    results_bucket=store.bucket,
                    results_key=store.key,
                    log_retention=log_retention,
                )

            plan = state_machine("FleetPlan", plan_name, "plan", False)
            execute = state_machine(
                "FleetExecute", f"{pipeline_name}-{env.slug}-apply", "apply", env.snapshot_before_apply
            )
            self.state_machines = {"plan": plan.state_machine, "apply": execute.state_machine}
            self.executor.allow_fleet(
                targets_parameter=env.fleet.targets_parameter,
                bundle_bucket=store.bucket,
                plan_state_machine_name=plan_name,
            )
            add(
                actions.LambdaInvokeAction(
                    action_name="Targets",
                    lambda_=function,
                    inputs=[bundle],
                    outputs=[fleet_input],
                    user_parameters={
                        "action": "fleet_input",
                        "environment": env.name,
                        "snapshot": named_snapshot,
                        "pipeline_execution_id": EXECUTION_ID,
                    },
                    variables_namespace=f"Targets-{env.name}",
                    run_order=run_order,
                )
            )
            self.input_files[len(self.actions)] = FLEET_INPUT_FILE
            add(
                actions.StepFunctionInvokeAction(
                    action_name="Plan",
                    state_machine=plan.state_machine,
                    state_machine_input=actions.StateMachineInput.file_path(
                        fleet_input.at_path(FLEET_INPUT_FILE)
                    ),
                    variables_namespace=f"PlanFleet-{env.name}",
                    run_order=run_order,
                )
            )
            add(
                actions.LambdaInvokeAction(
                    action_name="PlanReport",
                    lambda_=function,
                    outputs=[self.plan_report],
                    user_parameters={
                        "action": "fleet_report",
                        "fleet_action": "plan",
                        "environment": env.name,
                        "execution_arn": f"#{{PlanFleet-{env.name}.ExecutionArn}}",
                        "pipeline_execution_id": EXECUTION_ID,
                    },
                    variables_namespace=self.plan_namespace,
                    run_order=run_order,
                )
            )
        else:
            add(
                actions.LambdaInvokeAction(
                    action_name="Plan",
                    lambda_=function,
                    inputs=[bundle],
                    outputs=[self.plan_report],
                    user_parameters={
                        "action": "plan",
                        "environment": env.name,
                        "pipeline_execution_id": EXECUTION_ID,
                    },
                    variables_namespace=self.plan_namespace,
                    run_order=run_order,
                )
            )
        self.approval: ApprovalGate | None = None
        if env.approval:
            self.approval = ApprovalGate(
                self,
                "Approval",
                environment=env.name,
                plan_namespace=self.plan_namespace,
                fleet=env.fleet is not None,
                topic=topic,
                source_namespace=source_namespace,
                validate_namespace=validate_namespace,
                validate_exports=validate_exports,
                timeout=approval_timeout,
                run_order=run_order,
            )
            add(self.approval.action)
        if env.snapshot_before_apply:
            self.executor.allow_snapshots(snapshot_prefix=snapshot_prefix(env))
        if env.fleet is not None:
            self.input_files[len(self.actions)] = FLEET_INPUT_FILE
            add(
                actions.StepFunctionInvokeAction(
                    action_name="Execute",
                    state_machine=self.state_machines["apply"],
                    state_machine_input=actions.StateMachineInput.file_path(
                        fleet_input.at_path(FLEET_INPUT_FILE)
                    ),
                    variables_namespace=f"Execute-{env.name}",
                    run_order=run_order,
                )
            )
            return
        if env.snapshot_before_apply:
            snapshot = SnapshotStateMachine(
                self,
                "Snapshot",
                state_machine_name=f"{pipeline_name}-{env.slug}-snapshot",
                function=function,
                environment=env.name,
                log_retention=log_retention,
            )
            self.state_machines["snapshot"] = snapshot.state_machine
            add(
                actions.StepFunctionInvokeAction(
                    action_name="Snapshot",
                    state_machine=snapshot.state_machine,
                    state_machine_input=actions.StateMachineInput.literal(
                        {"snapshot": named_snapshot, "run_id": EXECUTION_ID, "environment": env.name}
                    ),
                    variables_namespace=f"Snapshot-{env.name}",
                    run_order=run_order,
                )
            )
        if env.executor is ExecutorKind.CODEBUILD:
            self.codebuild_executor = CodeBuildExecutor(
                self,
                "CodeBuildExecutor",
                environment_name=env.name,
                target=target,
                signing_key=signing_key,
                wheel=wheel,
                schema=env.schema,
                encryption_key=store.key,
                artifact_bucket=store.bucket,
                log_retention=log_retention,
            )
            add(
                actions.CodeBuildAction(
                    action_name="Execute",
                    project=self.codebuild_executor.project,
                    input=bundle,
                    run_order=run_order,
                )
            )
            return
        parameters = {"environment": env.name, "pipeline_execution_id": EXECUTION_ID}
        if env.snapshot_before_apply:
            parameters["snapshot"] = named_snapshot
        add(
            actions.LambdaInvokeAction(
                action_name="Execute",
                lambda_=function,
                inputs=[bundle],
                # the job event carries no execution id: the history table's run_id and every log line
                # name the pipeline execution through this parameter
                user_parameters=parameters,
                run_order=run_order,
            )
        )
