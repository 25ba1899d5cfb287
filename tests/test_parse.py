"""validator/parse.py: pglast parsing, positions, transactional detection, header settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pglast import ast

from executor.checksum import decode_sql, file_checksum
from executor.naming import parse_name
from validator.discovery import MigrationFile
from validator.parse import ParsedFile, offset_to_line_col, parse_file


def parsed(content: str | bytes, name: str = "V1__x.sql") -> ParsedFile:
    data = content.encode() if isinstance(content, str) else content
    mf = MigrationFile(
        path=Path(name),
        rel=name,
        name=parse_name(name).name,
        data=data,  # type: ignore[arg-type]
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


def test_offset_to_line_col() -> None:
    assert offset_to_line_col("ab\ncd", 0) == (1, 1)
    assert offset_to_line_col("ab\ncd", 4) == (2, 2)
    assert offset_to_line_col("ab\ncd", 99) == (2, 3)


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
    mixed = parsed("create table t (a int);\n" + sql + ";\n")
    error = only(mixed, "non-transactional-mixed")
    assert (error.line, error.column) == (2, 1) and "other statement" in error.message
    assert not mixed.transactional


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
    error = only(p, "non-transactional-mixed")
    assert error.line == 2 and "CALL batch()" in error.message


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
    ],
)
def test_begin_atomic_files_are_checked_against_the_executor_splitter(sql: str) -> None:
    """The executor sends statements one by one, cut by executor.headers.split_statements; where it
    would cut a BEGIN ATOMIC body elsewhere than the parser, validation stops the file."""
    from executor.headers import split_statements

    p = parsed(sql)
    executor_cuts = [s.start for s in split_statements(p.text)]
    agrees = executor_cuts == [s.start for s in p.statements]
    mismatches = [f for f in p.findings if f.rule == "executor-split-mismatch"]
    assert len(p.statements) == 2
    assert (not mismatches) == agrees
    if mismatches:
        assert (mismatches[0].line, mismatches[0].column) == (1, 1)
