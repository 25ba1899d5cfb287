"""An environment's executor for migrations that need longer than a Lambda may run.

``"executor": "codebuild"`` on an environment makes its Execute action a CodeBuild build in the
database's VPC instead of the Lambda: it installs the deployed schemagate wheel, verifies the
bundle and its signature (``python -m executor.verify_bundle``) and runs
``schemagate apply --bundle``.  A build may run for up to 8 hours (``timeout``), so a migration's
``statement_timeout`` is not capped by a 15-minute invocation.  The Plan action stays on the Lambda
(a plan takes seconds).

The database login comes from the environment's secret through CodeBuild's Secrets Manager
variables (``PGHOST``, ``PGUSER``, ``PGPASSWORD``, ...: libpq reads them; CodeBuild masks their
values in the build log), TLS required.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Token
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline.executor_function import DatabaseTarget
from pipeline.nag_policy import (
    acknowledge,
    acknowledge_artifact_grants,
    acknowledge_asset_reads,
    acknowledge_codebuild_defaults,
    finding_arn,
)
from pipeline.schemagate_wheel import NAME_ENV, URL_ENV, SchemagateWheel
from pipeline.validation_project import BUILD_IMAGE, SIGNING_ALGORITHM, SIGNING_ALGORITHM_ENV, SIGNING_KEY_ENV

DEFAULT_TIMEOUT = Duration.hours(8)
STATEMENT_TIMEOUT = "6h"  # below the build's timeout, so the build reports the failure itself
_LOGIN = {
    "PGHOST": "host",
    "PGPORT": "port",
    "PGUSER": "username",
    "PGPASSWORD": "password",
    "PGDATABASE": "dbname",
}


def executor_buildspec() -> dict:
    return {
        "version": "0.2",
        "env": {"shell": "bash"},
        "phases": {
            "install": {
                "runtime-versions": {"python": "3.12"},
                "commands": [
                    f'aws s3 cp --quiet "${URL_ENV}" "/tmp/${NAME_ENV}"',
                    f'python -m pip install --quiet "/tmp/${{{NAME_ENV}}}[aws]"',
                ],
            },
            "build": {
                "commands": [
                    'python -m executor.verify_bundle "$CODEBUILD_SRC_DIR"',
                    'cd /tmp && schemagate apply --bundle "$CODEBUILD_SRC_DIR" --yes '
                    '--schema "$SCHEMAGATE_SCHEMA" --statement-timeout "$SCHEMAGATE_STATEMENT_TIMEOUT"',
                ]
            },
        },
    }


class CodeBuildExecutor(Construct):
    """Exposes ``project`` and ``security_group``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        target: DatabaseTarget,
        signing_key: kms.IKey,
        wheel: SchemagateWheel,
        schema: str,
        encryption_key: kms.IKey,
        artifact_bucket: s3.IBucket,
        log_retention: logs.RetentionDays,
        timeout: Duration = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(scope, construct_id)
        assert target.secret is not None, "a CodeBuild executor migrates one database"
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=target.vpc,
            description=f"schemagate CodeBuild executor ({environment_name}): the database and HTTPS only",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs and PyPI")
        self.security_group.connections.allow_to(
            target.security_group, ec2.Port.tcp(target.port), "schemagate CodeBuild executor to the database"
        )
        secret_arn = target.secret.secret_arn
        variables = {
            name: codebuild.BuildEnvironmentVariable(
                type=codebuild.BuildEnvironmentVariableType.SECRETS_MANAGER, value=f"{secret_arn}:{key}"
            )
            for name, key in _LOGIN.items()
        }
        plain = {
            "PGSSLMODE": "require",
            "PGAPPNAME": "schemagate-codebuild-executor",
            SIGNING_KEY_ENV: signing_key.key_arn,
            SIGNING_ALGORITHM_ENV: SIGNING_ALGORITHM,
            "SCHEMAGATE_SCHEMA": schema,
            "SCHEMAGATE_STATEMENT_TIMEOUT": STATEMENT_TIMEOUT,
            **wheel.environment_variables,
        }
        variables.update({k: codebuild.BuildEnvironmentVariable(value=v) for k, v in plain.items()})
        self.project = codebuild.PipelineProject(
            self,
            "Project",
            description=f"schemagate executor ({environment_name}): apply the approved bundle, no time limit "
            "but the build's",
            build_spec=codebuild.BuildSpec.from_object(executor_buildspec()),
            environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.SMALL
            ),
            environment_variables=variables,
            vpc=target.vpc,
            subnet_selection=target.subnets,
            security_groups=[self.security_group],
            encryption_key=encryption_key,
            timeout=timeout,
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(
                    log_group=logs.LogGroup(self, "Logs", retention=log_retention)
                )
            ),
        )
        target.secret.grant_read(self.project)
        if target.secret_key is not None:
            self.project.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[target.secret_key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}
                    },
                )
            )
        signing_key.grant(self.project, "kms:Verify")
        wheel.grant_read(self.project)
        acknowledge_asset_reads(self, who="the CodeBuild executor")
        acknowledge_codebuild_defaults(self, project=self.project)
        acknowledge_artifact_grants(self, bucket=artifact_bucket, who="the CodeBuild executor (the bundle)")
        if not Token.is_unresolved(secret_arn):
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::{secret_arn}*]",
                "CodeBuild's Secrets Manager variables: CDK grants the secret's ARN with any suffix "
                "(versions); it is the environment's one secret.",
            )
        acknowledge(
            self,
            f"AwsSolutions-IAM5[Resource::{finding_arn(self, 'ec2', 'network-interface/*')}]",
            "CodeBuild in a VPC attaches its network interfaces to the build (CDK's VPC grant, "
            "conditioned on the subnets).",
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "CodeBuild in a VPC manages its network interfaces (ec2:CreateNetworkInterface and the "
            "Describe* calls have no resource-level permissions).",
        )
