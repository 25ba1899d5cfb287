"""A CodeBuild test-report group whose raw reports are also exported to S3."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline.nag_policy import cfn_resource


class JunitReportGroup(Construct):
    """A TEST report group (the buildspec sends JUNITXML) exporting raw reports to ``bucket/prefix``.

    CodeBuild keeps reports for 30 days; the export keeps them as long as the bucket does.
    Exposes ``report_group``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.report_group = codebuild.ReportGroup(
            self,
            "Reports",
            type=codebuild.ReportGroupType.TEST,
            export_bucket=bucket,
            zip_export=False,
            removal_policy=RemovalPolicy.RETAIN,
        )
        cfn = cfn_resource(self.report_group)
        cfn.add_property_override("ExportConfig.S3Destination.Path", prefix)
