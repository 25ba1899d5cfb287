"""The CDK app with the single-database keys (one environment), synthesized once per run
(tests/pipeline_synth.py); assertions on intent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App
from aws_cdk.assertions import Capture, Match, Template

from tests.pipeline_synth import (
    CONNECTION_ARN,
    DB_SG,
    SECRET_ARN,
    SECRET_KEY_ARN,
    SUBNETS,
    Synthesized,
    _actions,
    _logical_id,
    _resolve_join,
    _statements_of_role,
    codecommit,
    demo_database,
    demo_pipeline,
    github_demo,
    pipeline,
    synth_dir,
)

__all__ = ["codecommit", "demo_database", "demo_pipeline", "github_demo", "pipeline", "synth_dir"]


# --- the stacks each configuration produces -------------------------------------------------------


def test_each_configuration_synthesizes_the_stacks_it_asks_for(
    codecommit: Synthesized, github_demo: Synthesized
) -> None:
    assert codecommit.stacks == ["SchemagatePipeline"]
    assert sorted(github_demo.stacks) == ["SchemagateDemoDatabase", "SchemagatePipeline"]


# --- the pipeline ---------------------------------------------------------------------------------


def test_stages_run_source_validate_then_plan_approve_execute_in_a_v2_pipeline(pipeline: Template) -> None:
    pipeline.has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "PipelineType": "V2",
            "Stages": [
                Match.object_like(
                    {
                        "Name": "Source",
                        "Actions": [
                            Match.object_like(
                                {
                                    "ActionTypeId": {
                                        "Category": "Source",
                                        "Owner": "AWS",
                                        "Provider": "CodeCommit",
                                        "Version": "1",
                                    },
                                    "Configuration": Match.object_like(
                                        {"RepositoryName": "app-migrations", "BranchName": "main"}
                                    ),
                                }
                            )
                        ],
                    }
                ),
                Match.object_like(
                    {
                        "Name": "Validate",
                        "Actions": [
                            Match.object_like(
                                {
                                    "ActionTypeId": {
                                        "Category": "Build",
                                        "Owner": "AWS",
                                        "Provider": "CodeBuild",
                                        "Version": "1",
                                    },
                                }
                            )
                        ],
                    }
                ),
                Match.object_like(
                    {
                        # the single-database keys are one environment: Plan -> Approve -> Execute
                        "Name": "default",
                        "Actions": [
                            Match.object_like(
                                {
                                    "Name": "Plan",
                                    "RunOrder": 1,
                                    "ActionTypeId": Match.object_like(
                                        {"Category": "Invoke", "Provider": "Lambda"}
                                    ),
                                }
                            ),
                            Match.object_like(
                                {
                                    "Name": "Approve",
                                    "RunOrder": 2,
                                    "ActionTypeId": {
                                        "Category": "Approval",
                                        "Owner": "AWS",
                                        "Provider": "Manual",
                                        "Version": "1",
                                    },
                                }
                            ),
                            Match.object_like(
                                {
                                    "Name": "Execute",
                                    "RunOrder": 3,
                                    "ActionTypeId": {
                                        "Category": "Invoke",
                                        "Owner": "AWS",
                                        "Provider": "Lambda",
                                        "Version": "1",
                                    },
                                }
                            ),
                        ],
                    }
                ),
            ],
        },
    )


def test_the_validated_bundle_is_what_the_executor_receives(pipeline: Template) -> None:
    source_out, validate_in, bundle_out, execute_in = Capture(), Capture(), Capture(), Capture()
    plan_in, project, function, plan_function = Capture(), Capture(), Capture(), Capture()
    pipeline.has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "Stages": [
                Match.object_like(
                    {"Actions": [Match.object_like({"OutputArtifacts": [{"Name": source_out}]})]}
                ),
                Match.object_like(
                    {
                        "Actions": [
                            Match.object_like(
                                {
                                    "InputArtifacts": [{"Name": validate_in}],
                                    "OutputArtifacts": [{"Name": bundle_out}],
                                    "Configuration": {"ProjectName": {"Ref": project}},
                                }
                            )
                        ]
                    }
                ),
                Match.object_like(
                    {
                        "Actions": [
                            Match.object_like(
                                {
                                    "InputArtifacts": [{"Name": plan_in}],
                                    "Configuration": Match.object_like(
                                        {"FunctionName": {"Ref": plan_function}}
                                    ),
                                }
                            ),
                            Match.any_value(),
                            Match.object_like(
                                {
                                    "InputArtifacts": [{"Name": execute_in}],
                                    "Configuration": Match.object_like({"FunctionName": {"Ref": function}}),
                                }
                            ),
                        ]
                    }
                ),
            ]
        },
    )
    assert validate_in.as_string() == source_out.as_string()
    assert execute_in.as_string() == plan_in.as_string() == bundle_out.as_string() == "Bundle"
    assert plan_function.as_string() == function.as_string()
    assert project.as_string() == _logical_id(
        pipeline, "AWS::CodeBuild::Project", {"Artifacts": {"Type": "CODEPIPELINE"}}
    )
    assert function.as_string() == _logical_id(
        pipeline, "AWS::Lambda::Function", {"Handler": "executor.handler.handle"}
    )


def test_artifacts_live_in_the_store_bucket_encrypted_with_its_key(pipeline: Template) -> None:
    bucket, key = Capture(), Capture()
    pipeline.has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "ArtifactStore": {
                "Type": "S3",
                "Location": {"Ref": bucket},
                "EncryptionKey": {"Type": "KMS", "Id": {"Fn::GetAtt": [key, "Arn"]}},
            }
        },
    )
    pipeline.has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": Match.object_like(
                {
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            Match.object_like(
                                {
                                    "ServerSideEncryptionByDefault": {
                                        "SSEAlgorithm": "aws:kms",
                                        "KMSMasterKeyID": {"Fn::GetAtt": [key.as_string(), "Arn"]},
                                    },
                                }
                            )
                        ]
                    },
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "LoggingConfiguration": Match.object_like({"DestinationBucketName": Match.any_value()}),
                }
            )
        },
    )
    assert bucket.as_string() in pipeline.find_resources("AWS::S3::Bucket")
    pipeline.has_resource_properties(
        "AWS::KMS::Key", {"EnableKeyRotation": True, "KeyPolicy": Match.any_value()}
    )
    assert pipeline.to_json()["Resources"][key.as_string()]["Properties"]["EnableKeyRotation"] is True
    pipeline.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket.as_string()},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ),
                    ]
                )
            },
        },
    )


# --- validation ------------------------------------------------------------------------------------


def test_the_validation_build_runs_the_inlined_buildspec_and_reports_junit(pipeline: Template) -> None:
    buildspec = Capture()
    pipeline.has_resource_properties(
        "AWS::CodeBuild::Project",
        {"Artifacts": {"Type": "CODEPIPELINE"}, "Source": {"Type": "CODEPIPELINE", "BuildSpec": buildspec}},
    )
    spec = json.loads(_resolve_join(buildspec.as_object()))
    assert spec["phases"]["build"]["commands"] == [
        'schemagate validate --reports reports --bundle bundle --sign-with-kms "$SCHEMAGATE_SIGNING_KEY_ID"'
    ]
    assert spec["artifacts"] == {"base-directory": "bundle", "files": ["**/*"]}
    (report,) = spec["reports"].values()
    assert report["file-format"] == "JUNITXML"
    assert "CODEBUILD_BUILD_ID" in spec["env"]["exported-variables"]
    report_group = _logical_id(
        pipeline,
        "AWS::CodeBuild::ReportGroup",
        {
            "ExportConfig": Match.object_like(
                {"S3Destination": Match.object_like({"Path": "reports/validation"})}
            )
        },
    )
    assert list(spec["reports"]) == [f"<arn of {report_group}>"]


def test_report_groups_are_test_reports_exported_raw_to_the_artifact_bucket(pipeline: Template) -> None:
    pipeline.has_resource_properties(
        "AWS::CodeBuild::ReportGroup",
        {
            "Type": "TEST",
            "ExportConfig": {
                "ExportConfigType": "S3",
                "S3Destination": Match.object_like(
                    {
                        "Bucket": {"Ref": Match.string_like_regexp("^ArtifactsBucket")},
                        "Packaging": Match.absent(),
                        "Path": "reports/validation",
                        "EncryptionDisabled": False,
                    }
                ),
            },
        },
    )


def test_the_pipeline_validation_project_has_no_webhook(pipeline: Template, demo_pipeline: Template) -> None:
    for template in (pipeline, demo_pipeline):
        template.has_resource_properties(
            "AWS::CodeBuild::Project",
            {"Source": Match.object_like({"Type": "CODEPIPELINE"}), "Triggers": Match.absent()},
        )


def test_only_the_validation_project_may_sign_with_the_signing_key(pipeline: Template) -> None:
    raw = pipeline.to_json()
    key = _logical_id(pipeline, "AWS::KMS::Key", {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"})
    project = _logical_id(pipeline, "AWS::CodeBuild::Project", {"Artifacts": {"Type": "CODEPIPELINE"}})
    project_role = raw["Resources"][project]["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    pipeline.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Artifacts": {"Type": "CODEPIPELINE"},
            "Environment": Match.object_like(
                {
                    "EnvironmentVariables": Match.array_with(
                        [
                            {
                                "Name": "SCHEMAGATE_SIGNING_KEY_ID",
                                "Type": "PLAINTEXT",
                                "Value": {"Fn::GetAtt": [key, "Arn"]},
                            },
                        ]
                    )
                }
            ),
        },
    )
    pipeline.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyUsage": "SIGN_VERIFY",
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "kms:Sign",
                                "Principal": {"AWS": "*"},
                                "Condition": {
                                    "ArnNotEquals": {
                                        "aws:PrincipalArn": {"Fn::GetAtt": [project_role, "Arn"]}
                                    }
                                },
                            }
                        )
                    ]
                )
            },
        },
    )
    signers = [
        role
        for role in pipeline.find_resources("AWS::IAM::Role")
        if any("kms:Sign" in _actions(s) for s in _statements_of_role(raw, role))
    ]
    assert signers == [project_role]


# --- approval --------------------------------------------------------------------------------------


def test_the_approval_reads_the_plan_of_its_database_and_links_to_the_plan_report(pipeline: Template) -> None:
    plan, approve = Capture(), Capture()
    pipeline.has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "Stages": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Name": "default",
                            "Actions": [
                                Match.object_like(
                                    {"Name": "Plan", "Namespace": "Plan-default", "Configuration": plan}
                                ),
                                Match.object_like(
                                    {"Name": "Approve", "Configuration": approve, "TimeoutInMinutes": 720}
                                ),
                                Match.any_value(),
                            ],
                        }
                    )
                ]
            )
        },
    )
    assert json.loads(plan.as_object()["UserParameters"])["action"] == "plan"
    custom_data = approve.as_object()["CustomData"]
    for variable in ("pending", "summary", "drift"):
        assert f"#{{Plan-default.{variable}}}" in custom_data
    assert "#{Validate.SCHEMAGATE_BUNDLE_SHA256}" in custom_data  # the buildspec exports it
    assert "#{Source.CommitId}" in custom_data
    assert len(custom_data) <= 500
    assert approve.as_object()["ExternalEntityLink"] == "#{Plan-default.plan_report_link}"
    topic = approve.as_object()["NotificationArn"]["Ref"]
    for email in ("dba@example.com", "lead@example.com"):
        pipeline.has_resource_properties(
            "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": email, "TopicArn": {"Ref": topic}}
        )
    pipeline.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})


# --- the executor ----------------------------------------------------------------------------------


def test_the_executor_runs_python_312_for_up_to_15_minutes_unreserved_and_never_retried(
    pipeline: Template,
) -> None:
    log_group = Capture()
    function = _logical_id(pipeline, "AWS::Lambda::Function", {"Handler": "executor.handler.handle"})
    pipeline.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "executor.handler.handle",
            "Runtime": "python3.12",
            # reserving any concurrency fails the stack on accounts with a small quota; the advisory
            # lock serializes executors on a database
            "ReservedConcurrentExecutions": Match.absent(),
            "Timeout": 900,
            "LoggingConfig": {"LogGroup": {"Ref": log_group}},
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "SCHEMAGATE_DB_SECRET_ARN": SECRET_ARN,
                        "SCHEMAGATE_SIGNING_KEY_ID": {
                            "Fn::GetAtt": [Match.string_like_regexp("SigningKey"), "Arn"]
                        },
                        "SCHEMAGATE_NOTIFY_TOPIC_ARN": {
                            "Ref": Match.string_like_regexp("NotificationsTopic")
                        },
                        "SCHEMAGATE_SCHEMA": "app",
                    }
                )
            },
        },
    )
    assert pipeline.to_json()["Resources"][log_group.as_string()]["Properties"]["RetentionInDays"] == 90
    # CodePipeline invokes asynchronously: Lambda's default two retries would run a timed-out job again
    pipeline.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": {"Ref": function}, "MaximumRetryAttempts": 0, "Qualifier": "$LATEST"},
    )


def test_the_executor_runs_in_the_private_subnets_and_reaches_only_the_database(pipeline: Template) -> None:
    executor_sg = Capture()
    pipeline.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "executor.handler.handle",
            "VpcConfig": {
                "SubnetIds": SUBNETS,
                "SecurityGroupIds": [{"Fn::GetAtt": [executor_sg, "GroupId"]}],
            },
        },
    )
    pipeline.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "GroupId": DB_SG,
            "IpProtocol": "tcp",
            "FromPort": 5432,
            "ToPort": 5432,
            "SourceSecurityGroupId": {"Fn::GetAtt": [executor_sg.as_string(), "GroupId"]},
        },
    )
    pipeline.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "VpcId": "vpc-0abc1234",
            "SecurityGroupEgress": [Match.object_like({"FromPort": 443, "ToPort": 443})],
        },
    )


def test_the_executor_role_reads_only_its_secret_and_verifies_only_with_its_key(pipeline: Template) -> None:
    raw = pipeline.to_json()
    function = _logical_id(pipeline, "AWS::Lambda::Function", {"Handler": "executor.handler.handle"})
    role = raw["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    key = _logical_id(pipeline, "AWS::KMS::Key", {"KeyUsage": "SIGN_VERIFY"})
    statements = _statements_of_role(raw, role)
    secret_statements = [s for s in statements if any(a.startswith("secretsmanager:") for a in _actions(s))]
    assert secret_statements == [
        {
            "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            "Effect": "Allow",
            "Resource": SECRET_ARN,
        }
    ]
    decrypt = [s for s in statements if s["Resource"] == SECRET_KEY_ARN]
    assert decrypt == [
        {
            "Action": "kms:Decrypt",
            "Effect": "Allow",
            "Resource": SECRET_KEY_ARN,
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": {
                        "Fn::Join": ["", ["secretsmanager.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]
                    }
                }
            },
        }
    ]
    verify = [s for s in statements if "kms:Verify" in _actions(s)]
    assert verify == [{"Action": "kms:Verify", "Effect": "Allow", "Resource": {"Fn::GetAtt": [key, "Arn"]}}]
    assert not [s for s in statements if "kms:Sign" in _actions(s)]
    # nothing that reads data is granted on every resource
    for statement in statements:
        if statement["Resource"] == "*":
            assert set(_actions(statement)) <= {
                "codepipeline:PutJobSuccessResult",
                "codepipeline:PutJobFailureResult",
            }


# --- pull requests ---------------------------------------------------------------------------------


def test_codecommit_pull_requests_start_the_pr_build_through_eventbridge(pipeline: Template) -> None:
    pr_project = _logical_id(
        pipeline, "AWS::CodeBuild::Project", {"Source": Match.object_like({"Type": "CODECOMMIT"})}
    )
    input_template = Capture()
    pipeline.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.codecommit"],
                "detail-type": ["CodeCommit Pull Request State Change"],
                "resources": [Match.any_value()],
                "detail": {
                    "event": [
                        "pullRequestCreated",
                        "pullRequestSourceBranchUpdated",
                        "pullRequestStatusChanged",
                    ],
                    "pullRequestStatus": ["Open"],
                },
            },
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [pr_project, "Arn"]},
                        "InputTransformer": Match.object_like({"InputTemplate": input_template}),
                    }
                )
            ],
        },
    )
    assert '"sourceVersion":<detail-sourceCommit>' in input_template.as_string()
    pipeline.has_resource_properties(
        "AWS::CodeBuild::Project",
        {"Source": Match.object_like({"Type": "CODECOMMIT"}), "Triggers": Match.absent()},
    )


def test_codecommit_pull_requests_get_the_result_as_a_comment(pipeline: Template) -> None:
    pr_project = _logical_id(
        pipeline, "AWS::CodeBuild::Project", {"Source": Match.object_like({"Type": "CODECOMMIT"})}
    )
    commenter = _logical_id(pipeline, "AWS::Lambda::Function", {"Handler": "index.handle"})
    pipeline.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.codebuild"],
                "detail-type": ["CodeBuild Build State Change"],
                "detail": {
                    "project-name": [{"Ref": pr_project}],
                    "build-status": ["SUCCEEDED", "FAILED", "STOPPED"],
                },
            },
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [commenter, "Arn"]}})],
        },
    )
    raw = pipeline.to_json()
    role = raw["Resources"][commenter]["Properties"]["Role"]["Fn::GetAtt"][0]
    (statement,) = _statements_of_role(raw, role)
    assert statement["Action"] == "codecommit:PostCommentForPullRequest"
    assert "app-migrations" in json.dumps(statement["Resource"])


def test_github_pull_requests_touching_migrations_trigger_the_pr_build(demo_pipeline: Template) -> None:
    demo_pipeline.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Source": Match.object_like(
                {
                    "Type": "GITHUB",
                    "Location": "https://github.com/acme/app.git",
                    "ReportBuildStatus": True,
                    "Auth": {"Type": "CODECONNECTIONS", "Resource": CONNECTION_ARN},
                }
            ),
            "Triggers": {
                "Webhook": True,
                "FilterGroups": [
                    [
                        {
                            "Type": "EVENT",
                            "Pattern": "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, PULL_REQUEST_REOPENED",
                        },
                        {"Type": "FILE_PATH", "Pattern": r"^(migrations/|pyproject\.toml$|\.sqlfluff$)"},
                    ]
                ],
            },
        },
    )


def test_a_connection_source_feeds_the_pipeline_on_migration_changes(demo_pipeline: Template) -> None:
    demo_pipeline.has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "Stages": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Name": "Source",
                            "Actions": [
                                Match.object_like(
                                    {
                                        "ActionTypeId": Match.object_like(
                                            {"Provider": "CodeStarSourceConnection"}
                                        ),
                                        "Configuration": Match.object_like(
                                            {
                                                "ConnectionArn": CONNECTION_ARN,
                                                "FullRepositoryId": "acme/app",
                                                "BranchName": "trunk",
                                            }
                                        ),
                                    }
                                )
                            ],
                        }
                    )
                ]
            ),
            "Triggers": [
                Match.object_like(
                    {
                        "ProviderType": "CodeStarSourceConnection",
                        "GitConfiguration": Match.object_like(
                            {
                                "Push": [
                                    Match.object_like(
                                        {
                                            "Branches": {"Includes": ["trunk"]},
                                            "FilePaths": {
                                                "Includes": ["migrations/**", "pyproject.toml", ".sqlfluff"]
                                            },
                                        }
                                    )
                                ]
                            }
                        ),
                    }
                )
            ],
        },
    )


# --- monitoring ------------------------------------------------------------------------------------


def test_executor_errors_and_pipeline_failures_reach_the_topic(pipeline: Template) -> None:
    topic = _logical_id(pipeline, "AWS::SNS::Topic")
    function = _logical_id(pipeline, "AWS::Lambda::Function", {"Handler": "executor.handler.handle"})
    pipeline.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function}}],
            "Threshold": 1,
            "AlarmActions": [{"Ref": topic}],
        },
    )
    pipeline.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {
                    "source": ["aws.codepipeline"],
                    "detail-type": ["CodePipeline Pipeline Execution State Change"],
                    "detail": {"state": ["FAILED"]},
                }
            ),
            "Targets": [Match.object_like({"Arn": {"Ref": topic}})],
        },
    )
    # the publishers may use the topic's key
    pipeline.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {
                                    "Service": Match.array_with(
                                        ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
                                    )
                                },
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            }
                        )
                    ]
                )
            }
        },
    )


def test_the_dashboard_shows_the_executor_metrics_by_their_names(pipeline: Template) -> None:
    (dashboard,) = pipeline.find_resources("AWS::CloudWatch::Dashboard").values()
    body = _resolve_join(dashboard["Properties"]["DashboardBody"])
    for title in ("Executions", "Migrations applied", "Durations", "Failures by category"):
        assert f'"title":"{title}"' in body
    for metric in ("MigrationsApplied", "Duration", "Failures"):
        assert f'Namespace=\\"schemagate\\" MetricName=\\"{metric}\\"' in body


# --- the demo database -----------------------------------------------------------------------------


def test_the_demo_database_is_private_with_a_generated_secret(demo_database: Template) -> None:
    demo_database.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "Engine": "postgres",
            "PubliclyAccessible": False,
            "StorageEncrypted": True,
            "DBSubnetGroupName": {"Ref": Match.any_value()},
        },
    )
    demo_database.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "GenerateSecretString": Match.object_like(
                {"SecretStringTemplate": '{"username":"schemagate_admin"}'}
            )
        },
    )
    (subnet_group_resource,) = demo_database.find_resources("AWS::RDS::DBSubnetGroup").values()
    subnet_group = subnet_group_resource["Properties"]
    private = {
        lid
        for lid, r in demo_database.find_resources("AWS::EC2::Subnet").items()
        if not r["Properties"]["MapPublicIpOnLaunch"]
    }
    assert {ref["Ref"] for ref in subnet_group["SubnetIds"]} == private


def test_the_demo_executor_runs_in_the_demo_private_subnets_with_the_demo_secret(
    demo_pipeline: Template,
) -> None:
    subnet_ids = Capture()
    demo_pipeline.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "executor.handler.handle",
            "VpcConfig": Match.object_like({"SubnetIds": subnet_ids}),
            "Environment": {"Variables": Match.object_like({"SCHEMAGATE_DB_SECRET_ARN": Match.any_value()})},
        },
    )
    outputs = json.dumps(subnet_ids.as_array())
    assert outputs.count("privateSubnet") == 2 and "public" not in outputs
    demo_pipeline.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress", {"FromPort": 5432, "ToPort": 5432, "IpProtocol": "tcp"}
    )


# --- security checks -------------------------------------------------------------------------------


def test_cdk_nag_reports_nothing_unacknowledged(codecommit: Synthesized, github_demo: Synthesized) -> None:
    for synthesized in (codecommit, github_demo):
        report = json.loads((synthesized.outdir / "validation-report.json").read_text())
        violations = [
            (violation["ruleName"], resource.get("constructPath"))
            for plugin in report["pluginReports"]
            for violation in plugin.get("violations", [])
            for resource in violation.get("violatingResources", [])
        ]
        assert violations == []


def test_a_buildspec_that_signs_raises_no_unsigned_bundle_warning(codecommit: Synthesized) -> None:
    metadata = (codecommit.outdir / "SchemagatePipeline.metadata.json").read_text()
    assert "schemagate:unsignedBundle" not in metadata
    assert "aws:cdk:warning" not in metadata


@pytest.mark.slow
def test_an_unacknowledged_nag_finding_fails_synth(tmp_path: Path) -> None:
    """The gate the two tests around this one rely on: cdk-nag runs at synth and refuses."""
    from aws_cdk import Stack
    from aws_cdk import aws_sqs as sqs

    from pipeline.nag_policy import check_app

    app = App(outdir=str(tmp_path))
    sqs.Queue(Stack(app, "Careless"), "Queue", enforce_ssl=False)
    check_app(app)
    with pytest.raises(RuntimeError, match=r"ValidationFailed(.|\n)*AwsSolutions-SQS4"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {
        violation["ruleName"] for plugin in report["pluginReports"] for violation in plugin["violations"]
    }
    assert "AwsSolutions-SQS4" in rules  # no TLS enforcement on the queue


def test_every_acknowledgment_carries_a_reason(codecommit: Synthesized, github_demo: Synthesized) -> None:
    for synthesized in (codecommit, github_demo):
        acknowledged = {}
        for stack in synthesized.stacks:
            metadata = json.loads((synthesized.outdir / f"{stack}.metadata.json").read_text())
            for entries in metadata.values():
                for entry in entries:
                    if entry["type"] == "aws:cdk:acknowledged-rules":
                        acknowledged.update(entry["data"])
        nag = {rule: reason for rule, reason in acknowledged.items() if "AwsSolutions-" in rule}
        assert len(nag) > 10
        assert all(len(reason.strip()) > 30 for reason in acknowledged.values()), acknowledged


@pytest.mark.slow
@pytest.mark.parametrize(
    ("configuration", "stack"),
    [
        ("codecommit", "SchemagatePipeline"),
        ("github_demo", "SchemagatePipeline"),
        ("github_demo", "SchemagateDemoDatabase"),
    ],
)
def test_cfn_lint_finds_no_errors(request: pytest.FixtureRequest, configuration: str, stack: str) -> None:
    from cfnlint import api

    synthesized: Synthesized = request.getfixturevalue(configuration)
    matches = api.lint(
        (synthesized.outdir / f"{stack}.template.json").read_text(),
        config=api.ManualArgs(regions=["eu-west-1"]),
    )
    errors = [f"{m.rule.id} {m.message} ({m.path})" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_the_executor_is_told_the_pipeline_execution_id(pipeline: Template) -> None:
    """The job event has no execution id; the history's run_id comes from UserParameters."""
    params = Capture()
    pipeline.has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "Stages": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Name": "default",
                            "Actions": Match.array_with(
                                [
                                    Match.object_like(
                                        {
                                            "Name": "Execute",
                                            "Configuration": Match.object_like({"UserParameters": params}),
                                        }
                                    )
                                ]
                            ),
                        }
                    )
                ]
            )
        },
    )
    assert "pipeline_execution_id" in params.as_string()
    assert "#{codepipeline.PipelineExecutionId}" in params.as_string()


@pytest.mark.parametrize("fixture", ["pipeline", "demo_pipeline"])
def test_the_validation_build_gets_a_full_clone_with_history(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    """buildspec.yml judges a merge against the previous commit; that needs git history, which a
    source zip lacks: both source kinds hand CodeBuild a clone reference instead."""
    template: Template = request.getfixturevalue(fixture)
    template.has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "Stages": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Name": "Source",
                            "Actions": [
                                Match.object_like(
                                    {
                                        "Configuration": Match.object_like(
                                            {"OutputArtifactFormat": "CODEBUILD_CLONE_REF"}
                                        )
                                    }
                                )
                            ],
                        }
                    )
                ]
            )
        },
    )
    clone_permission = "codecommit:GitPull" if fixture == "pipeline" else "codestar-connections:UseConnection"
    policies = template.find_resources("AWS::IAM::Policy")
    assert any(
        clone_permission in json.dumps(p["Properties"]["PolicyDocument"]) for p in policies.values()
    ), f"no role may {clone_permission}: the validation build could not clone"
