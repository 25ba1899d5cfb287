"""Header settings and statement splitting (pure: no database; pglast, the PostgreSQL parser, is the
oracle for statement boundaries)."""

from __future__ import annotations

from pathlib import Path

import pglast.parser
import pytest

from executor.errors import ConfigurationError
from executor.headers import (
    LineCounter,
    line_and_column,
    migration_statements,
    parse_header_settings,
    split_statements,
)


def texts(sql: str, **kwargs) -> list[str]:
    return [s.text for s in split_statements(sql, **kwargs)]


# -- header settings ------------------------------------------------------------------------


def test_header_settings_are_read_from_the_leading_comment_lines() -> None:
    sql = (
        "-- Add an index without blocking writes.\n"
        "\n"
        "-- schemagate:set lock_timeout=10s statement_timeout=1h\n"
        "--schemagate:set lock_retries=5\n"
        "CREATE INDEX CONCURRENTLY i ON t (a);\n"
    )
    assert parse_header_settings(sql) == {
        "lock_timeout": "10s",
        "statement_timeout": "1h",
        "lock_retries": "5",
    }


def test_a_file_without_header_has_no_settings() -> None:
    assert parse_header_settings("CREATE TABLE t (id int);\n-- a comment\n") == {}
    assert parse_header_settings("-- just a comment\nSELECT 1;") == {}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-- schemagate:set lock_timout=5s", "unknown setting 'lock_timout'"),
        ("-- schemagate:set lock_timeout=soon", "bad value 'soon' for lock_timeout"),
        ("-- schemagate:set lock_timeout", "bad value '' for lock_timeout"),
        ("-- schemagate:set lock_retries=-1", "bad value '-1' for lock_retries"),
        ("-- schemagate:set", "nothing to set"),
    ],
)
def test_a_bad_header_line_is_a_configuration_error_naming_the_line(line: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_header_settings(f"-- first line\n{line}\nSELECT 1;\n", file="V3__x.sql")
    error = caught.value
    assert expected in error.message
    assert (error.file, error.line, error.rule) == ("V3__x.sql", 2, "header-setting")
    assert error.remedy and error.exit_code == 2


def test_a_set_line_after_the_first_statement_is_refused_not_ignored() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_header_settings("SELECT 1;\n\n-- schemagate:set lock_timeout=1s\n", file="V1__x.sql")
    assert caught.value.line == 3
    assert "after the first statement" in caught.value.message


# -- statements -----------------------------------------------------------------------------


def test_statements_split_at_top_level_semicolons() -> None:
    sql = "CREATE TABLE a (id int);\n  -- comment; not a statement\nINSERT INTO a VALUES (1);\n"
    statements = split_statements(sql)
    assert [s.text for s in statements] == ["CREATE TABLE a (id int);", "INSERT INTO a VALUES (1);"]
    assert line_and_column(sql, statements[1].start) == (3, 1)
    assert statements[0].words == ("create", "table", "a")


def test_semicolons_inside_strings_identifiers_comments_and_dollar_quotes_do_not_split() -> None:
    sql = (
        "SELECT 'a;b', 'it''s;', E'x\\';y', \"we;ird\"\"id\" FROM t; /* c; /* nested; */ still; */\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$;\n"
        "DO $$ BEGIN PERFORM 1; END $$;\n"
        "PREPARE p AS SELECT $1; \n"  # not a dollar quote: $1 is a parameter reference
        "SELECT a$b$c FROM t;\n"  # '$' inside an identifier
    )
    assert texts(sql) == [
        "SELECT 'a;b', 'it''s;', E'x\\';y', \"we;ird\"\"id\" FROM t;",
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$;",
        "DO $$ BEGIN PERFORM 1; END $$;",
        "PREPARE p AS SELECT $1;",
        "SELECT a$b$c FROM t;",
    ]


def test_backslash_escapes_only_count_in_escape_strings() -> None:
    # with standard_conforming_strings on, '\' ends a string; a backslash is an ordinary character
    assert texts("SELECT '\\'; SELECT 2;") == ["SELECT '\\';", "SELECT 2;"]
    assert texts("SELECT '\\'; SELECT 2;';", standard_conforming_strings=False) == [
        "SELECT '\\'; SELECT 2;';"
    ]


def test_begin_atomic_bodies_and_parentheses_keep_their_semicolons_as_psql_does() -> None:
    sql = (
        "CREATE OR REPLACE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN a END;\n  SELECT a + b;\nEND;\n"
        "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO u VALUES (1); INSERT INTO u VALUES (2));\n"
        "BEGIN;\nCOMMIT;\n"
    )
    statements = split_statements(sql)
    assert len(statements) == 4
    assert statements[0].text.endswith("END;")
    assert statements[1].text.startswith("CREATE RULE")
    assert [s.is_transaction_control for s in statements] == [False, False, True, True]


def test_empty_statements_and_comment_only_tails_are_dropped_and_a_last_statement_needs_no_semicolon() -> (
    None
):
    assert texts(";;\n-- nothing\n/* nothing */\n") == []
    assert texts("SELECT 1;\n;\nSELECT 2 -- no semicolon") == ["SELECT 1;", "SELECT 2 -- no semicolon"]


def test_an_unterminated_string_runs_to_the_end_for_postgresql_to_report() -> None:
    assert texts("SELECT 'oops; SELECT 2;") == ["SELECT 'oops; SELECT 2;"]


def test_dollar_body_start_is_recorded_for_mapping_function_line_numbers() -> None:
    sql = "-- x\nDO $$\nBEGIN\n  PERFORM 1;\nEND $$;\n"
    (statement,) = split_statements(sql)
    assert statement.body_start is not None
    assert line_and_column(sql, statement.body_start) == (2, 6)


@pytest.mark.parametrize(
    ("sql", "control"),
    [
        ("START TRANSACTION;", "START TRANSACTION"),
        ("ROLLBACK;", "ROLLBACK"),
        ("END;", "END"),
        ("abort;", "ABORT"),
        ("ROLLBACK TO SAVEPOINT s;", "ROLLBACK TO SAVEPOINT"),
        ("rollback work to s;", "ROLLBACK TO SAVEPOINT"),
        ("SAVEPOINT s;", "SAVEPOINT"),
        ("RELEASE s;", "RELEASE SAVEPOINT"),
        ("PREPARE TRANSACTION 'x';", "PREPARE TRANSACTION"),
        ("COMMIT PREPARED 'x';", "COMMIT PREPARED"),
        ("ROLLBACK PREPARED 'x';", "ROLLBACK PREPARED"),
        ("PREPARE q AS SELECT 1;", None),  # a prepared statement, not a transaction
        ("START_DATE;", None),
        ("CREATE TABLE begin_log (id int);", None),
    ],
)
def test_transaction_control_statements_are_recognised(sql: str, control: str | None) -> None:
    """Every statement the validator calls explicit-transaction-control, so the executor refuses the
    same set from a bundle nobody validated."""
    (statement,) = split_statements(sql)
    assert statement.transaction_control == control
    assert statement.is_transaction_control is (control is not None)


# -- the BEGIN; ... COMMIT; wrapper ------------------------------------------------------------

GOLANG_MIGRATE_UP = """-- 000012_add_subscription_status.up.sql
BEGIN;

CREATE TYPE subscription_status AS ENUM ('trialing', 'active', 'past_due', 'canceled');

ALTER TABLE subscriptions ADD COLUMN status subscription_status NOT NULL DEFAULT 'active';

UPDATE subscriptions SET status = 'canceled' WHERE canceled_at IS NOT NULL;

COMMIT;
"""


@pytest.mark.parametrize(
    ("opening", "closing"),
    [
        ("BEGIN;", "COMMIT;"),
        ("begin;", "commit;"),
        ("BEGIN TRANSACTION;", "COMMIT TRANSACTION;"),
        ("BEGIN WORK;", "COMMIT WORK;"),
        ("START TRANSACTION;", "END;"),
        ("start transaction ;", "end transaction;"),
        ("BEGIN /* wrapped by the generator */ ;", "COMMIT -- done\n;"),
        ("BEGIN", "COMMIT"),  # psql accepts a last statement without ';' (and BEGIN\n;)
    ],
)
def test_a_plain_begin_commit_around_the_file_is_removed(opening: str, closing: str) -> None:
    sql = GOLANG_MIGRATE_UP.replace("BEGIN;", opening).replace("COMMIT;", closing)
    if opening == "BEGIN":
        sql = sql.replace("BEGIN\n", "BEGIN\n;\n")
    result = migration_statements(sql)
    assert result.wrapper is not None
    assert [s.words[:2] for s in result.statements] == [
        ("create", "type"),
        ("alter", "table"),
        ("update", "subscriptions"),
    ]
    begin, commit = result.wrapper
    assert line_and_column(sql, begin.start) == (2, 1)
    assert (begin.wrapper_role, commit.wrapper_role) == ("open", "close")


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN;\nCREATE TABLE a (id int);\n",  # no COMMIT: psql would leave it open, then roll it back
        "CREATE TABLE a (id int);\nCOMMIT;\n",
        "BEGIN;\nCREATE TABLE a (id int);\nROLLBACK;\n",
        "BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE a (id int);\nCOMMIT;\n",
        "BEGIN TRANSACTION READ WRITE;\nCREATE TABLE a (id int);\nCOMMIT;\n",
        "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT AND CHAIN;\n",
        "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT AND NO CHAIN;\n",  # plain only: one spelling per side
        "BEGIN;\nCOMMIT PREPARED 'x';\n",
        "BEGIN;\n",
    ],
)
def test_anything_but_a_plain_wrapper_stays_for_the_executor_to_refuse(sql: str) -> None:
    result = migration_statements(sql)
    assert result.wrapper is None
    assert any(s.is_transaction_control for s in result.statements)


def test_only_the_outer_wrapper_is_removed() -> None:
    sql = "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\nBEGIN;\nCREATE TABLE b (id int);\nCOMMIT;\n"
    result = migration_statements(sql)
    assert result.wrapper is not None
    assert [s.transaction_control for s in result.statements] == [None, "COMMIT", "BEGIN", None]


# -- CONCURRENTLY --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "concurrent", "partial"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (a)", True, True),
        ("create unique index concurrently if not exists i on t (a)", True, True),
        ("DROP INDEX CONCURRENTLY IF EXISTS i", True, True),
        ("REINDEX INDEX CONCURRENTLY i", True, True),
        ("REINDEX (CONCURRENTLY) TABLE t", True, True),
        ("ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY", False, True),
        ("CALL purge_batches()", False, True),
        ("DO $$ BEGIN COMMIT; END $$", False, True),
        # the letters, not the keyword
        ("CREATE INDEX refunds_idx ON refunded_concurrently (id)", False, False),
        ("CREATE TABLE concurrently_log (id bigint)", False, False),
        ('CREATE INDEX i ON "concurrently" (a)', False, False),
        ("CREATE INDEX i ON t (a) WHERE note <> 'concurrently' -- concurrently", False, False),
        ("DROP INDEX refunded_concurrently_idx", False, False),
        ("ALTER TABLE refunded_concurrently ADD COLUMN note text", False, False),
        ("REFRESH MATERIALIZED VIEW CONCURRENTLY totals", False, False),  # runs in one transaction
    ],
)
def test_concurrent_is_the_keyword_not_a_substring(sql: str, concurrent: bool, partial: bool) -> None:
    (statement,) = split_statements(sql)
    assert statement.is_concurrent is concurrent
    assert statement.may_commit_partially is partial


def test_line_and_column() -> None:
    sql = "ab\ncd\n"
    assert line_and_column(sql, 0) == (1, 1)
    assert line_and_column(sql, 4) == (2, 2)


# -- the splitter agrees with PostgreSQL's own parser (pglast) ---------------------------------

CORPUS = [
    "SELECT 'a;b', 'it''s;', E'x\\';y', \"we;ird\"\"id\" FROM t",
    "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$",
    "CREATE OR REPLACE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\n"
    "BEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN a ELSE 0 END;\n  SELECT a + b;\nEND",
    "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); END",
    "DO $$ BEGIN PERFORM 1; RAISE NOTICE '%', 'x;y'; END $$",
    "DO $outer$ BEGIN EXECUTE $inner$ SELECT ';' $inner$; END $outer$",
    "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO u VALUES (1); INSERT INTO u VALUES (2))",
    "SELECT a$b$c, d$$e, f$1 FROM t WHERE name = E'\\\\' AND x = 'e''' AND y = U&'d\\0061t\\+000061'",
    "SELECT one, two, three, four, five$x$, six FROM t /* a; /* nested; */ comment; */",
    "SELECT 1, 2, 3, 4, somee'x' FROM t",
    # E' and '$' right after an identifier character, and E' after punctuation, both cases, both token
    # patterns (the first four words of a statement are read one by one, the rest skipped over)
    # (read as escape strings, the quotes after someE and somee would swallow the next ';')
    "SELECT someE'x\\' AS a",
    "SELECT 'y', e'\\';z', (E'\\';w') FROM t",
    "SELECT one, two, three, four, someE'x\\'",
    "SELECT 'y', one, two, three, four, somee'x\\'",
    "SELECT 'y', one, two, three, four, e'\\';z', (E'\\';w'), a$q$b, 'c;d', $1 FROM t",
    "SELECT E'\\';' AS one, two, three, four",
    "COMMENT ON TABLE t IS 'semi; colon'",
    'CREATE TABLE "odd;name" ("col;1" int DEFAULT 1, note text DEFAULT \';\')',
    "INSERT INTO t (a, b, c, d) VALUES (1, $$;$$, $tag$ $$ ; $tag$, E'\\'')",
    "ALTER TYPE mood ADD VALUE 'meh'",
    "CREATE INDEX CONCURRENTLY i ON t (lower(name))",
    # BEGIN ATOMIC bodies where counting BEGIN / CASE / END words (psql's heuristic) goes wrong
    "CREATE FUNCTION f() RETURNS TABLE (a int) LANGUAGE sql\nBEGIN ATOMIC\n"
    "  SELECT t.end FROM (SELECT 1 AS end) AS t;\nEND",
    "CREATE FUNCTION f() RETURNS SETOF int LANGUAGE sql\nBEGIN ATOMIC\n"
    "  WITH begin AS (SELECT 1) SELECT * FROM begin;\nEND",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END end; END",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT t . case FROM t; END",
    "CREATE FUNCTION begin() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS x; /* c */ END /* d */",
    "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC\n"
    "  CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\nEND",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC END",
    "SELECT 1 -- a comment that PostgreSQL ends at a carriage return\r",
]


@pytest.mark.parametrize("separator", [";\n", " ; -- note; with semicolon\n", ";\n/* between; */\n"])
def test_statements_split_exactly_where_postgresql_splits_them(separator: str) -> None:
    sql = separator.join(CORPUS) + ";\n"
    mine = [s.text.rstrip(";").strip() for s in split_statements(sql)]
    theirs = [s.strip() for s in pglast.parser.split(sql)]
    assert mine == theirs


def test_the_project_migrations_split_like_postgresql_splits_them() -> None:
    files = sorted((Path(__file__).resolve().parent.parent / "migrations").rglob("*.sql"))
    for path in files:
        sql = path.read_text(encoding="utf-8")
        mine = [s.text.rstrip(";").strip() for s in split_statements(sql)]
        theirs = [s.strip() for s in pglast.parser.split(sql)]
        assert mine == theirs, path.name


# -- positions ------------------------------------------------------------------------------


def test_line_counter_gives_the_same_positions_in_any_order_of_look_ups() -> None:
    sql = "-- add the invoices table\nCREATE TABLE invoices (\n  id bigint,\n  total numeric\n);\n\nSELECT 1;"

    def counted(offset: int) -> tuple[int, int]:  # by hand: the text before the offset
        before = sql[: max(0, min(offset, len(sql)))]
        return before.count("\n") + 1, len(before.rsplit("\n", 1)[-1]) + 1

    offsets = [0, 26, 49, 61, 30, 0, len(sql), 75, 3, 10_000, -5, 48]
    counter = LineCounter(sql)  # one counter, forwards and backwards
    assert [counter.position(o) for o in offsets] == [counted(o) for o in offsets]
    assert [line_and_column(sql, o) for o in offsets] == [counted(o) for o in offsets]
    assert line_and_column(sql, sql.index("total")) == (4, 3)
    assert line_and_column(sql, len(sql)) == (7, 10)  # just after the last character
