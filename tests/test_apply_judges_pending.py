"""``apply --migrations DIR`` judges the files it will run, not the ones the database holds as applied
with the same bytes (as Flyway's migrate compares an applied file's checksum and does not judge it
again): a legacy file schemagate would refuse does not block the next migration, a new file is still
refused with nothing applied, a CALL still sees the committing procedures of applied files, and a file
whose history row disappears during the run is refused, never run unchecked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from executor import apply as core
from executor.bundle import make_bundle
from executor.errors import MigrationRefused
from executor.history import read_history
from executor.manifest import ManifestEntry
from executor.settings import ExecutorSettings
from schemagate.cli import main
from tests.conftest import DatabaseTemplates, content_key, temporary_database
from tests.database_faults import rows, run_schemagate
from tests.flyway_state import flyway_migrate
from tests.helpers import fetch_value
from tests.histories import flyway_billing
from validator.config import load_config
from validator.parse_cache import ParseCache
from validator.structural import check_structure

SETTINGS = ExecutorSettings()

# run by hand with psql in two batches, each committed on its own, then recorded by Flyway: the
# executor runs a file in one transaction of its own, so schemagate refuses such a file
LEGACY_BATCHES = """\
-- backfill the invoice numbers in two batches, so neither holds its row locks for long
BEGIN;
UPDATE invoices SET number = nextval('invoice_number_seq') WHERE number IS NULL AND id <= 50000;
COMMIT;
BEGIN;
UPDATE invoices SET number = nextval('invoice_number_seq') WHERE number IS NULL;
COMMIT;
"""

NEW_MIGRATION = """\
CREATE TYPE dunning_stage AS ENUM ('reminder', 'final_notice', 'collections');
CREATE TABLE dunning_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id bigint NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    stage      dunning_stage NOT NULL,
    sent_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dunning_events_open_idx ON dunning_events (invoice_id) WHERE stage <> 'collections';
"""

COMMITTING_PROCEDURE = """\
CREATE PROCEDURE close_stale_trials() LANGUAGE plpgsql AS $$
BEGIN
    LOOP
        UPDATE subscriptions SET status = 'canceled', ended_at = now()
        WHERE id IN (
            SELECT id FROM subscriptions
            WHERE status = 'trialing' AND started_at < now() - interval '90 days'
            LIMIT 500
        );
        EXIT WHEN NOT FOUND;
        COMMIT;  -- one batch at a time: the procedure must be CALLed outside a transaction
    END LOOP;
END;
$$;
"""


@pytest.fixture
def adopted(tmp_path: Path, database_templates: DatabaseTemplates) -> Iterator[tuple[str, Path]]:
    """The billing history with the legacy batch file, migrated by Flyway, then taken over with
    ``schemagate import --from flyway`` (each file recorded with its checksum): built once per test
    process, a copy for each test."""
    root = flyway_billing.write(tmp_path / "db" / "migration")
    (root / "2026" / "V021__backfill_invoice_numbers_in_batches.sql").write_text(LEGACY_BATCHES)

    def build(url: str) -> None:
        flyway_migrate(url, root)
        code = main(["import", "--from", "flyway", "--migrations", str(root), "--database-url", url, "--yes"])
        assert code == 0

    with database_templates.copy(content_key("flyway migrate, schemagate import", root), build) as url:
        yield url, root


def history(url: str) -> list[tuple[str | None, str, bool]]:
    conn = psycopg2.connect(url)
    try:
        return [(r.version, r.script, r.success) for r in read_history(conn, SETTINGS)]
    finally:
        conn.close()


def scalar(url: str, sql: str) -> object:
    return rows(url, sql)[0][0]


def console_apply(root: Path, url: str, cwd: Path) -> tuple[int, str, str]:
    """``schemagate apply`` as a deploy runs it: the console script, a fresh process."""
    return run_schemagate(["apply", "--migrations", str(root), "--database-url", url, "--yes"], cwd)


def test_the_legacy_file_is_refused_when_judged(adopted: tuple[str, Path]) -> None:
    """What the file is: a transaction-control error for schemagate's own checks (so that the tests
    below show that it is not judged, rather than that it passes)."""
    _url, root = adopted
    result = check_structure(load_config(root.parent, migrations=root), parse_cache=ParseCache(None))
    errors = [f for f in result.findings if f.severity == "error"]
    assert [((f.file or "").rsplit("/", 1)[-1], f.rule) for f in errors][:1] == [
        ("V021__backfill_invoice_numbers_in_batches.sql", "explicit-transaction-control")
    ]


@pytest.mark.parametrize("how", ["console script", "click command"])
def test_a_new_migration_applies_beside_a_legacy_file_that_would_be_refused(
    adopted: tuple[str, Path], tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = adopted
    before = history(url)
    (root / "2026" / "V022__create_dunning_events.sql").write_text(NEW_MIGRATION)
    if how == "console script":
        code, out, err = console_apply(root, url, tmp_path)
        out += err
    else:
        code = main(["apply", "--migrations", str(root), "--database-url", url, "--yes"])
        out = capsys.readouterr().out
    assert code == 0, out
    assert "applied 1 migration" in out
    assert history(url) == [*before, ("022", "2026/V022__create_dunning_events.sql", True)]
    assert scalar(url, "SELECT count(*) FROM pg_indexes WHERE indexname = 'dunning_events_open_idx'") == 1


def test_a_broken_new_file_is_still_refused_and_nothing_is_applied(
    adopted: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = adopted
    before = history(url)
    (root / "2026" / "V022__create_dunning_events.sql").write_text(NEW_MIGRATION)
    (root / "2026" / "V023__add_dunning_note.sql").write_text(
        "ALTER TABLE dunning_events ADD COLUMN note text;\nALTR TABLE dunning_events ALTER COLUMN note SET NOT NULL;\n"
    )
    code, out, err = console_apply(root, url, tmp_path)
    assert code == 1, out + err
    assert "2026/V023__add_dunning_note.sql:2" in err and "syntax" in err
    assert "V021" not in err  # the applied legacy file is not judged, so not listed
    assert history(url) == before  # V022 was not applied either: every file to run is judged first
    assert scalar(url, "SELECT to_regclass('public.dunning_events')") is None


def test_a_call_of_a_procedure_an_applied_file_created_still_runs_outside_a_transaction(
    adopted: tuple[str, Path], tmp_path: Path
) -> None:
    """The procedure commits, so its CALL cannot run in a transaction; the file that created it is
    applied.  The applied files are parsed for their procedures (not judged: the legacy file's
    findings do not refuse the run)."""
    url, root = adopted
    (root / "2026" / "V022__create_close_stale_trials.sql").write_text(COMMITTING_PROCEDURE)
    code, out, err = console_apply(root, url, tmp_path)
    assert code == 0, out + err
    (root / "2026" / "V023__close_stale_trials.sql").write_text("CALL close_stale_trials();\n")
    # a trial from long ago for the procedure to close
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO accounts (email) VALUES ('old-trial@example.com') RETURNING id")
        account = fetch_value(cur)
        cur.execute(
            "INSERT INTO subscriptions (account_id, plan_id, status, started_at) "
            "SELECT %s, id, 'trialing', now() - interval '200 days' FROM plans WHERE code = 'team'",
            (account,),
        )
    conn.close()
    code, out, err = console_apply(root, url, tmp_path)
    assert code == 0, out + err
    assert history(url)[-1] == ("023", "2026/V023__close_stale_trials.sql", True)
    assert scalar(url, "SELECT count(*) FROM subscriptions WHERE status = 'trialing'") == 0


def test_the_parse_cache_keeps_the_entries_of_the_files_it_did_not_parse(
    adopted: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = adopted
    project = tmp_path / "project"
    project.mkdir()
    (project / "schemagate.toml").write_text(f'migrations = "{root}"\n')
    _code, out, err = run_schemagate(["validate", "--no-lint", "--migrations", str(root)], project)
    packs = list((project / ".schemagate" / "cache" / "parse").rglob("*.json"))
    assert packs, out + err
    (root / "2026" / "V022__create_dunning_events.sql").write_text(NEW_MIGRATION)
    code, out, err = console_apply(root, url, project)
    assert code == 0, out + err
    entries = {
        name
        for pack in (project / ".schemagate" / "cache" / "parse").rglob("*.json")
        for name in json.loads(pack.read_text())["entries"]
    }
    files = len(list(root.rglob("*.sql")))
    assert len(entries) >= files  # the applied files' entries stay beside the new file's


def test_an_unchecked_entry_that_became_pending_is_refused_before_anything_runs(pg_admin_url: str) -> None:
    """The quick path found V002 applied and the structural check skipped it; meanwhile another
    session removed its history row (``undo``, ``repair``).  The executor refuses the run."""
    sql = {
        "V001__create_plans.sql": b"CREATE TABLE plans (id bigint PRIMARY KEY, code text NOT NULL);\n",
        "V002__add_plans_tier.sql": b"ALTER TABLE plans ADD COLUMN tier text;\n",
        "V003__index_plans_code.sql": b"CREATE UNIQUE INDEX plans_code_key ON plans (code);\n",
    }
    from executor.checksum import file_checksum

    def entry(file: str, checked: bool = True) -> tuple[ManifestEntry, bytes]:
        version = file[1:4]
        return (
            ManifestEntry(file, "versioned", version, file[6:-4], file_checksum(sql[file]), checked=checked),
            sql[file],
        )

    with temporary_database(pg_admin_url, prefix="sg_unchecked") as url:
        conn = psycopg2.connect(url)
        try:
            core.apply(conn, make_bundle([entry("V001__create_plans.sql")]), SETTINGS)
            bundle = make_bundle(
                [
                    entry("V001__create_plans.sql"),
                    entry("V002__add_plans_tier.sql", checked=False),
                    entry("V003__index_plans_code.sql"),
                ]
            )
            with pytest.raises(MigrationRefused) as refused:
                core.apply(conn, bundle, SETTINGS)
        finally:
            conn.close()
        assert refused.value.rule == "unchecked-file" and refused.value.file == "V002__add_plans_tier.sql"
        assert "run the command again" in (refused.value.remedy or "")
        assert [r[1] for r in history(url)] == ["V001__create_plans.sql"]
        assert scalar(url, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'tier'") == 0
        assert scalar(url, "SELECT to_regclass('public.plans_code_key')") is None


def test_plan_shows_what_apply_would_do_beside_the_legacy_file(
    adopted: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = adopted
    assert main(["plan", "--migrations", str(root), "--database-url", url]) == 0
    assert "nothing to apply: database is up to date (23 applied)" in capsys.readouterr().out
    (root / "2026" / "V022__create_dunning_events.sql").write_text(NEW_MIGRATION)
    assert main(["plan", "--migrations", str(root), "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "1 to apply:" in out and "2026/V022__create_dunning_events.sql" in out
    assert scalar(url, "SELECT to_regclass('public.dunning_events')") is None  # plan changes nothing


def test_info_lists_the_states_beside_the_legacy_file(
    adopted: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = adopted
    (root / "2026" / "V022__create_dunning_events.sql").write_text(NEW_MIGRATION)
    assert main(["info", "--migrations", str(root), "--database-url", url, "--json"]) == 0
    states = {m["file"]: m["state"] for m in json.loads(capsys.readouterr().out)["migrations"]}
    assert states["2026/V021__backfill_invoice_numbers_in_batches.sql"] == "applied"
    assert states["2026/V022__create_dunning_events.sql"] == "pending"


def test_repair_and_baseline_record_beside_the_legacy_file(
    adopted: tuple[str, Path], pg_admin_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """They record what exists and run nothing, so they parse no file either."""
    url, root = adopted
    legacy = root / "2026" / "V021__backfill_invoice_numbers_in_batches.sql"
    legacy.write_text(LEGACY_BATCHES.replace("id <= 50000", "id <= 20000"))  # edited after it ran
    from executor.checksum import file_checksum

    args = ["--migrations", str(root), "--database-url", url]
    assert main(["repair", "--realign-checksums", *args]) == 0
    assert (
        "realigned the checksum of 2026/V021__backfill_invoice_numbers_in_batches.sql"
        in capsys.readouterr().out
    )
    conn = psycopg2.connect(url)
    try:
        row = next(r for r in read_history(conn, SETTINGS) if r.version == "021")
    finally:
        conn.close()
    assert row.checksum == file_checksum(legacy.read_bytes())

    # a copy of the schema made without any tool's history, adopted at version 021
    with temporary_database(pg_admin_url, prefix="sg_baseline", template=url.rsplit("/", 1)[1]) as copy:
        conn = psycopg2.connect(copy)
        with conn, conn.cursor() as cur:
            cur.execute("DROP TABLE schemagate_history, flyway_schema_history")
        conn.close()
        assert main(["baseline", "--version", "021", "--migrations", str(root), "--database-url", copy]) == 0
        assert "21 migrations up to 021 recorded as applied" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_target_judges_only_the_files_to_run_too(
    adopted: tuple[str, Path], tmp_path: Path, command: str
) -> None:
    """``--target`` (Flyway's -target) cuts the directory after the history was read, as apply
    judges it: the applied legacy file does not block, the version above the target stays pending."""
    url, root = adopted
    before = history(url)
    (root / "2026" / "V022__create_dunning_events.sql").write_text(NEW_MIGRATION)
    (root / "2026" / "V023__add_dunning_note.sql").write_text(
        "ALTER TABLE dunning_events ADD COLUMN note text;\n"
    )
    args = [command, "--migrations", str(root), "--database-url", url, "--target", "022"]
    code, out, err = run_schemagate([*args, "--yes"] if command == "apply" else args, tmp_path)
    assert code == 0, out + err
    if command == "plan":
        assert "2026/V022__create_dunning_events.sql" in out and "V023" not in out
        assert history(url) == before
    else:
        assert "--target 022: 3 migrations above it left out" in out  # V023 and the two repeatables
        assert history(url) == [*before, ("022", "2026/V022__create_dunning_events.sql", True)]
        assert scalar(url, "SELECT to_regclass('public.dunning_events') IS NOT NULL") is True
