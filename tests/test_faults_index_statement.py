"""The executor's reader of CREATE INDEX / REINDEX statements (executor/index_statement.py), checked
against PostgreSQL's own parser (pglast) and against what a real PostgreSQL creates."""

from __future__ import annotations

import pglast
import psycopg2
import pytest
from pglast import ast, enums

from executor.index_statement import (
    CREATE_INDEX,
    REINDEX,
    IndexStatement,
    QualifiedName,
    is_index_statement,
    parse_index_statement,
)
from executor.index_validity import index_statements

LONG = "invoice_lines_created_at_customer_reference_product_code_discount_idx"  # 68 bytes

CREATE_CASES = {
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_received_at_idx ON payments (received_at);": (
        "payments_received_at_idx",
        QualifiedName(None, "payments"),
    ),
    'create unique index concurrently "Invoice ""Number"" Key" on only billing."Invoices" '
    "using btree (number) where deleted_at is null": (
        'Invoice "Number" Key',
        QualifiedName("billing", "Invoices"),
    ),
    "CREATE INDEX CONCURRENTLY ON events USING brin (created_at)": (None, QualifiedName(None, "events")),
    "CREATE INDEX /* partial, for the dashboard */ CONCURRENTLY -- open orders only\n"
    "    IF NOT EXISTS Orders_Open_IDX ON Public.Orders(customer_id) WHERE status <> 'closed'": (
        "orders_open_idx",
        QualifiedName("public", "orders"),
    ),
    "CREATE INDEX if ON events (created_at)": ("if", QualifiedName(None, "events")),
    "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON app.users USING btree (lower(email)) "
    "INCLUDE (id) WITH (fillfactor = 90)": ("users_email_key", QualifiedName("app", "users")),
    'CREATE INDEX CONCURRENTLY "Größe_idx" ON events (created_at)': (
        "Größe_idx",
        QualifiedName(None, "events"),
    ),
    "CREATE INDEX CONCURRENTLY Größe_ÄÖ_IDX ON events (created_at)": (
        "größe_ÄÖ_idx",  # ASCII letters are folded, others are kept (a UTF-8 database)
        QualifiedName(None, "events"),
    ),
    'CREATE INDEX CONCURRENTLY U&"d\\0061ta_idx" ON events (created_at)': (
        "data_idx",
        QualifiedName(None, "events"),
    ),
    "CREATE INDEX CONCURRENTLY U&\"m!0065t!+000061_idx\" UESCAPE '!' ON events (created_at)": (
        "meta_idx",
        QualifiedName(None, "events"),
    ),
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {LONG} ON events (created_at)": (
        LONG[:63],
        QualifiedName(None, "events"),
    ),
    'CREATE\tUNIQUE\nINDEX\nCONCURRENTLY\n"events_$weird" ON\n"app" . "Event Log" ((payload->>\'id\'))': (
        "events_$weird",
        QualifiedName("app", "Event Log"),
    ),
}

REINDEX_CASES = {
    "REINDEX INDEX CONCURRENTLY public.payments_received_at_idx": IndexStatement(
        kind=REINDEX,
        concurrently=True,
        scope="index",
        index=QualifiedName("public", "payments_received_at_idx"),
    ),
    "REINDEX (VERBOSE, CONCURRENTLY) TABLE app.users": IndexStatement(
        kind=REINDEX, concurrently=True, scope="table", table=QualifiedName("app", "users")
    ),
    "REINDEX (CONCURRENTLY false) TABLE events": IndexStatement(
        kind=REINDEX, concurrently=False, scope="table", table=QualifiedName(None, "events")
    ),
    "reindex table events;": IndexStatement(kind=REINDEX, scope="table", table=QualifiedName(None, "events")),
    "REINDEX SCHEMA CONCURRENTLY app": IndexStatement(
        kind=REINDEX, concurrently=True, scope="schema", schema="app"
    ),
    "REINDEX DATABASE CONCURRENTLY": IndexStatement(kind=REINDEX, concurrently=True, scope="database"),
}


@pytest.mark.parametrize("sql", list(CREATE_CASES))
def test_create_index_names_what_postgresqls_parser_reads(sql: str) -> None:
    parsed = parse_index_statement(sql)
    assert parsed is not None and parsed.kind == CREATE_INDEX and parsed.understood
    assert (parsed.name, parsed.table) == CREATE_CASES[sql]
    node = pglast.parse_sql(sql)[0].stmt
    assert isinstance(node, ast.IndexStmt)
    assert parsed.name == node.idxname
    assert node.relation is not None and node.relation.relname is not None
    assert parsed.table == QualifiedName(node.relation.schemaname, node.relation.relname)
    assert (parsed.unique, parsed.concurrently, parsed.if_not_exists) == (
        bool(node.unique),
        bool(node.concurrent),
        bool(node.if_not_exists),
    )


@pytest.mark.parametrize("sql", list(REINDEX_CASES))
def test_reindex_names_what_postgresqls_parser_reads(sql: str) -> None:
    parsed = parse_index_statement(sql)
    assert parsed == REINDEX_CASES[sql]
    node = pglast.parse_sql(sql)[0].stmt
    assert isinstance(node, ast.ReindexStmt)
    options = {p.defname: p.arg for p in node.params or ()}
    concurrent = "concurrently" in options and (
        options["concurrently"] is None or str(getattr(options["concurrently"], "sval", "true")) != "false"
    )
    assert parsed.concurrently == concurrent
    assert node.kind is not None
    assert parsed.scope == enums.ReindexObjectType(node.kind).name.removeprefix("REINDEX_OBJECT_").lower()
    if node.relation is not None:
        assert node.relation.relname is not None
        assert (parsed.index or parsed.table) == QualifiedName(
            node.relation.schemaname, node.relation.relname
        )
    if parsed.scope == "schema":
        assert parsed.schema == node.name


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE index_log (id int)",
        "DROP INDEX CONCURRENTLY IF EXISTS obsolete_idx",
        "SELECT 'CREATE INDEX x ON t (x)'",
        "ALTER INDEX payments_received_at_idx RENAME TO payments_received_idx",
        "CREATE INDEXED_VIEW_LOG (x int)",
    ],
)
def test_other_statements_are_not_index_statements(sql: str) -> None:
    assert parse_index_statement(sql) is None


def test_a_statement_that_starts_like_an_index_build_but_cannot_be_read_is_marked_so() -> None:
    parsed = parse_index_statement("CREATE INDEX CONCURRENTLY IF NOT EXISTS")
    assert parsed == IndexStatement(kind=CREATE_INDEX, concurrently=True, understood=False)
    unterminated = parse_index_statement('CREATE INDEX "unterminated ON t (x)')
    assert unterminated is not None and unterminated.understood is False


def test_the_first_words_select_the_statements_worth_reading() -> None:
    assert is_index_statement(("create", "index", "concurrently"))
    assert is_index_statement(("create", "unique", "index"))
    assert is_index_statement(("reindex", "index", "concurrently"))
    assert not is_index_statement(("create", "table", "index_log"))
    assert not is_index_statement(("drop", "index", "concurrently"))


def test_index_statements_of_a_file_skip_everything_else() -> None:
    sql = (
        "-- schemagate:set statement_timeout=2h\n"
        "SET search_path = app;\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_created_at_idx ON users (created_at);\n"
        "/* and the old one */ DROP INDEX CONCURRENTLY IF EXISTS users_created_idx;\n"
        "REINDEX INDEX CONCURRENTLY users_email_key;\n"
    )
    found = index_statements(sql)
    assert [(s.kind, s.name or (s.index and s.index.name)) for s in found] == [
        (CREATE_INDEX, "users_created_at_idx"),
        (REINDEX, "users_email_key"),
    ]


def test_the_names_read_are_the_names_postgresql_creates(fresh_db: str) -> None:
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE SCHEMA billing; CREATE SCHEMA app;"
                'CREATE TABLE payments (received_at timestamptz); CREATE TABLE billing."Invoices" '
                "(number int, deleted_at timestamptz); CREATE TABLE events (created_at timestamptz);"
                "CREATE TABLE orders (customer_id int, status text); CREATE TABLE app.users (id int, email text);"
                'CREATE TABLE app."Event Log" (payload jsonb)'
            )
            for sql, (name, table) in CREATE_CASES.items():
                cur.execute("SELECT oid FROM pg_class WHERE relkind = 'i'")
                before = {r[0] for r in cur.fetchall()}
                cur.execute(sql)
                cur.execute(
                    "SELECT c.relname, x.indrelid = to_regclass(%s) FROM pg_class c "
                    "JOIN pg_index x ON x.indexrelid = c.oid WHERE c.relkind = 'i' AND NOT c.oid = ANY(%s)",
                    (table.sql(), list(before)),
                )
                created = cur.fetchall()
                assert len(created) == 1 and created[0][1], sql  # one index, on the table read
                if name is not None:
                    assert created[0][0] == name, sql
    finally:
        conn.close()
