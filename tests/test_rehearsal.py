"""Rehearsal: migrations applied to a throwaway database, with the locks they took.

The lowest layer (validator.rehearsal_locks) is tested with raw psycopg2 on ``fresh_db``; the
rehearsal itself on the test server (``pg_admin_url``) through ``rehearse``.
"""

from __future__ import annotations

import psycopg2
import pytest

from validator.rehearsal_locks import (
    LockObserver,
    held_relation_locks,
    mode_label,
    rewritten_tables,
    snapshot_relations,
    summarize_locks,
)


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
            pid = cur.fetchone()[0]
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
