"""Two environments: staging (one database, a snapshot first, the CodeBuild executor for long
migrations) and production (a fleet of tenant databases from SSM, a snapshot of each instance),
synthesized once per run (tests/pipeline_synth.py ``environments``); assertions on intent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template

from tests.pipeline_synth import (
    CONNECTION_ARN,
    PRODUCTION_DB_SG,
    PRODUCTION_SUBNETS,
    SECRET_KEY_ARN,
    STAGING_SECRET_ARN,
    SUBNETS,
    TARGETS_PARAMETER,
    Synthesized,
    _actions,
    _logical_id,
    _statements_of_role,
    environments,
    promotion,
    synth_dir,
)

__all__ = ["environments", "promotion", "synth_dir"]


def _stages(template: Template) -> list[dict[str, Any]]:
    (resource,) = template.find_resources("AWS::CodePipeline::Pipeline").values()
    return resource["Properties"]["Stages"]


def _action(template: Template, stage: str, action: str) -> dict[str, Any]:
    (found,) = [
        a for s in _stages(template) if s["Name"] == stage for a in s["Actions"] if a["Name"] == action
    ]
    return found


def _executor(template: Template, environment: str) -> tuple[str, str]:
    """(function logical id, role logical id) of an environment's executor."""
    raw = template.to_json()
    (function,) = [
        lid
        for lid, r in template.find_resources(
            "AWS::Lambda::Function", {"Properties": {"Handler": "executor.handler.handle"}}
        ).items()
        if r["Properties"]["Environment"]["Variables"]["SCHEMAGATE_ENVIRONMENT"] == environment
    ]
    return function, raw["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]


def _definition(template: Template, name: str) -> dict[str, Any]:
    """A state machine's definition (its Fn::Join rendered with placeholders for the tokens)."""
    (machine,) = template.find_resources(
        "AWS::StepFunctions::StateMachine", {"Properties": {"StateMachineName": name}}
    ).values()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))


# --- stages ---------------------------------------------------------------------------------------


def test_the_bundle_is_promoted_through_staging_then_production(
    environments: Synthesized, promotion: Template
) -> None:
    assert environments.stacks == ["SchemagatePipeline"]
    order = [
        (s["Name"], [(a["Name"], a["ActionTypeId"]["Provider"], a["RunOrder"]) for a in s["Actions"]])
        for s in _stages(promotion)
    ]
    assert order == [
        ("Source", [("Source", "CodeStarSourceConnection", 1)]),
        ("Validate", [("Validate", "CodeBuild", 1)]),
        (
            "staging",
            [
                ("Plan", "Lambda", 1),
                ("Approve", "Manual", 2),
                ("Snapshot", "StepFunctions", 3),
                ("Execute", "CodeBuild", 4),
            ],
        ),
        (
            "production",
            [
                ("Targets", "Lambda", 1),
                ("Plan", "StepFunctions", 2),
                ("PlanReport", "Lambda", 3),
                ("Approve", "Manual", 4),
                ("Execute", "StepFunctions", 5),
            ],
        ),
    ]
    # one bundle, built once, is what every environment plans and applies
    assert _action(promotion, "Validate", "Validate")["OutputArtifacts"] == [{"Name": "Bundle"}]
    for stage, action in (("staging", "Plan"), ("staging", "Execute"), ("production", "Targets")):
        assert _action(promotion, stage, action)["InputArtifacts"] == [{"Name": "Bundle"}]


def test_each_approval_reads_the_plan_of_its_own_environment(promotion: Template) -> None:
    staging_plan = _action(promotion, "staging", "Plan")
    assert staging_plan["Namespace"] == "Plan-staging"
    assert json.loads(staging_plan["Configuration"]["UserParameters"])["action"] == "plan"
    assert staging_plan["OutputArtifacts"] == [{"Name": "PlanReport_staging"}]
    production_report = _action(promotion, "production", "PlanReport")
    assert production_report["Namespace"] == "Plan-production"
    parameters = json.loads(production_report["Configuration"]["UserParameters"])
    assert parameters["action"] == "fleet_report" and parameters["fleet_action"] == "plan"
    assert parameters["execution_arn"] == "#{PlanFleet-production.ExecutionArn}"
    assert _action(promotion, "production", "Plan")["Namespace"] == "PlanFleet-production"

    for environment, other in (("staging", "production"), ("production", "staging")):
        configuration = _action(promotion, environment, "Approve")["Configuration"]
        data = configuration["CustomData"]
        for variable in ("pending", "summary", "drift"):
            assert f"#{{Plan-{environment}.{variable}}}" in data
        assert f"Plan-{other}" not in data and data.startswith(f"{environment}: planned")
        assert configuration["ExternalEntityLink"] == f"#{{Plan-{environment}.plan_report_link}}"
        assert len(data) <= 500
    assert (
        "#{Plan-production.targets} databases"
        in _action(promotion, "production", "Approve")["Configuration"]["CustomData"]
    )


def test_each_environment_notifies_its_own_approvers(promotion: Template) -> None:
    for environment, email in (("staging", "staging-owner@example.com"), ("production", "dba@example.com")):
        topic = _action(promotion, environment, "Approve")["Configuration"]["NotificationArn"]
        promotion.has_resource_properties(
            "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": email, "TopicArn": topic}
        )
        function, _ = _executor(promotion, environment)
        variables = promotion.to_json()["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["SCHEMAGATE_NOTIFY_TOPIC_ARN"] == topic
    # the pipeline's own failures go to the shared topic
    promotion.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )


# --- least privilege, per environment ------------------------------------------------------------


def test_each_executor_reads_only_its_own_secrets(promotion: Template) -> None:
    raw = promotion.to_json()
    staging = _statements_of_role(raw, _executor(promotion, "staging")[1])
    production = _statements_of_role(raw, _executor(promotion, "production")[1])

    def secret_reads(statements: list[dict]) -> list[dict]:
        return [s for s in statements if "secretsmanager:GetSecretValue" in _actions(s)]

    assert secret_reads(staging) == [
        {
            "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            "Effect": "Allow",
            "Resource": STAGING_SECRET_ARN,
        }
    ]
    (fleet_read,) = secret_reads(production)
    assert fleet_read["Condition"] == {
        "StringEquals": {"secretsmanager:ResourceTag/schemagate-environment": "production"}
    }
    assert STAGING_SECRET_ARN not in json.dumps(production)
    # the fleet's secrets' key, only through Secrets Manager; staging has none
    (decrypt,) = [s for s in production if s["Resource"] == SECRET_KEY_ARN]
    assert decrypt["Action"] == "kms:Decrypt" and "kms:ViaService" in json.dumps(decrypt["Condition"])
    assert SECRET_KEY_ARN not in json.dumps(staging)
    # only the fleet reads its targets parameter, the bundle bucket and its plan's output
    assert any(
        "ssm:GetParameter" in _actions(s) and TARGETS_PARAMETER.lstrip("/") in json.dumps(s["Resource"])
        for s in production
    )
    assert not any(a.startswith(("ssm:", "states:", "s3:")) for s in staging for a in _actions(s))
    (describe,) = [s for s in production if "states:DescribeExecution" in _actions(s)]
    assert "execution:schemagate-production-plan:*" in json.dumps(describe["Resource"])
    # both verify with the signing key, neither may sign
    for statements in (staging, production):
        assert any("kms:Verify" in _actions(s) for s in statements)
        assert not any("kms:Sign" in _actions(s) for s in statements)


def test_each_executor_runs_in_its_own_network(promotion: Template) -> None:
    raw = promotion.to_json()
    for environment, subnets, database_group in (
        ("staging", SUBNETS, "sg-0ccc3333"),
        ("production", PRODUCTION_SUBNETS, PRODUCTION_DB_SG),
    ):
        function, _ = _executor(promotion, environment)
        vpc_config = raw["Resources"][function]["Properties"]["VpcConfig"]
        assert vpc_config["SubnetIds"] == subnets
        (group,) = vpc_config["SecurityGroupIds"]
        promotion.has_resource_properties(
            "AWS::EC2::SecurityGroupIngress",
            {"GroupId": database_group, "FromPort": 5432, "SourceSecurityGroupId": group},
        )


def test_no_executor_reserves_concurrency_and_none_is_retried(promotion: Template) -> None:
    for resource in promotion.find_resources("AWS::Lambda::Function").values():
        assert "ReservedConcurrentExecutions" not in resource["Properties"]
    for environment in ("staging", "production"):
        function, _ = _executor(promotion, environment)
        promotion.has_resource_properties(
            "AWS::Lambda::EventInvokeConfig", {"FunctionName": {"Ref": function}, "MaximumRetryAttempts": 0}
        )


def test_the_snapshot_permission_is_scoped_to_each_environment(promotion: Template) -> None:
    raw = promotion.to_json()
    staging = _statements_of_role(raw, _executor(promotion, "staging")[1])
    production = _statements_of_role(raw, _executor(promotion, "production")[1])
    (instance,) = [s for s in staging if _actions(s) == ["rds:CreateDBSnapshot"]]
    assert "db:billing-staging" in json.dumps(instance["Resource"]) and "Condition" not in instance
    named = [s for s in staging if "rds:DescribeDBSnapshots" in _actions(s)]
    assert named and "snapshot:schemagate-staging-*" in json.dumps(named[0]["Resource"])
    tagged = [s for s in production if _actions(s) == ["rds:CreateDBSnapshot"]]
    assert tagged[0]["Condition"] == {"StringEquals": {"rds:db-tag/schemagate-environment": "production"}}
    assert "snapshot:schemagate-production-*" in json.dumps(
        [s for s in production if "rds:AddTagsToResource" in _actions(s)]
    )
    assert "billing-staging" not in json.dumps(production)
    # staging's snapshot runs before its Execute, named after the pipeline execution
    snapshot = _action(promotion, "staging", "Snapshot")["Configuration"]
    assert json.loads(snapshot["Input"]) == {
        "snapshot": "schemagate-staging-#{codepipeline.PipelineExecutionId}",
        "run_id": "#{codepipeline.PipelineExecutionId}",
        "environment": "staging",
    }
    states = _definition(promotion, "schemagate-staging-snapshot")["States"]
    assert states["SnapshotAvailable"]["Default"] == "SnapshotNotYetAvailable"
    assert states["SnapshotNotYetAvailable"] == {"Type": "Wait", "Seconds": 60, "Next": "Snapshot"}


# --- the fleet ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("machine", "action"), [("schemagate-production-plan", "Plan"), ("schemagate-production-apply", "Apply")]
)
def test_the_fleet_fans_out_with_a_distributed_map(promotion: Template, machine: str, action: str) -> None:
    definition = _definition(promotion, machine)
    each = definition["States"][definition["StartAt"]]
    assert each["Type"] == "Map" and each["ItemsPath"] == "$.targets"
    assert each["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert (each["MaxConcurrency"], each["ToleratedFailurePercentage"]) == (25, 5)
    assert each["ResultWriter"]["Parameters"]["Prefix"] == f"fleet-results/production/{action.lower()}"
    assert each["ResultWriter"]["WriterConfig"] == {"OutputType": "JSON", "Transformation": "NONE"}
    states = each["ItemProcessor"]["States"]
    run = states[action]
    assert run["Parameters"]["action"] == action.lower()
    assert run["Parameters"]["target_secret_arn.$"] == "$.target.secret_arn"
    # a target whose answer is not ok fails alone, with its category and answer (fleet_summary reads them)
    assert states[f"{action}Failed"] == {
        "Type": "Fail",
        "ErrorPath": "$.answer.category",
        "CausePath": "States.JsonToString($.answer)",
    }
    assert definition["States"][each["Next"]]["Parameters"]["action"] == "fleet_summary"
    # only Execute snapshots first, and its result names the snapshot
    assert (each["ItemProcessor"]["StartAt"] == "Snapshot") is (action == "Apply")
    if action == "Apply":
        assert states["SnapshotAvailable"]["Choices"][1]["Next"] == "SnapshotTaken"
        assert states["SnapshotTaken"]["Next"] == "Apply"
        assert states["NameTheSnapshot"]["Parameters"] == {
            "answer.$": "States.JsonMerge($.answer, $.snapshot_named, false)"
        }


def test_the_fleet_execute_fails_when_a_target_failed(promotion: Template) -> None:
    states = _definition(promotion, "schemagate-production-apply")["States"]
    assert states["AllApplied"]["Choices"][0]["Next"] == "TargetsFailed"
    assert states["TargetsFailed"] == {"Type": "Fail", "Error": "FleetTargetsFailed", "CausePath": "$.text"}


def test_the_fleet_reads_its_frozen_targets_and_writes_results_it_may_encrypt(promotion: Template) -> None:
    targets = _action(promotion, "production", "Targets")
    assert targets["OutputArtifacts"] == [{"Name": "FleetInput_production"}]
    assert json.loads(targets["Configuration"]["UserParameters"])["snapshot"] == (
        "schemagate-production-#{codepipeline.PipelineExecutionId}"
    )
    for action in ("Plan", "Execute"):
        configuration = _action(promotion, "production", action)
        assert configuration["InputArtifacts"] == [{"Name": "FleetInput_production"}]
        assert configuration["Configuration"]["InputType"] == "FilePath"
        assert configuration["Configuration"]["Input"] == "input.json"  # a path inside the artifact
    raw = promotion.to_json()
    (machine,) = promotion.find_resources(
        "AWS::StepFunctions::StateMachine",
        {"Properties": {"StateMachineName": "schemagate-production-apply"}},
    ).values()
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = _statements_of_role(raw, role)
    assert any("kms:GenerateDataKey*" in _actions(s) for s in statements)  # the artifact bucket is SSE-KMS
    assert any("lambda:InvokeFunction" in _actions(s) for s in statements)


# --- the long-migration path, connections, the user's repository ----------------------------------


def test_staging_applies_with_the_codebuild_executor_in_its_vpc(promotion: Template) -> None:
    execute = _action(promotion, "staging", "Execute")
    project = execute["Configuration"]["ProjectName"]["Ref"]
    (resource,) = [
        r for lid, r in promotion.find_resources("AWS::CodeBuild::Project").items() if lid == project
    ]
    props = resource["Properties"]
    assert props["TimeoutInMinutes"] == 480
    assert props["VpcConfig"]["Subnets"] == SUBNETS
    variables = {v["Name"]: v for v in props["Environment"]["EnvironmentVariables"]}
    assert variables["PGPASSWORD"] == {
        "Name": "PGPASSWORD",
        "Type": "SECRETS_MANAGER",
        "Value": f"{STAGING_SECRET_ARN}:password",
    }
    assert variables["PGSSLMODE"]["Value"] == "require"
    assert {"SCHEMAGATE_WHEEL_URL", "SCHEMAGATE_WHEEL_NAME", "SCHEMAGATE_SIGNING_KEY_ID"} <= set(variables)
    spec = json.loads(props["Source"]["BuildSpec"])
    commands = " ".join(spec["phases"]["build"]["commands"])
    assert 'python -m executor.verify_bundle "$CODEBUILD_SRC_DIR"' in commands
    assert 'schemagate apply --bundle "$CODEBUILD_SRC_DIR" --yes' in commands
    assert commands.index("verify_bundle") < commands.index("schemagate apply")


def test_both_connection_prefixes_are_granted_to_the_source_and_the_validation_build(
    promotion: Template,
) -> None:
    raw = promotion.to_json()
    # the validation build: the pipeline's CodeBuild project outside any VPC (the executor's is in one)
    validation = _logical_id(
        promotion,
        "AWS::CodeBuild::Project",
        {"Artifacts": {"Type": "CODEPIPELINE"}, "VpcConfig": Match.absent()},
    )
    validation_role = raw["Resources"][validation]["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    source_role = _action(promotion, "Source", "Source")["RoleArn"]["Fn::GetAtt"][0]
    for role in (source_role, validation_role):
        granted = {
            action
            for statement in _statements_of_role(raw, role)
            if statement["Resource"] == CONNECTION_ARN
            for action in _actions(statement)
        }
        assert {"codestar-connections:UseConnection", "codeconnections:UseConnection"} <= granted, role


def test_the_triggers_follow_the_team_migrations_directory(promotion: Template) -> None:
    (resource,) = promotion.find_resources("AWS::CodePipeline::Pipeline").values()
    (trigger,) = resource["Properties"]["Triggers"]
    assert trigger["GitConfiguration"]["Push"][0]["FilePaths"]["Includes"] == [
        "services/billing/db/migrations/**",
        "pyproject.toml",
        ".sqlfluff",
    ]
    promotion.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Triggers": Match.object_like(
                {
                    "FilterGroups": [
                        Match.array_with(
                            [
                                {
                                    "Type": "FILE_PATH",
                                    "Pattern": r"^(services/billing/db/migrations/|pyproject\.toml$|\.sqlfluff$)",
                                }
                            ]
                        )
                    ]
                }
            )
        },
    )


def test_the_builds_install_the_deployed_schemagate_wheel(promotion: Template) -> None:
    url = Capture()
    for source in ("CODEPIPELINE", "GITLAB"):
        promotion.has_resource_properties(
            "AWS::CodeBuild::Project",
            {
                "Source": Match.object_like({"Type": source}),
                "Environment": Match.object_like(
                    {
                        "EnvironmentVariables": Match.array_with(
                            [
                                {"Name": "SCHEMAGATE_WHEEL_URL", "Type": "PLAINTEXT", "Value": url},
                                {
                                    "Name": "SCHEMAGATE_WHEEL_NAME",
                                    "Type": "PLAINTEXT",
                                    "Value": "schemagate-0.1.0-py3-none-any.whl",
                                },
                            ]
                        )
                    }
                ),
            },
        )
    # the deploy-time asset: the wheel's own hash names it in the CDK assets bucket
    assert url.as_object()["Fn::Sub"].startswith(
        "s3://cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}/"
    )
    assert url.as_object()["Fn::Sub"].endswith(".whl")


# --- checks ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cdk_nag_cfn_lint_and_acknowledgments(environments: Synthesized) -> None:
    from cfnlint import api

    report = json.loads((environments.outdir / "validation-report.json").read_text())
    assert [v["ruleName"] for p in report["pluginReports"] for v in p.get("violations", [])] == []
    text = (environments.outdir / "SchemagatePipeline.template.json").read_text()
    matches = api.lint(text, config=api.ManualArgs(regions=["eu-west-1"]))
    assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")] == []
    metadata = json.loads((environments.outdir / "SchemagatePipeline.metadata.json").read_text())
    reasons = [
        reason
        for entries in metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for reason in entry["data"].values()
    ]
    assert reasons and all(len(r.strip()) > 30 for r in reasons)
