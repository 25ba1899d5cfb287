"""The gated pipeline itself: Source -> Validate -> one stage per environment (CodePipeline V2).

Each environment's stage is Plan -> Approve -> Execute (``pipeline.deployment_environment``).  A
CodeConnections source (GitHub, GitLab, Bitbucket) starts the pipeline on pushes that change the
team's migrations directory or its ``[tool.schemagate]`` configuration.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline.config import SourceConfig, SourceProvider
from pipeline.deployment_environment import DeploymentEnvironment
from pipeline.nag_policy import (
    acknowledge,
    acknowledge_artifact_grants,
    acknowledge_state_machine_grants,
    cfn_resource,
    logical_id,
)
from pipeline.validation_project import ValidationProject

SOURCE_NAMESPACE = "Source"
VALIDATE_NAMESPACE = "Validate"
BUNDLE_ARTIFACT = "Bundle"
# connections created since 2024 have arn:aws:codeconnections: ARNs; older ones codestar-connections:
CONNECTION_ACTIONS = ("codestar-connections:UseConnection", "codeconnections:UseConnection")
GATE_FILES = ("pyproject.toml", ".sqlfluff")  # where a team's [tool.schemagate] and lint settings live


def trigger_paths(migrations_directory: str) -> list[str]:
    """What a push must change to start the pipeline: the migrations or the gate's configuration."""
    return [f"{migrations_directory.strip('/')}/**", *GATE_FILES]


class DeliveryPipeline(Construct):
    """Wires the stages.  The Validate build's output artifact (the bundle) is every environment's
    Plan and Execute input.

    Exposes ``pipeline``, ``source_artifact``, ``bundle_artifact``, ``source_role``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        source: SourceConfig,
        repository: codecommit.IRepository | None,
        artifact_bucket: s3.IBucket,
        validation: ValidationProject,
        bundle_artifact: codepipeline.Artifact,
        environments: Sequence[DeploymentEnvironment],
        migrations_directory: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.source_artifact = codepipeline.Artifact("Source")
        self.bundle_artifact = bundle_artifact
        self.source_role: iam.Role | None = None
        source_action = self._source_action(source, repository)
        triggers = None
        if source.provider.uses_connection:
            # V2 trigger: run only when the team's migrations (or its gate configuration) change.
            triggers = [
                codepipeline.TriggerProps(
                    provider_type=codepipeline.ProviderType.CODE_STAR_SOURCE_CONNECTION,
                    git_configuration=codepipeline.GitConfiguration(
                        source_action=source_action,
                        push_filter=[
                            codepipeline.GitPushFilter(
                                branches_includes=[source.branch],
                                file_paths_includes=trigger_paths(migrations_directory),
                            )
                        ],
                    ),
                )
            ]
        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=artifact_bucket,
            cross_account_keys=False,
            restart_execution_on_update=False,
            triggers=triggers,
            stages=[
                codepipeline.StageProps(stage_name="Source", actions=[source_action]),
                codepipeline.StageProps(
                    stage_name="Validate",
                    actions=[
                        actions.CodeBuildAction(
                            action_name="Validate",
                            project=validation.project,
                            input=self.source_artifact,
                            outputs=[self.bundle_artifact],
                            variables_namespace=VALIDATE_NAMESPACE,
                        )
                    ],
                ),
                *(
                    codepipeline.StageProps(
                        stage_name=environment.environment.name, actions=environment.actions
                    )
                    for environment in environments
                ),
            ],
        )

        cfn = cfn_resource(self.pipeline)
        for stage, environment in enumerate(environments, start=2):  # after Source and Validate
            for action, path in environment.input_files.items():
                # the Step Functions action wants the file's path inside its input artifact
                cfn.add_property_override(f"Stages.{stage}.Actions.{action}.Configuration.Input", path)

        acknowledge_artifact_grants(self, bucket=artifact_bucket, who="the pipeline and its actions")
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "CDK's LambdaInvokeAction lets its role call lambda:ListFunctions, which has no resource-level "
            "permissions; invoking is limited to the environments' executor functions.",
        )
        for environment in environments:
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::<{logical_id(environment.executor.function)}.Arn>:*]",
                "Invoke permission on the executor's versions/aliases (CDK's LambdaInvokeAction grant).",
            )
            for state_machine in environment.state_machines.values():
                acknowledge_state_machine_grants(
                    self, state_machine, who="CDK's StepFunctionInvokeAction grant (describe, stop)"
                )

    def _source_action(
        self, source: SourceConfig, repository: codecommit.IRepository | None
    ) -> actions.Action:
        if source.provider is SourceProvider.CODECOMMIT:
            assert repository is not None
            return actions.CodeCommitSourceAction(
                action_name="Source",
                repository=repository,
                branch=source.branch,
                output=self.source_artifact,
                trigger=actions.CodeCommitTrigger.EVENTS,
                variables_namespace=SOURCE_NAMESPACE,
                # a full clone: the validation build sees git history, so buildspec.yml judges the
                # merge against the previous commit (immutability, rehearsal of the merged files only)
                code_build_clone_output=True,
            )
        # the action's own role, so both connection prefixes can be granted on it
        self.source_role = iam.Role(
            self,
            "SourceRole",
            assumed_by=iam.AccountPrincipal(Stack.of(self).account),
            description="schemagate: the pipeline's source action (CodeConnections)",
        )
        self.source_role.add_to_policy(
            iam.PolicyStatement(
                actions=list(CONNECTION_ACTIONS), resources=[source.required("connection_arn")]
            )
        )
        return actions.CodeStarConnectionsSourceAction(
            action_name="Source",
            role=self.source_role,
            connection_arn=source.required("connection_arn"),
            owner=source.required("owner"),
            repo=source.required("repo"),
            branch=source.branch,
            output=self.source_artifact,
            trigger_on_push=True,
            variables_namespace=SOURCE_NAMESPACE,
            code_build_clone_output=True,  # see above: git history for the validation build
        )
