"""The pipeline's Validate step: CodeBuild running the inlined buildspec, signing the bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline import inlined_buildspec
from pipeline.nag_policy import (
    acknowledge,
    acknowledge_artifact_grants,
    acknowledge_asset_reads,
    acknowledge_codebuild_defaults,
)
from pipeline.report_store import JunitReportGroup
from pipeline.schemagate_wheel import SchemagateWheel

SIGNING_KEY_ENV = "SCHEMAGATE_SIGNING_KEY_ID"
SIGNING_ALGORITHM_ENV = "SCHEMAGATE_SIGNING_ALGORITHM"
SIGNING_ALGORITHM = "ECDSA_SHA_256"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_8_0


def wheel_variables(wheel: SchemagateWheel) -> dict[str, codebuild.BuildEnvironmentVariable]:
    """Where the build finds the schemagate wheel it installs (buildspec.yml's install phase)."""
    return {k: codebuild.BuildEnvironmentVariable(value=v) for k, v in wheel.environment_variables.items()}


def build_settings(
    scope: Construct, *, encryption_key: kms.IKey, log_retention: logs.RetentionDays
) -> dict[str, Any]:
    """Project properties the pipeline's validation build and the pull-request build share, so a
    PR is judged in the same environment as the merge: image, size, encryption, timeout, logs."""
    return {
        "environment": codebuild.BuildEnvironment(
            build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.SMALL
        ),
        "encryption_key": encryption_key,
        "timeout": Duration.minutes(30),
        "logging": codebuild.LoggingOptions(
            cloud_watch=codebuild.CloudWatchLoggingOptions(
                log_group=logs.LogGroup(scope, "Logs", retention=log_retention)
            )
        ),
    }


class ValidationProject(Construct):
    """CodeBuild project for the pipeline's Validate stage (source: the pipeline, no webhook).

    - runs the repository's buildspec, inlined at synth time;
    - writes JUnit results to its own report group, raw reports exported to ``artifact_bucket``;
    - outputs the bundle (the buildspec's ``artifacts``);
    - installs the schemagate wheel the stack was deployed with (``SCHEMAGATE_WHEEL_URL``);
    - owns the asymmetric signing key: only this project's role may ``kms:Sign`` with it (the key
      policy denies everyone else), the build gets its id in ``SCHEMAGATE_SIGNING_KEY_ID``.

    Exposes ``project``, ``report_group``, ``signing_key``, ``exported_variables``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        buildspec: dict[str, Any],
        buildspec_path: Path,
        artifact_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        log_retention: logs.RetentionDays,
        wheel: SchemagateWheel,
        connection_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.report_group = JunitReportGroup(
            self, "Reports", bucket=artifact_bucket, prefix="reports/validation"
        ).report_group
        self.signing_key = kms.Key(
            self,
            "SigningKey",
            description="schemagate: signs the bundle manifest in the Validate stage",
            key_spec=kms.KeySpec.ECC_NIST_P256,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=RemovalPolicy.RETAIN,
        )
        bound = inlined_buildspec.for_project(
            buildspec,
            report_group_arn=self.report_group.report_group_arn,
            require_artifacts=True,
            path=buildspec_path,
        )
        self.exported_variables = tuple(bound["env"]["exported-variables"])
        if SIGNING_KEY_ENV not in json.dumps(buildspec):
            Annotations.of(self).add_warning_v2(
                "schemagate:unsignedBundle",
                f"{buildspec_path} never uses ${SIGNING_KEY_ENV}, so the bundle is not signed and the "
                f"executor (which verifies with that key) will refuse it. Pass it to validate: "
                f'${{{SIGNING_KEY_ENV}:+--sign-with-kms "${SIGNING_KEY_ENV}"}}',
            )
        self.project = codebuild.PipelineProject(
            self,
            "Project",
            description="schemagate: validate migrations and write the signed bundle",
            build_spec=codebuild.BuildSpec.from_object(bound),
            environment_variables={
                SIGNING_KEY_ENV: codebuild.BuildEnvironmentVariable(value=self.signing_key.key_arn),
                SIGNING_ALGORITHM_ENV: codebuild.BuildEnvironmentVariable(value=SIGNING_ALGORITHM),
                **wheel_variables(wheel),
            },
            **build_settings(self, encryption_key=encryption_key, log_retention=log_retention),
        )
        self.report_group.grant_write(self.project)
        wheel.grant_read(self.project)
        acknowledge_asset_reads(self, who="the validation build")
        if connection_arn:
            # the source is a CODEBUILD_CLONE_REF: the build clones through the connection itself
            self.project.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["codestar-connections:UseConnection", "codeconnections:UseConnection"],
                    resources=[connection_arn],
                )
            )
        # DescribeKey lets the signer pick the key's SHA-256 algorithm (executor/signing.py).
        self.signing_key.grant(self.project, "kms:Sign", "kms:DescribeKey")
        role = self.project.role
        assert role is not None  # a project made here always has its own role
        self.signing_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheValidationProjectSigns",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["kms:Sign"],
                resources=["*"],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": role.role_arn}},
            )
        )
        acknowledge(
            self.signing_key,
            "AwsSolutions-KMS5",
            "Asymmetric (SIGN_VERIFY) KMS keys do not support automatic rotation.",
        )
        acknowledge_artifact_grants(self, bucket=artifact_bucket, who="the validation build")
        acknowledge_codebuild_defaults(self, project=self.project)
