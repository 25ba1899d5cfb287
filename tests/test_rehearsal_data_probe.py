"""The rehearsal's data probe: each data-dependent statement of a new migration is run, on a
rolled-back copy of the rehearsal database's state, against rows that it cannot accept.

The history is a small shop (users with an email, orders with a foreign key and an enum status,
a partial index, products with seed data); the new migrations are the data-dependent changes a
team commonly writes.  Real PostgreSQL throughout (``pg_admin_url``).
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import temporary_database
from tests.helpers import validate_rehearsed
from validator.config import load_config
from validator.rehearsal import rehearse
from validator.rehearsal.run import _apply, _data_probe_input, _entries, _rehearsal_settings, _rehearse_new
from validator.structural import check_structure

HISTORY = {
    "V1__users.sql": "CREATE TABLE users (\n"
    "  id bigserial PRIMARY KEY,\n"
    "  email text NOT NULL,\n"
    "  name varchar(100),\n"
    "  created_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n",
    "V2__users_email_key.sql": "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);\n",
    "V3__order_status.sql": "CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped');\n",
    "V4__orders.sql": "CREATE TABLE orders (\n"
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
    "  user_id bigint NOT NULL REFERENCES users (id),\n"
    "  status order_status NOT NULL DEFAULT 'pending',\n"
    "  total numeric(10, 2) NOT NULL,\n"
    "  currency char(3),\n"
    "  note text,\n"
    "  placed_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n",
    "V5__orders_user_idx.sql": "CREATE INDEX orders_user_id_idx ON orders (user_id);\n",
    "V6__orders_pending_idx.sql": "CREATE INDEX orders_pending_idx ON orders (placed_at) WHERE status = 'pending';\n",
    "V7__products.sql": "CREATE TABLE products (\n"
    "  id serial PRIMARY KEY,\n"
    "  sku varchar(32) NOT NULL UNIQUE,\n"
    "  price_cents integer NOT NULL CHECK (price_cents >= 0)\n"
    ");\n",
    "V8__order_items.sql": "CREATE TABLE order_items (\n"
    "  order_id bigint NOT NULL REFERENCES orders (id),\n"
    "  product_id integer NOT NULL REFERENCES products (id),\n"
    "  quantity integer NOT NULL CHECK (quantity > 0),\n"
    "  PRIMARY KEY (order_id, product_id)\n"
    ");\n",
    "V9__users_country.sql": "ALTER TABLE users ADD COLUMN country text;\n",
    "V10__coupons.sql": "CREATE TABLE coupons (id serial PRIMARY KEY, code text NOT NULL, order_id bigint);\n",
    "V11__seed_products.sql": "INSERT INTO products (sku, price_cents) VALUES ('SKU-1', 1200), ('SKU-2', 900);\n",
    "V12__paid_orders.sql": "CREATE VIEW paid_orders AS SELECT id, user_id, total FROM orders WHERE status = 'paid';\n",
}

NEW = {
    "V13__users_email_lower.sql": "CREATE UNIQUE INDEX CONCURRENTLY users_email_lower_key ON users (lower(email));\n",
    "V14__orders_currency_not_null.sql": "-- every order has a currency now\n"
    "ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;\n",
    "V15__orders_total_check.sql": "ALTER TABLE orders\n"
    "  ADD CONSTRAINT orders_total_positive CHECK (total >= 0);\n",
    "V16__coupons_order_fk.sql": "ALTER TABLE coupons\n"
    "  ADD CONSTRAINT coupons_order_fk FOREIGN KEY (order_id) REFERENCES orders (id);\n",
    "V17__users_country_code.sql": "ALTER TABLE users ALTER COLUMN country TYPE varchar(2);\n",
    "V18__orders_note_length.sql": "ALTER TABLE orders\n"
    "  ADD CONSTRAINT orders_note_length CHECK (length(note) <= 500) NOT VALID;\n",
    "V19__orders_note_length_validate.sql": "ALTER TABLE orders VALIDATE CONSTRAINT orders_note_length;\n",
}

BACKFILL = {
    "V13__orders_currency_backfill.sql": "UPDATE orders SET currency = 'EUR' WHERE currency IS NULL;\n"
    "ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;\n",
}


def _project(tmp_path: Path, files: dict[str, str], pyproject: str = ""):
    mig = tmp_path / "migrations"
    mig.mkdir()
    for name, text in files.items():
        (mig / name).write_text(text)
    if pyproject:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    config = load_config(tmp_path, migrations=mig)
    structural = check_structure(config)
    assert not [f for f in structural.findings if f.severity == "error"], structural.findings
    return config, structural


def _probes(result) -> dict[str, list]:
    return {m.file: m.data_probes for m in result.migrations if m.data_probes}


def test_each_data_dependent_change_is_shown_failing_on_probed_rows(
    tmp_path: Path, pg_admin_url: str
) -> None:
    config, structural = _project(tmp_path, {**HISTORY, **NEW})
    result = rehearse(config, structural, new=set(NEW), database_url=pg_admin_url)
    # the real run: every new migration applies (the rehearsal's own tables are empty)
    assert {m.file: m.status for m in result.migrations} == dict.fromkeys(NEW, "applied")
    probes = _probes(result)
    assert set(probes) == set(NEW) - {"V18__orders_note_length.sql"}  # NOT VALID checks no existing row
    states = {file: [(p.status, p.sqlstate) for p in ps] for file, ps in probes.items()}
    assert states == {
        "V13__users_email_lower.sql": [("fails", "23505")],
        "V14__orders_currency_not_null.sql": [("fails", "23502")],
        "V15__orders_total_check.sql": [("fails", "23514")],
        "V16__coupons_order_fk.sql": [("fails", "23503")],
        "V17__users_country_code.sql": [("fails", "22001")],
        "V19__orders_note_length_validate.sql": [("fails", "23514")],
    }
    [unique] = probes["V13__users_email_lower.sql"]
    assert "differing only in case ('Ann.Lee@example.com', 'ann.lee@example.com')" in unique.rows
    assert "could not create unique index" in (unique.message or "")
    assert "total = -1.00" in probes["V15__orders_total_check.sql"][0].rows
    assert "no match in orders" in probes["V16__coupons_order_fk.sql"][0].rows
    assert "value too long" in (probes["V17__users_country_code.sql"][0].message or "")

    found = {f.file: f for f in result.findings if f.rule == "rehearsal-data-dependent"}
    assert set(found) == set(probes)
    email = found["V13__users_email_lower.sql"]
    assert (email.severity, email.family, email.line) == ("warning", "rehearsal", 1)
    assert email.message.startswith("with two rows sharing email differing only in case")
    assert "this statement fails: 23505 could not create unique index" in email.message
    assert "duplicates" in email.help
    assert found["V14__orders_currency_not_null.sql"].line == 2  # the statement's line, after the comment
    assert "backfill" in found["V14__orders_currency_not_null.sql"].help
    assert "NOT VALID" in found["V16__coupons_order_fk.sql"].help
    markdown = result.markdown()
    assert "Data probe" in markdown
    assert "`V14__orders_currency_not_null.sql` line 2" in markdown
    as_json = result.to_json()
    [v13] = [m for m in as_json["migrations"] if m["file"] == "V13__users_email_lower.sql"]
    assert v13["data_probes"][0]["sqlstate"] == "23505"


def test_a_migration_that_backfills_first_holds_on_the_probed_rows(tmp_path: Path, pg_admin_url: str) -> None:
    config, structural = _project(tmp_path, {**HISTORY, **BACKFILL})
    result = rehearse(config, structural, new=set(BACKFILL), database_url=pg_admin_url)
    [probe] = result.migrations[0].data_probes
    # the NULL went in, the migration's own UPDATE filled it, and SET NOT NULL succeeded
    assert (probe.status, probe.kind, probe.columns) == ("holds", "not-null", ["currency"])
    assert probe.rows == "a row holding NULL in currency"
    assert not [f for f in result.findings if f.rule == "rehearsal-data-dependent"]


def test_an_insufficient_backfill_is_caught(tmp_path: Path, pg_admin_url: str) -> None:
    files = {
        "V13__orders_currency_backfill.sql": "UPDATE orders SET currency = 'EUR' WHERE currency = '';\n"
        "ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;\n",
    }
    config, structural = _project(tmp_path, {**HISTORY, **files})
    result = rehearse(config, structural, new=set(files), database_url=pg_admin_url)
    [probe] = result.migrations[0].data_probes
    assert (probe.status, probe.sqlstate) == ("fails", "23502")
    [finding] = [f for f in result.findings if f.rule == "rehearsal-data-dependent"]
    assert (finding.file, finding.line) == ("V13__orders_currency_backfill.sql", 2)


def test_the_rule_level_applies_to_the_probe_finding(tmp_path: Path, pg_admin_url: str) -> None:
    files = {"V13__orders_currency_not_null.sql": NEW["V14__orders_currency_not_null.sql"]}
    config, structural = _project(
        tmp_path,
        {**HISTORY, **files},
        pyproject='[tool.schemagate.rules]\nrehearsal-data-dependent = "error"\n',
    )
    result = rehearse(config, structural, new=set(files), database_url=pg_admin_url)
    [finding] = [f for f in result.findings if f.rule == "rehearsal-data-dependent"]
    assert finding.severity == "error"


def _fingerprint(url: str) -> dict[str, object]:
    """What a later migration (or a reviewer) could see of the database: schema, rows, sequences."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            out: dict[str, object] = {}
            cur.execute(
                "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, "
                "column_default FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
            )
            out["columns"] = cur.fetchall()
            cur.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated "
                "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
            )
            out["constraints"] = cur.fetchall()
            cur.execute(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'public'::regnamespace "
                "ORDER BY 1"
            )
            out["indexes"] = cur.fetchall()
            cur.execute("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")
            out["sequences"] = cur.fetchall()
            cur.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
            )
            for (table,) in sorted(cur.fetchall()):
                if table == "schemagate_history":
                    cur.execute(f'SELECT version, script, checksum, success FROM "{table}" ORDER BY 1')
                else:
                    cur.execute(f'SELECT * FROM "{table}" ORDER BY 1')
                out[f"rows of {table}"] = cur.fetchall()
        return out
    finally:
        conn.close()


def _locks(migrations) -> list[tuple]:
    """Status, locks and rewrites of each migration.  A non-transactional migration's locks are
    samples from a second connection (which lock on its own new index is caught varies between
    runs), so of those only the locks on tables that existed before count."""
    return [
        (
            m.file,
            m.status,
            m.transactional,
            sorted(
                (li.relation, li.mode, li.existed_before)
                for li in m.locks
                if m.transactional or li.existed_before
            ),
            m.rewritten,
        )
        for m in migrations
    ]


def test_the_probe_changes_nothing_the_real_run_sees(tmp_path: Path, pg_admin_url: str) -> None:
    # a new migration that uses a sequence too: the probe's run of it must not move the sequence
    seeded = {
        **NEW,
        "V20__first_coupon.sql": "INSERT INTO coupons (code) VALUES ('WELCOME');\n"
        "CREATE UNIQUE INDEX coupons_code_key ON coupons (code);\n",
    }
    config, structural = _project(tmp_path, {**HISTORY, **seeded})
    entries = _entries(structural)
    base = [e for e in entries if e[0].file not in seeded]
    fresh = [e for e in entries if e[0].file in seeded]
    settings = _rehearsal_settings(config)
    probe_input = _data_probe_input(config, structural, entries, fresh)
    assert probe_input is not None and "V20__first_coupon.sql" in probe_input.targets
    with temporary_database(pg_admin_url) as with_probe, temporary_database(pg_admin_url) as without:
        for url in (with_probe, without):
            _apply(url, base, settings, None)
        probed, probed_findings = _rehearse_new(with_probe, base, fresh, settings, probe_input)
        plain, plain_findings = _rehearse_new(without, base, fresh, settings, None)
        assert _locks(probed) == _locks(plain)
        assert [m.data_probes for m in plain] == [[]] * len(plain)
        assert any(m.data_probes for m in probed)
        other = [(f.rule, f.file) for f in probed_findings if f.rule != "rehearsal-data-dependent"]
        assert other == [(f.rule, f.file) for f in plain_findings]
        [coupon] = [m for m in probed if m.file == "V20__first_coupon.sql"]
        assert coupon.data_probes[0].status == "fails", coupon.data_probes  # two probe rows share a code
        after_probe, after_plain = _fingerprint(with_probe), _fingerprint(without)
        assert after_probe == after_plain
        assert after_plain["rows of coupons"] == [(1, "WELCOME", None)]


def test_the_probe_can_be_turned_off(tmp_path: Path, pg_admin_url: str) -> None:
    config, structural = _project(
        tmp_path,
        {**HISTORY, "V13__orders_currency_not_null.sql": NEW["V14__orders_currency_not_null.sql"]},
        pyproject="[tool.schemagate.rehearsal]\ndata_probe = false\n",
    )
    result = rehearse(
        config, structural, new={"V13__orders_currency_not_null.sql"}, database_url=pg_admin_url
    )
    assert [m.status for m in result.migrations] == ["applied"]
    assert _probes(result) == {}
    assert not [f for f in result.findings if f.rule == "rehearsal-data-dependent"]


def test_what_cannot_be_probed_says_why(tmp_path: Path, pg_admin_url: str) -> None:
    files = {
        "V13__orders_total_odd.sql": "ALTER TABLE orders ADD CONSTRAINT orders_total_odd CHECK (total % 2 = 1);\n",
        "V14__orders_pending_unique.sql": "CREATE UNIQUE INDEX orders_one_pending ON orders (user_id) "
        "WHERE status = 'pending';\n",
    }
    config, structural = _project(tmp_path, {**HISTORY, **files})
    result = rehearse(config, structural, new=set(files), database_url=pg_admin_url)
    probes = _probes(result)
    [odd] = probes["V13__orders_total_odd.sql"]
    assert odd.status == "not probed" and "column" in (odd.note or "")
    [pending] = probes["V14__orders_pending_unique.sql"]
    assert pending.status == "not probed" and "partial unique index" in (pending.note or "")
    assert not [f for f in result.findings if f.rule == "rehearsal-data-dependent"]


@pytest.mark.parametrize("value", ["1", '"no"'])
def test_a_setting_that_is_not_a_boolean_is_refused(tmp_path: Path, pg_admin_url: str, value: str) -> None:
    from executor.errors import ConfigurationError

    config, structural = _project(
        tmp_path, {**HISTORY, **BACKFILL}, pyproject=f"[tool.schemagate.rehearsal]\ndata_probe = {value}\n"
    )
    with pytest.raises(ConfigurationError, match="data_probe"):
        rehearse(config, structural, new=set(BACKFILL), database_url=pg_admin_url)


def test_validate_rehearse_reports_the_probe_end_to_end(
    tmp_path: Path, pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {**HISTORY, "V13__users_email_lower.sql": NEW["V13__users_email_lower.sql"]}
    _project(tmp_path, files, pyproject='[tool.schemagate]\naccepted_history = "12"\n')
    monkeypatch.chdir(tmp_path)  # the project's pyproject.toml: V1-V12 are accepted history
    reports = tmp_path / "reports"
    run = validate_rehearsed(tmp_path / "migrations", reports, pg_admin_url)
    assert run.exit_code == 0, run.output  # warnings only
    assert (
        "V13__users_email_lower.sql:1:1 rehearsal-data-dependent: with two rows sharing email" in run.output
    )
    markdown = (reports / "report.md").read_text()
    assert "this statement fails: 23505 could not create unique index" in markdown
    data = json.loads((reports / "report.json").read_text())
    rehearsal = [
        (f["rule"], f["file"], f["line"], f["severity"])
        for f in data["findings"]
        if f["family"] == "rehearsal"
    ]
    assert ("rehearsal-data-dependent", "V13__users_email_lower.sql", 1, "warning") in rehearsal
