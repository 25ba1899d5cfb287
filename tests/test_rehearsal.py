"""Rehearsal: migrations applied to a throwaway database, with the locks they took.

The lowest layer (validator.rehearsal.locks) is tested with raw psycopg2 on ``fresh_db``; the
rehearsal itself on the test server (``pg_admin_url``) through ``rehearse``.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg2
import pytest

from executor.errors import ConfigurationError
from tests.helpers import fetch_value, validate_rehearsed
from validator.config import load_config
from validator.rehearsal import BaseStore, RehearsalResult, RehearsedMigration, rehearse
from validator.rehearsal.locks import (
    LockInfo,
    LockObserver,
    held_relation_locks,
    mode_label,
    rewritten_tables,
    snapshot_relations,
    summarize_locks,
)
from validator.structural import check_structure


def _transactional_probe(url: str, setup: str, migration: str):
    """Run ``migration`` in one transaction after ``setup``; read locks and relfilenodes before COMMIT."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(setup)
            conn.commit()
            before = snapshot_relations(cur)
            cur.execute(migration)
            held = held_relation_locks(cur)
            after = snapshot_relations(cur)
            conn.commit()
        return summarize_locks(held, before, after), rewritten_tables(before, after)
    finally:
        conn.close()


def _modes(locks) -> dict[str, str]:
    return {li.relation: li.mode for li in locks}


def test_mode_labels_read_like_the_manual() -> None:
    assert mode_label("AccessExclusiveLock") == "ACCESS EXCLUSIVE"
    assert mode_label("ShareRowExclusiveLock") == "SHARE ROW EXCLUSIVE"
    assert mode_label("ShareLock") == "SHARE"


def test_volatile_default_rewrites_under_access_exclusive(fresh_db: str) -> None:
    locks, rewritten = _transactional_probe(
        fresh_db,
        "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 10)",
        "ALTER TABLE orders ADD COLUMN seen_at timestamptz NOT NULL DEFAULT clock_timestamp()",
    )
    assert _modes(locks)["public.orders"] == "ACCESS EXCLUSIVE"
    assert [li.flagged for li in locks if li.relation == "public.orders"] == [True]
    assert rewritten == ["public.orders"]


def test_constant_default_takes_the_lock_but_does_not_rewrite(fresh_db: str) -> None:
    locks, rewritten = _transactional_probe(
        fresh_db,
        "CREATE TABLE orders (id int PRIMARY KEY)",
        "ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new'",
    )
    assert _modes(locks)["public.orders"] == "ACCESS EXCLUSIVE"
    assert rewritten == []


def test_table_created_in_the_migration_is_not_flagged(fresh_db: str) -> None:
    locks, _ = _transactional_probe(
        fresh_db,
        "CREATE TABLE customers (id int PRIMARY KEY)",
        "CREATE TABLE invoices (id int PRIMARY KEY, customer_id int REFERENCES customers);"
        "CREATE INDEX invoices_customer ON invoices (customer_id)",
    )
    by_name = {li.relation: li for li in locks}
    assert by_name["public.invoices"].mode == "ACCESS EXCLUSIVE"
    assert not by_name["public.invoices"].existed_before and not by_name["public.invoices"].flagged
    # the foreign key takes SHARE ROW EXCLUSIVE on the table that did exist: that one is flagged
    assert by_name["public.customers"].mode == "SHARE ROW EXCLUSIVE" and by_name["public.customers"].flagged


def test_create_index_concurrently_is_observed_from_a_second_connection(fresh_db: str) -> None:
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE t (id int, v text); SELECT pg_backend_pid()")
            pid = fetch_value(cur)
            before = snapshot_relations(cur)
            observer = LockObserver(lambda: psycopg2.connect(fresh_db))
            observer.start(pid)
            try:
                cur.execute("CREATE INDEX CONCURRENTLY t_v ON t (v)")
            finally:
                observer.stop()
            after = snapshot_relations(cur)
    finally:
        conn.close()
    assert observer.paused_on_gate and observer.error is None
    locks = summarize_locks(observer.held, before, after)
    assert _modes(locks)["public.t"] == "SHARE UPDATE EXCLUSIVE"
    assert not any(li.flagged for li in locks)


# -- the rehearsal -------------------------------------------------------------------------------


def _project(tmp_path: Path, files: dict[str, str]):
    mig = tmp_path / "migrations"
    mig.mkdir()
    for name, text in files.items():
        (mig / name).write_text(text)
    config = load_config(tmp_path, migrations=mig)
    structural = check_structure(config)
    assert not [f for f in structural.findings if f.severity == "error"], structural.findings
    return config, structural


def _by_file(result):
    return {m.file: m for m in result.migrations}


def test_missing_table_fails_at_the_line_postgresql_names(tmp_path: Path, pg_admin_url: str) -> None:
    config, structural = _project(
        tmp_path,
        {
            "V1__customers.sql": "CREATE TABLE customers (id int PRIMARY KEY);\n",
            "V2__invoices.sql": "-- invoices need a customer\n\nINSERT INTO invoices (id)\nVALUES (1);\n",
            "V3__invoice_index.sql": "CREATE INDEX invoices_id ON invoices (id);\n",
        },
    )
    new = {"V2__invoices.sql", "V3__invoice_index.sql"}
    result = rehearse(config, structural, new=new, database_url=pg_admin_url)
    [finding] = result.findings
    assert (finding.rule, finding.severity, finding.family) == ("rehearsal-failed", "error", "rehearsal")
    assert (finding.file, finding.line, finding.column) == ("V2__invoices.sql", 3, 13)
    assert "42P01" in finding.message and "invoices" in finding.message
    statuses = {m.file: m.status for m in result.migrations}
    assert statuses == {"V2__invoices.sql": "failed", "V3__invoice_index.sql": "not rehearsed"}
    assert "| `V2__invoices.sql` | ❌ failed |" in result.markdown()
    assert 'fails at line 3: relation "invoices" does not exist (SQLSTATE 42P01)' in result.markdown()


def test_volatile_default_is_reported_as_a_rewrite_under_access_exclusive(tmp_path: Path, pg_admin_url: str):
    config, structural = _project(
        tmp_path,
        {
            "V1__orders.sql": "CREATE TABLE orders (id int PRIMARY KEY);\n"
            "INSERT INTO orders SELECT generate_series(1, 100);\n",
            "V2__seen_at.sql": "ALTER TABLE orders\n"
            "  ADD COLUMN seen_at timestamptz NOT NULL DEFAULT clock_timestamp();\n",
        },
    )
    result = rehearse(config, structural, new={"V2__seen_at.sql"}, database_url=pg_admin_url)
    m = _by_file(result)["V2__seen_at.sql"]
    assert m.rewritten == ["public.orders"]
    assert [(li.relation, li.mode) for li in m.flagged] == [("public.orders", "ACCESS EXCLUSIVE")]
    assert [f.rule for f in result.findings] == ["rehearsal-table-rewrite"]
    assert result.findings[0].severity == "warning"
    assert "V2__seen_at.sql takes ACCESS EXCLUSIVE on public.orders and rewrites it" in result.markdown()
    assert m.duration_ms is not None and m.duration_ms >= 0


def test_create_index_and_create_index_concurrently_take_different_locks(tmp_path: Path, pg_admin_url: str):
    config, structural = _project(
        tmp_path,
        {
            "V1__orders.sql": "CREATE TABLE orders (id int PRIMARY KEY, customer int, placed date);\n",
            "V2__by_customer.sql": "CREATE INDEX orders_customer ON orders (customer);\n",
            "V3__by_date.sql": "CREATE INDEX CONCURRENTLY orders_placed ON orders (placed);\n",
        },
    )
    new = {"V2__by_customer.sql", "V3__by_date.sql"}
    result = rehearse(config, structural, new=new, database_url=pg_admin_url)
    plain, concurrent = _by_file(result)["V2__by_customer.sql"], _by_file(result)["V3__by_date.sql"]
    assert {li.relation: li.mode for li in plain.locks}["public.orders"] == "SHARE"
    assert {li.relation: li.mode for li in concurrent.locks}["public.orders"] == "SHARE UPDATE EXCLUSIVE"
    assert [li.relation for li in plain.flagged] == ["public.orders"] and concurrent.flagged == []
    assert plain.transactional and not concurrent.transactional
    assert "second connection" in (concurrent.note or "")
    assert [(f.file, f.rule) for f in result.findings] == [("V2__by_customer.sql", "rehearsal-blocking-lock")]


def test_a_table_created_in_the_same_migration_is_not_flagged(tmp_path: Path, pg_admin_url: str) -> None:
    config, structural = _project(
        tmp_path,
        {
            "V1__customers.sql": "CREATE TABLE customers (id int PRIMARY KEY);\n",
            "V2__invoices.sql": "CREATE TABLE invoices (id int PRIMARY KEY, total numeric DEFAULT random());\n"
            "CREATE INDEX invoices_total ON invoices (total);\n"
            "INSERT INTO invoices (id) SELECT generate_series(1, 10);\n"
            "ALTER TABLE invoices ADD COLUMN at timestamptz DEFAULT clock_timestamp();\n",
        },
    )
    result = rehearse(config, structural, new={"V2__invoices.sql"}, database_url=pg_admin_url)
    m = _by_file(result)["V2__invoices.sql"]
    invoices = {li.relation: li for li in m.locks}["public.invoices"]
    assert invoices.mode == "ACCESS EXCLUSIVE" and not invoices.existed_before and not invoices.flagged
    assert m.rewritten == [] and result.findings == []


def _history(count: int, salt: str) -> dict[str, str]:
    """A history of ``count`` migrations of the usual shapes (tables, columns, indexes, data)."""
    files = {}
    for i in range(1, count + 1):
        t = f"t{(i - 1) // 4}"
        shape = (i - 1) % 4
        if shape == 0:
            body = f"-- {salt}\nCREATE TABLE {t} (id bigint PRIMARY KEY, name text NOT NULL);\n"
        elif shape == 1:
            body = f"ALTER TABLE {t} ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();\n"
        elif shape == 2:
            body = f"CREATE INDEX {t}_name ON {t} (name);\n"
        else:
            body = f"INSERT INTO {t} (id, name) SELECT g, 'n' || g FROM generate_series(1, 20) g;\n"
        files[f"V{i:04d}__step_{i}.sql"] = body
    return files


def test_a_long_history_is_built_once_and_then_copied(tmp_path: Path, pg_admin_url: str) -> None:
    files = _history(300, salt=uuid.uuid4().hex)  # a base no earlier run has cached
    files["V0301__orders_status.sql"] = "ALTER TABLE t0 ADD COLUMN status text;\n"
    config, structural = _project(tmp_path, files)
    new = {"V0301__orders_status.sql"}
    cold = rehearse(config, structural, new=new, database_url=pg_admin_url)
    try:
        started = time.perf_counter()
        warm = rehearse(config, structural, new=new, database_url=pg_admin_url)
        warm_total = time.perf_counter() - started
    finally:
        admin = psycopg2.connect(pg_admin_url)
        admin.autocommit = True
        BaseStore(admin).forget(cold.base_key)
        admin.close()
    assert (cold.base_reused, warm.base_reused) == (False, True)
    assert cold.base_files == warm.base_files == 300
    for result in (cold, warm):
        [m] = result.migrations
        assert m.status == "applied"
        assert {li.relation: li.mode for li in m.locks}["public.t0"] == "ACCESS EXCLUSIVE"
    assert warm.base_seconds < cold.base_seconds / 2, (cold.base_seconds, warm.base_seconds)
    assert warm_total < 10


def test_the_deployment_database_is_never_touched(
    tmp_path: Path, pg_admin_url: str, fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATABASE_URL points at a database that refuses every connection while the rehearsal runs:
    the rehearsal succeeds anyway, and afterwards that database holds exactly what it held."""
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE customers (id int PRIMARY KEY); INSERT INTO customers VALUES (1)")
    conn.close()
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    target = fresh_db.rsplit("/", 1)[1]
    admin = psycopg2.connect(pg_admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'ALTER DATABASE "{target}" WITH ALLOW_CONNECTIONS false')
    try:
        config, structural = _project(
            tmp_path,
            {
                "V1__customers.sql": "CREATE TABLE customers (id int PRIMARY KEY, name text);\n",
                "V2__drop.sql": "DROP TABLE customers;\n",
            },
        )
        result = rehearse(config, structural, new=None, database_url=pg_admin_url)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{target}" WITH ALLOW_CONNECTIONS true')
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (result.database,))
        assert fetch_value(cur) == 0, "the throwaway database is dropped"
    admin.close()
    assert result.database.startswith("sg_rehearsal_")
    assert [m.status for m in result.migrations] == ["applied", "applied"]
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        assert cur.fetchall() == [("customers",)]
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'")
        assert cur.fetchall() == [("id",)]
    conn.close()


def test_rehearsing_on_the_deployment_database_is_refused(
    tmp_path: Path, pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_admin_url)
    config, structural = _project(tmp_path, {"V1__a.sql": "SELECT 1;\n"})
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        rehearse(config, structural, new=None, database_url=pg_admin_url)


def _spellings(admin_url: str) -> list[str]:
    """Other ways to write the URL of the very database ``admin_url`` names."""
    params = psycopg2.extensions.parse_dsn(admin_url)
    host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
    user, dbname = params.get("user", "postgres"), params.get("dbname", "postgres")
    other_host = "localhost" if host == "127.0.0.1" else "127.0.0.1"
    return [
        admin_url + ("&" if "?" in admin_url else "?") + "sslmode=disable",
        admin_url.replace(f"@{host}:", f"@{other_host}:", 1),
        f"host={host} port={port} user={user} dbname={dbname} application_name=app",
        f"postgresql://{user}@{host}:{port}/{dbname}?connect_timeout=3&application_name=app",
    ]


def _throwaway_databases(admin_url: str) -> list[str]:
    with psycopg2.connect(admin_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'sg\\_rehearsal\\_%' ORDER BY 1")
        names = [r[0] for r in cur.fetchall()]
    conn.close()
    return names


@pytest.mark.parametrize("spelling", range(4))
def test_the_deployment_database_spelt_another_way_is_refused_before_anything_is_created(
    tmp_path: Path, pg_admin_url: str, monkeypatch: pytest.MonkeyPatch, spelling: int
) -> None:
    """The guard compares the servers, not the strings: ``?sslmode=disable``, ``localhost`` for
    ``127.0.0.1``, a key=value DSN or extra parameters name the same database."""
    deploy = _spellings(pg_admin_url)[spelling]
    assert psycopg2.extensions.parse_dsn(deploy) != psycopg2.extensions.parse_dsn(pg_admin_url)
    monkeypatch.setenv("DATABASE_URL", deploy)
    config, structural = _project(tmp_path, {"V1__customers.sql": "CREATE TABLE customers (id int);\n"})
    before = _throwaway_databases(pg_admin_url)
    with pytest.raises(ConfigurationError, match="DATABASE_URL deploys to"):
        rehearse(config, structural, new=None, database_url=pg_admin_url)
    assert _throwaway_databases(pg_admin_url) == before  # nothing was created
    with psycopg2.connect(pg_admin_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.customers')")
        assert cur.fetchone() == (None,)
    conn.close()


def test_the_same_server_asked_by_identity_when_the_names_cannot_tell(
    pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the URLs alone cannot tell (a socket directory, several hosts, a service file), both
    servers are asked for their system_identifier and database; another database of the same
    server, or a deploy target that does not answer, is not the rehearsal's database."""
    from validator.rehearsal import server

    monkeypatch.setattr(server, "_address", lambda params: None)
    params = psycopg2.extensions.parse_dsn(pg_admin_url)
    dbname = params.get("dbname", "postgres")
    same = _spellings(pg_admin_url)[2]
    assert server.is_the_same_database(pg_admin_url, same)
    other = "template1" if dbname != "template1" else "postgres"
    assert not server.is_the_same_database(pg_admin_url, same.replace(f"dbname={dbname}", f"dbname={other}"))
    assert not server.is_the_same_database(pg_admin_url, "postgresql://nobody:secret@127.0.0.1:1/app")


def test_leftovers_of_a_killed_run_are_swept_but_a_live_runs_database_is_not(pg_admin_url: str) -> None:
    dead, live = f"sg_rehearsal_dead{uuid.uuid4().hex[:8]}", f"sg_rehearsal_live{uuid.uuid4().hex[:8]}"
    owner, sweeper = psycopg2.connect(pg_admin_url), psycopg2.connect(pg_admin_url)
    owner.autocommit = sweeper.autocommit = True
    try:
        BaseStore(owner).claim(live)
        with owner.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{dead}"')
            cur.execute(f'CREATE DATABASE "{live}"')
        dropped = BaseStore(sweeper).sweep()
        with sweeper.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname IN (%s, %s)", (dead, live))
            remaining = [r[0] for r in cur.fetchall()]
    finally:
        with owner.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{dead}"')
            cur.execute(f'DROP DATABASE IF EXISTS "{live}"')
        owner.close()
        sweeper.close()
    assert dead in dropped and remaining == [live]


def test_a_database_whose_drop_was_interrupted_is_swept_without_losing_the_session(pg_admin_url: str) -> None:
    # a run killed while it dropped its throwaway database leaves it invalid: PostgreSQL's dropdb
    # sets datconnlimit to -2 in a transaction of its own before it removes the files.  ALTER
    # DATABASE on such a database is FATAL (it ended the sweeping session, and the rehearsal with it)
    half_dropped = f"sg_rehearsal_half{uuid.uuid4().hex[:8]}"
    sweeper = psycopg2.connect(pg_admin_url)
    sweeper.autocommit = True
    try:
        with sweeper.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{half_dropped}"')
            cur.execute("UPDATE pg_database SET datconnlimit = -2 WHERE datname = %s", (half_dropped,))
        dropped = BaseStore(sweeper).sweep()
        with sweeper.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname = %s", (half_dropped,))
            left = len(cur.fetchall())
    finally:
        if not sweeper.closed:
            sweeper.close()
        cleanup = psycopg2.connect(pg_admin_url)
        cleanup.autocommit = True
        with cleanup.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{half_dropped}"')
        cleanup.close()
    assert half_dropped in dropped and left == 0


def test_rehearsal_runs_on_the_embedded_server_when_no_url_is_given(tmp_path: Path) -> None:
    from localdb.server import EmbeddedPostgres

    config, structural = _project(
        tmp_path,
        {
            "V1__orders.sql": "CREATE TABLE orders (id int PRIMARY KEY);\n",
            "V2__orders_total.sql": "ALTER TABLE orders ADD COLUMN total numeric DEFAULT random();\n",
        },
    )
    home = tmp_path / ".schemagate" / "rehearsal"
    try:
        result = rehearse(config, structural, new={"V2__orders_total.sql"}, database_url=None)
        stopped = not EmbeddedPostgres(home).is_running
    finally:
        EmbeddedPostgres(home).stop()
        # as root the cluster may live outside tmp_path (localdb/server.py): remove it too
        state = json.loads((home / "server.json").read_text()) if (home / "server.json").exists() else {}
        if state.get("pgdata") and not Path(state["pgdata"]).is_relative_to(tmp_path):
            shutil.rmtree(Path(state["pgdata"]).parent, ignore_errors=True)
    assert "embedded" in result.server and result.server_version.startswith("16")
    assert stopped, "the server rehearse() started is stopped again"
    [m] = result.migrations
    assert m.rewritten == ["public.orders"]


def test_validate_rehearse_puts_the_lock_report_into_all_three_reports(tmp_path: Path, pg_admin_url: str):
    _project(
        tmp_path,
        {
            "V1__orders.sql": "CREATE TABLE orders (id bigint PRIMARY KEY);\n",
            "V2__orders_seen.sql": "ALTER TABLE orders\n"
            "  ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();\n",
            "V3__orders_fk.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_seen ON orders (seen_at);\n",
        },
    )
    reports = tmp_path / "reports"
    run = validate_rehearsed(tmp_path / "migrations", reports, pg_admin_url)
    assert run.exit_code == 1, run.output  # safety rule adding-field-with-default blocks; rehearsal warns
    markdown = (reports / "report.md").read_text()
    assert "V2__orders_seen.sql takes ACCESS EXCLUSIVE on public.orders and rewrites it" in markdown
    assert "| `public.orders` | table | SHARE UPDATE EXCLUSIVE | yes |" in markdown
    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite[@name='rehearsal']")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"V1__orders.sql", "V2__orders_seen.sql", "V3__orders_fk.sql"}
    # the rewrite is a warning: like every suite, the case passes and says so in its output
    assert cases["V2__orders_seen.sql"].find("failure") is None
    out = cases["V2__orders_seen.sql"].find("system-out")
    assert out is not None and out.text is not None and "rehearsal-table-rewrite" in out.text
    assert cases["V3__orders_fk.sql"].find("failure") is None
    data = json.loads((reports / "report.json").read_text())
    [section] = [s for s in data["sections"] if s["title"] == "Rehearsal"]
    assert [m["status"] for m in section["data"]["migrations"]] == ["applied"] * 3
    rehearsal = [(f["rule"], f["severity"]) for f in data["findings"] if f["family"] == "rehearsal"]
    assert rehearsal == [("rehearsal-table-rewrite", "warning")]
    assert {f["family"] for f in data["findings"] if f["severity"] == "error"} == {"safety"}


def test_a_long_list_of_new_migrations_keeps_report_md_readable() -> None:
    quiet = [RehearsedMigration(f"V{i}__step.sql", 1, True) for i in range(1, 151)]
    flagged = LockInfo("public.t", "SHARE", existed_before=True, flagged=True)
    quiet[119] = RehearsedMigration("V120__step.sql", 5, True, locks=[flagged])
    markdown = RehearsalResult([], quiet, base_reused=True, base_seconds=0.1, base_files=3).markdown()
    rows = [line for line in markdown.splitlines() if line.startswith("| `V")]
    assert len(rows) == 100 and any("V120__step.sql" in r and "takes SHARE on public.t" in r for r in rows)
    assert "50 more, none failed or blocking writes" in markdown


def test_a_new_file_with_a_syntax_error_is_not_rehearsed_again(tmp_path: Path, pg_admin_url: str) -> None:
    mig = tmp_path / "migrations"
    mig.mkdir()
    (mig / "V1__orders.sql").write_text("CREATE TABLE orders (id bigint PRIMARY KEY);\n")
    (mig / "V2__broken.sql").write_text("ALTER TABLE orders ADD COLUMN;\n")
    config = load_config(tmp_path, migrations=mig)
    structural = check_structure(config)
    result = rehearse(config, structural, new={"V2__broken.sql"}, database_url=pg_admin_url)
    assert result.findings == [] and result.server_version == ""  # no server was started
    assert [(m.file, m.status, m.note) for m in result.migrations] == [
        ("V2__broken.sql", "not rehearsed", "it has syntax errors")
    ]
    assert result.markdown().startswith("Nothing was rehearsed: the first new migration has syntax errors.")


def test_a_setup_script_provides_what_no_migration_creates(tmp_path: Path, pg_admin_url: str) -> None:
    """The history calls a function production has (created outside migrations): without the setup
    script the base fails to apply; with it the new file is rehearsed, and [tool.schemagate.rules]
    sets the rehearsal rules' severity."""
    salt = uuid.uuid4().hex[:8]  # a base of its own, not one an earlier run cached
    config, structural = _project(
        tmp_path,
        {
            "V1__orders.sql": f"-- {salt}\nCREATE TABLE orders (id bigint PRIMARY KEY DEFAULT ops.next_id());\n",
            "V2__orders_total.sql": "ALTER TABLE orders ADD COLUMN total numeric DEFAULT random();\n",
        },
    )
    new = {"V2__orders_total.sql"}
    without = rehearse(config, structural, new=new, database_url=pg_admin_url)
    [failed] = without.findings
    assert (failed.rule, failed.file, failed.line) == ("rehearsal-base-failed", "V1__orders.sql", 2)
    assert [m.status for m in without.migrations] == ["not rehearsed"]

    (tmp_path / "rehearsal_setup.sql").write_text(
        "CREATE SCHEMA ops;\nCREATE SEQUENCE ops.ids;\n"
        "CREATE FUNCTION ops.next_id() RETURNS bigint LANGUAGE sql AS $$ SELECT nextval('ops.ids') $$;\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.schemagate.rehearsal]\nsetup = "rehearsal_setup.sql"\n\n'
        '[tool.schemagate.rules]\nrehearsal-table-rewrite = "error"\n'
    )
    config = load_config(tmp_path, migrations=tmp_path / "migrations")
    with_setup = rehearse(config, structural, new=new, database_url=pg_admin_url)
    admin = psycopg2.connect(pg_admin_url)
    admin.autocommit = True
    BaseStore(admin).forget(with_setup.base_key)
    admin.close()
    assert [(f.rule, f.severity) for f in with_setup.findings] == [("rehearsal-table-rewrite", "error")]
    assert with_setup.migrations[0].rewritten == ["public.orders"]


def test_two_runs_building_the_same_base_at_once_both_succeed(tmp_path: Path, pg_admin_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    files = _history(12, salt=uuid.uuid4().hex)
    files["V0013__t0_note.sql"] = "ALTER TABLE t0 ADD COLUMN note text;\n"
    config, structural = _project(tmp_path, files)
    new = {"V0013__t0_note.sql"}

    def run(_: str):
        return rehearse(config, structural, new=new, database_url=pg_admin_url)

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(run, "ab"))
    admin = psycopg2.connect(pg_admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        prefix = f"sg\\_base\\_{runs[0].base_key[:24]}%"  # the template and any build of it
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix,))
        bases = [r[0] for r in cur.fetchall()]
    BaseStore(admin).forget(runs[0].base_key)
    admin.close()
    assert [m.status for r in runs for m in r.migrations] == ["applied", "applied"]
    assert runs[0].base_key == runs[1].base_key and len(bases) == 1  # one template, no build left over


def test_junit_cases_fail_only_on_blocking_findings() -> None:
    """Same policy as every other suite: warnings pass with output, errors (or warnings when
    blocking_severity = "warning") fail."""
    from validator.findings import Finding
    from validator.rehearsal import RehearsalResult, RehearsedMigration
    from validator.rehearsal.locks import LockInfo

    lock = LockInfo(relation="public.orders", mode="ACCESS EXCLUSIVE", existed_before=True, flagged=True)
    migrations = [
        RehearsedMigration(file="V2__a.sql", duration_ms=5, transactional=True, locks=[lock]),
        RehearsedMigration(file="V3__b.sql", duration_ms=5, transactional=True, status="failed"),
    ]
    findings = [
        Finding("rehearsal-blocking-lock", "rehearsal", "warning", "V2__a.sql", None, None, "takes a lock"),
        Finding("rehearsal-failed", "rehearsal", "error", "V3__b.sql", 1, 1, "relation does not exist"),
    ]

    def failures(blocking: str) -> dict[str, bool]:
        result = RehearsalResult(
            findings=findings,
            migrations=migrations,
            base_reused=False,
            base_seconds=0.0,
            blocking_severity=blocking,
        )
        name, cases = result.junit_suite()
        assert name == "rehearsal"
        return {c.name: c.failure_message is not None for c in cases}

    assert failures("error") == {"V2__a.sql": False, "V3__b.sql": True}
    assert failures("warning") == {"V2__a.sql": True, "V3__b.sql": True}
