"""Header settings and statement splitting (pure: no database; pglast, the PostgreSQL parser, is the
oracle for statement boundaries)."""

from __future__ import annotations

from pathlib import Path

import pglast.parser
import pytest

from executor.errors import ConfigurationError
from executor.headers import line_and_column, parse_header_settings, split_statements


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
        ("START TRANSACTION;", True),
        ("ROLLBACK;", True),
        ("END;", True),
        ("ROLLBACK TO SAVEPOINT s;", False),
        ("SAVEPOINT s;", False),
        ("COMMIT PREPARED 'x';", False),
        ("CREATE TABLE begin_log (id int);", False),
    ],
)
def test_transaction_control_statements_are_recognised(sql: str, control: bool) -> None:
    (statement,) = split_statements(sql)
    assert statement.is_transaction_control is control


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
    "COMMENT ON TABLE t IS 'semi; colon'",
    'CREATE TABLE "odd;name" ("col;1" int DEFAULT 1, note text DEFAULT \';\')',
    "INSERT INTO t (a, b, c, d) VALUES (1, $$;$$, $tag$ $$ ; $tag$, E'\\'')",
    "ALTER TYPE mood ADD VALUE 'meh'",
    "CREATE INDEX CONCURRENTLY i ON t (lower(name))",
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
