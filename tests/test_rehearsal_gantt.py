"""report.md shows the rehearsal's locks as a Mermaid gantt chart: parsed back from report.md.

The realistic history is rehearsed on the real PostgreSQL through ``schemagate validate
--rehearse``; the chart is read back with a small parser of the Mermaid gantt syntax it uses
(``dateFormat``, ``axisFormat``, ``section``, tasks ``name :[crit, ]start, end``, entity codes).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest

from tests.helpers import validate_rehearsed
from validator.rehearsal import RehearsalResult, RehearsedMigration
from validator.rehearsal.gantt import MAX_BARS, escape
from validator.rehearsal.locks import CONFLICTS, LOCK_MODES, LockSpan, mode_label, what_it_blocks

# -- a parser for the chart ------------------------------------------------------------------------


@dataclass
class Task:
    name: str
    crit: bool
    start: int
    end: int


@dataclass
class Chart:
    date_format: str = ""
    axis_format: str = ""
    title: str = ""
    sections: dict[str, list[Task]] = field(default_factory=dict)

    def tasks(self) -> list[tuple[str, Task]]:
        return [(s, t) for s, tasks in self.sections.items() for t in tasks]


def the_chart(markdown: str) -> Chart:
    """The chart of a report that has one."""
    chart = parse_gantt(markdown)
    assert chart is not None, markdown
    return chart


def _decode(text: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)


def parse_gantt(markdown: str) -> Chart | None:
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", markdown, flags=re.S | re.M)
    if not blocks:
        return None
    [block] = blocks
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    assert lines[0] == "gantt"
    chart = Chart()
    section = None
    for line in lines[1:]:
        keyword, _, rest = line.partition(" ")
        if keyword == "dateFormat":
            chart.date_format = rest
        elif keyword == "axisFormat":
            chart.axis_format = rest
        elif keyword == "title":
            chart.title = rest
        elif keyword == "todayMarker":
            assert rest == "off"
        elif keyword == "section":
            section = _decode(rest)
            assert section not in chart.sections, f"section {section} twice"
            chart.sections[section] = []
        else:
            # the lexer's task name: anything up to the first ':'; no '#' or ';' (older Mermaid)
            name, colon, data = line.partition(":")
            assert colon and not re.search(r"[#;%]", re.sub(r"#\d+;", "", name)), line
            assert section is not None, f"task before any section: {line}"
            parts = [p.strip() for p in data.split(",")]
            crit = parts[0] == "crit"
            start, end = (int(p) for p in parts[int(crit) :])
            chart.sections[section].append(Task(_decode(name.strip()), crit, start, end))
    return chart


# -- the rehearsal of a realistic history -----------------------------------------------------------

HISTORY = {
    "V1__customers_and_payments.sql": """\
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    currency char(3),
    created_at timestamptz NOT NULL DEFAULT now(),
    settled_at timestamptz
);

INSERT INTO customers (email)
SELECT 'customer' || i || '@example.com' FROM generate_series(1, 2000) AS i;

INSERT INTO payments (customer_id, amount_cents, created_at, settled_at)
SELECT 1 + i % 2000, 100 + i % 9000, now() - i * interval '1 minute',
       CASE WHEN i % 3 = 0 THEN now() - i * interval '30 seconds' END
  FROM generate_series(1, 60000) AS i;
""",
    "V2__payments_status.sql": """\
-- every payment starts pending; the settlement job moves it on
ALTER TABLE payments ADD COLUMN status text NOT NULL DEFAULT 'pending';
""",
    "V3__payments_created_at_index.sql": """\
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_created_at_idx ON payments (created_at);
""",
    "V4__payments_customer_fk.sql": """\
ALTER TABLE payments
    ADD CONSTRAINT payments_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
""",
    "V5__validate_payments_customer_fk.sql": """\
ALTER TABLE payments VALIDATE CONSTRAINT payments_customer_fk;
""",
    "V6__backfill_payments_currency.sql": """\
-- payments before multi-currency support were all in euros
UPDATE payments SET currency = 'EUR' WHERE currency IS NULL;
ALTER TABLE payments ALTER COLUMN currency SET DEFAULT 'EUR';
""",
    "V7__import_staging.sql": """\
-- the partner's export names its table like this; we keep the name so the import job finds it
CREATE TABLE "weird:name#1" (id bigint PRIMARY KEY, payload jsonb NOT NULL);
""",
    "V8__import_staging_received_at.sql": """\
ALTER TABLE "weird:name#1" ADD COLUMN received_at timestamptz;
""",
}


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str) -> tuple[str, dict]:
    """report.md and the rehearsal's part of report.json after ``schemagate validate --rehearse``."""
    root = tmp_path_factory.mktemp("gantt")
    mig = root / "migrations"
    mig.mkdir()
    for name, text in HISTORY.items():
        (mig / name).write_text(text)
    reports = root / "reports"
    run = validate_rehearsed(mig, reports, pg_admin_url)
    assert run.exit_code in (0, 1), run.output  # the safety rules may block; the rehearsal ran
    data = json.loads((reports / "report.json").read_text())
    [section] = [s for s in data["sections"] if s["title"] == "Rehearsal"]
    assert [m["status"] for m in section["data"]["migrations"]] == ["applied"] * len(HISTORY)
    return (reports / "report.md").read_text(), section["data"]


def _bars(chart: Chart) -> dict[tuple[str, str], Task]:
    """(section, task name) -> task."""
    out = {}
    for section, task in chart.tasks():
        assert (section, task.name) not in out, f"two bars {task.name} in {section}"
        out[(section, task.name)] = task
    return out


def test_the_chart_has_a_section_per_migration_that_locked_an_existing_table(rehearsed) -> None:
    markdown, data = rehearsed
    chart = parse_gantt(markdown)
    assert chart is not None, markdown
    assert chart.date_format == "x" and chart.axis_format in ("%Q ms", "%s s")
    # which files locked a table that existed before them, by the read before COMMIT / the observer
    locking = [
        m["file"]
        for m in data["migrations"]
        if any(li["existed_before"] and li["kind"] == "table" for li in m["locks"])
    ]
    assert list(chart.sections) == locking
    # V1 and V7 only create tables: nobody else could see them, so they draw no bar
    assert "V1__customers_and_payments.sql" not in chart.sections
    assert "V7__import_staging.sql" not in chart.sections
    assert len(locking) == 6


def test_the_bars_show_the_lock_each_statement_takes_and_what_it_blocks(rehearsed) -> None:
    markdown, _ = rehearsed
    bars = _bars(the_chart(markdown))
    add_column = bars[
        ("V2__payments_status.sql", "public.payments ACCESS EXCLUSIVE (blocks reads and writes)")
    ]
    assert add_column.crit
    cic = bars[
        (
            "V3__payments_created_at_index.sql",
            "public.payments SHARE UPDATE EXCLUSIVE (blocks VACUUM and DDL, not reads or writes)",
        )
    ]
    assert not cic.crit
    fk = "V4__payments_customer_fk.sql"
    assert bars[(fk, "public.payments SHARE ROW EXCLUSIVE (blocks writes, not reads)")].crit
    assert bars[(fk, "public.customers SHARE ROW EXCLUSIVE (blocks writes, not reads)")].crit
    validate = "V5__validate_payments_customer_fk.sql"
    assert not bars[
        (validate, "public.payments SHARE UPDATE EXCLUSIVE (blocks VACUUM and DDL, not reads or writes)")
    ].crit
    assert not bars[
        (validate, "public.customers ROW SHARE (blocks ALTER TABLE and DROP, not reads or writes)")
    ].crit
    # a section never shows the same table twice in one mode, and weaker modes only as they were
    # the strongest at the time: the backfill's ROW EXCLUSIVE, then the ALTER's ACCESS EXCLUSIVE
    backfill = {name: t for (sec, name), t in bars.items() if sec == "V6__backfill_payments_currency.sql"}
    strong = backfill["public.payments ACCESS EXCLUSIVE (blocks reads and writes)"]
    assert strong.crit
    update = backfill.get("public.payments ROW EXCLUSIVE (blocks CREATE INDEX and DDL, not reads or writes)")
    assert update is not None, f"the 60,000-row UPDATE was not seen before the ALTER: {backfill}"
    assert not update.crit and update.start < strong.start


def test_odd_names_are_escaped_and_read_back(rehearsed) -> None:
    markdown, _ = rehearsed
    found = re.search(r"```mermaid\n(.*?)```", markdown, flags=re.S)
    assert found is not None, markdown
    block = found.group(1)
    assert "public.#34;weird" not in block  # (quotes are left as they are)
    assert 'public."weird#58;name#35;1" ACCESS EXCLUSIVE' in block
    bars = _bars(the_chart(markdown))
    assert bars[
        (
            "V8__import_staging_received_at.sql",
            'public."weird:name#1" ACCESS EXCLUSIVE (blocks reads and writes)',
        )
    ].crit
    # the table below the chart has the plain name
    assert '| `V8__import_staging_received_at.sql` | `public."weird:name#1"` | ACCESS EXCLUSIVE |' in markdown


def test_bars_lie_within_their_migration_and_the_rehearsal(rehearsed) -> None:
    markdown, data = rehearsed
    chart = the_chart(markdown)
    by_file = {m["file"]: m for m in data["migrations"]}
    total_ms = data["total_seconds"] * 1000
    axis_end = max(m["ended_ms"] for m in data["migrations"])
    assert 0 < axis_end <= total_ms
    previous_end = 0
    for file, tasks in chart.sections.items():
        m = by_file[file]
        assert previous_end <= m["started_ms"] <= m["ended_ms"]  # applied one after the other
        previous_end = m["ended_ms"]
        for t in tasks:
            assert 0 <= t.start < t.end <= axis_end, (file, t)
            width = max(1, -(-axis_end // 100))  # at least 1% of the chart
            # a bar starts inside its migration (a short one at the very end is widened leftwards)
            assert m["started_ms"] - width <= t.start <= m["ended_ms"], (file, t, m)
    # the transactional ACCESS EXCLUSIVE of V2 is held until its COMMIT: the bar ends with it
    [span] = [
        s
        for s in by_file["V2__payments_status.sql"]["lock_spans"]
        if s["relation"] == "public.payments" and s["mode"] == "ACCESS EXCLUSIVE"
    ]
    assert span["end_ms"] == by_file["V2__payments_status.sql"]["ended_ms"]
    assert span["blocks"] == "blocks reads and writes" and span["existed_before"] and span["kind"] == "table"


def test_the_text_table_under_the_chart_has_the_same_bars(rehearsed) -> None:
    markdown, _ = rehearsed
    chart = the_chart(markdown)
    after = markdown.split("```mermaid", 1)[1].split("```", 1)[1]
    rows = [line for line in after.splitlines() if line.startswith("| `V")][: len(chart.tasks())]
    assert len(rows) == len(chart.tasks())
    for row, (section, task) in zip(rows, chart.tasks(), strict=True):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0] == f"`{section}`"
        assert task.name == f"{cells[1].strip('`')} {cells[2]} ({cells[5]})"


# -- without a rehearsal database ----------------------------------------------------------------------


def _migration(i: int, spans: list[LockSpan], start: int) -> RehearsedMigration:
    return RehearsedMigration(
        f"V{i}__step.sql", 10, True, started_ms=start, ended_ms=start + 100, lock_spans=spans
    )


def test_a_large_history_shows_the_longest_and_strongest_bars_and_says_how_many_are_left_out() -> None:
    migrations = []
    for i in range(1, 31):
        start = (i - 1) * 100
        spans = [
            LockSpan(f"public.t{i}", "ROW EXCLUSIVE", "table", True, start, start + i),
            LockSpan(f"public.u{i}", "ACCESS SHARE", "table", True, start, start + 1),
        ]
        if i % 10 == 0:  # three write-blocking locks, the shortest of all
            spans.append(LockSpan(f"public.t{i}", "SHARE", "table", True, start + 1, start + 1))
        migrations.append(_migration(i, spans, start))
    result = RehearsalResult([], migrations, base_reused=True, base_seconds=0.1, server_version="16.4")
    markdown = result.markdown()
    chart = the_chart(markdown)
    tasks = chart.tasks()
    assert len(tasks) == MAX_BARS
    names = {t.name for _, t in tasks}
    # the write-blocking ones stay however short they are, then the longest
    assert {f"public.t{i} SHARE (blocks writes, not reads)" for i in (10, 20, 30)} <= names
    assert all(
        f"public.t{i} ROW EXCLUSIVE (blocks CREATE INDEX and DDL, not reads or writes)" in names
        for i in range(1, 31)
    )
    assert sum(t.crit for _, t in tasks) == 3
    assert f"{63 - MAX_BARS} more lock(s) on existing tables" in markdown
    # short locks are drawn with a visible width; none goes past the end of the chart
    axis_end = 30 * 100
    assert all(t.end - t.start >= axis_end // 100 and t.end <= axis_end for _, t in tasks)
    # sections in application order, each once
    assert list(chart.sections) == [m.file for m in migrations]


def test_no_chart_without_a_rehearsal_or_without_locks_on_existing_tables() -> None:
    nothing = RehearsalResult([], [], base_reused=False, base_seconds=0.0)
    assert parse_gantt(nothing.markdown()) is None
    only_new = _migration(1, [LockSpan("public.orders", "ACCESS EXCLUSIVE", "table", False, 0, 5)], 0)
    index_only = _migration(2, [LockSpan("public.orders_pkey", "ACCESS EXCLUSIVE", "index", True, 0, 5)], 100)
    result = RehearsalResult(
        [], [only_new, index_only], base_reused=False, base_seconds=0.0, server_version="16"
    )
    markdown = result.markdown()
    assert parse_gantt(markdown) is None and "Locks over time" not in markdown


def test_escape_keeps_mermaid_syntax_out_of_names() -> None:
    assert escape("weird:name#1") == "weird#58;name#35;1"
    assert escape("a;b%c`d") == "a#59;b#37;c#96;d"
    # a name starting with a gantt keyword would be read as that statement
    assert escape("gantt.tasks SHARE") == "#103;antt.tasks SHARE"
    assert escape("title_cards") == "#116;itle_cards"
    assert escape("2024-01-01_archive") == "#50;024-01-01_archive"
    assert escape('public."x y"') == 'public."x y"'
    for text in ("weird:name#1", "gantt.tasks", "x#58;y", "a\nb"):
        assert _decode(escape(text)) == text  # an entity code in a name stays literal too


def test_the_conflict_table_is_the_manuals() -> None:
    modes = [mode_label(m) for m in LOCK_MODES]
    assert set(CONFLICTS) == set(modes)
    for a in modes:
        for b in modes:
            assert (b in CONFLICTS[a]) == (a in CONFLICTS[b]), (a, b)  # symmetric
    assert CONFLICTS["ACCESS EXCLUSIVE"] == set(modes)
    assert CONFLICTS["ACCESS SHARE"] == {"ACCESS EXCLUSIVE"}
    assert "ROW EXCLUSIVE" not in CONFLICTS["SHARE UPDATE EXCLUSIVE"]  # CIC lets writes go on
    assert "ROW EXCLUSIVE" in CONFLICTS["SHARE"]  # CREATE INDEX does not
    assert what_it_blocks("ACCESS EXCLUSIVE") == "blocks reads and writes"
    assert what_it_blocks("SHARE") == "blocks writes, not reads"
    assert what_it_blocks("EXCLUSIVE") == "blocks writes and SELECT FOR UPDATE"
    assert what_it_blocks("ROW EXCLUSIVE") == "blocks CREATE INDEX and DDL, not reads or writes"
    assert what_it_blocks("ACCESS SHARE") == "blocks ALTER TABLE and DROP, not reads or writes"


def test_a_failed_migration_shows_what_it_held_until_it_failed(tmp_path, pg_admin_url: str) -> None:
    from validator.config import load_config
    from validator.rehearsal import rehearse
    from validator.structural import check_structure

    mig = tmp_path / "migrations"
    mig.mkdir()
    (mig / "V1__invoices.sql").write_text(
        "CREATE TABLE invoices (id bigint PRIMARY KEY, total_cents bigint NOT NULL);\n"
        "INSERT INTO invoices SELECT i, i * 100 FROM generate_series(1, 50000) AS i;\n"
    )
    (mig / "V2__invoices_tax.sql").write_text(
        "ALTER TABLE invoices ADD COLUMN tax_cents bigint;\n"
        "UPDATE invoices SET tax_cents = total_cents / 5;\n"
        "UPDATE invoices SET tax_rate = 20;  -- the column is tax_cents\n"
    )
    config = load_config(tmp_path, migrations=mig)
    result = rehearse(
        config, check_structure(config), new={"V2__invoices_tax.sql"}, database_url=pg_admin_url
    )
    [m] = result.migrations
    assert m.status == "failed" and m.error is not None and m.error["line"] == 3
    assert m.started_ms == 0 and m.ended_ms is not None
    chart = parse_gantt(result.markdown())
    assert chart is not None
    [(section, task)] = chart.tasks()
    assert section == "V2__invoices_tax.sql"
    assert task.name == "public.invoices ACCESS EXCLUSIVE (blocks reads and writes)" and task.crit
    assert 0 <= task.start < task.end <= m.ended_ms
