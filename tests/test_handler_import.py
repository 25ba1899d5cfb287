"""The Lambda's `import` action: a team takes over a production database from Flyway without opening a
connection from a laptop.  The real handler, moto for S3 and Secrets Manager, a real PostgreSQL that
Flyway migrated (tests/flyway_state.py), the bundle built by the validator from the same files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from executor.handler import handle
from tests.flyway_state import flyway_migrate, flyway_order, flyway_rows
from tests.histories import flyway_billing
from tests.test_handler import ARTIFACT, LambdaContext, World, aws_world
from validator.config import load_config
from validator.structural import bundle_from_directory

BUNDLE = f"s3://{ARTIFACT['bucketName']}/{ARTIFACT['objectKey']}"


@pytest.fixture
def flyway_world(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[World, Path]]:
    root = flyway_billing.write(tmp_path / "db" / "migration")
    flyway_migrate(fresh_db, root, upto=14)  # production is at V014; V015.. are new
    with aws_world(fresh_db, monkeypatch) as world:
        world.upload(bundle_from_directory(load_config(tmp_path, migrations=root)))
        yield world, root


def test_import_takes_over_then_apply_applies_only_what_flyway_had_not(
    flyway_world: tuple[World, Path],
) -> None:
    world, root = flyway_world
    old = flyway_rows(world.db_url)

    dry = handle({"action": "import", "from": "flyway", "bundle": BUNDLE, "dry_run": True}, LambdaContext())
    assert dry["ok"] is True and dry["written"] is False and len(dry["imported"]) == 14
    assert "schemagate_history" not in world.tables()  # a dry run creates nothing

    answer = handle({"action": "import", "from": "flyway", "bundle": BUNDLE}, LambdaContext())
    assert answer["ok"] is True and answer["written"] is True, answer
    assert [r["script"] for r in answer["imported"]] == flyway_order(root)[:14]
    assert [(s, ok, run) for s, ok, run, _ in world.history()] == [
        (s, True, "import:flyway") for s in flyway_order(root)[:14]
    ]
    assert flyway_rows(world.db_url) == old

    again = handle({"action": "import", "from": "flyway", "bundle": BUNDLE}, LambdaContext())
    assert again["ok"] is True and again["imported"] == [] and again["already_imported"] == 14
    assert "nothing to import" in again["summary"]

    applied = handle({"action": "apply", "bundle": BUNDLE}, LambdaContext())
    assert applied["ok"] is True, applied
    assert [a["script"] for a in applied["applied"]] == flyway_order(root)[14:]


def test_a_refused_import_answers_the_category_and_writes_nothing(flyway_world) -> None:
    world, _ = flyway_world
    conn = psycopg2.connect(world.db_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("UPDATE flyway_schema_history SET success = false WHERE installed_rank = 9")
    conn.close()
    answer = handle({"action": "import", "from": "flyway", "bundle": BUNDLE}, LambdaContext())
    assert answer["ok"] is False and answer["rule"] == "import-failed-migration"
    assert answer["category"] == "CHECKSUM_MISMATCH" and "flyway repair" in answer["remedy"]
    assert "schemagate_history" not in world.tables()


def test_import_needs_a_known_tool(flyway_world) -> None:
    answer = handle({"action": "import", "from": "liquibase", "bundle": BUNDLE}, LambdaContext())
    assert answer["ok"] is False and answer["category"] == "CONFIGURATION_ERROR"
    assert "flyway" in answer["message"]
