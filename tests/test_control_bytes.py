"""Control characters that the parser, lint and the executor would read differently (executor.sqltext):
refused by validation and, again, by the executor, before anything runs, on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
from pglast.parser import parse_sql

from executor.apply import apply
from executor.bundle import make_bundle, write_bundle
from executor.connection import connect
from executor.errors import Category, SecurityViolation
from executor.headers import split_statements
from executor.history import read_history
from executor.settings import ExecutorSettings
from executor.sqltext import find_control_character
from schemagate.cli import main
from tests.executor_worker import bundle_of, migration
from tests.helpers import fetch_value
from validator.discovery import discover

# the attack of the report, byte for byte: the parser stops at the NUL, the executor does not
ATTACK = b"SELECT 1; -- note \x00\nDROP TABLE x;\n"
CREATE_X = b"CREATE TABLE x (id bigint PRIMARY KEY, note text);\nINSERT INTO x VALUES (1, 'keep me');\n"
FAST = ExecutorSettings(lock_retry_backoff_s=0.05, advisory_lock_wait_s=5)


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def rows_of_x(url: str) -> list[tuple] | None:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.x') IS NOT NULL")
            if not fetch_value(cur):
                return None
            cur.execute("SELECT id, note FROM x ORDER BY id")
            return cur.fetchall()
    finally:
        conn.close()


def history_scripts(url: str) -> list[tuple[str, bool]]:
    conn = connect(url)
    try:
        return [(r.script, r.success) for r in read_history(conn, FAST)]
    finally:
        conn.close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "V1__create_x.sql").write_bytes(CREATE_X)
    (tmp_path / "migrations" / "V2__note.sql").write_bytes(ATTACK)
    monkeypatch.chdir(tmp_path)
    for var in ("DATABASE_URL", "PGHOST", "PGSERVICE", "PGDATABASE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


# -- why: the readers really disagree ------------------------------------------------------------


def test_the_parser_and_the_executor_lexer_disagree_on_the_attack() -> None:
    text = ATTACK.decode()
    assert len(parse_sql(text)) == 1  # libpg_query reads up to the NUL: SELECT 1 and nothing else
    assert [s.text for s in split_statements(text)] == ["SELECT 1;", "DROP TABLE x;"]


# -- what is refused, where ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "offset", "line", "column", "name"),
    [
        (ATTACK, 18, 1, 19, "NUL (0x00)"),
        (b"SELECT 1;\x0bSELECT 2;", 9, 1, 10, "vertical tab (0x0B)"),
        (
            b"SELECT 1; -- note\rDROP TABLE x;\n",
            17,
            1,
            18,
            "carriage return not followed by a line feed (0x0D)",
        ),
        (b"-- \x1b[8mhidden\x1b[0m\nSELECT 1;", 3, 1, 4, "escape (0x1B)"),
        (b"SELECT 'a\x7fb';", 9, 1, 10, "DEL (0x7F)"),
        ("SELECT 1;\nSELECT 'x\u0085y';".encode(), 19, 2, 10, "C1 control character U+0085"),
        (b"SELECT 1;\x01", 9, 1, 10, "control character 0x01"),
        # the offset is in the file as stored: a BOM and CRLF count, characters before it are UTF-8
        (b"\xef\xbb\xbfSELECT 1;\r\nSELECT '\xc3\xa9t\xc3\xa9\x00';\r\n", 27, 2, 12, "NUL (0x00)"),
    ],
)
def test_each_refused_character_is_found_at_its_byte_offset_line_and_column(
    data: bytes, offset: int, line: int, column: int, name: str
) -> None:
    found = find_control_character(data)
    assert found is not None
    assert (found.offset, found.line, found.column, found.name) == (offset, line, column, name)
    assert data[found.offset : found.offset + 1] in (bytes([found.code]), b"\xc2")


def test_tab_line_feed_form_feed_crlf_and_other_unicode_are_accepted() -> None:
    text = "-- Überweisungen — €\r\nCREATE TABLE t (\ta text DEFAULT 'naïve ✓'\u00a0);\f\n\u200bSELECT 1;\r\n"
    assert find_control_character(text.encode()) is None


def test_the_count_covers_the_whole_file() -> None:
    found = find_control_character(b"SELECT 1;\x00\x00\nSELECT 2;\x0b")
    assert found is not None and found.count == 3
    assert found.describe().endswith("and 2 more refused control characters")


def test_discovery_reports_the_character_as_an_error(tmp_path: Path) -> None:
    (tmp_path / "V1__note.sql").write_bytes(ATTACK)
    files, findings = discover(tmp_path)
    assert [f.rel for f in files] == ["V1__note.sql"]
    (finding,) = findings
    assert (finding.rule, finding.family, finding.severity) == ("control-character", "syntax", "error")
    assert (finding.file, finding.line, finding.column) == ("V1__note.sql", 1, 19)
    assert "NUL (0x00) at byte offset 18" in finding.message and "E'\\x01'" in finding.help


# -- the attack, end to end ----------------------------------------------------------------------


def test_validate_refuses_the_attack_and_writes_no_bundle(project: Path, capsys) -> None:
    code, out = cli(capsys, "validate", "--no-lint", "--bundle", "bundle")
    assert code == 1
    assert "V2__note.sql:1:19 control-character" in out and "byte offset 18" in out
    assert not (project / "bundle").exists()


def test_apply_migrations_refuses_the_attack_and_the_table_stays(
    project: Path, fresh_db: str, capsys
) -> None:
    (project / "migrations" / "V2__note.sql").rename(project / "V2__note.sql.hold")
    assert cli(capsys, "apply", "--database-url", fresh_db, "--yes")[0] == 0
    (project / "V2__note.sql.hold").rename(project / "migrations" / "V2__note.sql")

    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 1 and "V2__note.sql:1:19 control-character" in out
    assert rows_of_x(fresh_db) == [(1, "keep me")]
    assert history_scripts(fresh_db) == [("V1__create_x.sql", True)]


def test_apply_refuses_a_hand_sealed_bundle_with_the_attack_and_the_table_stays(
    project: Path, fresh_db: str, capsys
) -> None:
    # given: x exists, applied by schemagate
    (project / "migrations" / "V2__note.sql").unlink()
    assert cli(capsys, "apply", "--database-url", fresh_db, "--yes")[0] == 0
    # when: someone seals a bundle by hand whose manifest says V2 is a fine transactional file
    bundle = make_bundle(
        [migration("V1__create_x.sql", CREATE_X), migration("V2__note.sql", ATTACK)],
        source={"repository": "hand-made"},
        findings={"error": 0, "warning": 0},
    )
    write_bundle(bundle, project / "bundle")
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--bundle", str(project / "bundle"), "--yes")
    # then: refused before anything runs, with file, line, rule and byte offset
    assert code == 1
    assert "V2__note.sql:1:19" in out and "control-character" in out and "byte offset 18" in out
    assert rows_of_x(fresh_db) == [(1, "keep me")]
    assert history_scripts(fresh_db) == [("V1__create_x.sql", True)]


def test_the_executor_refuses_before_running_any_migration_of_the_run(fresh_db: str) -> None:
    files = {
        "V1__create_x.sql": CREATE_X.decode(),
        "V2__add_note_index.sql": "CREATE INDEX x_note_idx ON x (note);\n",
        "V3__note.sql": "SELECT 1;\nSELECT 2; -- \x0b\nDROP TABLE x;\n",
    }
    conn = connect(fresh_db)
    try:
        with pytest.raises(SecurityViolation) as caught:
            apply(conn, bundle_of(files), FAST)
        error = caught.value
        assert error.category is Category.SECURITY_VIOLATION and error.exit_code == 1
        assert (error.file, error.line, error.column, error.rule) == (
            "V3__note.sql",
            2,
            14,
            "control-character",
        )
        assert error.context["byte_offset"] == 23 and "nothing was applied" in error.message
        assert "schemagate validate" in (error.remedy or "")
    finally:
        conn.close()
    assert rows_of_x(fresh_db) is None  # V1 and V2 did not run either
    assert history_scripts(fresh_db) == []


def test_the_executor_refuses_a_bundle_file_that_is_not_utf8(fresh_db: str) -> None:
    bundle = make_bundle(
        [
            migration("V1__create_x.sql", CREATE_X),
            migration("V2__latin1.sql", "COMMENT ON TABLE x IS 'Überweisungen';\n".encode("latin-1")),
        ],
        source={"repository": "hand-made"},
    )
    conn = connect(fresh_db)
    try:
        with pytest.raises(SecurityViolation) as caught:
            apply(conn, bundle, FAST)
    finally:
        conn.close()
    error = caught.value
    assert (error.file, error.line, error.rule) == ("V2__latin1.sql", 1, "not-utf8")
    assert error.context["byte_offset"] == 23 and "byte 0xdc" in error.message
    assert rows_of_x(fresh_db) is None and history_scripts(fresh_db) == []


def test_the_first_byte_scan_finds_what_the_full_pattern_finds() -> None:
    """find_control_character looks for the refused characters' first bytes before it runs the full
    pattern: on byte strings dense in near misses (tab, LF, FF, CR LF, 0xC2 before other bytes) it
    reports exactly the first match, and the count, of the full pattern alone."""
    import random

    from executor import sqltext

    rng = random.Random(15)
    pieces = [b"a", b" ", b"\n", b"\t", b"\x0c", b"\r\n", b"\r", b"\x00", b"\x0b", b"\x1b", b"\x7f"]
    pieces += [b"\xc2\x80", b"\xc2\x9f", b"\xc2\xa0", b"\xc3\xa9", b"\xc2"]
    for _ in range(5000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        found = find_control_character(data)
        matches = list(sqltext._FORBIDDEN.finditer(data))
        got = (found.offset, found.count) if found else None
        assert got == ((matches[0].start(), len(matches)) if matches else None), data
