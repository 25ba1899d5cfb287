"""Pull-request validation: the same inlined buildspec, run on every PR that touches the team's
migrations directory or its gate configuration."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline import codecommit_pr_comment, inlined_buildspec
from pipeline.config import SourceConfig, SourceProvider
from pipeline.nag_policy import (
    acknowledge,
    acknowledge_artifact_grants,
    acknowledge_asset_reads,
    acknowledge_codebuild_defaults,
    cfn_resource,
)
from pipeline.report_store import JunitReportGroup
from pipeline.schemagate_wheel import SchemagateWheel
from pipeline.validation_project import build_settings, wheel_variables


def migrations_path_pattern(migrations_directory: str) -> str:
    """The webhook's FILE_PATH filter: the migrations directory, pyproject.toml or .sqlfluff."""
    directory = re.escape(migrations_directory.strip("/"))
    return rf"^({directory}/|pyproject\.toml$|\.sqlfluff$)"


PR_EVENTS = (
    codebuild.EventAction.PULL_REQUEST_CREATED,
    codebuild.EventAction.PULL_REQUEST_UPDATED,
    codebuild.EventAction.PULL_REQUEST_REOPENED,
)
# CodeCommit pull request events that mean "there is new code to validate".
CODECOMMIT_PR_EVENTS = ("pullRequestCreated", "pullRequestSourceBranchUpdated", "pullRequestStatusChanged")
COMMENT_TOKEN_ENV = "SCHEMAGATE_GITHUB_TOKEN"  # noqa: S105 - the variable's name; read by `schemagate pr-comment`
COMMENTER_RUNTIME = lambda_.Runtime.PYTHON_3_14  # inline, standard library + boto3 only
_HOSTS = {
    SourceProvider.GITHUB: ("GITHUB", "https://github.com"),
    SourceProvider.GITLAB: ("GITLAB", "https://gitlab.com"),
    SourceProvider.BITBUCKET: ("BITBUCKET", "https://bitbucket.org"),
}


class PullRequestValidation(Construct):
    """A CodeBuild project validating pull requests, with its own report group.

    GitHub/GitLab/Bitbucket (through the CodeStar connection): a webhook with one filter group,
    PR created/updated/reopened AND a changed file under the migrations directory (or
    ``pyproject.toml`` / ``.sqlfluff``, where the gate's configuration lives); the build status is
    reported back to the PR.  CodeCommit: an EventBridge rule on the repository's pull request
    events starts the build at the PR's source commit, with ``SCHEMAGATE_BASE_REF`` set to the
    destination commit.  This project never signs (it has no access to the signing key).

    Exposes ``project``, ``report_group`` and, for CodeCommit, ``rule``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source: SourceConfig,
        repository: codecommit.IRepository | None,
        buildspec: dict[str, Any],
        buildspec_path: Path,
        artifact_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        log_retention: logs.RetentionDays,
        wheel: SchemagateWheel,
        migrations_directory: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.report_group = JunitReportGroup(
            self, "Reports", bucket=artifact_bucket, prefix="reports/pull-requests"
        ).report_group
        bound = inlined_buildspec.for_project(
            buildspec,
            report_group_arn=self.report_group.report_group_arn,
            require_artifacts=False,
            path=buildspec_path,
        )
        bound.pop("artifacts", None)  # a PR build produces reports, never a bundle
        self.rule: events.Rule | None = None
        if source.provider is SourceProvider.CODECOMMIT:
            assert repository is not None
            build_source = codebuild.Source.code_commit(repository=repository)
        else:
            # Bitbucket sends no "reopened" event; a reopened PR there arrives as an update.
            pr_events = PR_EVENTS if source.provider is not SourceProvider.BITBUCKET else PR_EVENTS[:2]
            filters = [
                codebuild.FilterGroup.in_event_of(*pr_events).and_file_path_is(
                    migrations_path_pattern(migrations_directory)
                )
            ]
            if source.provider is SourceProvider.BITBUCKET:
                build_source = codebuild.Source.bit_bucket(
                    owner=source.required("owner"),
                    repo=source.required("repo"),
                    webhook=True,
                    webhook_filters=filters,
                    report_build_status=True,
                )
            else:
                build_source = codebuild.Source.git_hub(
                    owner=source.required("owner"),
                    repo=source.required("repo"),
                    webhook=True,
                    webhook_filters=filters,
                    report_build_status=True,
                )
        comment_token = {}
        if source.comment_token_secret_arn:  # buildspec.yml's post_build posts report.md with it
            comment_token[COMMENT_TOKEN_ENV] = codebuild.BuildEnvironmentVariable(
                type=codebuild.BuildEnvironmentVariableType.SECRETS_MANAGER,
                value=source.comment_token_secret_arn,
            )
        self.project = codebuild.Project(
            self,
            "Project",
            description="schemagate: validate the migrations of a pull request (no database access)",
            source=build_source,
            build_spec=codebuild.BuildSpec.from_object(bound),
            environment_variables={**wheel_variables(wheel), **comment_token},
            **build_settings(self, encryption_key=encryption_key, log_retention=log_retention),
        )
        self.report_group.grant_write(self.project)
        wheel.grant_read(self.project)
        acknowledge_asset_reads(self, who="the pull-request build")
        self.commenter: lambda_.Function | None = None
        if source.provider is SourceProvider.CODECOMMIT:
            assert repository is not None
            self.rule = self._start_on_codecommit_pull_requests(repository)
            self.commenter = self._comment_results_on_codecommit(repository, log_retention)
        else:
            self._use_connection(source)
        if source.comment_token_secret_arn:
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::{source.comment_token_secret_arn}*]",
                "CodeBuild's read of the one comment-token secret; the trailing * is how IAM matches a "
                "secret ARN's random suffix.",
            )
        acknowledge_artifact_grants(self, bucket=artifact_bucket, who="the pull-request build")
        acknowledge_codebuild_defaults(self, project=self.project)

    def _use_connection(self, source: SourceConfig) -> None:
        """Authenticate the webhook and the clone through the CodeStar connection."""
        source_type, host = _HOSTS[source.provider]
        cfn = cfn_resource(self.project)
        cfn.add_property_override("Source.Type", source_type)
        cfn.add_property_override("Source.Location", f"{host}/{source.owner}/{source.repo}.git")
        cfn.add_property_override(
            "Source.Auth", {"Type": "CODECONNECTIONS", "Resource": source.connection_arn}
        )
        self.project.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "codeconnections:UseConnection",
                    "codeconnections:GetConnectionToken",
                    "codeconnections:GetConnection",
                    "codestar-connections:UseConnection",
                    "codestar-connections:GetConnectionToken",
                    "codestar-connections:GetConnection",
                ],
                resources=[source.required("connection_arn")],
            )
        )

    def _start_on_codecommit_pull_requests(self, repository: codecommit.IRepository) -> events.Rule:
        return events.Rule(
            self,
            "OnPullRequest",
            description="schemagate: validate CodeCommit pull requests",
            event_pattern=events.EventPattern(
                source=["aws.codecommit"],
                detail_type=["CodeCommit Pull Request State Change"],
                resources=[repository.repository_arn],
                detail={"event": list(CODECOMMIT_PR_EVENTS), "pullRequestStatus": ["Open"]},
            ),
            targets=[
                targets.CodeBuildProject(
                    self.project,
                    event=events.RuleTargetInput.from_object(
                        {
                            "sourceVersion": events.EventField.from_path("$.detail.sourceCommit"),
                            "environmentVariablesOverride": [
                                {
                                    "name": "SCHEMAGATE_BASE_REF",
                                    "value": events.EventField.from_path("$.detail.destinationCommit"),
                                    "type": "PLAINTEXT",
                                },
                                {
                                    "name": "SCHEMAGATE_SOURCE_COMMIT",
                                    "value": events.EventField.from_path("$.detail.sourceCommit"),
                                    "type": "PLAINTEXT",
                                },
                                {
                                    "name": "SCHEMAGATE_PULL_REQUEST_ID",
                                    "value": events.EventField.from_path("$.detail.pullRequestId"),
                                    "type": "PLAINTEXT",
                                },
                            ],
                        }
                    ),
                )
            ],
        )

    def _comment_results_on_codecommit(
        self, repository: codecommit.IRepository, log_retention: logs.RetentionDays
    ) -> lambda_.Function:
        """CodeCommit has no build-status API: post the result as a comment on the PR instead."""
        commenter = lambda_.Function(
            self,
            "CommentOnPullRequest",
            description="schemagate: comment a CodeCommit pull request with its validation result",
            runtime=COMMENTER_RUNTIME,
            handler="index.handle",
            code=lambda_.Code.from_inline(Path(codecommit_pr_comment.__file__).read_text(encoding="utf-8")),
            timeout=Duration.seconds(30),
            environment={"REPOSITORY_NAME": repository.repository_name},
            log_group=logs.LogGroup(self, "CommentLogs", retention=log_retention),
        )
        commenter.add_to_role_policy(
            iam.PolicyStatement(
                actions=["codecommit:PostCommentForPullRequest"], resources=[repository.repository_arn]
            )
        )
        self.project.on_state_change(
            "OnBuildFinished",
            description="schemagate: report a pull-request build's result on the pull request",
            event_pattern=events.EventPattern(detail={"build-status": ["SUCCEEDED", "FAILED", "STOPPED"]}),
            target=targets.LambdaFunction(commenter),
        )
        acknowledge(
            commenter,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "AWS's minimal managed policy for a Lambda's own logs.",
        )
        return commenter
