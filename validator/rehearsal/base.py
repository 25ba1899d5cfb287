"""The base state: the history that is not new, applied once and kept as a template database.

The key of a base (``base_key``) is the SHA-256 of the base files' names, checksums and flags,
the history table settings and the setup script, so the next run with the same base only copies
the template (``CREATE DATABASE ... TEMPLATE``: a file copy, no SQL replayed).  At most
``KEEP_BASES`` templates are kept per server, the least recently used dropped first.

Every database a run creates is *claimed* (``BaseStore.claim``: a session advisory lock on its
name); ``BaseStore.sweep`` drops what killed runs left behind.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.errors
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from executor.connection import scalar
from executor.errors import ConfigurationError
from executor.headers import line_and_column
from executor.manifest import ManifestEntry
from executor.settings import ExecutorSettings
from validator.rehearsal.server import drop_database

if TYPE_CHECKING:
    from validator.config import ValidatorConfig

REHEARSAL_PREFIX = "sg_rehearsal_"
BASE_PREFIX = "sg_base_"
BUILD_INFIX = "_build_"
# first key of the session advisory lock by which a run owns the databases it creates ("SG")
OWNER_LOCK_CLASS = 0x5347
KEEP_BASES = 4
# bump when what a base template holds changes meaning (it is part of every base key)
BASE_FORMAT = 1

Entry = tuple[ManifestEntry, bytes]  # a migration and its bytes


@dataclass(frozen=True)
class Setup:
    """``[tool.schemagate.rehearsal] setup = "db/rehearsal_setup.sql"``: SQL run in the throwaway
    database before the history, for what production has but no migration creates (roles,
    extensions).  Roles are per server, so write it to run twice (``DO ... EXCEPTION WHEN
    duplicate_object``).  Part of the base key: editing it rebuilds the base."""

    path: str  # as configured, relative to the project root
    sql: str

    def run(self, url: str) -> None:
        conn = psycopg2.connect(url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(self.sql)
        except psycopg2.Error as exc:
            position = exc.diag.statement_position
            # statement_position counts characters from 1
            line = (
                line_and_column(self.sql, int(position) - 1)[0] if position and position.isdigit() else None
            )
            reason = (exc.diag.message_primary or str(exc)).strip()
            raise ConfigurationError(
                f"the rehearsal setup script {self.path} failed: {reason} (SQLSTATE {exc.pgcode})",
                file=self.path,
                line=line,
                remedy="fix the script; it runs on every new rehearsal server, so make it idempotent",
            ) from None
        finally:
            conn.close()


def load_setup(config: ValidatorConfig) -> Setup | None:
    table = config.raw.get("rehearsal") or {}
    if not isinstance(table, dict) or not table.get("setup"):
        return None
    path = str(table["setup"])
    full = config.project_root / path
    try:
        return Setup(path, full.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"[tool.schemagate.rehearsal] setup = {path!r} cannot be read: {exc}",
            file="pyproject.toml",
            remedy="point setup at a UTF-8 SQL file relative to the project root, or remove the key",
        ) from None


def base_key(entries: list[Entry], settings: ExecutorSettings, setup: Setup | None = None) -> str:
    """What the base template holds: the base files (names, checksums, flags), the history table
    settings and the setup script."""
    material = {
        "format": BASE_FORMAT,
        "history": [settings.schema, settings.table, settings.search_path],
        "setup": hashlib.sha256(setup.sql.encode()).hexdigest() if setup else None,
        "files": [
            [e.file, e.kind, e.version, e.sha256, e.transactional, sorted(e.settings.items())]
            for e, _ in entries
        ],
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _like(literal: str) -> str:
    """``literal`` as a LIKE pattern matching itself (``_`` is a wildcard in LIKE)."""
    return literal.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def base_template_name(key: str) -> str:
    return f"{BASE_PREFIX}{key[:24]}"


class BaseStore:
    """Template databases of base states on the rehearsal server (admin connection, autocommit).

    Every database a run creates is *claimed* first: a session advisory lock on its name, held by
    the admin connection until the run ends.  ``sweep`` drops throwaway and half-built databases
    whose claim is gone (their run was killed) and that nobody is connected to.
    """

    def __init__(self, admin: Connection) -> None:
        self.admin = admin

    def claim(self, name: str) -> None:
        with self.admin.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (OWNER_LOCK_CLASS, name))

    def sweep(self) -> list[str]:
        """Drop leftovers of killed runs; returns their names."""
        dropped = []
        with self.admin.cursor() as cur:
            cur.execute(
                "SELECT d.datname FROM pg_database d WHERE (d.datname LIKE %s OR d.datname LIKE %s) "
                "AND NOT d.datistemplate "
                "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
                (_like(REHEARSAL_PREFIX) + "%", _like(BASE_PREFIX) + "%" + _like(BUILD_INFIX) + "%"),
            )
            for (name,) in cur.fetchall():
                if not scalar(cur, "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (OWNER_LOCK_CLASS, name)):
                    continue  # a live run owns it
                try:
                    with suppress(psycopg2.Error):
                        drop_database(cur, name)
                        dropped.append(name)
                finally:
                    cur.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (OWNER_LOCK_CLASS, name))
        return dropped

    def exists(self, name: str) -> bool:
        with self.admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s AND datistemplate", (name,))
            return cur.fetchone() is not None

    def clone(self, template: str, target: str) -> bool:
        """Create ``target`` as a copy of ``template``; False when the template is gone (evicted by
        another run in between) or busy."""
        with self.admin.cursor() as cur:
            create = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
            try:
                cur.execute(create.format(sql.Identifier(target), sql.Identifier(template)))
            except (psycopg2.errors.InvalidCatalogName, psycopg2.errors.ObjectInUse):
                return False
            with suppress(psycopg2.Error):  # LRU mark; the template may be dropped right now
                cur.execute(
                    sql.SQL("COMMENT ON DATABASE {} IS %s").format(sql.Identifier(template)),
                    (f"schemagate rehearsal base; last used {time.time():.0f}",),
                )
        return True

    def create_empty(self, name: str) -> None:
        with self.admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))

    def publish(self, build: str, template: str) -> None:
        """Turn a finished build database into the template (a concurrent run may have won)."""
        with self.admin.cursor() as cur:
            ident = sql.Identifier(build)
            cur.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident))
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (build,))
            try:
                cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident, sql.Identifier(template)))
            except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
                # another run published the same base first (two renames at the same instant
                # surface as the catalog's unique violation)
                drop_database(cur, build)
                return
            cur.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(template)))
            cur.execute(
                sql.SQL("COMMENT ON DATABASE {} IS %s").format(sql.Identifier(template)),
                (f"schemagate rehearsal base; last used {time.time():.0f}",),
            )
        self.evict(keep=template)

    def evict(self, *, keep: str, limit: int = KEEP_BASES) -> list[str]:
        """Drop the least recently used base templates beyond ``limit``."""
        with self.admin.cursor() as cur:
            cur.execute(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname LIKE %s AND datistemplate",
                (_like(BASE_PREFIX) + "%",),
            )
            rows = cur.fetchall()

            def last_used(comment: str | None) -> float:
                with suppress(AttributeError, ValueError, IndexError):
                    return float(comment.rsplit(" ", 1)[1])  # type: ignore[union-attr]
                return 0.0

            ranked = sorted(rows, key=lambda r: last_used(r[1]), reverse=True)
            dropped = [name for name, _ in ranked[limit:] if name != keep]
            for name in dropped:
                with suppress(psycopg2.Error):  # being copied by another run right now: next time
                    drop_database(cur, name)
        return dropped

    def forget(self, key: str) -> None:
        """Drop the template of one base (the next run builds it again: a cold run)."""
        with self.admin.cursor() as cur:
            drop_database(cur, base_template_name(key))
