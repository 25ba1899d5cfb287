"""Accepted history with BEGIN and COMMIT of its own (a change applied by hand with psql, batch by
batch, then recorded by the old tool) is not refused: the bundle marks it ``own_transactions`` and
the executor runs it as written on a database that lacks it (a new environment, the rehearsal's
base), each statement on its own with the file's transaction control.  A file that is judged (above
``accepted_history``, or changed since ``--base-ref``) is still refused for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor import apply as core
from executor.bundle import load_bundle, make_bundle
from executor.connection import connect
from executor.errors import ConfigurationError, MigrationRefused, SqlError
from executor.manifest import ManifestEntry
from executor.settings import ExecutorSettings
from tests.conftest import temporary_database
from tests.database_faults import rows, run_schemagate
from tests.histories import flyway_billing
from tests.test_apply_judges_pending import NEW_MIGRATION

SETTINGS = ExecutorSettings(lock_retry_backoff_s=0.05)
LEGACY = "2026/V021__business_plans_by_hand.sql"

# the 2025 price change, run by hand with psql (each part committed on its own, a savepoint around the
# one insert that might have clashed), then recorded with `flyway migrate -baselineOnMigrate`
BUSINESS_PLANS = """\
-- business plans: added by hand during the 2025 price change
BEGIN;
INSERT INTO plans (code, price_cents, interval) VALUES ('business', 4900, 'month');
COMMIT;

BEGIN;
SAVEPOINT annual;
INSERT INTO plans (code, price_cents, interval) VALUES ('business-annual', 49000, 'year');
RELEASE SAVEPOINT annual;
UPDATE plans SET price_cents = 2100 WHERE code = 'team';
COMMIT;
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = flyway_billing.write(tmp_path / "db" / "migration")
    (root / LEGACY).write_text(BUSINESS_PLANS)
    (root / "2026" / "V022__create_dunning_events.sql").write_text(NEW_MIGRATION)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.schemagate]\nmigrations = "db/migration"\naccepted_history = "021"\n'
    )
    return tmp_path


@pytest.fixture
def empty_db(pg_admin_url: str) -> Iterator[str]:
    with temporary_database(pg_admin_url, prefix="sg_own_tx") as url:
        yield url


def plans(url: str) -> dict[str, int]:
    return {code: price for code, price in rows(url, "SELECT code, price_cents FROM plans ORDER BY id")}


def history(url: str) -> list[tuple[str, bool]]:
    return [
        (s, ok)
        for s, ok in rows(url, "SELECT script, success FROM schemagate_history ORDER BY installed_rank")
    ]


def validate_bundle(project: Path) -> tuple[int, str]:
    code, out, err = run_schemagate(
        ["validate", "--no-lint", "--bundle", "bundle", "--reports", "reports"], project
    )
    return code, out + err


def test_validate_writes_the_bundle_and_marks_the_accepted_file(project: Path) -> None:
    code, out = validate_bundle(project)
    assert code == 0, out
    assert "explicit-transaction-control" not in out
    assert f"1 file of accepted history with BEGIN and COMMIT of its own ({LEGACY})" in out
    # the reviewer reads it in report.md, a machine in report.json
    assert f"1 file of accepted history with BEGIN and COMMIT of its own ({LEGACY})" in (
        (project / "reports" / "report.md").read_text()
    )
    assert json.loads((project / "reports" / "report.json").read_text())["as_written"] == [LEGACY]
    entries = {
        e["file"]: e for e in json.loads((project / "bundle" / "manifest.json").read_text())["migrations"]
    }
    assert entries[LEGACY]["own_transactions"] is True and entries[LEGACY]["transactional"] is False
    # every other entry is as a 0.1 manifest has it: no such key
    assert [f for f, e in entries.items() if "own_transactions" in e] == [LEGACY]


def test_the_same_file_is_refused_when_it_is_judged(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.schemagate]\nmigrations = "db/migration"\naccepted_history = "020"\n'
    )
    code, out = validate_bundle(project)
    assert code == 1, out
    assert f"{LEGACY}:4:1 explicit-transaction-control" in out  # its first COMMIT
    assert not (project / "bundle").exists()


def test_the_bundle_builds_a_new_database_running_the_file_as_written(project: Path, empty_db: str) -> None:
    assert validate_bundle(project)[0] == 0
    code, out, err = run_schemagate(
        ["apply", "--database-url", empty_db, "--bundle", "bundle", "--yes"], project
    )
    assert code == 0, out + err
    assert "runs as written" in out
    assert plans(empty_db) == {
        "free": 0,
        "team": 2100,
        "team-annual": 19000,
        "business": 4900,
        "business-annual": 49000,
    }
    versioned = [h for h in history(empty_db) if not h[0].startswith("R__")]
    assert versioned[-2:] == [(LEGACY, True), ("2026/V022__create_dunning_events.sql", True)]
    # the file's own COMMITs ran: the session is not left in a transaction, the next file applied
    assert rows(empty_db, "SELECT to_regclass('public.dunning_events') IS NOT NULL")[0][0] is True


def test_apply_migrations_runs_it_as_written_too(project: Path, empty_db: str) -> None:
    code, out, err = run_schemagate(
        ["apply", "--database-url", empty_db, "--migrations", "db/migration", "--yes"], project
    )
    assert code == 0, out + err
    assert plans(empty_db)["business-annual"] == 49000
    assert (LEGACY, True) in history(empty_db)


def test_a_rehearsal_builds_its_base_through_the_file(project: Path, pg_admin_url: str) -> None:
    """V022 is new (above accepted_history); its base is every file before it, the legacy one too."""
    code, out, err = run_schemagate(
        ["validate", "--no-lint", "--rehearse", "--rehearsal-database-url", pg_admin_url], project
    )
    assert code == 0, out + err
    # the base was built (the legacy file ran as written in it): V022's lock is on a table it holds
    assert (
        "V022__create_dunning_events.sql takes SHARE ROW EXCLUSIVE on public.invoices, which existed" in out
    )


def own(file: str, sql: str, *, transactional: bool = False) -> tuple[ManifestEntry, bytes]:
    version = file[1:].split("__")[0]
    entry = ManifestEntry(
        file,
        "versioned",
        version,
        "by hand",
        _checksum(sql),
        transactional=transactional,
        own_transactions=True,
    )
    return entry, sql.encode()


def _checksum(sql: str) -> str:
    from executor.checksum import file_checksum

    return file_checksum(sql.encode())


PLANS_TABLE = """\
CREATE TABLE plans (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text    NOT NULL UNIQUE,
    price_cents integer NOT NULL CHECK (price_cents >= 0)
);
"""


def create_plans() -> tuple[ManifestEntry, bytes]:
    return ManifestEntry(
        "V1__plans.sql", "versioned", "1", "plans", _checksum(PLANS_TABLE)
    ), PLANS_TABLE.encode()


def run(url: str, *entries: tuple[ManifestEntry, bytes]) -> None:
    conn = connect(url)
    try:
        core.apply(conn, make_bundle(list(entries)), SETTINGS)
    finally:
        conn.close()


def test_a_file_that_ends_inside_its_own_transaction_keeps_what_it_committed(empty_db: str) -> None:
    left_open = (
        "BEGIN;\nINSERT INTO plans (code, price_cents) VALUES ('free', 0);\nCOMMIT;\n"
        "BEGIN;\nINSERT INTO plans (code, price_cents) VALUES ('team', 1900);\n"
    )
    with pytest.raises(MigrationRefused) as caught:
        run(empty_db, create_plans(), own("V2__seed.sql", left_open))
    assert caught.value.rule == "transaction-left-open" and caught.value.line == 4
    assert "V2__seed.sql" in str(caught.value) and "repair" in (caught.value.remedy or "")
    assert [code for code in plans(empty_db)] == ["free"]  # the committed batch stays, the open one not
    assert history(empty_db) == [("V1__plans.sql", True), ("V2__seed.sql", False)]


def test_a_failing_statement_rolls_back_only_its_own_transaction(empty_db: str) -> None:
    failing = (
        "BEGIN;\nINSERT INTO plans (code, price_cents) VALUES ('free', 0);\nCOMMIT;\n"
        "BEGIN;\nINSERT INTO plans (code, price_cents) VALUES ('team', 1900);\n"
        "INSERT INTO plans (code, price_cents) VALUES ('broken', -1);\nCOMMIT;\n"
    )
    with pytest.raises(SqlError) as caught:
        run(empty_db, create_plans(), own("V2__seed.sql", failing))
    assert caught.value.line == 6 and "plans_price_cents_check" in str(caught.value)
    assert list(plans(empty_db)) == ["free"]
    assert history(empty_db) == [("V1__plans.sql", True), ("V2__seed.sql", False)]


def test_a_manifest_that_marks_it_transactional_too_is_refused_before_anything_runs(empty_db: str) -> None:
    both = own("V2__seed.sql", "BEGIN;\nSELECT 1;\nCOMMIT;\n", transactional=True)
    with pytest.raises(ConfigurationError) as caught:
        run(empty_db, create_plans(), both)
    assert "own_transactions" in str(caught.value)
    assert rows(empty_db, "SELECT to_regclass('public.plans')")[0][0] is None


def test_an_executor_reads_the_flag_and_refuses_anything_but_true_or_false(tmp_path: Path) -> None:
    from executor.bundle import write_bundle

    write_bundle(
        make_bundle([create_plans(), own("V2__seed.sql", "BEGIN;\nSELECT 1;\nCOMMIT;\n")]), tmp_path / "b"
    )
    loaded = load_bundle(tmp_path / "b")
    assert [e.own_transactions for e in loaded.manifest.migrations] == [False, True]
    with pytest.raises(ValueError, match="own_transactions must be true or false"):
        ManifestEntry.from_dict({**loaded.manifest.migrations[1].to_dict(), "own_transactions": "yes"})


def test_a_pull_request_build_accepts_it_as_unchanged_since_the_base_ref(tmp_path: Path) -> None:
    """No accepted_history: the pull-request build (``--base-ref``) judges only what the branch
    changed, so the file applied long ago is accepted history there too."""
    from tests.git_project import commit_all, git, project_on_main

    root = flyway_billing.write(tmp_path / "db" / "migration")
    (root / LEGACY).write_text(BUSINESS_PLANS)
    project_on_main(tmp_path, "db/migration")
    git(tmp_path, "checkout", "-qb", "add-dunning")
    (root / "2026" / "V022__create_dunning_events.sql").write_text(NEW_MIGRATION)
    commit_all(tmp_path, "dunning events")
    code, out, err = run_schemagate(
        ["validate", "--no-lint", "--base-ref", "main", "--bundle", "bundle"], tmp_path
    )
    assert code == 0, out + err
    entries = {
        e["file"]: e for e in json.loads((tmp_path / "bundle" / "manifest.json").read_text())["migrations"]
    }
    assert entries[LEGACY].get("own_transactions") is True
    assert "own_transactions" not in entries["2026/V022__create_dunning_events.sql"]
