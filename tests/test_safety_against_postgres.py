"""The rules whose verdict PostgreSQL can confirm, checked against the real server.

A Prisma-generated history (tests/safety_corpus/prisma_history.py) is applied to a fresh database
the way the executor applies it, one transaction per file:

- ``enum-value-in-transaction`` must report exactly the files PostgreSQL refuses with "unsafe use
  of new value" (not a second enum that gets the same label, not ``AFTER 'x'``, not a text column);
- ``adding-field-with-default`` must report exactly the tables whose ``ADD COLUMN`` PostgreSQL
  rewrites (the table's relfilenode changes), so ``DEFAULT 'x'::"MyEnum"`` and ``DEFAULT
  "MyEnum"('x')`` pass and a volatile default or a constrained domain does not.
"""

from __future__ import annotations

import re

import psycopg2
import pytest

from tests.safety_corpus.prisma_history import PRISMA_HISTORY, SEED_ROWS
from validator.safety import check_sql
from validator.safety.source import source_file

TABLES = ("User", "Order", "Payment")


def _filenodes(cur) -> dict[str, int]:
    cur.execute(
        "SELECT relname, pg_relation_filenode(oid) FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r'",
        (list(TABLES),),
    )
    return dict(cur.fetchall())


def _apply_like_the_executor(url: str) -> tuple[set[str], dict[str, set[str]]]:
    """Apply every file in one transaction; return the files PostgreSQL refused for an unsafe use of
    a new enum value, and per file the tables it rewrote.  A refused file is then applied statement
    by statement in autocommit, so the history goes on as if it had been split."""
    refused: set[str] = set()
    rewritten: dict[str, set[str]] = {}
    conn = psycopg2.connect(url)
    try:
        for m in PRISMA_HISTORY:
            with conn.cursor() as cur:
                before = _filenodes(cur)
                try:
                    cur.execute(m.sql)
                    after = _filenodes(cur)
                    conn.commit()
                except psycopg2.Error as exc:
                    conn.rollback()
                    assert "unsafe use of new value" in str(exc), f"{m.name}: {exc}"
                    refused.add(m.name)
                    conn.autocommit = True
                    for stmt in source_file(m.sql, file=m.name).statements:
                        cur.execute(stmt.text)
                    conn.autocommit = False
                    after = _filenodes(cur)
                rewritten[m.name] = {t for t in before if after.get(t) != before[t]}
                if m.name == "V1__init.sql":
                    cur.execute(SEED_ROWS)
                    conn.commit()
    finally:
        conn.close()
    return refused, rewritten


@pytest.fixture(scope="module")
def findings():
    result = check_sql({m.name: m.sql for m in PRISMA_HISTORY})
    return result.findings


def test_enum_value_in_transaction_reports_exactly_what_postgresql_refuses(fresh_db: str, findings) -> None:
    refused, _ = _apply_like_the_executor(fresh_db)
    reported = {f.file for f in findings if f.rule == "enum-value-in-transaction"}
    assert refused == {m.name for m in PRISMA_HISTORY if m.enum_failure}
    assert reported == refused


def test_adding_field_with_default_reports_exactly_the_tables_postgresql_rewrites(
    fresh_db: str, findings
) -> None:
    _, rewritten = _apply_like_the_executor(fresh_db)
    reported: dict[str, set[str]] = {m.name: set() for m in PRISMA_HISTORY if m.name != "V1__init.sql"}
    for f in findings:
        if f.rule == "adding-field-with-default":
            added = re.match(r"Adding (\w+)\.", f.message)
            assert f.file is not None and added is not None, f
            reported[f.file].add(added.group(1))
    rewritten.pop("V1__init.sql")
    assert {k: v for k, v in rewritten.items() if v} == {
        "V9__order_token.sql": {"Order"},
        "V10__user_score.sql": {"User"},
    }
    assert reported == rewritten


def test_the_false_positives_seen_on_real_histories_stay_fixed(findings) -> None:
    """The shapes from the report: other enum types with the same label, ``AFTER``/``BEFORE`` a value
    added just before, and cast-shaped defaults.  Pinned with positions, without a database."""
    got = [(f.rule, f.file, f.line, f.column) for f in findings]
    quiet = {"V2__cancellations.sql", "V3__more_roles.sql", "V4__refunds.sql", "V7__disputes.sql"}
    assert not [g for g in got if g[0] == "enum-value-in-transaction" and g[1] in quiet]
    cast_defaults = {"V5__payment_method.sql", "V6__priorities_and_tiers.sql"}
    assert not [g for g in got if g[0] == "adding-field-with-default" and g[1] in cast_defaults]
    assert ("enum-value-in-transaction", "V8__on_hold.sql", 2, 1) in got
    assert ("enum-value-in-transaction", "V11__archived_orders.sql", 2, 1) in got
    [on_hold] = [f for f in findings if f.rule == "enum-value-in-transaction" and f.file == "V8__on_hold.sql"]
    assert on_hold.message == (
        "The new value 'ON_HOLD' of enum OrderStatus is used later in the same transaction (line 5), "
        "which fails with 'unsafe use of new value'."
    )
