"""The Execute step: the Lambda that verifies the approved bundle and applies it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import jsii
from aws_cdk import (
    ArnFormat,
    Aws,
    BundlingOptions,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline.lambda_bundle import EXECUTOR_DIR, build_lambda_package
from pipeline.nag_policy import acknowledge, acknowledge_artifact_grants, acknowledge_key_grants, finding_arn
from pipeline.validation_project import SIGNING_ALGORITHM, SIGNING_ALGORITHM_ENV

HANDLER = "executor.handler.handle"
PYTHON_VERSION = "3.12"
RUNTIME = lambda_.Runtime.PYTHON_3_12
METRICS_NAMESPACE = "schemagate"
_ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}


SECRET_TAG = "schemagate-environment"  # noqa: S105 (a tag key, not a secret); a fleet's secrets (and, for snapshots, instances) carry it


@dataclass(frozen=True, kw_only=True)
class DatabaseTarget:
    """The database the executor migrates and how to reach it (a fleet: only the network)."""

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection  # private subnets the executor runs in
    security_group: ec2.ISecurityGroup  # the database's; the executor is allowed into it
    port: int
    secret: secretsmanager.ISecret | None  # RDS-format secret; None for a fleet (targets from SSM)
    secret_key: kms.IKey | None = None  # its customer-managed key, if any
    instance_identifier: str | None = None  # the RDS instance a snapshot is taken of
    cluster_identifier: str | None = None  # or the Aurora cluster


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
            # jsii calls try_bundle(output_dir, options) positionally; its Protocol spells the
            # options out as keywords, which mypy cannot match to an implementation
            local=cast(ILocalBundling, LocalPipBundling(arch=arch, python_version=PYTHON_VERSION)),
        ),
    )


class ExecutorFunction(Construct):
    """One environment's executor Lambda (``executor.handler.handle``), least privilege.

    - in the environment's private subnets, with its own security group that may reach only the
      database (on its port) and HTTPS (AWS APIs); the database's group admits it;
    - may read only its environment's database secret (a fleet: only secrets tagged
      ``schemagate-environment=<name>``), ``kms:Verify`` only with the signing key, publish to
      its notification topic;
    - no reserved concurrency (on an account with a small concurrency quota reserving any fails
      the deployment, and the advisory lock already serializes executors on a database); no
      asynchronous retries (CodePipeline invokes it asynchronously: a retried job would run
      twice, the second time into a held lock); 15-minute timeout; its own log group.

    ``allow_fleet`` and ``allow_snapshots`` add what a fleet and a snapshot need.
    Exposes ``function``, ``security_group``, ``log_group``, ``role``.
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
        environment_name: str,
        prebuilt_code_dir: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.environment_name = environment_name
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
            description=f"schemagate executor ({environment_name}): plan, verify and apply the bundle",
            runtime=RUNTIME,
            architecture=_ARCHITECTURES[architecture],
            handler=HANDLER,
            code=executor_code(arch=architecture, prebuilt_dir=prebuilt_code_dir),
            timeout=timeout,
            memory_size=512,
            vpc=target.vpc,
            vpc_subnets=target.subnets,
            security_groups=[self.security_group],
            log_group=self.log_group,
            environment={
                **({"SCHEMAGATE_DB_SECRET_ARN": target.secret.secret_arn} if target.secret else {}),
                "SCHEMAGATE_ENVIRONMENT": environment_name,
                "SCHEMAGATE_SIGNING_KEY_ID": signing_key.key_arn,
                SIGNING_ALGORITHM_ENV: SIGNING_ALGORITHM,
                "SCHEMAGATE_NOTIFY_TOPIC_ARN": topic.topic_arn,
                "SCHEMAGATE_SCHEMA": schema,
                "POWERTOOLS_SERVICE_NAME": "schemagate-executor",
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
        )
        # CodePipeline invokes the function asynchronously: Lambda's default would retry a failed or
        # timed-out job twice more
        self.function.configure_async_invoke(retry_attempts=0)
        self.role = self.function.role
        self.security_group.connections.allow_to(
            target.security_group, ec2.Port.tcp(target.port), "schemagate executor to the database"
        )
        if target.secret is not None:
            target.secret.grant_read(self.function)
        if target.instance_identifier:
            self.function.add_environment("SCHEMAGATE_DB_INSTANCE_IDENTIFIER", target.instance_identifier)
        if target.cluster_identifier:
            self.function.add_environment("SCHEMAGATE_DB_CLUSTER_IDENTIFIER", target.cluster_identifier)
        self.target = target
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

    def _arn(self, service: str, resource: str) -> str:
        return Stack.of(self).format_arn(
            service=service, resource=resource, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )

    def allow_fleet(
        self, *, targets_parameter: str, bundle_bucket: s3.IBucket, plan_state_machine_name: str
    ) -> None:
        """What a fleet's executor needs: the targets parameter, the secrets tagged for this
        environment, the bundle and the Map's results (read only: the executor writes nothing to
        the bucket), and the plan state machine's output (the plan report job)."""
        self.function.add_environment("SCHEMAGATE_FLEET_TARGETS_PARAMETER", targets_parameter)
        name = targets_parameter.lstrip("/")
        stack = Stack.of(self)
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[stack.format_arn(service="ssm", resource="parameter", resource_name=name)],
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[self._arn("secretsmanager", "secret:*")],
                conditions={
                    "StringEquals": {f"secretsmanager:ResourceTag/{SECRET_TAG}": self.environment_name}
                },
            )
        )
        bundle_bucket.grant_read(self.function)
        acknowledge_artifact_grants(self.function, bucket=bundle_bucket, who="a fleet's executor (read only)")
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[self._arn("states", f"execution:{plan_state_machine_name}:*")],
            )
        )
        acknowledge(
            self.function,
            f"AwsSolutions-IAM5[Resource::{finding_arn(self, 'secretsmanager', 'secret:*')}]",
            f"A fleet's secrets are listed at run time (adding a tenant needs no deploy); only those tagged "
            f"{SECRET_TAG}={self.environment_name} can be read (condition on the statement).",
        )
        executions = finding_arn(self, "states", f"execution:{plan_state_machine_name}:*")
        acknowledge(
            self.function,
            f"AwsSolutions-IAM5[Resource::{executions}]",
            "The plan report job reads the output of this environment's plan state machine executions only.",
        )

    def allow_snapshots(self, *, snapshot_prefix: str) -> None:
        """CreateDBSnapshot / CreateDBClusterSnapshot of this environment's instance or cluster (a
        fleet: those tagged ``schemagate-environment=<name>``), into snapshots named ``prefix-*``."""
        target = self.target
        snapshots = [
            self._arn("rds", f"snapshot:{snapshot_prefix}-*"),
            self._arn("rds", f"cluster-snapshot:{snapshot_prefix}-*"),
        ]
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "rds:CreateDBSnapshot",
                    "rds:CreateDBClusterSnapshot",
                    "rds:DescribeDBSnapshots",
                    "rds:DescribeDBClusterSnapshots",
                    "rds:AddTagsToResource",
                ],
                resources=snapshots,
            )
        )
        if target.instance_identifier or target.cluster_identifier:
            kind, identifier = (
                ("db", target.instance_identifier)
                if target.instance_identifier
                else ("cluster", target.cluster_identifier)
            )
            action = "rds:CreateDBSnapshot" if kind == "db" else "rds:CreateDBClusterSnapshot"
            self.function.add_to_role_policy(
                iam.PolicyStatement(actions=[action], resources=[self._arn("rds", f"{kind}:{identifier}")])
            )
        else:  # a fleet: its instances and clusters carry the environment's tag
            for kind, action, key in (
                ("db", "rds:CreateDBSnapshot", "rds:db-tag"),
                ("cluster", "rds:CreateDBClusterSnapshot", "rds:cluster-tag"),
            ):
                self.function.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=[action],
                        resources=[self._arn("rds", f"{kind}:*")],
                        conditions={"StringEquals": {f"{key}/{SECRET_TAG}": self.environment_name}},
                    )
                )
            for kind in ("db", "cluster"):
                acknowledge(
                    self.function,
                    f"AwsSolutions-IAM5[Resource::{finding_arn(self, 'rds', f'{kind}:*')}]",
                    f"A fleet's instances are not known at deploy time; only those tagged {SECRET_TAG}="
                    f"{self.environment_name} may be snapshotted (condition on the statement).",
                )
        for kind in ("snapshot", "cluster-snapshot"):
            acknowledge(
                self.function,
                f"AwsSolutions-IAM5[Resource::{finding_arn(self, 'rds', f'{kind}:{snapshot_prefix}-*')}]",
                "Snapshots before apply are named after the pipeline execution; only this environment's "
                "name prefix is allowed.",
            )

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
