"""What `schemagate apply` shows while it works: on a terminal, one line with the migration being
applied, n of N and the elapsed time, rewritten while a long statement runs; in a log, the file's name
when it starts and its duration when it ends, one line per file."""

from __future__ import annotations

import io
import os
import re
import threading
from pathlib import Path

import pytest

from schemagate.cli import main
from schemagate.console import ProgressLine
from tests.test_report_formats import run_on_a_terminal

MIGRATIONS = {
    "V1__create_orders.sql": (
        "CREATE TYPE order_status AS ENUM ('open', 'paid', 'shipped');\n"
        "CREATE TABLE orders (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "    status order_status NOT NULL DEFAULT 'open',\n    total_cents bigint NOT NULL\n);\n"
    ),
    # a backfill that takes a while: the progress line must move while it runs
    "V2__backfill_orders.sql": (
        "INSERT INTO orders (total_cents) SELECT n * 100 FROM generate_series(1, 5000) AS n;\n"
        "SELECT pg_sleep(1.6);\n"
    ),
    "V3__index_orders_status.sql": (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_open_idx ON orders (id) WHERE status = 'open';\n"
    ),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "migrations").mkdir()
    for name, sql in MIGRATIONS.items():
        (tmp_path / "migrations" / name).write_text(sql, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_in_a_log_each_file_is_named_when_it_starts_and_its_line_ends_with_its_duration(
    project, fresh_db, capsys
):
    code = main(["apply", "--database-url", fresh_db, "--yes"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "\r" not in out and "\x1b" not in out
    lines = [line for line in out.splitlines() if line.startswith("  [")]
    assert len(lines) == 3
    for n, (line, name) in enumerate(zip(lines, MIGRATIONS, strict=True), start=1):
        assert re.fullmatch(rf"  \[{n}/3\] {re.escape(name)} +\d+(\.\d+)? (ms|s)", line), line


def test_in_a_log_validation_names_each_stage_when_it_starts_with_the_time_so_far(project, capsys):
    code = main(["validate", "--reports", "reports"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    lines = [line for line in captured.err.splitlines() if line.startswith("validate: [")]
    assert "\r" not in captured.err and "\x1b" not in captured.err
    stages = [re.fullmatch(r"validate: \[(\d+\.\d) s\] (.+)", line) for line in lines]
    assert all(stages), lines
    names = [m.group(2) for m in stages if m]
    assert names[0] == "parsing 3 files" and names[-1] == "done"
    assert "linting 3 files (sqlfluff)" in names and "safety rules on 3 files" in names
    times = [float(m.group(1)) for m in stages if m]
    assert times == sorted(times)  # the time so far, never going back
    assert "validate: [" not in captured.out  # stdout keeps the findings and the verdict only


def test_on_a_terminal_the_line_is_rewritten_while_the_migration_runs(project, fresh_db):
    out = run_on_a_terminal(project, "apply", "--database-url", fresh_db, "--yes")
    assert "applied 3 migrations" in out, out
    running = re.findall(
        r"\r\x1b\[2K  \[2/3\] V2__backfill_orders\.sql  (\d+\.\d) s \(run (\d+\.\d) s\)", out
    )
    assert len(running) >= 2, out  # drawn when it started, and again while pg_sleep ran
    assert running[-1] != running[0]  # the elapsed time moved
    # each migration still leaves one finished line with its duration
    for name in MIGRATIONS:
        assert re.search(rf"\r\x1b\[2K  {re.escape(name)} +\d+(\.\d+)? (ms|s)\r?\n", out), name


def test_the_ticker_redraws_until_the_item_finishes():
    stream = io.StringIO()
    line = ProgressLine(2, stream=stream, tty=True, tick=0.01)
    drawn = threading.Event()

    line.start("V7__rebuild_search_index.sql")
    for _ in range(500):  # wait for the ticker to redraw at least twice (bounded, not timed)
        if stream.getvalue().count("[1/2] V7__rebuild_search_index.sql") >= 3:
            drawn.set()
            break
        threading.Event().wait(0.01)
    assert drawn.is_set()
    line.finish("1.20 s")
    line.close()
    text = stream.getvalue()
    assert text.endswith("\r\x1b[2K  V7__rebuild_search_index.sql  1.20 s\n")
    after = len(text)
    threading.Event().wait(0.05)
    assert len(stream.getvalue()) == after  # nothing is drawn once closed


def test_notices_and_lock_waits_do_not_tear_the_line():
    stream = io.StringIO()
    line = ProgressLine(1, stream=stream, tty=False)
    line.start("V1__a.sql")
    line.interrupt()
    stream.write("  waiting for the migration lock held by pid 4242\n")
    line.resume()
    line.finish("3 ms")
    assert (
        stream.getvalue()
        == "  [1/1] V1__a.sql\n  waiting for the migration lock held by pid 4242\n  V1__a.sql  3 ms\n"
    )


def test_no_progress_escape_codes_on_a_dumb_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "dumb")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    line = ProgressLine(1, stream=stream)
    line.start("V1__a.sql")
    line.finish("3 ms")
    line.close()
    assert "\x1b" not in stream.getvalue() and os.environ["TERM"] == "dumb"
