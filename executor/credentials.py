"""Where the executor's database is and how to log in: Secrets Manager, optional RDS IAM auth, TLS.

Environment (the first is the documented contract, docs/deploy.md; the others are the executor's own):

| variable | meaning |
|---|---|
| ``SCHEMAGATE_DB_SECRET_ARN`` | secret in the RDS format (host, port, username, password, dbname) |
| ``SCHEMAGATE_DB_HOST`` / ``_PORT`` / ``_NAME`` / ``_USER`` | override or fill in the secret's values |
| ``SCHEMAGATE_DB_IAM_AUTH`` | ``true``: log in with an RDS IAM token instead of the password |
| ``SCHEMAGATE_DB_SSLMODE`` | libpq ``sslmode``, default ``require`` (``verify-full`` + CA is stronger) |
| ``SCHEMAGATE_DB_SSLROOTCERT`` | path of the CA bundle (e.g. the RDS global bundle shipped in the package) |
| ``SCHEMAGATE_DB_CONNECT_TIMEOUT`` | seconds to wait for the server, default 10 (libpq minimum 2) |

An RDS-managed master secret holds only username and password, and an RDS Proxy has a host of its
own: hence the overrides.  The secret is read once per container and cached (Lambda containers
live for minutes to hours);
``clear_cache()`` forgets it, e.g. after a rotation made the cached password stale.
The password and the IAM token never leave this module except inside the DSN handed to libpq.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg2.extensions import make_dsn

from executor import aws_clients
from executor.errors import ConfigurationError, ConnectionFailure, PermissionDenied, aws_error_code

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_SSLMODE = "require"
DEFAULT_CONNECT_TIMEOUT = 10

_SECRET_CACHE: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class DatabaseTarget:
    """Everything needed to open a connection.  ``repr`` and ``describe`` never show the password."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = field(default=None, repr=False)
    sslmode: str = DEFAULT_SSLMODE
    sslrootcert: str | None = None
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT
    iam_auth: bool = False

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"

    def dsn(self) -> str:
        """A libpq conninfo string (values quoted by psycopg2).  Contains the password: never log it."""
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
            "sslmode": self.sslmode,
            "connect_timeout": self.connect_timeout,
            "application_name": "schemagate-executor",
        }
        if self.password is not None:
            params["password"] = self.password
        if self.sslrootcert:
            params["sslrootcert"] = self.sslrootcert
        return make_dsn(**params)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must be masked wherever text is logged or reported."""
        return (self.password,) if self.password else ()


def clear_cache() -> None:
    """Forget the cached secrets and the cached boto3 clients (executor.aws_clients)."""
    _SECRET_CACHE.clear()
    aws_clients.reset()


@functools.cache  # one Config object, so that executor.aws_clients (keyed by its identity) reuses the client
def _client_config() -> Any:
    from botocore.config import Config

    # bounded: a Lambda in a VPC without a route to the endpoint must fail fast, not hang
    return Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})


def _client(service: str) -> Any:
    return aws_clients.client(service, config=_client_config())


def read_secret(secret_arn: str, client: Any | None = None, *, refresh: bool = False) -> dict[str, Any]:
    """The secret's JSON, cached per container.  Raises PermissionDenied / ConfigurationError /
    ConnectionFailure with a remedy; the messages never contain the secret's content."""
    if not refresh and secret_arn in _SECRET_CACHE:
        return _SECRET_CACHE[secret_arn]
    client = client or _client("secretsmanager")
    try:
        response = client.get_secret_value(SecretId=secret_arn)
    except Exception as exc:
        code = aws_error_code(exc)
        if code in ("AccessDeniedException", "DecryptionFailure", "UnrecognizedClientException"):
            raise PermissionDenied(
                f"not allowed to read the database secret {secret_arn} ({code})",
                remedy="grant secretsmanager:GetSecretValue on the secret (and kms:Decrypt on its key) "
                "to the executor's role",
            ) from None
        if code in ("ResourceNotFoundException", "InvalidRequestException", "InvalidParameterException"):
            raise ConfigurationError(
                f"the database secret {secret_arn} does not exist or cannot be read ({code})",
                remedy="set SCHEMAGATE_DB_SECRET_ARN to an existing secret in the RDS format "
                "(host, port, username, password, dbname)",
            ) from None
        if not code:  # botocore transport errors: no route to the endpoint
            raise ConnectionFailure(
                f"cannot reach Secrets Manager to read {secret_arn} ({type(exc).__name__})",
                remedy="a Lambda in a VPC needs a NAT gateway or a com.amazonaws.<region>.secretsmanager "
                "interface endpoint",
            ) from None
        raise
    text = response.get("SecretString")
    if text is None:
        raise ConfigurationError(
            f"the database secret {secret_arn} holds binary data, not the RDS JSON format",
            remedy="store the secret as JSON with host, port, username, password and dbname",
        )
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"the database secret {secret_arn} is not a JSON object",
            remedy="store the secret as JSON with host, port, username, password and dbname",
        )
    _SECRET_CACHE[secret_arn] = data
    return data


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def resolve_target(
    environ: Mapping[str, str] | None = None,
    *,
    secrets_client: Any | None = None,
    rds_client: Any | None = None,
    refresh: bool = False,
) -> DatabaseTarget:
    """Build the connection target from the environment and the secret (see the module docstring)."""
    env = os.environ if environ is None else environ
    secret_arn = env.get("SCHEMAGATE_DB_SECRET_ARN", "").strip()
    iam_auth = _flag(env.get("SCHEMAGATE_DB_IAM_AUTH"))
    secret: dict[str, Any] = {}
    if secret_arn:
        secret = read_secret(secret_arn, secrets_client, refresh=refresh)
    elif not iam_auth:
        raise ConfigurationError(
            "SCHEMAGATE_DB_SECRET_ARN is not set: the executor does not know which database to migrate",
            remedy="set SCHEMAGATE_DB_SECRET_ARN to the ARN of a secret in the RDS format",
        )

    def pick(key: str, env_name: str, default: Any = None) -> Any:
        value = env.get(env_name) or secret.get(key)
        return default if value in (None, "") else value

    host = pick("host", "SCHEMAGATE_DB_HOST")
    user = pick("username", "SCHEMAGATE_DB_USER")
    dbname = pick("dbname", "SCHEMAGATE_DB_NAME", "postgres")
    port_text = pick("port", "SCHEMAGATE_DB_PORT", 5432)
    missing = [name for name, value in (("host", host), ("username", user)) if not value]
    if missing:
        raise ConfigurationError(
            f"the database secret {secret_arn or '(none)'} has no {' or '.join(missing)}",
            remedy="add them to the secret, or set SCHEMAGATE_DB_HOST / SCHEMAGATE_DB_USER",
        )
    try:
        port = int(port_text)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"the database port {port_text!r} is not a number", remedy="set port in the secret to e.g. 5432"
        ) from None

    sslmode = (env.get("SCHEMAGATE_DB_SSLMODE") or DEFAULT_SSLMODE).strip()
    if sslmode not in SSL_MODES:
        raise ConfigurationError(
            f"SCHEMAGATE_DB_SSLMODE={sslmode!r} is not a libpq sslmode",
            remedy=f"use one of {', '.join(SSL_MODES)}",
        )
    sslrootcert = (env.get("SCHEMAGATE_DB_SSLROOTCERT") or "").strip() or None
    if sslrootcert and not os.path.isfile(sslrootcert):
        raise ConfigurationError(
            f"SCHEMAGATE_DB_SSLROOTCERT={sslrootcert} does not exist",
            remedy="point it at a CA bundle shipped in the package, e.g. the RDS global-bundle.pem",
        )
    if sslmode in ("verify-ca", "verify-full") and not sslrootcert:
        raise ConfigurationError(
            f"sslmode {sslmode} needs a CA bundle",
            remedy="set SCHEMAGATE_DB_SSLROOTCERT to the CA bundle's path",
        )
    try:
        connect_timeout = max(2, int(env.get("SCHEMAGATE_DB_CONNECT_TIMEOUT") or DEFAULT_CONNECT_TIMEOUT))
    except ValueError:
        raise ConfigurationError(
            "SCHEMAGATE_DB_CONNECT_TIMEOUT is not a whole number of seconds", remedy="set it to e.g. 10"
        ) from None

    password = secret.get("password")
    if iam_auth:
        if sslmode in ("disable", "allow", "prefer"):
            raise ConfigurationError(
                "RDS IAM authentication needs TLS",
                remedy="set SCHEMAGATE_DB_SSLMODE to require or verify-full",
            )
        client = rds_client or _client("rds")
        try:
            password = client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
        except Exception as exc:  # no credentials in the environment
            raise PermissionDenied(
                f"cannot create an RDS IAM auth token for {user}@{host} ({type(exc).__name__})",
                remedy="give the executor's role rds-db:connect on the database user",
            ) from None
    elif not password:
        raise ConfigurationError(
            f"the database secret {secret_arn} has no password",
            remedy="add the password to the secret, or set SCHEMAGATE_DB_IAM_AUTH=true "
            "to use RDS IAM authentication",
        )
    return DatabaseTarget(
        host=str(host),
        port=port,
        user=str(user),
        dbname=str(dbname),
        password=None if password is None else str(password),
        sslmode=sslmode,
        sslrootcert=sslrootcert,
        connect_timeout=connect_timeout,
        iam_auth=iam_auth,
    )
