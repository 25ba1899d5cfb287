"""The CDK app's configuration and buildspec handling: plain Python, no synth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import inlined_buildspec
from pipeline.config import PipelineConfig, PipelineConfigError, SourceProvider

REPO_ROOT = Path(__file__).resolve().parent.parent

EXTERNAL_DB = {
    "databaseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
    "vpcId": "vpc-0abc1234",
    "privateSubnetIds": ["subnet-0aaa1111", "subnet-0bbb2222"],
    "databaseSecurityGroupId": "sg-0ccc3333",
}
CONNECTION = "arn:aws:codeconnections:eu-west-1:123456789012:connection/12345678-1234-1234-1234-123456789012"


def _config(**raw: object) -> PipelineConfig:
    return PipelineConfig.from_mapping(raw)


def _error(**raw: object) -> PipelineConfigError:
    with pytest.raises(PipelineConfigError) as caught:
        PipelineConfig.from_mapping(raw)
    return caught.value


def test_codecommit_with_an_existing_database_reads_every_key() -> None:
    config = _config(
        sourceProvider="codecommit",
        repositoryName="app-db",
        branch="release",
        schema="app",
        approvalEmails=["dba@example.com"],
        executorTimeoutMinutes=10,
        logRetentionDays=30,
        **EXTERNAL_DB,
    )
    assert config.source.provider is SourceProvider.CODECOMMIT
    assert config.source.repository_name == "app-db"
    assert config.source.branch == "release"
    assert config.database is not None
    assert config.database.private_subnet_ids == ("subnet-0aaa1111", "subnet-0bbb2222")
    assert config.approval_emails == ("dba@example.com",)
    assert (config.schema, config.executor_timeout_minutes, config.log_retention_days) == ("app", 10, 30)


def test_defaults_follow_the_issue() -> None:
    config = _config(sourceProvider="codecommit", repositoryName="app-db", demoDatabase=True)
    assert config.database is None and config.demo_database
    assert config.source.branch == "main"
    assert config.executor_timeout_minutes == 15
    assert config.schema == "public"
    assert config.database_port == 5432


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({}, "sourceProvider"),
        ({"sourceProvider": "codecommit"}, "repositoryName"),
        ({"sourceProvider": "github", "repositoryName": "r", "repositoryOwner": "o"}, "connectionArn"),
        ({"sourceProvider": "gitlab", "connectionArn": CONNECTION, "repositoryName": "r"}, "repositoryOwner"),
        ({"sourceProvider": "codecommit", "repositoryName": "r"}, "databaseSecretArn"),
        ({"sourceProvider": "codecommit", "repositoryName": "r", **EXTERNAL_DB, "vpcId": None}, "vpcId"),
        (
            {"sourceProvider": "codecommit", "repositoryName": "r", **EXTERNAL_DB, "privateSubnetIds": []},
            "privateSubnetIds",
        ),
    ],
)
def test_a_missing_key_fails_naming_the_key(raw: dict[str, object], key: str) -> None:
    error = _error(**raw)
    assert error.key == key
    assert f"schemagate.{key}: is required but missing" in str(error)
    assert f"-c schemagate:{key}=" in str(error)  # the remedy says how to set it
    assert error.exit_code == 2


@pytest.mark.parametrize(
    ("override", "key", "fragment"),
    [
        ({"sourceProvider": "svn"}, "sourceProvider", "'svn' is not one of codecommit, github"),
        ({"vpcId": "vpc-123"}, "vpcId", "expected something like vpc-"),
        ({"privateSubnetIds": ["subnet-0aaa1111", "subnet-nothex!"]}, "privateSubnetIds", "subnet-nothex!"),
        ({"databaseSecurityGroupId": "sg-0123456789"}, "databaseSecurityGroupId", "is not valid"),
        ({"databaseSecretArn": "prod/db"}, "databaseSecretArn", "secret:prod/db-AbCdEf"),
        ({"approvalEmails": ["not-an-email"]}, "approvalEmails", "'not-an-email' is not valid"),
        ({"executorTimeoutMinutes": 20}, "executorTimeoutMinutes", "between 1 and 15, got 20"),
        ({"logRetentionDays": 100}, "logRetentionDays", "100 is not one of"),
        ({"schema": "Bad-Name"}, "schema", "'Bad-Name' is not valid"),
        ({"demoDatabase": "yes"}, "demoDatabase", "must be true or false"),
        ({"databasePort": "five"}, "databasePort", "whole number"),
        ({"repositoryNmae": "typo"}, "repositoryNmae", "unknown key"),
    ],
)
def test_an_invalid_value_fails_naming_the_key(override: dict[str, object], key: str, fragment: str) -> None:
    raw = {"sourceProvider": "codecommit", "repositoryName": "r", **EXTERNAL_DB, **override}
    error = _error(**raw)
    assert error.key == key
    assert fragment in str(error)


def test_demo_database_and_an_existing_database_are_exclusive() -> None:
    error = _error(sourceProvider="codecommit", repositoryName="r", demoDatabase=True, **EXTERNAL_DB)
    assert error.key == "databaseSecretArn"
    assert "demoDatabase" in str(error)


def test_command_line_overrides_are_strings_and_win_over_cdk_json() -> None:
    context = {
        "schemagate": {
            "sourceProvider": "codecommit",
            "repositoryName": "from-cdk-json",
            "demoDatabase": True,
        },
        "schemagate:repositoryName": "from-command-line",
        "schemagate:approvalEmails": "a@example.com, b@example.com",
        "schemagate:demoDatabase": "false",
        "schemagate:databaseSecretArn": EXTERNAL_DB["databaseSecretArn"],
        "schemagate:vpcId": EXTERNAL_DB["vpcId"],
        "schemagate:privateSubnetIds": "subnet-0aaa1111,subnet-0bbb2222",
        "schemagate:databaseSecurityGroupId": EXTERNAL_DB["databaseSecurityGroupId"],
        "schemagate:executorTimeoutMinutes": "12",
    }
    config = PipelineConfig.from_context(context.get)
    assert config.source.repository_name == "from-command-line"
    assert config.approval_emails == ("a@example.com", "b@example.com")
    assert not config.demo_database
    assert config.database is not None and len(config.database.private_subnet_ids) == 2
    assert config.executor_timeout_minutes == 12


def test_the_shipped_cdk_json_is_a_valid_configuration_and_runs_the_app_module() -> None:
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text())
    config = PipelineConfig.from_context(cdk_json["context"].get)
    assert config.demo_database  # a first deploy needs no existing database
    assert cdk_json["app"].endswith("-m pipeline.app")


def test_the_cdk_cli_is_pinned_to_an_exact_2x_release() -> None:
    package = json.loads((REPO_ROOT / "package.json").read_text())
    pinned = package["devDependencies"]["aws-cdk"]
    major, minor, _patch = (int(part) for part in pinned.split("."))
    # npm's `latest` moved to 3.x; the 2.1xxx CLI line reads aws-cdk-lib 2.x cloud assemblies.
    assert major == 2 and minor >= 1100
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == pinned


# --- the buildspec -------------------------------------------------------------------------------

BUILDSPEC = """\
version: 0.2
env:
  exported-variables: [SCHEMAGATE_BUNDLE_SHA256]
phases:
  build:
    commands: [schemagate validate --reports reports --bundle bundle]
reports:
  anything:
    files: [junit.xml]
    base-directory: reports
    file-format: JUNITXML
artifacts:
  base-directory: bundle
  files: ['**/*']
"""


def test_the_buildspec_is_bound_to_the_stack_report_group(tmp_path: Path) -> None:
    path = tmp_path / "buildspec.yml"
    path.write_text(BUILDSPEC)
    spec = inlined_buildspec.load_buildspec(path)
    bound = inlined_buildspec.for_project(spec, report_group_arn="arn:rg", require_artifacts=True, path=path)
    assert bound["reports"] == {
        "arn:rg": {"files": ["junit.xml"], "base-directory": "reports", "file-format": "JUNITXML"}
    }
    assert bound["env"]["exported-variables"] == ["SCHEMAGATE_BUNDLE_SHA256", "CODEBUILD_BUILD_ID"]
    assert bound["phases"] == spec["phases"]
    assert spec["reports"].keys() == {"anything"}  # the parsed original is left alone


def test_the_repository_buildspec_loads(tmp_path: Path) -> None:
    spec = inlined_buildspec.load_buildspec(REPO_ROOT / "buildspec.yml")
    bound = inlined_buildspec.for_project(
        spec, report_group_arn="arn:rg", require_artifacts=True, path=REPO_ROOT / "buildspec.yml"
    )
    assert bound["reports"]["arn:rg"]["file-format"] == "JUNITXML"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (None, "does not exist"),
        ("version: 0.2\nphases: [", "not valid YAML"),
        ("version: 0.1\nphases: {}\n", "needs `version: 0.2`"),
        (BUILDSPEC.replace("JUNITXML", "CUCUMBERJSON"), "must be JUNITXML"),
        (BUILDSPEC.replace("reports:\n", "reports:\n  second:\n    files: [y]\n"), "must hold one JUNITXML"),
    ],
)
def test_a_bad_buildspec_fails_synth_naming_it(tmp_path: Path, text: str | None, fragment: str) -> None:
    path = tmp_path / "buildspec.yml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(PipelineConfigError) as caught:
        inlined_buildspec.load_buildspec(path)
    assert caught.value.key == "buildspecPath"
    assert str(path) in str(caught.value)
    assert fragment in str(caught.value)


def test_a_pipeline_buildspec_without_artifacts_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "buildspec.yml"
    path.write_text(BUILDSPEC.split("artifacts:")[0])
    spec = inlined_buildspec.load_buildspec(path)
    with pytest.raises(PipelineConfigError, match="no `artifacts` section"):
        inlined_buildspec.for_project(spec, report_group_arn="arn:rg", require_artifacts=True, path=path)
    # a PR build needs no bundle
    assert inlined_buildspec.for_project(spec, report_group_arn="arn:rg", require_artifacts=False, path=path)
