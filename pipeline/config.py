"""The pipeline's configuration: one typed, validated value built from CDK context.

Everything the CDK app needs from the team lives under the context key ``schemagate`` (an object
in ``cdk.json``).  Any single key can be overridden on the command line with
``-c schemagate:<key>=<value>`` (strings; lists as comma-separated values, booleans as
``true``/``false``).  A missing or invalid key fails synth with a :class:`PipelineConfigError` that
names the key, says what is wrong and how to fix it.

This module is plain Python (no CDK imports) so it is cheap to test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from executor.errors import ConfigurationError

CONTEXT_KEY = "schemagate"
OVERRIDE_PREFIX = "schemagate:"

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
)
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")
_VPC_ID = re.compile(r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$")
_SUBNET_ID = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")
_SG_ID = re.compile(r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")
_REPO_NAME = re.compile(r"^[\w.-]{1,100}$")
_OWNER = re.compile(r"^[\w.-]+(/[\w.-]+)*$")  # GitLab groups may nest: group/subgroup
_BRANCH = re.compile(r"^[^\s~^:?*\[\\]+$")
_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9.@_-]{1,100}$")
_ENVIRONMENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,19}$")  # a stage name and part of resource names
_SSM_PARAMETER = re.compile(r"^/?[A-Za-z0-9_.\-/]{1,1011}$")
_RDS_IDENTIFIER = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$")
_MIGRATIONS_DIRECTORY = re.compile(r"^(?!/)(?!.*\.\.)[\w./-]{1,200}(?<!/)$")


class SourceProvider(StrEnum):
    CODECOMMIT = "codecommit"
    GITHUB = "github"
    GITLAB = "gitlab"
    BITBUCKET = "bitbucket"

    @property
    def uses_connection(self) -> bool:
        return self is not SourceProvider.CODECOMMIT


class Architecture(StrEnum):
    X86_64 = "x86_64"
    ARM64 = "arm64"


class ExecutorKind(StrEnum):
    """Where an environment's migrations run: the Lambda (15 minutes per invocation, continued
    between migrations) or a CodeBuild build in the VPC (up to 8 hours, for long migrations)."""

    LAMBDA = "lambda"
    CODEBUILD = "codebuild"


class PipelineConfigError(ConfigurationError):
    """A configuration key is missing or invalid (synth stops, exit code 2)."""

    def __init__(self, key: str, problem: str, *, remedy: str | None = None) -> None:
        super().__init__(
            f"{CONTEXT_KEY}.{key}: {problem}",
            remedy=remedy
            or f'set "{key}" in the "{CONTEXT_KEY}" object of cdk.json\'s context, '
            f"or pass -c {OVERRIDE_PREFIX}{key}=<value> (see docs/deploy.md)",
            file="cdk.json",
            rule="pipeline-config",
            context={"key": key},
        )
        self.key = key


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    provider: SourceProvider
    branch: str
    repository_name: str | None = None  # CodeCommit
    connection_arn: str | None = None  # GitHub / GitLab / Bitbucket through a CodeStar connection
    owner: str | None = None
    repo: str | None = None
    # GitHub: a Secrets Manager secret holding a token that may write pull-request comments; the PR
    # build then posts report.md as one comment (schemagate pr-comment)
    comment_token_secret_arn: str | None = None

    def required(self, name: str) -> str:
        """A key this provider needs (``load_config`` checked it is set), typed as never None."""
        value = getattr(self, name)
        if not isinstance(value, str) or not value:
            raise PipelineConfigError(f"source.{name}", f"is required for a {self.provider.value} source")
        return value


@dataclass(frozen=True, kw_only=True)
class DatabaseTargetConfig:
    """An existing database: where it is and how the executor reaches it."""

    secret_arn: str
    secret_key_arn: str | None  # the CMK encrypting the secret, when not aws/secretsmanager
    vpc_id: str
    private_subnet_ids: tuple[str, ...]
    security_group_id: str


@dataclass(frozen=True, kw_only=True)
class FleetConfig:
    """Many databases with one network: their secrets' ARNs are listed in an SSM parameter."""

    targets_parameter: str  # an SSM String parameter: a JSON list of secret ARNs, read at run time
    max_concurrency: int = 10
    tolerated_failure_percentage: int = 0  # more failures than this stop the rollout


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """One stage of the promotion: its database(s), its approval, its executor."""

    name: str
    database: DatabaseTargetConfig | None  # None: the demo database, or (fleet) only the network
    demo_database: bool = False
    database_port: int = 5432
    approval_emails: tuple[str, ...] = ()
    schema: str = "public"
    approval: bool = True
    fleet: FleetConfig | None = None
    snapshot_before_apply: bool = False
    database_instance_identifier: str | None = None  # what the snapshot is taken of
    database_cluster_identifier: str | None = None
    executor: ExecutorKind = ExecutorKind.LAMBDA

    @property
    def slug(self) -> str:
        """The lower-case name used in resource names (snapshots, state machines)."""
        return self.name.lower()


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    source: SourceConfig
    database: DatabaseTargetConfig | None  # None: the demo database stack provides it
    demo_database: bool = False
    database_port: int = 5432
    approval_emails: tuple[str, ...] = ()
    approval_timeout_minutes: int = 10080
    schema: str = "public"
    executor_timeout_minutes: int = 15
    executor_architecture: Architecture = Architecture.X86_64
    log_retention_days: int = 90
    buildspec_path: str = "buildspec.yml"
    pipeline_name: str = "schemagate"
    # a prebuilt Lambda package directory: skips local bundling (tests, CI caches)
    executor_asset_dir: str | None = None
    # the environments the bundle is promoted through, in order (the single-database keys: one)
    environments: tuple[EnvironmentConfig, ...] = ()
    # the team's migrations directory in its repository (its [tool.schemagate] migrations)
    migrations_directory: str = "migrations"
    # a prebuilt schemagate wheel the builds install: skips building it at synth (tests, CI caches)
    schemagate_wheel: str | None = None
    legacy_single_database: bool = True  # configured with the single-database keys, not environments

    @classmethod
    def from_context(cls, try_get_context: Callable[[str], Any]) -> PipelineConfig:
        """Build from a CDK node's ``try_get_context`` (the object plus per-key overrides)."""
        base = try_get_context(CONTEXT_KEY)
        if base is None:
            base = {}
        if not isinstance(base, Mapping):
            raise PipelineConfigError(
                "(root)", f"the context value '{CONTEXT_KEY}' must be an object, got {type(base).__name__}"
            )
        merged = dict(base)
        for key in _KNOWN_KEYS:
            override = try_get_context(OVERRIDE_PREFIX + key)
            if override is not None:
                merged[key] = override
        return cls.from_mapping(merged)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> PipelineConfig:
        unknown = sorted(set(raw) - set(_KNOWN_KEYS))
        if unknown:
            raise PipelineConfigError(
                unknown[0],
                "unknown key (a typo?)",
                remedy="known keys: " + ", ".join(_KNOWN_KEYS),
            )
        reader = _Reader(raw)
        provider = reader.enum("sourceProvider", SourceProvider, required=True)
        branch = reader.string("branch", default="main", pattern=_BRANCH)
        if provider is SourceProvider.CODECOMMIT:
            source = SourceConfig(
                provider=provider,
                branch=branch,
                repository_name=reader.string("repositoryName", required=True, pattern=_REPO_NAME),
            )
        else:
            source = SourceConfig(
                provider=provider,
                branch=branch,
                connection_arn=reader.string(
                    "connectionArn",
                    required=True,
                    pattern=_CONNECTION_ARN,
                    example="arn:aws:codeconnections:eu-west-1:123456789012:connection/<uuid>",
                ),
                owner=reader.string("repositoryOwner", required=True, pattern=_OWNER),
                repo=reader.string("repositoryName", required=True, pattern=_REPO_NAME),
                comment_token_secret_arn=reader.string(
                    "githubCommentTokenSecretArn",
                    pattern=_SECRET_ARN,
                    example="arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci/github-comments-AbCdEf",
                ),
            )
            if source.comment_token_secret_arn and provider is not SourceProvider.GITHUB:
                raise PipelineConfigError(
                    "githubCommentTokenSecretArn",
                    f"is for GitHub pull requests; this source is {provider.value}",
                    remedy="remove githubCommentTokenSecretArn",
                )
        demo = reader.boolean("demoDatabase", default=False)
        database_port = reader.integer("databasePort", default=5432, low=1, high=65535)
        schema = reader.string("schema", default="public", pattern=_IDENTIFIER, example="public")
        approval_emails = reader.string_list(
            "approvalEmails", default=(), pattern=_EMAIL, example="dba@example.com"
        )
        common = {
            "source": source,
            "approval_timeout_minutes": reader.integer(
                "approvalTimeoutMinutes", default=10080, low=5, high=86400
            ),
            "executor_timeout_minutes": reader.integer("executorTimeoutMinutes", default=15, low=1, high=15),
            "executor_architecture": reader.enum(
                "executorArchitecture", Architecture, default=Architecture.X86_64
            ),
            "log_retention_days": reader.choice("logRetentionDays", LOG_RETENTION_DAYS, default=90),
            "buildspec_path": reader.string("buildspecPath", default="buildspec.yml"),
            "pipeline_name": reader.string("pipelineName", default="schemagate", pattern=_PIPELINE_NAME),
            "executor_asset_dir": reader.string("executorAssetDir", default=None),
            "migrations_directory": reader.string(
                "migrationsDirectory",
                default="migrations",
                pattern=_MIGRATIONS_DIRECTORY,
                example="db/migrations",
            ),
            "schemagate_wheel": reader.string("schemagateWheel", default=None),
            "approval_emails": approval_emails,
            "schema": schema,
            "database_port": database_port,
        }
        if raw.get("environments") not in (None, [], ""):
            given = [
                key for key in (*_DATABASE_KEYS, "demoDatabase") if raw.get(key) not in (None, "", [], False)
            ]
            if given:
                raise PipelineConfigError(
                    given[0],
                    "is set next to environments; with environments every database belongs to one",
                    remedy=f"move {', '.join(given)} into the environment that uses it "
                    '(e.g. "environments": [{"name": "production", ...}])',
                )
            environments = _environments(raw["environments"], schema=schema, port=database_port)
            return cls(
                database=None,
                demo_database=False,
                environments=environments,
                legacy_single_database=False,
                **common,
            )
        single = _environment(
            _Reader(raw),
            name="default",
            schema=schema,
            port=database_port,
            emails=approval_emails,
            fleet_allowed=False,
        )
        return cls(
            database=single.database,
            demo_database=demo,
            environments=(single,),
            **common,
        )


_DATABASE_KEYS = (
    "databaseSecretArn",
    "databaseSecretKmsKeyArn",
    "vpcId",
    "privateSubnetIds",
    "databaseSecurityGroupId",
)
_ENVIRONMENT_KEYS = (
    "name",
    *_DATABASE_KEYS,
    "databasePort",
    "approvalEmails",
    "schema",
    "demoDatabase",
    "approval",
    "fleet",
    "snapshotBeforeApply",
    "databaseInstanceIdentifier",
    "databaseClusterIdentifier",
    "executor",
)
_FLEET_KEYS = ("targetsParameter", "maxConcurrency", "toleratedFailurePercentage")


def _environments(raw: Any, *, schema: str, port: int) -> tuple[EnvironmentConfig, ...]:
    if not isinstance(raw, list):
        raise PipelineConfigError(
            "environments",
            f"must be a list of objects, got {type(raw).__name__}",
            remedy='write "environments": [{"name": "staging", ...}, {"name": "production", ...}]',
        )
    out: list[EnvironmentConfig] = []
    for index, item in enumerate(raw):
        where = f"environments[{index}]"
        if not isinstance(item, Mapping):
            raise PipelineConfigError(where, f"must be an object, got {type(item).__name__}")
        unknown = sorted(set(item) - set(_ENVIRONMENT_KEYS))
        if unknown:
            raise PipelineConfigError(
                f"{where}.{unknown[0]}",
                "unknown key (a typo?)",
                remedy="known keys: " + ", ".join(_ENVIRONMENT_KEYS),
            )
        reader = _Reader(item, prefix=f"{where}.")
        name = reader.string("name", required=True, pattern=_ENVIRONMENT_NAME, example="production")
        reader.prefix = f"environments[{index}]({name})."
        taken = [e.name for e in out if e.name.lower() == name.lower()]
        if taken:
            raise PipelineConfigError(
                f"{where}.name",
                f"{name!r} names two environments",
                remedy="give every environment its own name",
            )
        emails = reader.string_list("approvalEmails", default=(), pattern=_EMAIL, example="dba@example.com")
        out.append(
            _environment(reader, name=name, schema=schema, port=port, emails=emails, fleet_allowed=True)
        )
    if not out:
        raise PipelineConfigError("environments", "lists no environment")
    return tuple(out)


def _environment(
    reader: _Reader, *, name: str, schema: str, port: int, emails: tuple[str, ...], fleet_allowed: bool
) -> EnvironmentConfig:
    raw = reader.raw
    demo = reader.boolean("demoDatabase", default=False)
    fleet = _fleet(reader) if fleet_allowed else None
    executor = (
        reader.enum("executor", ExecutorKind, default=ExecutorKind.LAMBDA)
        if fleet_allowed
        else ExecutorKind.LAMBDA
    )
    if fleet is not None and executor is ExecutorKind.CODEBUILD:
        raise PipelineConfigError(
            reader.key("executor"),
            "codebuild is not available for a fleet (its targets are applied by the Lambda, one per target)",
            remedy='remove "executor", or split the long migration into an environment of its own',
        )
    database: DatabaseTargetConfig | None = None
    if demo:
        given = [key for key in _DATABASE_KEYS if raw.get(key) not in (None, "", [])]
        if fleet is not None:
            raise PipelineConfigError(
                reader.key("fleet"), "a fleet has no demo database", remedy="remove one of them"
            )
        if given:
            raise PipelineConfigError(
                reader.key(given[0]),
                "is set together with demoDatabase=true; the demo stack creates its own database",
                remedy=f"remove {', '.join(given)} or set demoDatabase to false",
            )
    else:
        database = DatabaseTargetConfig(
            secret_arn=reader.string(
                "databaseSecretArn",
                required=fleet is None,
                pattern=_SECRET_ARN,
                example="arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
                hint="or set demoDatabase to true for a demo database",
            )
            or "",
            secret_key_arn=reader.string(
                "databaseSecretKmsKeyArn",
                pattern=_KMS_KEY_ARN,
                example="arn:aws:kms:eu-west-1:123456789012:key/<uuid>",
            ),
            vpc_id=reader.string("vpcId", required=True, pattern=_VPC_ID, example="vpc-0abc1234"),
            private_subnet_ids=reader.string_list(
                "privateSubnetIds", required=True, pattern=_SUBNET_ID, example="subnet-0abc1234"
            ),
            security_group_id=reader.string(
                "databaseSecurityGroupId", required=True, pattern=_SG_ID, example="sg-0abc1234"
            ),
        )
        if fleet is not None and database.secret_arn:
            raise PipelineConfigError(
                reader.key("databaseSecretArn"),
                "is set for a fleet, whose secrets are listed in fleet.targetsParameter",
                remedy="remove databaseSecretArn (put the secret's ARN into the targets parameter)",
            )
    snapshot = reader.boolean("snapshotBeforeApply", default=False) if fleet_allowed else False
    instance = reader.string("databaseInstanceIdentifier", pattern=_RDS_IDENTIFIER, example="billing-prod")
    cluster = reader.string("databaseClusterIdentifier", pattern=_RDS_IDENTIFIER, example="billing-prod")
    if instance and cluster:
        raise PipelineConfigError(
            reader.key("databaseClusterIdentifier"),
            "is set together with databaseInstanceIdentifier",
            remedy="name the RDS instance or the Aurora cluster, not both",
        )
    if snapshot and not (instance or cluster or demo or fleet):
        raise PipelineConfigError(
            reader.key("snapshotBeforeApply"),
            "needs to know what to snapshot",
            remedy="set databaseInstanceIdentifier (RDS) or databaseClusterIdentifier (Aurora) for the "
            "environment",
        )
    return EnvironmentConfig(
        name=name,
        database=database,
        demo_database=demo,
        database_port=reader.integer("databasePort", default=port, low=1, high=65535),
        approval_emails=emails,
        schema=reader.string("schema", default=schema, pattern=_IDENTIFIER, example="public"),
        approval=reader.boolean("approval", default=True) if fleet_allowed else True,
        fleet=fleet,
        snapshot_before_apply=snapshot,
        database_instance_identifier=instance,
        database_cluster_identifier=cluster,
        executor=executor,
    )


def _fleet(reader: _Reader) -> FleetConfig | None:
    raw = reader.raw.get("fleet")
    if raw in (None, {}, ""):
        return None
    key = reader.key("fleet")
    if not isinstance(raw, Mapping):
        raise PipelineConfigError(key, f"must be an object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(_FLEET_KEYS))
    if unknown:
        raise PipelineConfigError(
            f"{key}.{unknown[0]}", "unknown key (a typo?)", remedy="known keys: " + ", ".join(_FLEET_KEYS)
        )
    fleet = _Reader(raw, prefix=f"{key}.")
    return FleetConfig(
        targets_parameter=fleet.string(
            "targetsParameter", required=True, pattern=_SSM_PARAMETER, example="/schemagate/tenants/targets"
        ),
        max_concurrency=fleet.integer("maxConcurrency", default=10, low=1, high=10000),
        tolerated_failure_percentage=fleet.integer("toleratedFailurePercentage", default=0, low=0, high=100),
    )


_KNOWN_KEYS = (
    "sourceProvider",
    "githubCommentTokenSecretArn",
    "repositoryName",
    "repositoryOwner",
    "connectionArn",
    "branch",
    "demoDatabase",
    "databaseSecretArn",
    "databaseSecretKmsKeyArn",
    "vpcId",
    "privateSubnetIds",
    "databaseSecurityGroupId",
    "databasePort",
    "approvalEmails",
    "approvalTimeoutMinutes",
    "schema",
    "executorTimeoutMinutes",
    "executorArchitecture",
    "logRetentionDays",
    "buildspecPath",
    "pipelineName",
    "executorAssetDir",
    "environments",
    "migrationsDirectory",
    "schemagateWheel",
)


class _Reader:
    """Reads one key at a time, raising PipelineConfigError that names the key (with ``prefix``,
    the path of the object it is in: ``environments[1](production).vpcId``)."""

    def __init__(self, raw: Mapping[str, Any], *, prefix: str = "") -> None:
        self.raw = raw
        self.prefix = prefix

    def key(self, key: str) -> str:
        return self.prefix + key

    def _get(self, key: str, required: bool, hint: str | None = None) -> Any:
        value = self.raw.get(key)
        if value is None or value == "" or value == []:
            if required:
                problem = "is required but missing"
                if hint:
                    problem += f" ({hint})"
                raise PipelineConfigError(self.key(key), problem)
            return None
        return value

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        pattern: re.Pattern[str] | None = None,
        example: str | None = None,
        hint: str | None = None,
    ) -> Any:
        value = self._get(key, required, hint)
        if value is None:
            return default
        if not isinstance(value, str):
            raise PipelineConfigError(self.key(key), f"must be a string, got {type(value).__name__}")
        value = value.strip()
        if pattern is not None and not pattern.match(value):
            expected = f" (expected something like {example})" if example else ""
            raise PipelineConfigError(self.key(key), f"{value!r} is not valid{expected}")
        return value

    def string_list(
        self,
        key: str,
        *,
        required: bool = False,
        default: tuple[str, ...] = (),
        pattern: re.Pattern[str] | None = None,
        example: str | None = None,
    ) -> tuple[str, ...]:
        value = self._get(key, required)
        if value is None:
            return default
        if isinstance(value, str):
            items = [part.strip() for part in value.split(",") if part.strip()]
        elif isinstance(value, list | tuple):
            items = [str(item) for item in value]
        else:
            raise PipelineConfigError(self.key(key), f"must be a list of strings, got {type(value).__name__}")
        if required and not items:
            raise PipelineConfigError(self.key(key), "must list at least one value")
        for item in items:
            if not isinstance(item, str) or (pattern is not None and not pattern.match(item)):
                expected = f" (expected something like {example})" if example else ""
                raise PipelineConfigError(self.key(key), f"{item!r} is not valid{expected}")
        return tuple(items)

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise PipelineConfigError(self.key(key), f"must be true or false, got {value!r}")

    def integer(self, key: str, *, default: int, low: int, high: int) -> int:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool):
            raise PipelineConfigError(self.key(key), f"must be a whole number, got {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise PipelineConfigError(self.key(key), f"must be a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise PipelineConfigError(self.key(key), f"must be between {low} and {high}, got {number}")
        return number

    def choice(self, key: str, allowed: tuple[int, ...], *, default: int) -> int:
        number = self.integer(key, default=default, low=min(allowed), high=max(allowed))
        if number not in allowed:
            raise PipelineConfigError(self.key(key), f"{number} is not one of {', '.join(map(str, allowed))}")
        return number

    def enum(self, key: str, kind: type[Enum], *, required: bool = False, default: Any = None) -> Any:
        value = self._get(key, required)
        if value is None:
            return default
        try:
            return kind(str(value).lower())
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise PipelineConfigError(self.key(key), f"{value!r} is not one of {allowed}") from None
