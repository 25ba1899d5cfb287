"""The Approve step: a person looks at the bundle and the validation report, then approves."""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline.inlined_buildspec import BUNDLE_SHA_VARIABLE


class ApprovalGate(Construct):
    """A manual approval action that tells the approver what they approve and where to look.

    The custom data names the bundle (artifact, pipeline execution, commit and, when the
    buildspec exports ``SCHEMAGATE_BUNDLE_SHA256``, its hash); the link opens this build's test
    report in the CodeBuild console.  Notifications go to ``topic`` (its email subscribers).

    Exposes ``action`` and ``report_url``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        validation_project: codebuild.IProject,
        report_location: str,
        bundle_artifact_name: str,
        source_namespace: str,
        validate_namespace: str,
        validate_exports: tuple[str, ...],
        timeout: Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        build_id = f"#{{{validate_namespace}.CODEBUILD_BUILD_ID}}"
        self.report_url = (
            f"https://{Aws.REGION}.console.aws.amazon.com/codesuite/codebuild/{Aws.ACCOUNT_ID}"
            f"/projects/{validation_project.project_name}/build/{build_id}/reports?region={Aws.REGION}"
        )
        bundle = (
            f"Bundle: artifact '{bundle_artifact_name}' of execution #{{codepipeline.PipelineExecutionId}}, "
            f"commit #{{{source_namespace}.CommitId}}"
        )
        if BUNDLE_SHA_VARIABLE in validate_exports:
            bundle += f", bundle_sha256 #{{{validate_namespace}.{BUNDLE_SHA_VARIABLE}}}"
        self.custom_data = (
            f"{bundle}. Validation report (findings, files in the bundle): the link below; "
            f"raw reports kept in {report_location}. Approving applies exactly this bundle."
        )
        self.action = actions.ManualApprovalAction(
            action_name="ApproveBundle",
            notification_topic=topic,
            additional_information=self.custom_data,
            external_entity_link=self.report_url,
            timeout=timeout,
        )
