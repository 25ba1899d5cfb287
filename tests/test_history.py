"""The history table on a real PostgreSQL: created on first use with the documented columns, read
without side effects."""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from executor.errors import ConfigurationError, PermissionDenied
from executor.history import ensure_history_table, insert_row, read_history
from executor.settings import ExecutorSettings

DESIGN_COLUMNS = [
    ("installed_rank", "integer"),
    ("version", "text"),
    ("description", "text"),
    ("type", "text"),
    ("script", "text"),
    ("checksum", "character"),
    ("installed_by", "text"),
    ("installed_on", "timestamp with time zone"),
    ("execution_time_ms", "integer"),
    ("success", "boolean"),
    ("bundle_sha256", "character"),
    ("run_id", "text"),
]


@pytest.fixture
def conn(fresh_db: str):
    connection = psycopg2.connect(fresh_db)
    connection.autocommit = True
    yield connection
    connection.close()


def columns(conn, schema: str, table: str) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        )
        return cur.fetchall()


def test_reading_an_absent_history_is_empty_and_creates_nothing(conn) -> None:
    assert read_history(conn, ExecutorSettings()) == []
    assert columns(conn, "public", "schemagate_history") == []


def test_the_table_has_exactly_the_design_columns_and_primary_key(conn) -> None:
    assert ensure_history_table(conn, ExecutorSettings()) is True
    assert ensure_history_table(conn, ExecutorSettings()) is False  # idempotent
    assert columns(conn, "public", "schemagate_history") == DESIGN_COLUMNS
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'public.schemagate_history'::regclass "
            "AND i.indisprimary"
        )
        assert cur.fetchall() == [("installed_rank",)]


def test_rows_are_numbered_and_record_the_current_user(conn) -> None:
    settings = ExecutorSettings(schema="audit", run_id="pipeline-42")
    ensure_history_table(conn, settings)  # creates the schema too
    with conn.cursor() as cur:
        for version in ("1", "2"):
            insert_row(
                cur,
                settings,
                version=version,
                description="d",
                type="SQL",
                script=f"V{version}__d.sql",
                checksum="a" * 64,
                execution_time_ms=7,
                success=True,
                bundle_sha256="b" * 64,
            )
    rows = read_history(conn, settings)
    assert [(r.installed_rank, r.version, r.installed_by, r.run_id, r.checksum) for r in rows] == [
        (1, "1", conn.info.user, "pipeline-42", "a" * 64),
        (2, "2", conn.info.user, "pipeline-42", "a" * 64),
    ]
    assert rows[0].installed_on is not None and rows[0].success is True
    assert read_history(conn, ExecutorSettings()) == []  # another schema, another history


def test_a_foreign_table_with_the_same_name_is_a_configuration_error(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE schemagate_history (id int)")
    with pytest.raises(ConfigurationError) as caught:
        read_history(conn, ExecutorSettings())
    assert "is not a schemagate history table" in caught.value.message


def test_a_role_without_privileges_gets_permission_denied_with_a_remedy(conn, fresh_db: str) -> None:
    ensure_history_table(conn, ExecutorSettings())
    role = f"sg_reader_{uuid.uuid4().hex[:8]}"  # roles are cluster-wide: a unique name per test
    with conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {role}")
        cur.execute("REVOKE ALL ON schemagate_history FROM PUBLIC")
        cur.execute(f"SET ROLE {role}")
        try:
            with pytest.raises(PermissionDenied) as caught:
                read_history(conn, ExecutorSettings())
        finally:
            cur.execute("RESET ROLE")
            cur.execute(f"DROP ROLE {role}")
    assert caught.value.category.value == "PERMISSION_DENIED"
    assert caught.value.remedy is not None and "grant" in caught.value.remedy
