"""validator/parse.py: pglast parsing, positions, transactional detection, header settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pglast import ast

from executor.checksum import decode_sql, file_checksum
from executor.naming import parse_name
from validator.discovery import MigrationFile
from validator.parse import parse_file
from validator.parsed import ParsedFile


def parsed(content: str | bytes, name: str = "V1__x.sql") -> ParsedFile:
    data = content.encode() if isinstance(content, str) else content
    verdict = parse_name(name)
    assert verdict.name is not None, verdict.problem
    mf = MigrationFile(
        path=Path(name),
        rel=name,
        name=verdict.name,
        data=data,
        checksum=file_checksum(data),
        text=decode_sql(data),
    )
    return parse_file(mf)


def only(p: ParsedFile, rule: str):
    found = [f for f in p.findings if f.rule == rule]
    assert len(found) == 1, p.findings
    assert found[0].severity == "error" and found[0].family == "syntax"
    return found[0]


# --- statements and positions ------------------------------------------------------------------


def test_statements_are_split_by_the_parser_with_positions() -> None:
    p = parsed(
        "-- header\n\ncreate table t (a text default ';');\n  /* c */ insert into t values ('x;y');\nselect 1"
    )
    assert p.findings == [] and p.transactional
    assert [s.text for s in p.statements] == [
        "create table t (a text default ';')",
        "insert into t values ('x;y')",
        "select 1",
    ]
    assert [(s.line, s.column) for s in p.statements] == [(3, 1), (4, 11), (5, 1)]
    assert isinstance(p.statements[0].node, ast.CreateStmt) and isinstance(
        p.statements[1].node, ast.InsertStmt
    )
    assert all(p.text[s.start : s.end] == s.text for s in p.statements)


def test_offsets_are_characters_in_non_ascii_files() -> None:
    p = parsed("comment on table t is 'Überweisungen — €';\ncreate table ü (a int);  -- ok")
    second = p.statements[1]
    assert p.text[second.start : second.end] == "create table ü (a int)" and (second.line, second.column) == (
        2,
        1,
    )


def test_last_statement_without_semicolon_ends_at_its_last_token() -> None:
    p = parsed("select 1;\nselect 2  -- trailing\n/* more */\n")
    assert p.statements[1].text == "select 2"


# --- syntax errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line", "column", "near"),
    [
        ("select 1;\nselec 2;", 2, 1, '"selec"'),
        ("create table t (\n  a int,\n  b text,,\n  c int\n);", 3, 10, '","'),
        ("select 'ééé' as x;\nselect 'ü', 3 fro where;", 2, 24, '";"'),  # non-ASCII before the error
        ("select 1;\nselect 'ééé€', x frm y z;", 2, 22, '"y"'),  # 5 bytes more than characters
        ("select 1;\r\nselect 2;\r\nselect * form t;\r\n", 3, 10, '"form"'),  # CRLF file
        ("\ufeffselect 1;\nalter table t add colum x int;", 2, 27, '"int"'),  # BOM
        ("select 1;\nselect (1", 2, 10, "end of input"),
        ("select 1;\nselect 'unterminated\n", 2, 8, "unterminated quoted string"),
    ],
)
def test_syntax_error_at_the_right_line_and_column(content: str, line: int, column: int, near: str) -> None:
    data = content.encode("utf-8")
    if content.startswith("\ufeff"):
        data = b"\xef\xbb\xbf" + content[1:].encode()
    p = parsed(data)
    error = only(p, "syntax-error")
    assert (error.line, error.column) == (line, column), error
    assert near in error.message
    assert p.statements == []


# --- PL/pgSQL bodies ---------------------------------------------------------------------------


def test_plpgsql_error_in_do_block_at_the_body_line() -> None:
    p = parsed("create table t (a int);\n\ndo $$\nbegin\n  perform 1;\n  retrun;\nend\n$$;")
    error = only(p, "plpgsql-syntax-error")
    assert (
        (error.line, error.column) == (6, 3) and '"retrun"' in error.message and "DO block" in error.message
    )


def test_plpgsql_error_in_function_body_with_non_ascii_before_it() -> None:
    sql = (
        "comment on schema public is 'Grüße';\n"
        "create or replace function add_one(a integer) returns integer\n"
        "language plpgsql as $body$\n"
        "declare\n"
        "  r integer;\n"
        "begin\n"
        "  r := a +;\n"
        "  return r;\n"
        "end\n"
        "$body$;\n"
    )
    error = only(parsed(sql), "plpgsql-syntax-error")
    assert error.line == 7 and "add_one" in error.message


def test_plpgsql_error_on_the_first_body_line_has_the_file_column() -> None:
    error = only(parsed("do $$ begin retrun; end $$;"), "plpgsql-syntax-error")
    assert (error.line, error.column) == (1, 13)


def test_valid_plpgsql_and_sql_functions_parse_cleanly() -> None:
    p = parsed(
        "create function f(x int) returns int language sql immutable as $$ select x + 1 $$;\n"
        "create function g() returns trigger language plpgsql as $$\n"
        "begin\n  new.updated_at := now();\n  return new;\nend $$;\n"
        "create function h(x int) returns int language sql begin atomic; select x; end;\n"
        "do $$ declare r record; begin for r in select 1 as a loop raise notice '%', r.a; end loop; end $$;\n"
    )
    assert p.findings == [] and p.transactional and len(p.statements) == 4


# --- transactions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("create index concurrently i on t (a)", "CREATE INDEX CONCURRENTLY"),
        ("create unique index concurrently if not exists i on t (a)", "CREATE INDEX CONCURRENTLY"),
        ("drop index concurrently if exists i", "DROP INDEX CONCURRENTLY"),
        ("reindex index concurrently i", "REINDEX ... CONCURRENTLY"),
        ("reindex (concurrently) table t", "REINDEX ... CONCURRENTLY"),
        ("reindex database app", "REINDEX DATABASE"),
        ("vacuum (analyze) t", "VACUUM"),
        ("create database app", "CREATE DATABASE"),
        ("drop database if exists app", "DROP DATABASE"),
        ("alter database app set tablespace fast", "ALTER DATABASE ... SET TABLESPACE"),
        ("alter system set work_mem = '64MB'", "ALTER SYSTEM"),
        ("create tablespace fast location '/ssd'", "CREATE TABLESPACE"),
        ("drop tablespace fast", "DROP TABLESPACE"),
        ("alter table events detach partition events_2020 concurrently", "DETACH PARTITION ... CONCURRENTLY"),
        ("cluster", "CLUSTER"),
        ("create subscription s connection 'host=x' publication p", "CREATE SUBSCRIPTION"),
        ("drop subscription s", "DROP SUBSCRIPTION"),
        ("do $$ begin update t set a = 1; commit; end $$", "DO block"),
        ("do $$ begin if true then rollback; end if; end $$", "DO block"),
    ],
)
def test_statements_that_cannot_run_in_a_transaction(sql: str, reason: str) -> None:
    alone = parsed(sql + ";\n")
    assert alone.findings == [] and not alone.transactional
    assert reason in (alone.statements[0].non_transactional or "")
    # with other statements the file still runs without a transaction, each statement on its own
    mixed = parsed("create table t (a int);\n" + sql + ";\nanalyze t;\n")
    assert mixed.findings == [] and not mixed.transactional
    # wrapped in BEGIN ... COMMIT, PostgreSQL would refuse it
    wrapped = parsed("begin;\ncreate table t (a int);\n" + sql + ";\ncommit;\n")
    error = only(wrapped, "non-transactional-in-transaction")
    assert (error.line, error.column) == (3, 1) and reason in error.message
    assert (
        "BEGIN (line 1) ... COMMIT (line 4)" in error.message and "remove the BEGIN and COMMIT" in error.help
    )


@pytest.mark.parametrize(
    "sql",
    [
        "create index i on t (a)",
        "reindex index i",
        "reindex (concurrently false) index i",
        "analyze t",
        "drop index i",
        "alter table events detach partition events_2020",
        "cluster t using i",
        "create subscription s connection 'x' publication p with (create_slot = false, connect = false)",
        "alter type mood add value 'meh'",
        "create procedure p() language plpgsql as $$ begin commit; end $$",  # creating it is transactional
        "do $$ begin perform 1; end $$",
    ],
)
def test_transactional_look_alikes(sql: str) -> None:
    p = parsed(sql + ";\nselect 1;")
    assert p.findings == [] and p.transactional


def test_call_of_a_committing_procedure_is_not_transactional() -> None:
    p = parsed("create procedure batch() language plpgsql as $$ begin commit; end $$;\ncall batch();")
    assert p.findings == [] and not p.transactional
    assert "CALL batch()" in (p.statements[1].non_transactional or "")
    wrapped = parsed(
        "BEGIN;\ncreate procedure batch() language plpgsql as $$ begin commit; end $$;\ncall batch();\nCOMMIT;"
    )
    assert only(wrapped, "non-transactional-in-transaction").line == 3


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [
        ("begin", "BEGIN"),
        ("start transaction", "START TRANSACTION"),
        ("commit", "COMMIT"),
        ("end", "COMMIT"),
        ("rollback", "ROLLBACK"),
        ("savepoint s", "SAVEPOINT"),
        ("release savepoint s", "RELEASE SAVEPOINT"),
        ("rollback to savepoint s", "ROLLBACK TO SAVEPOINT"),
    ],
)
def test_explicit_transaction_control_is_an_error(sql: str, keyword: str) -> None:
    p = parsed(f"create table t (a int);\n  {sql};\n")
    error = only(p, "explicit-transaction-control")
    assert (error.line, error.column) == (2, 3) and error.message.startswith(keyword)


# --- header settings ----------------------------------------------------------------------------


def test_header_settings_are_read_from_the_leading_comment_block() -> None:
    p = parsed(
        "-- Add an index.\n-- schemagate:set lock_timeout=10s statement_timeout=1h\n"
        "--schemagate:set lock_retries=5\n\ncreate index concurrently i on t (a);\n"
    )
    assert p.findings == [] and p.settings == {
        "lock_timeout": "10s",
        "statement_timeout": "1h",
        "lock_retries": "5",
    }


@pytest.mark.parametrize(
    ("header", "column", "problem"),
    [
        ("-- schemagate:set lock_timout=5s", 19, "unknown setting 'lock_timout'"),
        ("-- schemagate:set lock_timeout=soon", 19, "bad value 'soon' for lock_timeout"),
        ("-- schemagate:set statement_timeout=1h lock_retries=-1", 40, "bad value '-1' for lock_retries"),
        ("-- schemagate:set lock_timeout", 19, "bad value '' for lock_timeout"),
        ("  -- schemagate:set", 3, "nothing to set"),
    ],
)
def test_bad_header_settings(header: str, column: int, problem: str) -> None:
    p = parsed(f"-- first line\n{header}\nselect 1;")
    error = only(p, "bad-header-setting")
    assert (error.line, error.column) == (2, column) and problem in error.message
    assert "executor would refuse" in error.message and "schemagate:set" in error.help


def test_header_settings_are_read_exactly_as_the_executor_reads_them() -> None:
    """executor.headers parses the header at run time; the validator uses the same parser."""
    assert parsed("-- schemagate:set lock_timeout=1s lock_timeout=2s\nselect 1;").settings == {
        "lock_timeout": "2s"
    }
    late = parsed(
        "/* block comment */\n-- schemagate:set lock_timeout=1s\nselect 1;"
    )  # the header is `--` lines
    assert only(late, "bad-header-setting").line == 2


def test_header_setting_after_the_first_statement_is_an_error() -> None:
    p = parsed("select 1;\n-- schemagate:set lock_timeout=1s\nselect 2;")
    assert only(p, "bad-header-setting").line == 2 and p.settings == {}


# --- the executor's statement splitter -----------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "create function f() returns int language sql\nbegin atomic\n  select case when true then 1 end;\n"
        "  select 2;\nend;\nselect 3;",
        "create function f() returns table (a int) language sql\nbegin atomic\n"
        "  select t.end from (select 1 as end) as t;\nend;\nselect 5;",
        "create function f() returns setof int language sql\nbegin atomic\n"
        "  with begin as (select 1) select * from begin;\nend;\nselect 8;",
        "create function f() returns int language sql\nbegin atomic\n  select 1 end;\nend;\nselect 9;",
    ],
)
def test_begin_atomic_bodies_are_cut_where_the_parser_cuts_them(sql: str) -> None:
    """The executor sends statements one by one, cut by executor.headers (no pglast there); a column
    named ``end``, a CTE named ``begin`` or a bare label ``end`` inside a BEGIN ATOMIC body does not
    make it cut elsewhere than the parser."""
    from executor.headers import split_statements

    p = parsed(sql)
    assert len(p.statements) == 2 and p.findings == []
    assert [s.start for s in split_statements(p.text)] == [s.start for s in p.statements]


def test_an_executor_split_mismatch_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the executor's lexer ever cut differently, validation stops the file: simulated by an
    executor that cuts after every ';'."""
    import validator.parse as parse_module
    from executor.headers import MigrationStatements, Statement

    def naive(sql: str, **_: object) -> MigrationStatements:
        starts = [0] + [i + 1 for i, ch in enumerate(sql) if ch == ";" and sql[i + 1 :].strip()]
        return MigrationStatements([Statement(a, a, "", ()) for a in starts])

    monkeypatch.setattr(parse_module, "migration_statements", naive)
    p = parsed("do $$ begin perform 1; end $$;\nselect 2;")
    error = only(p, "executor-split-mismatch")
    assert (error.line, error.column) == (1, 1)


# --- BEGIN; ... COMMIT; around a whole file ---------------------------------------------------------

GOLANG_MIGRATE = """-- 000014_add_order_status.up.sql
-- Orders get a status; existing rows are backfilled from shipped_at.
BEGIN;

CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'refunded');

ALTER TABLE orders ADD COLUMN status order_status;

UPDATE orders SET status = CASE WHEN shipped_at IS NOT NULL THEN 'shipped'::order_status
                                ELSE 'pending'::order_status END;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM orders WHERE status IS NULL) THEN
    RAISE EXCEPTION 'backfill left orders without a status';
  END IF;
END
$$;

ALTER TABLE orders ALTER COLUMN status SET NOT NULL;

COMMIT;
"""


@pytest.mark.parametrize(
    ("opening", "closing"),
    [
        ("BEGIN;", "COMMIT;"),
        ("begin;", "commit;"),
        ("BEGIN TRANSACTION;", "COMMIT TRANSACTION;"),
        ("START TRANSACTION;", "END;"),
        ("BEGIN WORK; -- one transaction for the whole change", "COMMIT WORK; /* end */"),
    ],
)
def test_a_file_wrapped_in_begin_commit_is_one_transactional_migration(opening: str, closing: str) -> None:
    p = parsed(GOLANG_MIGRATE.replace("BEGIN;", opening).replace("COMMIT;", closing))
    assert p.findings == [] and p.transactional
    assert p.wrapper is not None and p.wrapper[0].line == 3 and p.wrapper[1].line == 22
    assert [type(s.node).__name__ for s in p.body] == [
        "CreateEnumStmt",
        "AlterTableStmt",
        "UpdateStmt",
        "DoStmt",
        "AlterTableStmt",
    ]


def test_a_wrapper_around_a_file_its_layout_runs_without_a_transaction_is_an_error() -> None:
    """dbmate's ``transaction:false`` or Diesel's ``run_in_transaction = false`` and a BEGIN ... COMMIT
    around the file contradict each other; the executor refuses the combination from a manifest."""
    data = b"BEGIN;\nALTER TABLE orders ADD COLUMN note text;\nCOMMIT;\n"
    mf = MigrationFile(
        path=Path("V1__x.sql"),
        rel="V1__x.sql",
        name=parse_name("V1__x.sql").name,  # type: ignore[arg-type]
        data=data,
        checksum=file_checksum(data),
        text=decode_sql(data),
        layout_transactional=False,
    )
    error = only(parse_file(mf), "explicit-transaction-control")
    assert error.line == 1 and "contradict" in error.message
    assert mf.manifest_entry(transactional=True).transactional is False  # what the executor would get


def test_header_settings_come_before_the_wrapper() -> None:
    p = parsed(
        "-- schemagate:set lock_timeout=3s\nBEGIN;\nALTER TABLE orders ADD COLUMN note text;\nCOMMIT;\n"
    )
    assert p.findings == [] and p.settings == {"lock_timeout": "3s"} and p.wrapper is not None


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # a second transaction in the file: the inner COMMIT and BEGIN
        (
            "BEGIN;\nCREATE TABLE a (id bigint);\nCOMMIT;\nBEGIN;\nCREATE TABLE b (id bigint);\nCOMMIT;\n",
            [(3, "COMMIT in a migration"), (4, "BEGIN in a migration")],
        ),
        # BEGIN without COMMIT (psql would roll it back at the end)
        ("BEGIN;\nCREATE TABLE a (id bigint);\n", [(1, "BEGIN in a migration")]),
        # one error, on the end that is wrong
        ("BEGIN;\nCREATE TABLE a (id bigint);\nROLLBACK;\n", [(3, "ROLLBACK at the end of a file")]),
        ("BEGIN;\nCREATE TABLE a (id bigint);\nABORT;\n", [(3, "ROLLBACK at the end of a file")]),
        (
            "BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE a (id bigint);\nCOMMIT;\n",
            [(1, "BEGIN with options around this file")],
        ),
        (
            "START TRANSACTION READ WRITE;\nCREATE TABLE a (id bigint);\nEND;\n",
            [(1, "START TRANSACTION with options")],
        ),
        (
            "BEGIN;\nCREATE TABLE a (id bigint);\nCOMMIT AND CHAIN;\n",
            [(3, "COMMIT with options around this file")],
        ),
        # savepoints, wrapped or not
        (
            "BEGIN;\nSAVEPOINT before_backfill;\nUPDATE a SET id = id;\nRELEASE SAVEPOINT before_backfill;\nCOMMIT;",
            [(2, "SAVEPOINT in a migration"), (4, "RELEASE SAVEPOINT in a migration")],
        ),
        ("UPDATE a SET id = id;\nROLLBACK TO SAVEPOINT s;\n", [(2, "ROLLBACK TO SAVEPOINT in a migration")]),
    ],
)
def test_transaction_statements_other_than_the_wrapper_are_errors(
    sql: str, expected: list[tuple[int, str]]
) -> None:
    p = parsed(sql)
    found = [f for f in p.findings if f.rule == "explicit-transaction-control"]
    assert [
        (f.line, f.message[: len(text)]) for f, (_, text) in zip(found, expected, strict=False)
    ] == expected
    assert len(found) == len(expected) and len(p.findings) == len(expected)
    assert all(f.severity == "error" and f.family == "syntax" and f.help for f in found)


def test_savepoint_and_rollback_errors_say_what_to_do_instead() -> None:
    savepoint = only(parsed("SAVEPOINT s;\nUPDATE a SET id = 1;\n"), "explicit-transaction-control")
    assert "can never recover from an error" in savepoint.message and "EXCEPTION" in savepoint.help
    rollback = only(parsed("BEGIN;\nUPDATE a SET id = 1;\nROLLBACK;\n"), "explicit-transaction-control")
    assert "dry run" in rollback.message and "end the file with COMMIT" in rollback.help


# --- several statements without a transaction ---------------------------------------------------

FLYWAY_CIC = """-- V57__rebuild_order_indexes.sql: run without a transaction (CONCURRENTLY)
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at_idx ON orders (created_at DESC);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_number_key ON orders (number);
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_open_idx ON orders (customer_id) WHERE status = 'pending';
DROP INDEX CONCURRENTLY IF EXISTS orders_customer_idx_old;
DROP INDEX CONCURRENTLY IF EXISTS orders_created_idx_old;
"""


def test_a_file_of_several_concurrent_index_statements_is_accepted() -> None:
    p = parsed(FLYWAY_CIC)
    assert p.findings == [] and not p.transactional and p.wrapper is None
    assert [s.line for s in p.body if not s.transactional] == [2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("LOCK TABLE orders IN SHARE MODE", "LOCK TABLE can only be used in a transaction block"),
        ("SET LOCAL lock_timeout = '5s'", "SET LOCAL has no effect"),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET TRANSACTION has no effect"),
        ("SET CONSTRAINTS ALL DEFERRED", "SET CONSTRAINTS has no effect"),
        ("DECLARE c CURSOR FOR SELECT id FROM orders", "DECLARE CURSOR without WITH HOLD"),
        ("CREATE TEMP TABLE ids ON COMMIT DROP AS SELECT id FROM orders", "ON COMMIT DROP"),
        ("CREATE TEMP TABLE ids (id bigint) ON COMMIT DELETE ROWS", "ON COMMIT DROP / DELETE ROWS"),
    ],
)
def test_statements_that_need_a_transaction_block_are_refused_in_a_file_without_one(
    sql: str, problem: str
) -> None:
    p = parsed(f"{sql};\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);\n")
    error = only(p, "needs-transaction-block")
    assert (error.line, error.column) == (1, 1) and problem in error.message
    assert "because of CREATE INDEX CONCURRENTLY at line 2" in error.message
    # in a transactional file (with or without a wrapper) the same statement is fine
    assert parsed(f"{sql};\nUPDATE orders SET status = 'paid';\n").findings == []
    assert parsed(f"BEGIN;\n{sql};\nUPDATE orders SET status = 'paid';\nCOMMIT;\n").findings == []


@pytest.mark.parametrize(
    "sql",
    [
        "SET statement_timeout = 0",  # session level: works (and the executor resets it afterwards)
        "SET maintenance_work_mem = '1GB'",
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "DECLARE c CURSOR WITH HOLD FOR SELECT id FROM orders",
        "CREATE TEMP TABLE ids AS SELECT id FROM orders",
    ],
)
def test_statements_that_work_without_a_transaction_block_are_accepted(sql: str) -> None:
    p = parsed(f"{sql};\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);\n")
    assert p.findings == [] and not p.transactional
