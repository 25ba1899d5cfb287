"""A small RDS PostgreSQL in private subnets, so a first-time user gets a complete system."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from constructs import Construct

from pipeline.executor_function import DatabaseTarget
from pipeline.nag_policy import acknowledge

PORT = 5432


class DemoDatabase(Construct):
    """A VPC (public + private subnets, one NAT gateway, flow logs) and a PostgreSQL instance.

    The master credentials are a generated Secrets Manager secret in the RDS format the executor
    reads.  Exposes ``vpc``, ``instance``, ``secret`` and ``target`` (a DatabaseTarget).
    """

    def __init__(self, scope: Construct, construct_id: str, *, log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=24
                ),
            ],
        )
        self.vpc.add_flow_log(
            "FlowLogs",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(self, "FlowLogGroup", retention=log_retention)
            ),
        )
        subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.security_group = ec2.SecurityGroup(
            self,
            "DatabaseSecurityGroup",
            vpc=self.vpc,
            description="schemagate demo database",
            allow_all_outbound=False,
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Database",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_13),
            instance_type=ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
            vpc=self.vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            port=PORT,
            credentials=rds.Credentials.from_generated_secret("schemagate_admin"),
            database_name="app",
            allocated_storage=20,
            storage_encrypted=True,
            backup_retention=Duration.days(7),
            multi_az=False,
            deletion_protection=False,
            publicly_accessible=False,
            cloudwatch_logs_exports=["postgresql"],
            cloudwatch_logs_retention=log_retention,
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        assert self.instance.secret is not None
        self.secret = self.instance.secret
        self.target = DatabaseTarget(
            vpc=self.vpc,
            subnets=subnets,
            security_group=self.security_group,
            port=PORT,
            secret=self.secret,
            instance_identifier=self.instance.instance_identifier,
        )
        acknowledge(self.instance, "AwsSolutions-RDS3", "Demo database: one AZ keeps the first deploy cheap.")
        acknowledge(
            self.instance,
            "AwsSolutions-RDS10",
            "Demo database: `cdk destroy` must be able to remove it (a final snapshot is kept).",
        )
        acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "PostgreSQL's default port is what clients expect; only the executor's group may connect.",
        )
        acknowledge(
            self.instance,  # the generated DatabaseSecret is a child of the instance
            "AwsSolutions-SMG4",
            "Demo database: rotating the master password is left to the team adopting it (docs/deploy.md).",
        )
        # cloudwatch_logs_retention adds CDK's LogRetention singleton function to the stack.
        for child in Stack.of(self).node.children:
            if child.node.id.startswith("LogRetention"):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "CDK's LogRetention helper (sets the RDS log group's retention) logs with AWS's "
                    "minimal managed policy.",
                )
                acknowledge(
                    child,
                    "AwsSolutions-IAM5[Resource::*]",
                    "CDK's LogRetention helper must set retention on a log group RDS names at deploy time.",
                )
