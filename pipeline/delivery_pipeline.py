"""The gated pipeline itself: Source -> Validate -> Approve -> Execute (CodePipeline V2)."""

from __future__ import annotations

from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline.approval_gate import ApprovalGate
from pipeline.config import SourceConfig, SourceProvider
from pipeline.nag_policy import acknowledge, acknowledge_artifact_grants, logical_id
from pipeline.validation_project import ValidationProject

SOURCE_NAMESPACE = "Source"
VALIDATE_NAMESPACE = "Validate"
BUNDLE_ARTIFACT = "Bundle"


class DeliveryPipeline(Construct):
    """Wires the stages.  The Validate build's output artifact (the bundle) is the Execute input.

    Exposes ``pipeline``, ``source_artifact``, ``bundle_artifact``.
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
        approval: ApprovalGate,
        executor: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.source_artifact = codepipeline.Artifact("Source")
        self.bundle_artifact = codepipeline.Artifact(BUNDLE_ARTIFACT)
        source_action = self._source_action(source, repository)
        triggers = None
        if source.provider.uses_connection:
            # V2 trigger: run only when migrations (or the gate's own definition) change.
            triggers = [
                codepipeline.TriggerProps(
                    provider_type=codepipeline.ProviderType.CODE_STAR_SOURCE_CONNECTION,
                    git_configuration=codepipeline.GitConfiguration(
                        source_action=source_action,
                        push_filter=[
                            codepipeline.GitPushFilter(
                                branches_includes=[source.branch],
                                file_paths_includes=["migrations/**", "buildspec.yml"],
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
                codepipeline.StageProps(stage_name="Approve", actions=[approval.action]),
                codepipeline.StageProps(
                    stage_name="Execute",
                    actions=[
                        actions.LambdaInvokeAction(
                            action_name="ApplyMigrations",
                            lambda_=executor,
                            inputs=[self.bundle_artifact],
                            # the job event carries no execution id: the history table's run_id and
                            # every log line name the pipeline execution through this parameter
                            user_parameters={
                                "pipeline_execution_id": codepipeline.GlobalVariables.EXECUTION_ID
                            },
                        )
                    ],
                ),
            ],
        )

        acknowledge_artifact_grants(self, bucket=artifact_bucket, who="the pipeline and its actions")
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "CDK's LambdaInvokeAction lets its role call lambda:ListFunctions, which has no resource-level "
            "permissions; invoking is limited to the executor function.",
        )
        acknowledge(
            self,
            f"AwsSolutions-IAM5[Resource::<{logical_id(executor)}.Arn>:*]",
            "Invoke permission on the executor's versions/aliases (CDK's LambdaInvokeAction grant).",
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
        return actions.CodeStarConnectionsSourceAction(
            action_name="Source",
            connection_arn=source.connection_arn,
            owner=source.owner,
            repo=source.repo,
            branch=source.branch,
            output=self.source_artifact,
            trigger_on_push=True,
            variables_namespace=SOURCE_NAMESPACE,
            code_build_clone_output=True,  # see above: git history for the validation build
        )
