"""A team's repository with the billing history (tests/histories/flyway_billing.py) and a branch
that adds two migrations worth an approver's attention, validated the way the pipeline does it
(``--base-ref`` the previous commit, ``--rehearse`` on the test server), plus production-like data.

- ``V021__widen_invoice_amount.sql``: ``ALTER COLUMN ... TYPE bigint`` rewrites ``invoices`` under
  ACCESS EXCLUSIVE (waived inline: the team thinks the table is small);
- ``V022__index_invoices_paid_at.sql``: a plain ``CREATE INDEX`` holds SHARE on ``invoices``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg2

from executor.bundle import Bundle, make_bundle
from executor.manifest import ManifestEntry
from tests.histories import flyway_billing

MIGRATIONS = "src/main/resources/db/migration"
PYPROJECT = f"""\
[tool.schemagate]
migrations = "{MIGRATIONS}"

# findings the team accepted when these files were merged, long ago
[tool.schemagate.rules]
adding-foreign-key-constraint = "warning"
renaming-column = "warning"
require-concurrent-index-creation = "warning"
"""
NEW = {
    "2026/V021__widen_invoice_amount.sql": (
        "-- schemagate:ignore changing-column-type -- invoices is small, checked with the DBA\n"
        "ALTER TABLE invoices ALTER COLUMN amount_cents TYPE bigint;\n"
    ),
    "2026/V022__index_invoices_paid_at.sql": "CREATE INDEX invoices_paid_at_idx ON invoices (paid_at);\n",
}


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.email=dev@example.com", "-c", "user.name=Dev", *args],
        check=True,
        capture_output=True,
    )


def make_repository(root: Path) -> Path:
    """The repository: the history on the first commit, the two new files on the second."""
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    flyway_billing.write(root / MIGRATIONS)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "billing history")
    flyway_billing.write(root / MIGRATIONS, NEW)
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "widen invoice amounts, index paid_at")
    return root


def validated_bundle(root: Path, rehearsal_url: str | None, *, rehearse: bool = True) -> Bundle:
    """``schemagate validate --base-ref HEAD~1 [--rehearse]`` on the repository, in process."""
    from validator.config import load_config
    from validator.validate import run_validation

    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = run_validation(
            load_config(root),
            base_ref="HEAD~1",
            rehearse=rehearse,
            rehearsal_database_url=rehearsal_url,
            lint=False,
        )
    finally:
        os.chdir(cwd)
    assert result.bundle is not None, [
        f"{f.location} {f.rule}" for f in result.findings if f.severity == "error"
    ]
    return result.bundle


def history_only(bundle: Bundle) -> Bundle:
    """The same history without the two new files: what production had applied before the merge."""
    entries = [(e, bundle.files[e.file]) for e in bundle.manifest.migrations if e.file not in NEW]
    return make_bundle(entries, source=bundle.manifest.source, layout=bundle.manifest.layout)


def with_edited(bundle: Bundle, file: str, data: bytes) -> Bundle:
    """The bundle with one file's bytes replaced (an applied migration edited after the fact)."""
    from executor.checksum import file_checksum

    entries = []
    for e in bundle.manifest.migrations:
        body = bundle.files[e.file]
        if e.file == file:
            body = data
            e = ManifestEntry(**{**e.__dict__, "sha256": file_checksum(data)})
        entries.append((e, body))
    edited = make_bundle(entries, source=bundle.manifest.source, layout=bundle.manifest.layout)
    edited.manifest.extra.update(bundle.manifest.extra)
    edited.manifest.seal()
    return edited


def load_production_data(url: str, invoices: int = 20_000) -> None:
    """Accounts, subscriptions, invoices and usage events, then ANALYZE (as autovacuum would)."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO accounts (email, full_name, country_code) "
            "SELECT 'user' || g || '@example.com', 'User ' || g, 'DE' FROM generate_series(1, 500) g"
        )
        cur.execute(
            "INSERT INTO subscriptions (account_id, plan_id, status) "
            "SELECT a.id, (SELECT id FROM plans WHERE code = 'team'), 'active' FROM accounts a"
        )
        cur.execute(
            "INSERT INTO invoices (subscription_id, amount_cents, issued_at, paid_at) "
            "SELECT s.id, 1900, now() - g * interval '1 hour', CASE WHEN g %% 10 = 0 THEN NULL ELSE now() END "
            "FROM generate_series(1, %s) g JOIN subscriptions s ON s.id = 1 + (g %% 500)",
            (invoices,),
        )
        cur.execute(
            "INSERT INTO usage_events (account_id, occurred_at, quantity) "
            "SELECT 1 + g % 500, timestamptz '2025-12-01' + g * interval '10 minutes', 1 "
            "FROM generate_series(1, 6000) g"
        )
        cur.execute("ANALYZE")
    conn.close()
