"""The CDK app's configuration and buildspec handling: plain Python, no synth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import inlined_buildspec
from pipeline.config import ExecutorKind, PipelineConfig, PipelineConfigError, SourceProvider

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


def test_the_shipped_cdk_json_asks_for_a_connection_and_then_deploys_a_demo_staging() -> None:
    """CodeConnections is the default source: the shipped file names GitHub and needs the ARN."""
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert cdk_json["app"].endswith("-m pipeline.app")
    context = cdk_json["context"]
    with pytest.raises(PipelineConfigError) as caught:
        PipelineConfig.from_context(context.get)
    assert caught.value.key == "connectionArn" and "is required but missing" in str(caught.value)
    config = PipelineConfig.from_context({**context, "schemagate:connectionArn": CONNECTION}.get)
    assert config.source.provider is SourceProvider.GITHUB
    (staging,) = config.environments
    assert (staging.name, staging.demo_database, staging.approval) == ("staging", True, True)
    assert not config.legacy_single_database


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
    assert fragment is not None and fragment in str(caught.value)


def test_a_pipeline_buildspec_without_artifacts_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "buildspec.yml"
    path.write_text(BUILDSPEC.split("artifacts:")[0])
    spec = inlined_buildspec.load_buildspec(path)
    with pytest.raises(PipelineConfigError, match="no `artifacts` section"):
        inlined_buildspec.for_project(spec, report_group_arn="arn:rg", require_artifacts=True, path=path)
    # a PR build needs no bundle
    assert inlined_buildspec.for_project(spec, report_group_arn="arn:rg", require_artifacts=False, path=path)


# --- environments --------------------------------------------------------------------------------

PRODUCTION_FLEET = {
    "name": "production",
    "fleet": {"targetsParameter": "/schemagate/production/targets", "maxConcurrency": 50},
    "snapshotBeforeApply": True,
    "vpcId": "vpc-0def5678",
    "privateSubnetIds": ["subnet-0ddd4444"],
    "databaseSecurityGroupId": "sg-0aaa7777",
    "approvalEmails": ["dba@example.com"],
}


def _environments(*environments: dict) -> PipelineConfig:
    return _config(
        sourceProvider="github",
        connectionArn=CONNECTION,
        repositoryOwner="acme",
        repositoryName="app",
        environments=list(environments),
    )


def test_the_single_database_keys_are_one_environment_named_default() -> None:
    config = _config(sourceProvider="codecommit", repositoryName="app-db", schema="app", **EXTERNAL_DB)
    (only,) = config.environments
    assert config.legacy_single_database
    assert (only.name, only.schema, only.approval, only.fleet, only.executor) == (
        "default",
        "app",
        True,
        None,
        ExecutorKind.LAMBDA,
    )
    assert only.database == config.database


def test_environments_are_read_in_order_with_their_own_keys() -> None:
    staging = {
        **EXTERNAL_DB,
        "name": "staging",
        "approval": False,
        "executor": "codebuild",
        "databaseInstanceIdentifier": "billing-staging",
        "snapshotBeforeApply": "true",
    }
    config = _environments(staging, PRODUCTION_FLEET)
    first, second = config.environments
    assert [e.name for e in config.environments] == ["staging", "production"]
    assert (first.approval, first.executor, first.snapshot_before_apply) == (
        False,
        ExecutorKind.CODEBUILD,
        True,
    )
    assert first.database_instance_identifier == "billing-staging"
    assert first.database is not None and first.database.secret_arn == EXTERNAL_DB["databaseSecretArn"]
    assert second.fleet is not None
    assert (second.fleet.max_concurrency, second.fleet.tolerated_failure_percentage) == (50, 0)
    assert second.database is not None and second.database.secret_arn == ""  # the fleet's network only
    assert second.approval_emails == ("dba@example.com",) and second.slug == "production"
    assert config.database is None and not config.legacy_single_database


@pytest.mark.parametrize(
    ("environments", "key", "fragment"),
    [
        (
            [{**EXTERNAL_DB, "name": "prod"}, {**EXTERNAL_DB, "name": "Prod"}],
            "environments[1].name",
            "names two",
        ),
        ([{**EXTERNAL_DB, "name": "prod env"}], "environments[0].name", "is not valid"),
        ([{**EXTERNAL_DB, "name": "prod", "aproval": False}], "environments[0].aproval", "unknown key"),
        (
            [{**PRODUCTION_FLEET, "fleet": {"targetsParameter": "/p", "maxConcurency": 5}}],
            "environments[0](production).fleet.maxConcurency",
            "unknown key",
        ),
        (
            [{**PRODUCTION_FLEET, "fleet": {"targetsParameter": "/p", "toleratedFailurePercentage": 120}}],
            "environments[0](production).fleet.toleratedFailurePercentage",
            "between 0 and 100",
        ),
        ([{**PRODUCTION_FLEET, "fleet": {}}], None, None),  # an empty fleet is no fleet: a secret is needed
        (
            [{**PRODUCTION_FLEET, "databaseSecretArn": EXTERNAL_DB["databaseSecretArn"]}],
            "environments[0](production).databaseSecretArn",
            "fleet.targetsParameter",
        ),
        (
            [{**PRODUCTION_FLEET, "executor": "codebuild"}],
            "environments[0](production).executor",
            "not available for a fleet",
        ),
        (
            [{**EXTERNAL_DB, "name": "staging", "snapshotBeforeApply": True}],
            "environments[0](staging).snapshotBeforeApply",
            "needs to know what to snapshot",
        ),
        (
            [{**EXTERNAL_DB, "name": "staging", "executor": "ec2"}],
            "environments[0](staging).executor",
            "not one of lambda, codebuild",
        ),
        ([], "environments", "must be a list of objects"),
    ],
)
def test_a_bad_environment_fails_naming_its_key(
    environments: list, key: str | None, fragment: str | None
) -> None:
    with pytest.raises(PipelineConfigError) as caught:
        _environments(*environments) if environments else _config(
            sourceProvider="codecommit", repositoryName="r", environments="none"
        )
    if key is None:
        assert caught.value.key == "environments[0](production).databaseSecretArn"
        return
    assert caught.value.key == key, str(caught.value)
    assert fragment is not None and fragment in str(caught.value)


def test_database_keys_next_to_environments_must_move_into_one() -> None:
    error = _error(
        sourceProvider="codecommit",
        repositoryName="r",
        environments=[{**EXTERNAL_DB, "name": "prod"}],
        **EXTERNAL_DB,
    )
    assert error.key == "databaseSecretArn" and "move databaseSecretArn" in str(error)


def test_the_migrations_directory_is_a_relative_path() -> None:
    config = _config(
        sourceProvider="codecommit", repositoryName="r", migrationsDirectory="db/migrations", **EXTERNAL_DB
    )
    assert config.migrations_directory == "db/migrations"
    for bad in ("/abs/path", "../up", "db/"):
        error = _error(
            sourceProvider="codecommit", repositoryName="r", migrationsDirectory=bad, **EXTERNAL_DB
        )
        assert error.key == "migrationsDirectory"
