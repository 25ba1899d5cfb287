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


@dataclass(frozen=True, kw_only=True)
class DatabaseTargetConfig:
    """An existing database: where it is and how the executor reaches it."""

    secret_arn: str
    secret_key_arn: str | None  # the CMK encrypting the secret, when not aws/secretsmanager
    vpc_id: str
    private_subnet_ids: tuple[str, ...]
    security_group_id: str


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
        database: DatabaseTargetConfig | None = None
        target_keys = (
            "databaseSecretArn",
            "databaseSecretKmsKeyArn",
            "vpcId",
            "privateSubnetIds",
            "databaseSecurityGroupId",
        )
        if demo:
            given = [key for key in target_keys if raw.get(key) not in (None, "", [])]
            if given:
                raise PipelineConfigError(
                    given[0],
                    "is set together with demoDatabase=true; the demo stack creates its own database",
                    remedy=f"remove {', '.join(given)} or set demoDatabase to false",
                )
        else:
            database = DatabaseTargetConfig(
                secret_arn=reader.string(
                    "databaseSecretArn",
                    required=True,
                    pattern=_SECRET_ARN,
                    example="arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
                    hint="or set demoDatabase to true for a demo database",
                ),
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
        return cls(
            source=source,
            database=database,
            demo_database=demo,
            database_port=reader.integer("databasePort", default=5432, low=1, high=65535),
            approval_emails=reader.string_list(
                "approvalEmails", default=(), pattern=_EMAIL, example="dba@example.com"
            ),
            approval_timeout_minutes=reader.integer(
                "approvalTimeoutMinutes", default=10080, low=5, high=86400
            ),
            schema=reader.string("schema", default="public", pattern=_IDENTIFIER, example="public"),
            executor_timeout_minutes=reader.integer("executorTimeoutMinutes", default=15, low=1, high=15),
            executor_architecture=reader.enum(
                "executorArchitecture", Architecture, default=Architecture.X86_64
            ),
            log_retention_days=reader.choice("logRetentionDays", LOG_RETENTION_DAYS, default=90),
            buildspec_path=reader.string("buildspecPath", default="buildspec.yml"),
            pipeline_name=reader.string("pipelineName", default="schemagate", pattern=_PIPELINE_NAME),
            executor_asset_dir=reader.string("executorAssetDir", default=None),
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
)


class _Reader:
    """Reads one key at a time, raising PipelineConfigError that names the key."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw

    def _get(self, key: str, required: bool, hint: str | None = None) -> Any:
        value = self._raw.get(key)
        if value is None or value == "" or value == []:
            if required:
                problem = "is required but missing"
                if hint:
                    problem += f" ({hint})"
                raise PipelineConfigError(key, problem)
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
            raise PipelineConfigError(key, f"must be a string, got {type(value).__name__}")
        value = value.strip()
        if pattern is not None and not pattern.match(value):
            expected = f" (expected something like {example})" if example else ""
            raise PipelineConfigError(key, f"{value!r} is not valid{expected}")
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
            items = value
        else:
            raise PipelineConfigError(key, f"must be a list of strings, got {type(value).__name__}")
        if required and not items:
            raise PipelineConfigError(key, "must list at least one value")
        for item in items:
            if not isinstance(item, str) or (pattern is not None and not pattern.match(item)):
                expected = f" (expected something like {example})" if example else ""
                raise PipelineConfigError(key, f"{item!r} is not valid{expected}")
        return tuple(items)

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise PipelineConfigError(key, f"must be true or false, got {value!r}")

    def integer(self, key: str, *, default: int, low: int, high: int) -> int:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool):
            raise PipelineConfigError(key, f"must be a whole number, got {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise PipelineConfigError(key, f"must be a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise PipelineConfigError(key, f"must be between {low} and {high}, got {number}")
        return number

    def choice(self, key: str, allowed: tuple[int, ...], *, default: int) -> int:
        number = self.integer(key, default=default, low=min(allowed), high=max(allowed))
        if number not in allowed:
            raise PipelineConfigError(key, f"{number} is not one of {', '.join(map(str, allowed))}")
        return number

    def enum(self, key: str, kind: type[Enum], *, required: bool = False, default: Any = None) -> Any:
        value = self._get(key, required)
        if value is None:
            return default
        try:
            return kind(str(value).lower())
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise PipelineConfigError(key, f"{value!r} is not one of {allowed}") from None
