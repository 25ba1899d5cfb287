"""The Execute step: the Lambda that verifies the approved bundle and applies it."""

from __future__ import annotations

from dataclasses import dataclass

import jsii
from aws_cdk import Aws, BundlingOptions, DockerImage, Duration, ILocalBundling, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline.lambda_bundle import EXECUTOR_DIR, build_lambda_package
from pipeline.nag_policy import acknowledge, acknowledge_key_grants
from pipeline.validation_project import SIGNING_ALGORITHM, SIGNING_ALGORITHM_ENV

HANDLER = "executor.handler.handle"
PYTHON_VERSION = "3.12"
RUNTIME = lambda_.Runtime.PYTHON_3_12
METRICS_NAMESPACE = "schemagate"
_ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}


@dataclass(frozen=True, kw_only=True)
class DatabaseTarget:
    """The database the executor migrates and how to reach it."""

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection  # private subnets the executor runs in
    security_group: ec2.ISecurityGroup  # the database's; the executor is allowed into it
    port: int
    secret: secretsmanager.ISecret  # RDS-format secret: host, port, username, password, dbname
    secret_key: kms.IKey | None = None  # its customer-managed key, if any


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    """CDK local bundling: ``pip install --platform`` instead of a Docker build container."""

    def __init__(self, *, arch: str, python_version: str) -> None:
        self._arch = arch
        self._python_version = python_version

    @jsii.member(jsii_name="tryBundle")
    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        build_lambda_package(output_dir, arch=self._arch, python_version=self._python_version)
        return True


def executor_code(*, arch: str, prebuilt_dir: str | None = None) -> lambda_.Code:
    """The Lambda code: a prebuilt directory if given, else ``executor/`` bundled locally.

    The Docker image named below is never pulled: local bundling either succeeds or raises.
    """
    if prebuilt_dir:
        return lambda_.Code.from_asset(prebuilt_dir)
    return lambda_.Code.from_asset(
        str(EXECUTOR_DIR),
        bundling=BundlingOptions(
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{PYTHON_VERSION}"),
            local=LocalPipBundling(arch=arch, python_version=PYTHON_VERSION),
        ),
    )


class ExecutorFunction(Construct):
    """The executor Lambda (``executor.handler.handle``), least privilege.

    - in the target's private subnets, with its own security group that may reach only the
      database (on its port) and HTTPS (AWS APIs); the database's group admits it;
    - may read only the one database secret, ``kms:Verify`` only with the signing key, publish
      to the notification topic;
    - reserved concurrency 1 (the advisory lock is the real guard; this keeps a second run queued
      rather than contending), 15-minute timeout, its own log group with retention.

    Exposes ``function``, ``security_group``, ``log_group``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        target: DatabaseTarget,
        signing_key: kms.IKey,
        topic: sns.ITopic,
        schema: str,
        timeout: Duration,
        architecture: str,
        log_retention: logs.RetentionDays,
        prebuilt_code_dir: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=target.vpc,
            description="schemagate executor: egress to the database and HTTPS only",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs (S3, Secrets Manager, KMS, CodePipeline, SNS)"
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.RETAIN
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="schemagate executor: verify the approved bundle and apply pending migrations",
            runtime=RUNTIME,
            architecture=_ARCHITECTURES[architecture],
            handler=HANDLER,
            code=executor_code(arch=architecture, prebuilt_dir=prebuilt_code_dir),
            timeout=timeout,
            memory_size=512,
            reserved_concurrent_executions=1,
            vpc=target.vpc,
            vpc_subnets=target.subnets,
            security_groups=[self.security_group],
            log_group=self.log_group,
            environment={
                "SCHEMAGATE_DB_SECRET_ARN": target.secret.secret_arn,
                "SCHEMAGATE_SIGNING_KEY_ID": signing_key.key_arn,
                SIGNING_ALGORITHM_ENV: SIGNING_ALGORITHM,
                "SCHEMAGATE_NOTIFY_TOPIC_ARN": topic.topic_arn,
                "SCHEMAGATE_SCHEMA": schema,
                "POWERTOOLS_SERVICE_NAME": "schemagate-executor",
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
        )
        self.security_group.connections.allow_to(
            target.security_group, ec2.Port.tcp(target.port), "schemagate executor to the database"
        )
        target.secret.grant_read(self.function)
        if target.secret_key is not None:
            # decrypt the secret through Secrets Manager only, not arbitrary data under that key
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[target.secret_key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}
                    },
                )
            )
        signing_key.grant(self.function, "kms:Verify")
        topic.grant_publish(self.function)
        self._acknowledge_findings()

    def _acknowledge_findings(self) -> None:
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Pinned to Python 3.12: the runtime lambda_bundle builds the psycopg2-binary wheels for "
            "(--python-version 3.12); move both together.",
        )
        for policy in ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole"):
            acknowledge(
                self.function,
                f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{policy}]",
                "AWS's minimal managed policy for a Lambda in a VPC (its logs and its network interfaces).",
            )
        acknowledge(
            self.function,
            "AwsSolutions-IAM5[Resource::*]",
            "codepipeline:PutJobSuccessResult/PutJobFailureResult support no resource-level permissions.",
        )
        acknowledge_key_grants(self.function, who="the executor (publishing to the encrypted topic)")
