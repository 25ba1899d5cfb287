"""Stacks only compose constructs and wire grants; every resource lives in a construct."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, CfnOutput, Duration, Fn, Stack
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from pipeline.artifact_store import ArtifactStore
from pipeline.config import EnvironmentConfig, PipelineConfig, SourceProvider
from pipeline.delivery_pipeline import (
    BUNDLE_ARTIFACT,
    SOURCE_NAMESPACE,
    VALIDATE_NAMESPACE,
    DeliveryPipeline,
)
from pipeline.demo_database import DemoDatabase
from pipeline.deployment_environment import DeploymentEnvironment
from pipeline.executor_function import DatabaseTarget
from pipeline.monitoring import Monitoring
from pipeline.notifications import NotificationTopic
from pipeline.pr_validation import PullRequestValidation
from pipeline.schemagate_wheel import SchemagateWheel
from pipeline.validation_project import ValidationProject

_COMPLETE_SECRET_ARN = re.compile(r"-[A-Za-z0-9]{6}$")
_RETENTION = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}


def log_retention(days: int) -> logs.RetentionDays:
    return getattr(logs.RetentionDays, _RETENTION[days])


class DemoDatabaseStack(Stack):
    """The optional demo database (deploy it first; the pipeline stack references it)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.database = DemoDatabase(self, "Demo", log_retention=log_retention(config.log_retention_days))
        self.target = self.database.target


def pascal(name: str) -> str:
    """``staging-eu`` -> ``StagingEu`` (construct and output ids)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


class PipelineStack(Stack):
    """Artifact store, notifications, validation (pipeline and PRs), one stage per environment
    (executor, plan, approval, snapshot, execute), monitoring."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        buildspec: dict[str, Any],
        buildspec_path: Path,
        targets: Mapping[str, DatabaseTarget] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = log_retention(config.log_retention_days)
        repository = None
        if config.source.provider is SourceProvider.CODECOMMIT:
            repository = codecommit.Repository.from_repository_name(
                self, "Repository", config.source.required("repository_name")
            )

        store = ArtifactStore(self, "Artifacts")
        notifications = NotificationTopic(self, "Notifications", emails=config.approval_emails)
        wheel = SchemagateWheel(self, "SchemagateWheel", prebuilt=config.schemagate_wheel)
        validation = ValidationProject(
            self,
            "Validation",
            buildspec=buildspec,
            buildspec_path=buildspec_path,
            artifact_bucket=store.bucket,
            encryption_key=store.key,
            log_retention=retention,
            wheel=wheel,
            connection_arn=config.source.connection_arn,
        )
        self.pull_requests = PullRequestValidation(
            self,
            "PullRequests",
            source=config.source,
            repository=repository,
            buildspec=buildspec,
            buildspec_path=buildspec_path,
            artifact_bucket=store.bucket,
            encryption_key=store.key,
            log_retention=retention,
            wheel=wheel,
            migrations_directory=config.migrations_directory,
        )
        bundle_artifact = codepipeline.Artifact(BUNDLE_ARTIFACT)
        self.environments: list[DeploymentEnvironment] = []
        for env in config.environments:
            target = (targets or {}).get(env.name) or self._import_target(env)
            topic = notifications.topic
            if env.approval_emails and not config.legacy_single_database:
                # the environment's own approvers hear only about it
                topic = NotificationTopic(
                    self, f"Notifications{pascal(env.name)}", emails=env.approval_emails
                ).topic
            self.environments.append(
                DeploymentEnvironment(
                    self,
                    pascal(env.name),
                    environment=env,
                    target=target,
                    pipeline_name=config.pipeline_name,
                    signing_key=validation.signing_key,
                    topic=topic,
                    store=store,
                    bundle=bundle_artifact,
                    source_namespace=SOURCE_NAMESPACE,
                    validate_namespace=VALIDATE_NAMESPACE,
                    validate_exports=validation.exported_variables,
                    approval_timeout=Duration.minutes(config.approval_timeout_minutes),
                    executor_timeout=Duration.minutes(config.executor_timeout_minutes),
                    architecture=config.executor_architecture.value,
                    log_retention=retention,
                    prebuilt_code_dir=config.executor_asset_dir,
                    wheel=wheel,
                )
            )
        self.delivery = DeliveryPipeline(
            self,
            "Delivery",
            pipeline_name=config.pipeline_name,
            source=config.source,
            repository=repository,
            artifact_bucket=store.bucket,
            validation=validation,
            bundle_artifact=bundle_artifact,
            environments=self.environments,
            migrations_directory=config.migrations_directory,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            functions={e.environment.name: e.executor.function for e in self.environments},
            pipeline=self.delivery.pipeline,
            topic=notifications.topic,
            dashboard_name=config.pipeline_name,
        )
        self.artifacts = store
        self.notifications = notifications
        self.validation = validation
        self.wheel = wheel
        outputs = {
            "PipelineName": self.delivery.pipeline.pipeline_name,
            "NotificationTopicArn": notifications.topic.topic_arn,
            "ArtifactBucketName": store.bucket.bucket_name,
            "ValidationReportGroupArn": validation.report_group.report_group_arn,
            "SigningKeyArn": validation.signing_key.key_arn,
        }
        for e in self.environments:
            prefix = "" if config.legacy_single_database else pascal(e.environment.name)
            outputs[f"{prefix}ExecutorFunctionName"] = e.executor.function.function_name
            outputs[f"{prefix}ExecutorLogGroupName"] = e.executor.log_group.log_group_name
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)

    def _import_target(self, env: EnvironmentConfig) -> DatabaseTarget:
        database = env.database
        assert database is not None, f"environment {env.name} has neither a database nor a demo stack"
        scope = Construct(self, f"{pascal(env.name)}Database") if env.name != "default" else self
        # from_vpc_attributes wants one AZ per subnet; nothing here reads them (the executor's
        # subnets are selected by id), so they stay unresolved rather than guessed.
        vpc = ec2.Vpc.from_vpc_attributes(
            scope,
            "Vpc",
            vpc_id=database.vpc_id,
            availability_zones=[Fn.select(i, Fn.get_azs()) for i in range(len(database.private_subnet_ids))],
            private_subnet_ids=list(database.private_subnet_ids),
        )
        Annotations.of(vpc).acknowledge_warning(
            "@aws-cdk/aws-ec2:noSubnetRouteTableId",
            "Imported subnets are only used to place the executor; no route table is read.",
        )
        secret = None
        arn = database.secret_arn
        if arn and _COMPLETE_SECRET_ARN.search(arn):
            secret = secretsmanager.Secret.from_secret_complete_arn(scope, "DatabaseSecret", arn)
        elif arn:
            secret = secretsmanager.Secret.from_secret_partial_arn(scope, "DatabaseSecret", arn)
        return DatabaseTarget(
            vpc=vpc,
            subnets=ec2.SubnetSelection(subnets=vpc.private_subnets),
            security_group=ec2.SecurityGroup.from_security_group_id(
                scope, "DatabaseSecurityGroup", database.security_group_id
            ),
            port=env.database_port,
            secret=secret,
            secret_key=(
                kms.Key.from_key_arn(scope, "DatabaseSecretKey", database.secret_key_arn)
                if database.secret_key_arn
                else None
            ),
            instance_identifier=env.database_instance_identifier,
            cluster_identifier=env.database_cluster_identifier,
        )
