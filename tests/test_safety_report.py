"""Destructive changes come first in report.md, found or waived, so the reviewer sees them first."""

from __future__ import annotations

from pathlib import Path

from validator.config import load_config
from validator.validate import run_validation

HISTORY = {
    "V1__create_accounts.sql": "CREATE TABLE accounts (\n"
    "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
    "    email text NOT NULL,\n"
    "    legacy_plan text\n);\n"
    "CREATE TABLE sessions (id bigint PRIMARY KEY, account_id bigint NOT NULL);\n",
    "V2__drop_legacy_plan.sql": "-- schemagate:ignore ban-drop-column -- unused since release 4.2, values archived\n"
    "ALTER TABLE accounts DROP COLUMN legacy_plan;\n",
    "V3__drop_sessions.sql": "DROP TABLE sessions;\n",
    "V4__index_email.sql": "CREATE INDEX accounts_email_idx ON accounts (email);\n",
}


def test_report_md_lists_destructive_changes_first_including_suppressed_ones(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.schemagate]\nmigrations = "migrations"\n')
    (tmp_path / "migrations").mkdir()
    for name, sql in HISTORY.items():
        (tmp_path / "migrations" / name).write_text(sql)
    run_validation(load_config(tmp_path), lint=False, reports_dir=tmp_path / "reports")

    report = (tmp_path / "reports" / "report.md").read_text()
    destructive = report.index("### Destructive changes (2): review these first")
    assert destructive < report.index("### Findings")
    section = report[destructive : report.index("### Findings")]
    assert "`V3__drop_sessions.sql:1:1` | `ban-drop-table` | Dropping table sessions" in section
    assert (
        "`V2__drop_legacy_plan.sql:1` | `ban-drop-column` | (suppressed) | waived: unused since release 4.2"
        in section
    )
    # a locking problem is a finding, not a destructive change
    assert "require-concurrent-index-creation" not in section
    assert "require-concurrent-index-creation" in report[report.index("### Findings") :]
