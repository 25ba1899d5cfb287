"""The plan an approver reads: the validator's lock impact in the manifest, the target's own table
sizes and row estimates, and what a plan of a real history on a real database says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from executor.apply import apply, plan
from executor.bundle import load_bundle, write_bundle
from executor.impact import IMPACT_KEY, LockImpact, impact_from_manifest, merge, table_stats
from executor.plan_report import SUMMARY_MAX, build_plan_report, console_link
from executor.settings import ExecutorSettings
from tests import billing_project
from tests.conftest import temporary_database
from tests.helpers import fetch_value

V021 = "2026/V021__widen_invoice_amount.sql"
V022 = "2026/V022__index_invoices_paid_at.sql"


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return billing_project.make_repository(tmp_path_factory.mktemp("billing"))


@pytest.fixture(scope="module")
def rehearsed(repository: Path, pg_admin_url: str):
    """The branch validated as the pipeline does: base ref the previous commit, rehearsed."""
    return billing_project.validated_bundle(repository, pg_admin_url)


@pytest.fixture(scope="module")
def production(pg_admin_url: str, rehearsed) -> Iterator[str]:
    """A database at the history before the merge, with data, analyzed."""
    with temporary_database(pg_admin_url, prefix="sg_plan") as url:
        conn = psycopg2.connect(url)
        apply(conn, billing_project.history_only(rehearsed), ExecutorSettings())
        conn.close()
        billing_project.load_production_data(url)
        yield url


# --- what validate records ------------------------------------------------------------------------


def test_the_rehearsal_records_the_rewrite_and_the_share_lock_per_new_migration(rehearsed) -> None:
    impact = impact_from_manifest(rehearsed.manifest.extra)
    assert impact is not None
    assert impact[V021] == [
        LockImpact(relation="public.invoices", lock="ACCESS EXCLUSIVE", rewrite=True, source="rehearsal")
    ]
    assert impact[V022][0] == LockImpact(
        relation="public.invoices", lock="SHARE", rewrite=False, source="rehearsal"
    )
    # only what this branch adds was rehearsed: the accepted history has no rehearsal entries
    assert all(
        item.source != "rehearsal"
        for file, items in impact.items()
        if file not in billing_project.NEW
        for item in items
    )


def test_without_rehearsal_the_safety_rules_name_the_lock_but_not_what_an_ignore_waived(
    repository: Path,
) -> None:
    bundle = billing_project.validated_bundle(repository, None, rehearse=False)
    impact = impact_from_manifest(bundle.manifest.extra)
    assert impact is not None
    assert impact[V022] == [
        LockImpact(
            relation="invoices", lock="SHARE", rewrite=False, source="require-concurrent-index-creation"
        )
    ]
    assert V021 not in impact  # its changing-column-type finding is waived inline: only a rehearsal sees it
    # the accepted history is not judged (only what the branch adds), so it records nothing
    assert not [file for file in impact if file not in billing_project.NEW]
    # the lock a rule documents, read without confusing SHARE ROW EXCLUSIVE with SHARE
    from validator.impact import documented_mode
    from validator.safety import REGISTRY

    assert documented_mode(REGISTRY["adding-foreign-key-constraint"].docs.lock) == "SHARE ROW EXCLUSIVE"
    assert documented_mode(REGISTRY["require-concurrent-index-creation"].docs.lock) == "SHARE"


def test_the_impact_key_is_hashed_and_signed_with_the_manifest(rehearsed, tmp_path: Path) -> None:
    write_bundle(rehearsed, tmp_path / "bundle")
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert IMPACT_KEY in manifest
    assert load_bundle(tmp_path / "bundle").bundle_sha256 == rehearsed.bundle_sha256
    manifest[IMPACT_KEY][V021][0]["lock"] = "ROW SHARE"  # someone makes the change look harmless
    (tmp_path / "bundle" / "manifest.json").write_text(json.dumps(manifest))
    from executor.errors import BundleIntegrityError

    with pytest.raises(BundleIntegrityError, match="bundle_sha256"):
        load_bundle(tmp_path / "bundle")


def test_a_bundle_without_the_key_still_verifies_and_plans(rehearsed, production: str) -> None:
    older = billing_project.history_only(rehearsed)
    assert IMPACT_KEY not in older.manifest.to_dict()
    conn = psycopg2.connect(production)
    try:
        report = build_plan_report(conn, older, plan(conn, older, ExecutorSettings()), database="prod")
    finally:
        conn.close()
    assert report.pending == [] and report.impact_recorded is False


# --- the target's statistics ----------------------------------------------------------------------


def test_table_stats_come_from_the_target_catalogs(production: str) -> None:
    conn = psycopg2.connect(production)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:  # a table created since the last ANALYZE
            cur.execute("CREATE TABLE IF NOT EXISTS public.dunning_notices (id bigint, sent_at timestamptz)")
        conn.autocommit = False
        stats = table_stats(
            conn, ["public.invoices", "public.usage_events", "public.dunning_notices", "public.refunds"]
        )
        assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_total_relation_size('public.invoices'), pg_size_pretty(pg_total_relation_size('public.invoices'))"
            )
            row = cur.fetchone()
            assert row is not None
            exact, pretty = row
    finally:
        conn.close()
    invoices = stats["public.invoices"]
    assert (invoices.exists, invoices.rows, invoices.bytes, invoices.size) == (True, 20_000, exact, pretty)
    assert invoices.describe() == f"{pretty}, ~20 k rows"
    # a partitioned table is the sum of its partitions (6000 events over 2025 and 2026)
    assert stats["public.usage_events"].kind == "p" and stats["public.usage_events"].rows == 6000
    usage_bytes = stats["public.usage_events"].bytes
    assert usage_bytes is not None and usage_bytes > 0
    never_analyzed = stats["public.dunning_notices"]
    assert never_analyzed.rows is None and never_analyzed.describe().endswith("rows unknown: never analyzed")
    assert stats["public.refunds"].describe() == "not in this database yet"


def test_a_locked_table_is_estimated_instead_of_waited_for(production: str) -> None:
    holder = psycopg2.connect(production)
    conn = psycopg2.connect(production)
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")  # a long migration elsewhere
        stats = table_stats(conn, ["public.invoices"])["public.invoices"]
        assert stats.estimated_size and stats.rows == 20_000
        assert "(estimate: the table is locked)" in stats.describe()
        assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    finally:
        holder.rollback()
        holder.close()
        conn.close()


def test_merge_keeps_the_strongest_lock_and_any_rewrite() -> None:
    merged = merge(
        [
            LockImpact("public.orders", "SHARE", source="require-concurrent-index-creation"),
            LockImpact("public.orders", "ACCESS EXCLUSIVE", rewrite=False),
            LockImpact("public.items", "ROW EXCLUSIVE"),
            LockImpact("public.orders", "ROW EXCLUSIVE", rewrite=True),
        ]
    )
    assert merged == [
        LockImpact("public.orders", "ACCESS EXCLUSIVE", rewrite=True, source="rehearsal"),
        LockImpact("public.items", "ROW EXCLUSIVE"),
    ]


# --- the report -----------------------------------------------------------------------------------


def test_the_plan_shows_each_lock_with_the_target_size_and_changes_nothing(
    rehearsed, production: str
) -> None:
    conn = psycopg2.connect(production)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM schemagate_history")
            rows_before = fetch_value(cur)
            cur.execute("SELECT pg_size_pretty(pg_total_relation_size('public.invoices'))")
            size = fetch_value(cur)
        conn.rollback()
        report = build_plan_report(
            conn,
            rehearsed,
            plan(conn, rehearsed, ExecutorSettings()),
            database="app@prod:5432/billing",
            environment="production",
        )
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM schemagate_history")
            assert fetch_value(cur) == rows_before
            cur.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'invoices_paid_at_idx'")
            assert fetch_value(cur) == 0
    finally:
        conn.close()
    assert [p.file for p in report.pending] == [V021, V022]
    text = report.to_text()
    assert f"ACCESS EXCLUSIVE + rewrite on public.invoices ({size}, ~20 k rows)" in text
    assert f"SHARE on public.invoices ({size}, ~20 k rows)" in text
    assert "schemagate plan for production" in text and "database: app@prod:5432/billing" in text
    variables = report.output_variables("s3://artifacts/schemagate/PlanReport/abc", region="eu-west-1")
    assert variables["pending"] == "2" and variables["drift"] == "none"
    assert variables["summary"].startswith(f"2 pending: {V021}, 2026/V022")
    assert variables["summary"].endswith(
        f"heaviest: ACCESS EXCLUSIVE + rewrite on public.invoices ({size}, ~20 k rows)"
    )
    assert variables["plan_report_link"] == console_link(
        "s3://artifacts/schemagate/PlanReport/abc", "eu-west-1"
    )
    assert "prefix=schemagate%2FPlanReport%2Fabc" in variables["plan_report_link"]


def test_drift_is_named_and_the_summary_stays_short(rehearsed, production: str) -> None:
    edited = billing_project.with_edited(
        rehearsed,
        "V007__backfill_accounts_country.sql",
        b"UPDATE accounts SET country_code = 'AT' WHERE country_code IS NULL;\n",
    )
    conn = psycopg2.connect(production)
    try:
        report = build_plan_report(conn, edited, plan(conn, edited, ExecutorSettings()), database="prod")
    finally:
        conn.close()
    assert report.drift() == "V007__backfill_accounts_country.sql: checksum-drift"
    assert report.summary() == "refused: V007__backfill_accounts_country.sql: checksum-drift"
    assert "REFUSED: 1 problem(s)" in report.to_text()
    many = report.__class__(**{**report.__dict__, "refusals": report.refusals * 40})
    assert len(many.summary()) <= SUMMARY_MAX and many.summary().endswith("…")
