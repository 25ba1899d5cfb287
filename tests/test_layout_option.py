"""``--layout`` on ``validate`` and ``run`` (as on new, plan, apply, info, undo, baseline, import, repair):
the given layout wins over detection and over ``[tool.schemagate] layout``, the bundle records it, and
a wrong one refuses before anything touches the database."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import psycopg2
import pytest

from executor.bundle import load_bundle
from schemagate.cli import main
from tests.helpers import fetch_value
from tests.histories import golang_migrate_fleet

UPS = sum(1 for rel in golang_migrate_fleet.FILES if rel.endswith(".up.sql"))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "fleet-service"
    golang_migrate_fleet.write(root / golang_migrate_fleet.ROOT)
    (root / "pyproject.toml").write_text(
        f'[tool.schemagate]\nmigrations = "{golang_migrate_fleet.ROOT}"\n\n[tool.schemagate.lint]\nenabled = false\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(root)
    return root


def accept_the_history(project: Path) -> None:
    """Mark every migration as accepted history (the realistic history has findings of its own)."""
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.schemagate]\n", f'[tool.schemagate]\naccepted_history = "{UPS}"\n'
        )
    )


def validate(project: Path, *args: str) -> tuple[int, dict]:
    code = main(["validate", "--reports", "reports", *args])
    return code, json.loads((project / "reports" / "report.json").read_text())


def history_table(url: str) -> str | None:
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.schemagate_history')::text")
        return fetch_value(cur)


def test_validate_with_the_right_layout_bundles_it(project: Path, capsys) -> None:
    accept_the_history(project)
    code, report = validate(project, "--layout", "golang-migrate", "--bundle", "bundle")
    assert code == 0, [f for f in report["findings"] if f["severity"] == "error"]
    manifest = load_bundle(project / "bundle").manifest
    assert manifest.layout == "golang-migrate"
    assert sum(1 for e in manifest.migrations if e.kind == "versioned") == UPS


def test_validate_with_another_layout_judges_the_files_in_its_terms(project: Path, capsys) -> None:
    code, report = validate(project, "--layout", "flyway", "--bundle", "bundle")
    assert code == 1
    naming = [f for f in report["findings"] if f["family"] == "naming" and f["severity"] == "error"]
    assert {f["file"] for f in naming} >= {
        "000001_create_companies.up.sql",
        "000028_shipments_weight_numeric.up.sql",
    }
    assert any("V" in f["help"] for f in naming)  # a Flyway name is shown as the remedy
    assert not (project / "bundle" / "manifest.json").exists()


def test_the_option_wins_over_the_configured_layout(project: Path, capsys) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.schemagate]\n", '[tool.schemagate]\nlayout = "dbmate"\n')
    )
    configured = main(["validate", "--reports", "reports"])
    assert configured == 1  # dbmate does not read golang-migrate's files
    accept_the_history(project)
    given, report = validate(project, "--layout", "golang-migrate")
    assert given == 0, [f for f in report["findings"] if f["severity"] == "error"]


def test_run_with_the_layout_applies_the_history(project: Path, fresh_db: str, capsys) -> None:
    accept_the_history(project)
    assert main(["run", "--layout", "golang-migrate", "--database-url", fresh_db, "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"applied {UPS} migrations" in out
    with contextlib.closing(psycopg2.connect(fresh_db)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM schemagate_history WHERE success")
        assert cur.fetchone() == (UPS,)


def test_run_with_a_wrong_layout_refuses_and_touches_nothing(project: Path, fresh_db: str, capsys) -> None:
    assert main(["run", "--layout", "flyway", "--database-url", fresh_db, "--yes"]) == 1
    assert "nothing touched the database" in capsys.readouterr().out
    assert history_table(fresh_db) is None
