"""Database credentials from Secrets Manager (moto), TLS settings, RDS IAM tokens, caching."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from psycopg2.extensions import parse_dsn

from executor import credentials
from executor.connection import connect
from executor.credentials import clear_cache, resolve_target
from executor.errors import ConfigurationError, PermissionDenied

PASSWORD = "pw-'quoted' \\ and spaces-9f8e7d"  # quoting must survive the DSN


@pytest.fixture
def sm():
    clear_cache()  # the secrets and executor.aws_clients' clients
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")
        clear_cache()
    clear_cache()


def _secret(sm, value: dict | str, name: str = "db") -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return sm.create_secret(Name=name, SecretString=text)["ARN"]


RDS_SECRET = {
    "engine": "postgres",
    "host": "db.example.internal",
    "port": 5432,
    "username": "migrator",
    "password": PASSWORD,
    "dbname": "app",
}


def test_rds_format_secret_builds_a_tls_dsn(sm) -> None:
    arn = _secret(sm, RDS_SECRET)
    target = resolve_target({"SCHEMAGATE_DB_SECRET_ARN": arn}, secrets_client=sm)
    params = parse_dsn(target.dsn())
    assert params["host"] == "db.example.internal"
    assert params["user"] == "migrator"
    assert params["dbname"] == "app"
    assert params["password"] == PASSWORD
    assert params["sslmode"] == "require"  # the default
    assert target.describe() == "migrator@db.example.internal:5432/app"
    assert PASSWORD not in repr(target)
    assert target.secrets == (PASSWORD,)


def test_secret_is_cached_for_the_container(sm) -> None:
    arn = _secret(sm, RDS_SECRET)
    resolve_target({"SCHEMAGATE_DB_SECRET_ARN": arn}, secrets_client=sm)
    sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    # served from the cache: no second GetSecretValue
    assert resolve_target({"SCHEMAGATE_DB_SECRET_ARN": arn}, secrets_client=sm).password == PASSWORD
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve_target({"SCHEMAGATE_DB_SECRET_ARN": arn}, secrets_client=sm, refresh=True)


def test_missing_or_forbidden_secret(sm) -> None:
    with pytest.raises(ConfigurationError, match="does not exist") as exc:
        resolve_target(
            {"SCHEMAGATE_DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope"},
            secrets_client=sm,
        )
    assert exc.value.category.value == "CONFIGURATION_ERROR"
    assert exc.value.remedy is not None and "SCHEMAGATE_DB_SECRET_ARN" in exc.value.remedy

    class Denied:
        def get_secret_value(self, **_):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")

    with pytest.raises(PermissionDenied, match="not allowed") as denied:
        resolve_target({"SCHEMAGATE_DB_SECRET_ARN": "arn:denied"}, secrets_client=Denied())
    assert denied.value.category.value == "PERMISSION_DENIED"
    assert denied.value.remedy is not None and "secretsmanager:GetSecretValue" in denied.value.remedy
    with pytest.raises(ConfigurationError, match="SCHEMAGATE_DB_SECRET_ARN is not set"):
        resolve_target({}, secrets_client=sm)


def test_malformed_secret_is_not_echoed(sm) -> None:
    arn = _secret(sm, "host=x password=" + PASSWORD)
    with pytest.raises(ConfigurationError, match="not a JSON object") as exc:
        resolve_target({"SCHEMAGATE_DB_SECRET_ARN": arn}, secrets_client=sm)
    assert PASSWORD not in str(exc.value)
    arn = _secret(sm, {"username": "u", "password": PASSWORD}, name="partial")
    with pytest.raises(ConfigurationError, match="has no host"):
        resolve_target({"SCHEMAGATE_DB_SECRET_ARN": arn}, secrets_client=sm)


def test_managed_master_secret_with_host_from_environment(sm) -> None:
    # an RDS-managed master secret holds only username and password
    arn = _secret(sm, {"username": "postgres", "password": PASSWORD})
    env = {
        "SCHEMAGATE_DB_SECRET_ARN": arn,
        "SCHEMAGATE_DB_HOST": "proxy.example.internal",
        "SCHEMAGATE_DB_NAME": "app",
        "SCHEMAGATE_DB_PORT": "6432",
    }
    target = resolve_target(env, secrets_client=sm)
    assert (target.host, target.port, target.dbname, target.user) == (
        "proxy.example.internal",
        6432,
        "app",
        "postgres",
    )


def test_tls_settings(sm, tmp_path) -> None:
    arn = _secret(sm, RDS_SECRET)
    env = {"SCHEMAGATE_DB_SECRET_ARN": arn}
    with pytest.raises(ConfigurationError, match="not a libpq sslmode"):
        resolve_target({**env, "SCHEMAGATE_DB_SSLMODE": "on"}, secrets_client=sm)
    with pytest.raises(ConfigurationError, match="needs a CA bundle"):
        resolve_target({**env, "SCHEMAGATE_DB_SSLMODE": "verify-full"}, secrets_client=sm)
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve_target({**env, "SCHEMAGATE_DB_SSLROOTCERT": str(tmp_path / "none.pem")}, secrets_client=sm)
    ca = tmp_path / "global-bundle.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    target = resolve_target(
        {
            **env,
            "SCHEMAGATE_DB_SSLMODE": "verify-full",
            "SCHEMAGATE_DB_SSLROOTCERT": str(ca),
            "SCHEMAGATE_DB_CONNECT_TIMEOUT": "1",
        },
        secrets_client=sm,
    )
    params = parse_dsn(target.dsn())
    assert (params["sslmode"], params["sslrootcert"]) == ("verify-full", str(ca))
    assert params["connect_timeout"] == "2"  # libpq's minimum


def test_iam_auth_uses_a_token_instead_of_the_password(sm) -> None:
    arn = _secret(sm, RDS_SECRET)
    rds = boto3.client("rds", region_name="us-east-1")
    target = resolve_target(
        {"SCHEMAGATE_DB_SECRET_ARN": arn, "SCHEMAGATE_DB_IAM_AUTH": "true"}, secrets_client=sm, rds_client=rds
    )
    assert target.iam_auth
    assert target.password != PASSWORD
    assert (
        target.password is not None
        and "X-Amz-Signature=" in target.password
        and target.password.startswith("db.example.internal:5432/")
    )
    assert target.secrets == (target.password,)
    with pytest.raises(ConfigurationError, match="needs TLS"):
        resolve_target(
            {
                "SCHEMAGATE_DB_SECRET_ARN": arn,
                "SCHEMAGATE_DB_IAM_AUTH": "1",
                "SCHEMAGATE_DB_SSLMODE": "disable",
            },
            secrets_client=sm,
            rds_client=rds,
        )


def test_dsn_connects_to_a_real_server(sm, fresh_db: str) -> None:
    url = urlsplit(fresh_db)
    arn = _secret(
        sm,
        {
            "host": url.hostname,
            "port": url.port or 5432,
            "username": url.username or "postgres",
            "password": url.password or PASSWORD,
            "dbname": url.path.lstrip("/"),
        },
    )
    target = resolve_target(
        {"SCHEMAGATE_DB_SECRET_ARN": arn, "SCHEMAGATE_DB_SSLMODE": "disable"}, secrets_client=sm
    )
    conn = connect(target.dsn(), connect_timeout=target.connect_timeout)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_database(), current_setting('application_name')")
            assert cur.fetchone() == (url.path.lstrip("/"), "schemagate-executor")
    finally:
        conn.close()
    assert credentials._SECRET_CACHE  # the handler's next invocation reuses it
