"""Rehearsal: apply the history and then each new migration to a throwaway PostgreSQL database,
and report what every new migration really did: failures at the line PostgreSQL named, the
locks it held, the tables it rewrote and how long it took.

How a run goes (``rehearse``):

1. A *rehearsal server*: ``--rehearsal-database-url`` (any server where we may CREATE DATABASE),
   otherwise the embedded PostgreSQL under ``.schemagate/rehearsal`` (started for the run and
   stopped afterwards unless it was already running).  ``$DATABASE_URL`` is never
   read, let alone connected to; the only databases this module connects to are the ones it
   created (``sg_rehearsal_<token>`` and ``sg_base_<key>_build_<token>``); on the server's
   maintenance database it only issues CREATE/ALTER/DROP DATABASE for names with those prefixes.
2. The *base state*: every migration not in ``new`` (what validate does not judge: unchanged
   since ``--base-ref``, or accepted history), applied in
   order by the executor's own code.  It is kept as a template database ``sg_base_<key>``, where
   the key is the SHA-256 of the base files' names, checksums and flags plus the history table
   settings, so the next run with the same base only copies it (``CREATE DATABASE ... TEMPLATE``:
   a file copy, no SQL replayed).  At most ``KEEP_BASES`` templates are kept per server (least
   recently used dropped first).
3. The new migrations, one by one, by the executor (one ``executor.apply.apply`` run over base +
   new, so the plan, header settings, statement splitting and error lines are production's) in a
   copy of the base, with ``ApplyHooks`` around each: ``before_migration`` snapshots every
   relation's relfilenode; for a transactional migration ``before_commit`` reads the locks its
   own backend holds (nothing is released before COMMIT); a non-transactional one is watched
   from a second connection (``validator.rehearsal_locks.LockObserver``).  Relfilenodes before
   and after tell which tables were rewritten; relations absent before were created by the
   migration and are exempt.  After the first failure the remaining new migrations are not
   rehearsed (they may depend on it) and the report says so; a new file with syntax errors stops
   the rehearsal before it.
4. The throwaway database is dropped.  A killed run's leftovers are dropped by the next run
   (``BaseStore.sweep``: each run holds an advisory lock on the names it created).

Severities: a migration that fails is an ``error`` (it would fail in production too, and its
transaction would hold its locks until rollback); a write-blocking lock on an existing table or a
rewrite is a ``warning`` -- often intended, so it informs the approver rather than blocking the
bundle (``blocking_severity = "warning"`` turns it into a gate).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql
from psycopg2.extensions import make_dsn, parse_dsn

from executor.apply import AppliedMigration, ApplyHooks
from executor.apply import apply as executor_apply
from executor.bundle import make_bundle
from executor.connection import connect as executor_connect
from executor.errors import ConfigurationError, ConnectionFailure, SchemagateError
from executor.manifest import ManifestEntry
from executor.settings import ExecutorSettings
from validator.config import ValidatorConfig
from validator.findings import ERROR, WARNING, Finding, docs_link
from validator.rehearsal_locks import (
    LockInfo,
    LockObserver,
    LockSample,
    RelationState,
    held_relation_locks,
    rewritten_tables,
    snapshot_relations,
    summarize_locks,
)

FAMILY = "rehearsal"
RULE_FAILED = "rehearsal-failed"
RULE_BASE_FAILED = "rehearsal-base-failed"
RULE_BLOCKING_LOCK = "rehearsal-blocking-lock"
RULE_REWRITE = "rehearsal-table-rewrite"

REHEARSAL_PREFIX = "sg_rehearsal_"
BASE_PREFIX = "sg_base_"
BUILD_INFIX = "_build_"
# first key of the session advisory lock by which a run owns the databases it creates ("SG")
OWNER_LOCK_CLASS = 0x5347
KEEP_BASES = 4
GATE_TIMEOUT_S = 1.0  # longest a non-transactional migration is held at the snapshot gate
MARKDOWN_MAX_ROWS = 100  # rows in report.md's table (notable ones kept first); report.json has all
MARKDOWN_MAX_DETAILS = 25  # lock tables in report.md
# bump when what a base template holds changes meaning (it is part of every base key)
BASE_FORMAT = 1

Entry = tuple[ManifestEntry, bytes]


# -- results -------------------------------------------------------------------------------------


@dataclass
class RehearsedMigration:
    file: str
    duration_ms: int | None
    transactional: bool
    locks: list[LockInfo] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)  # relations whose relfilenode changed
    note: str | None = None
    status: str = "applied"  # "applied" | "failed" | "not rehearsed"
    error: dict[str, Any] | None = None  # {"sqlstate", "message", "line", "column"} when failed

    @property
    def flagged(self) -> list[LockInfo]:
        return [li for li in self.locks if li.flagged]

    @property
    def notable(self) -> bool:
        """Worth a lock table of its own in report.md."""
        return self.status != "applied" or bool(self.flagged or self.rewritten) or not self.transactional

    def effect(self) -> str:
        """What it does, as the end of a sentence starting with the file name."""
        if self.status == "failed":
            err = self.error or {}
            where = f" at line {err['line']}" if err.get("line") else ""
            state = f" (SQLSTATE {err['sqlstate']})" if err.get("sqlstate") else ""
            return f"fails{where}: {err.get('message') or ''}{state}".rstrip()
        if self.status != "applied":
            return f"was not rehearsed: {self.note}"
        locked = {li.relation for li in self.flagged}
        parts = []
        for li in self.flagged:
            rewrite = " and rewrites it" if li.relation in self.rewritten else ""
            parts.append(f"takes {li.mode} on {li.relation}{rewrite}")
        parts.extend(f"rewrites {rel}" for rel in self.rewritten if rel not in locked)
        return "; ".join(parts) if parts else "takes no lock that blocks writes on an existing table"

    def headline(self) -> str:
        """One sentence for the approver: "V044 takes ACCESS EXCLUSIVE on public.orders and rewrites it"."""
        return f"{self.file} {self.effect()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "transactional": self.transactional,
            "locks": [li.to_dict() for li in self.locks],
            "rewritten": list(self.rewritten),
            "note": self.note,
            "error": self.error,
            "summary": self.headline(),
        }


@dataclass
class RehearsalResult:
    findings: list[Finding]
    migrations: list[RehearsedMigration]
    base_reused: bool
    base_seconds: float
    base_files: int = 0
    server: str = ""  # "embedded PostgreSQL under ..." or host:port (never a password)
    server_version: str = ""
    total_seconds: float = 0.0
    database: str = ""  # the throwaway database (dropped when rehearse returns)
    base_key: str = ""  # key of the cached base state (BaseStore.forget(key) drops it)
    blocking_severity: str = ERROR  # config.blocking_severity: which findings fail a JUnit case

    title = "Rehearsal"

    def markdown(self) -> str:
        """The section body (the report adds the "Rehearsal" heading): what the run was, a table
        with one row per new migration, and the lock table of every migration worth a look
        (failed, write-blocking, rewriting, non-transactional; all of them when there are few)."""
        n, took = self.base_files, f"{self.base_seconds:.2f} s"
        if n == 0:
            base = "on an empty database"
        elif self.base_reused:
            base = f"after {n} base migration(s), copied from a cached template in {took}"
        else:
            base = f"after {n} base migration(s), applied in {took} (now cached)"
        lines = [
            f"{len(self.migrations)} new migration(s) rehearsed on PostgreSQL {self.server_version} "
            f"({self.server}) {base}; total {self.total_seconds:.2f} s."
            if self.server_version
            else "Nothing was rehearsed: "
            + ("the first new migration has syntax errors." if self.migrations else "no new migration."),
            "",
        ]
        if not self.migrations:
            return lines[0] + "\n"
        ordered = self.migrations  # application order; past the cap, the notable ones are kept
        keep = set(sorted(range(len(ordered)), key=lambda i: not ordered[i].notable)[:MARKDOWN_MAX_ROWS])
        shown = [m for i, m in enumerate(ordered) if i in keep]
        lines += ["| migration | result | time | what it does to existing tables |", "|---|---|---:|---|"]
        for m in shown:
            lines.append(f"| `{m.file}` | {_result_cell(m)} | {_took(m)} | {_md(m.effect())} |")
        if len(ordered) > len(shown):
            more = len(ordered) - len(shown)
            lines.append(f"| … | {more} more, none failed or blocking writes | | (in report.json) |")
        lines.append("")
        detailed = [m for m in self.migrations if m.locks and (m.notable or len(self.migrations) <= 5)]
        for m in detailed[:MARKDOWN_MAX_DETAILS]:
            kind = "transactional" if m.transactional else "non-transactional"
            lines += [f"#### `{m.file}` — {m.status}, {_took(m)}, {kind}", "", f"**{_md(m.headline())}**", ""]
            if m.note and m.status == "applied":
                lines += [f"_{_md(m.note)}_", ""]
            lines += [
                "| relation | kind | strongest lock | existed before | rewritten | |",
                "|---|---|---|---|---|---|",
            ]
            for li in m.locks:
                warn = _lock_effect(li.mode) if li.flagged else ""
                existed = "yes" if li.existed_before else "no (new)"
                rewritten = "yes" if li.relation in m.rewritten else ""
                cells = (f"`{li.relation}`", li.kind, li.mode, existed, rewritten, warn)
                lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
            lines.append("")
        if len(detailed) > MARKDOWN_MAX_DETAILS:
            more = len(detailed) - MARKDOWN_MAX_DETAILS
            lines += [f"Lock tables of {more} more migration(s) are in report.json.", ""]
        return "\n".join(lines).rstrip() + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "base_reused": self.base_reused,
            "base_seconds": round(self.base_seconds, 3),
            "base_files": self.base_files,
            "server": self.server,
            "server_version": self.server_version,
            "total_seconds": round(self.total_seconds, 3),
            "base_template": base_template_name(self.base_key) if self.base_key else None,
            "migrations": [m.to_dict() for m in self.migrations],
            "findings": [f.to_dict() for f in self.findings],
        }

    def junit_suite(self) -> tuple[str, list[Any]]:
        """Suite "rehearsal": a case per new migration.  Like every other suite, a case fails only when
        one of its findings blocks the build (a failed migration; flagged locks and rewrites too
        when ``blocking_severity = "warning"``), so a passing build never shows failed cases;
        warnings and the lock summary are the case's output."""
        from validator.reports import JUnitCase

        cases = []
        for m in self.migrations:
            mine = sorted((f for f in self.findings if f.file == m.file), key=lambda f: f.severity != ERROR)
            blocking = [f for f in mine if f.severity == ERROR or self.blocking_severity == WARNING]
            message = text = None
            output = _junit_output(m) if m.notable else None
            if mine and not blocking:
                warnings = "\n".join(f"{f.severity}: {f.location} {f.rule}: {f.message}" for f in mine)
                output = f"{output}\n\n{warnings}" if output else warnings
            if blocking:
                mine = blocking
                message = f"{mine[0].location} {mine[0].rule}: {mine[0].message}"
                if len(mine) > 1:
                    message += f" (and {len(mine) - 1} more)"
                text = "\n\n".join(
                    f"{f.severity}: {f.location} {f.rule}: {f.message}\nhelp: {f.help}\ndocs: {f.docs}"
                    for f in mine
                )
            cases.append(
                JUnitCase(
                    name=m.file,
                    classname=f"schemagate.{FAMILY}",
                    failure_message=message,
                    failure_text=text,
                    time_s=(m.duration_ms or 0) / 1000,
                    # quiet cases carry no output, so the report may fold them (CodeBuild: 500 cases)
                    system_out=output,
                )
            )
        for f in self.findings:  # a failure in the base history is about a file that is not new
            if f.rule == RULE_BASE_FAILED:
                cases.append(
                    JUnitCase(
                        name=f.file or "(base history)",
                        classname=f"schemagate.{FAMILY}",
                        failure_message=f"{f.location} {f.rule}: {f.message}",
                        failure_text=f"{f.message}\nhelp: {f.help}",
                    )
                )
        return FAMILY, cases


def _result_cell(m: RehearsedMigration) -> str:
    if m.status == "failed":
        return "❌ failed"
    if m.status != "applied":
        return "not rehearsed"
    mark = "⚠️ " if m.flagged or m.rewritten else ""
    return f"{mark}applied" + ("" if m.transactional else " (non-transactional)")


def _took(m: RehearsedMigration) -> str:
    return f"{m.duration_ms} ms" if m.duration_ms is not None else "–"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _lock_effect(mode: str) -> str:
    return "blocks reads and writes" if mode == "ACCESS EXCLUSIVE" else "blocks writes"


def _junit_output(m: RehearsedMigration) -> str:
    lines = [m.headline()]
    if m.note:
        lines.append(m.note)
    for li in m.locks:
        new = "" if li.existed_before else " (created by this migration)"
        rewritten = ", rewritten" if li.relation in m.rewritten else ""
        lines.append(f"  {li.mode:<22} {li.relation} ({li.kind}{new}{rewritten})")
    return "\n".join(lines)


# -- the rehearsal server ------------------------------------------------------------------------


def _with_dbname(url: str, dbname: str) -> str:
    """``url`` pointed at ``dbname``, with commits that do not wait for the disk: a rehearsal
    database is rebuilt from files at will, so durability buys nothing there."""
    options = parse_dsn(url).get("options", "")
    return make_dsn(url, dbname=dbname, options=f"{options} -c synchronous_commit=off".strip())


def describe_server(url: str) -> str:
    """host:port of a connection string, never its password."""
    params = parse_dsn(url)
    return f"{params.get('host') or 'local socket'}:{params.get('port') or 5432}"


@contextmanager
def rehearsal_server(config: ValidatorConfig, database_url: str | None) -> Iterator[tuple[str, str]]:
    """(admin URL, description) of the server the rehearsal may create databases on."""
    if database_url:
        try:
            parse_dsn(database_url)
        except psycopg2.ProgrammingError:
            raise ConfigurationError(
                "--rehearsal-database-url is not a PostgreSQL connection string",
                remedy="pass a URL like postgresql://user@host:5432/postgres of a server where schemagate "
                "may create throwaway databases",
            ) from None
        deploy_target = os.environ.get("DATABASE_URL")
        if deploy_target and parse_dsn(deploy_target) == parse_dsn(database_url):
            raise ConfigurationError(
                "--rehearsal-database-url is the database DATABASE_URL deploys to",
                remedy="rehearse on a separate server (or leave the option out to use an embedded one): "
                "the rehearsal creates and drops databases there",
            )
        yield database_url, describe_server(database_url)
        return
    from localdb.server import EmbeddedPostgres

    home = config.project_root / ".schemagate" / "rehearsal"
    try:
        home.parent.mkdir(parents=True, exist_ok=True)
        writable = os.access(home.parent, os.W_OK)
    except OSError:
        writable = False
    if not writable:  # a read-only checkout: keep the server (and its cached bases) in the temp dir
        import tempfile

        home = Path(tempfile.gettempdir()) / f"schemagate-rehearsal-{os.geteuid()}"
    # started for this run and stopped after it (unless it was running already or another
    # command still uses it); the cached bases stay on disk for the next run
    with EmbeddedPostgres(home).running() as url:
        yield url, f"embedded PostgreSQL under {home}"


def _connect(url: str, *, autocommit: bool = True) -> Any:
    """A connection to ``url`` (always explicit: never $DATABASE_URL), password masked in errors."""
    conn = executor_connect(url, application_name="schemagate-rehearsal")
    conn.autocommit = autocommit
    return conn


def _quote_ident(name: str) -> str:
    """As PostgreSQL's quote_ident shows a (non-keyword) identifier."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _like(literal: str) -> str:
    """``literal`` as a LIKE pattern matching itself (``_`` is a wildcard in LIKE)."""
    return literal.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def _drop_database(cur: Any, name: str) -> None:
    cur.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    with suppress(psycopg2.Error):
        cur.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


# -- configuration ([tool.schemagate.rehearsal], [tool.schemagate.rules]) -------------------------


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
            line = self.sql[: int(position) - 1].count("\n") + 1 if position and position.isdigit() else None
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


def with_configured_levels(findings: list[Finding], rules: dict[str, str]) -> list[Finding]:
    """``[tool.schemagate.rules]`` applies to the rehearsal's rules too: "off", "warning", "error"."""
    out = []
    for f in findings:
        level = rules.get(f.rule)
        if level == "off":
            continue
        out.append(f.with_severity(level) if level in (ERROR, WARNING) else f)
    return out


# -- base state cache ----------------------------------------------------------------------------


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


def base_template_name(key: str) -> str:
    return f"{BASE_PREFIX}{key[:24]}"


class BaseStore:
    """Template databases of base states on the rehearsal server (admin connection, autocommit).

    Every database a run creates is *claimed* first: a session advisory lock on its name, held by
    the admin connection until the run ends.  ``sweep`` drops throwaway and half-built databases
    whose claim is gone (their run was killed) and that nobody is connected to.
    """

    def __init__(self, admin: Any) -> None:
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
                cur.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (OWNER_LOCK_CLASS, name))
                if not cur.fetchone()[0]:
                    continue  # a live run owns it
                try:
                    with suppress(psycopg2.Error):
                        _drop_database(cur, name)
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
                _drop_database(cur, build)
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
                    _drop_database(cur, name)
        return dropped

    def forget(self, key: str) -> None:
        """Drop the template of one base (the next run builds it again: a cold run)."""
        with self.admin.cursor() as cur:
            _drop_database(cur, base_template_name(key))


# -- applying through the executor --------------------------------------------------------------


@dataclass
class _Watch:
    """What was seen of one new migration."""

    before: dict[int, RelationState] = field(default_factory=dict)
    held: LockSample = field(default_factory=dict)
    after: dict[int, RelationState] = field(default_factory=dict)
    observer: LockObserver | None = None
    started: float = 0.0
    probe_s: float = 0.0  # time spent in our own catalog queries inside the migration's transaction
    duration_ms: int | None = None
    done: bool = False


class _Probe:
    """The executor's ApplyHooks for a rehearsal: snapshots and locks around each new migration."""

    def __init__(self, url: str, settings: ExecutorSettings, watched: set[str]) -> None:
        self.url = url
        self.watched = watched
        # the executor's own history table (its row goes in with each migration)
        self.exclude = {f"{_quote_ident(settings.schema)}.{_quote_ident(settings.table)}"}
        self.watches: dict[str, _Watch] = {}
        self.current: str | None = None

    def hooks(self) -> ApplyHooks:
        return ApplyHooks(
            before_migration=self.before_migration,
            before_commit=self.before_commit,
            after_migration=self.after_migration,
        )

    def before_migration(self, conn: Any, entry: ManifestEntry) -> None:
        self.current = entry.file
        if entry.file not in self.watched:
            return
        watch = self.watches[entry.file] = _Watch()
        with conn.cursor() as cur:
            watch.before = snapshot_relations(cur)
            if not entry.transactional:
                cur.execute("SELECT pg_backend_pid()")
                pid = cur.fetchone()[0]
                # the gate must open well within lock_timeout: the statement waits on it
                watch.observer = LockObserver(lambda: _connect(self.url), gate_timeout_s=GATE_TIMEOUT_S)
                watch.observer.start(pid)
        watch.started = time.perf_counter()

    def before_commit(self, cur: Any, entry: ManifestEntry) -> None:
        watch = self.watches.get(entry.file)
        if watch is None:
            return
        started = time.perf_counter()
        watch.held = held_relation_locks(cur)
        watch.after = snapshot_relations(cur)
        watch.probe_s += time.perf_counter() - started

    def after_migration(self, conn: Any, entry: ManifestEntry, applied: AppliedMigration) -> None:
        watch = self.watches.get(entry.file)
        if watch is None:
            return
        watch.duration_ms = max(0, applied.duration_ms - round(watch.probe_s * 1000))
        if watch.observer is not None:
            watch.observer.stop()
            watch.held = watch.observer.held
        if not entry.transactional:
            with conn.cursor() as cur:
                watch.after = snapshot_relations(cur)
        watch.done = True

    def stop(self) -> None:
        for watch in self.watches.values():
            if watch.observer is not None:
                watch.observer.stop()

    def elapsed_ms(self, file: str) -> int | None:
        watch = self.watches.get(file)
        return round((time.perf_counter() - watch.started) * 1000) if watch and watch.started else None

    def result(self, entry: ManifestEntry) -> RehearsedMigration:
        watch = self.watches[entry.file]
        note = None
        obs = watch.observer
        if not entry.transactional:
            if obs is not None and obs.error:
                note = f"non-transactional: locks could not be observed ({obs.error})"
            elif obs is not None and obs.paused_on_gate:
                note = (
                    "non-transactional: locks observed from a second connection while it ran "
                    "(read while it waited for older snapshots to end, with all its locks held)"
                )
            else:
                note = (
                    "non-transactional: locks sampled from a second connection while it ran "
                    f"({obs.samples if obs else 0} samples); a lock held only briefly may be missing"
                )
        return RehearsedMigration(
            file=entry.file,
            duration_ms=watch.duration_ms,
            transactional=entry.transactional,
            locks=summarize_locks(watch.held, watch.before, watch.after, exclude=self.exclude),
            rewritten=rewritten_tables(watch.before, watch.after),
            note=note,
        )


def _apply(url: str, entries: list[Entry], settings: ExecutorSettings, probe: _Probe | None) -> None:
    """Apply whatever of ``entries`` is pending in the database at ``url`` with the executor."""
    bundle = make_bundle(entries, source={"rehearsal": True}, origin="rehearsal")
    conn = executor_connect(url, application_name="schemagate-rehearsal")
    try:
        executor_apply(conn, bundle, settings, hooks=probe.hooks() if probe else None)
    finally:
        conn.close()


def _rehearsal_settings(config: ValidatorConfig) -> ExecutorSettings:
    # order is the structural checks' business: rehearse a new file even when it is out of order;
    # nobody else uses the throwaway database, so a lock wait is not worth retrying
    return config.executor.with_overrides(
        allow_out_of_order=True, lock_retries=0, run_id="rehearsal", advisory_lock_wait_s=5.0, dry_run=False
    )


# -- the rehearsal -------------------------------------------------------------------------------


def _ordered(entries: list[Entry]) -> list[Entry]:
    """Application order (as validator.structural orders the manifest): versioned by version, then
    repeatables by description; undo files are never rehearsed."""
    versioned = sorted((e for e in entries if e[0].kind == "versioned"), key=lambda e: e[0].parsed_version)
    repeatable = sorted(
        (e for e in entries if e[0].kind == "repeatable"), key=lambda e: (e[0].description, e[0].file)
    )
    return versioned + repeatable


def _entries(structural: Any) -> list[Entry]:
    """The manifest entries (with their bytes) of validator.structural's result, in application order."""
    return _ordered([(entry, data) for entry, data in structural.manifest_entries()])


def _failure_finding(
    err: SchemagateError, file: str, *, rule: str, base: bool
) -> tuple[Finding, dict[str, Any]]:
    """An error finding at the file and line PostgreSQL (or the executor) named."""
    ctx = err.context
    sqlstate = ctx.get("sqlstate")
    if sqlstate:
        message = f"{ctx.get('message') or err.message} (SQLSTATE {sqlstate})"
        for label in ("detail", "hint"):
            if ctx.get(label):
                message += f"; {label}: {' '.join(str(ctx[label]).split())}"
        if err.line is not None and err.column is None and ctx.get("where"):
            message += f"; context: {' '.join(str(ctx['where']).split())}"
    else:  # a refusal of the executor (e.g. BEGIN/COMMIT in the file), or a connection failure
        message = err.message
    detail = {
        "sqlstate": sqlstate,
        "message": ctx.get("message") or err.message,
        "line": err.line,
        "column": err.column,
        "category": err.category.value,
    }
    if base:
        message += " (while applying the existing history to an empty database)"
        help_text = (
            "the history on the base ref does not apply to an empty PostgreSQL, so the new migrations could "
            "not be rehearsed: make it reproducible (create the roles/extensions it relies on in a migration)"
        )
    else:
        help_text = (
            "this migration fails on a database built from every earlier migration, so it would fail in "
            "production too: fix it at this line"
        )
        if err.remedy and not sqlstate:
            help_text = err.remedy
    finding = Finding(
        rule=rule,
        family=FAMILY,
        severity=ERROR,
        file=err.file or file or None,
        line=err.line,
        column=err.column,
        message=message,
        help=help_text,
        docs=docs_link("rehearsal.md", rule),
    )
    return finding, detail


def _lock_findings(m: RehearsedMigration) -> list[Finding]:
    findings = []
    flagged = {li.relation: li for li in m.flagged}
    for rel in m.rewritten:
        lock = flagged.pop(rel, None)
        mode = lock.mode if lock else "ACCESS EXCLUSIVE"
        findings.append(
            Finding(
                rule=RULE_REWRITE,
                family=FAMILY,
                severity=WARNING,
                file=m.file,
                line=None,
                column=None,
                message=f"{m.file} takes {mode} on {rel} and rewrites it: reads and writes wait for a full "
                f"copy of the table and its indexes (took {m.duration_ms} ms on the rehearsal data)",
                help="avoid the rewrite (add the column without a volatile default and backfill in batches; "
                "change types compatibly), or schedule it in a maintenance window",
                docs=docs_link("rehearsal.md", RULE_REWRITE),
            )
        )
    for li in flagged.values():
        findings.append(
            Finding(
                rule=RULE_BLOCKING_LOCK,
                family=FAMILY,
                severity=WARNING,
                file=m.file,
                line=None,
                column=None,
                message=f"{m.file} takes {li.mode} on {li.relation}, which existed before: it "
                f"{_lock_effect(li.mode)} on the table until the migration "
                + ("commits" if m.transactional else "ends")
                + (f" ({m.duration_ms} ms on the rehearsal data)" if m.duration_ms is not None else ""),
                help="use the non-blocking form where there is one (CREATE INDEX CONCURRENTLY, "
                "ADD CONSTRAINT ... NOT VALID then VALIDATE CONSTRAINT), keep the migration short, "
                "and rely on lock_timeout",
                docs=docs_link("rehearsal.md", RULE_BLOCKING_LOCK),
            )
        )
    return findings


def rehearse(
    config: ValidatorConfig,
    structural: Any,
    *,
    new: set[str] | None,
    database_url: str | None,
    reuse_base: bool = True,
) -> RehearsalResult:
    """Rehearse the new migrations (``new``: rel paths new relative to --base-ref; None: all files)
    on a throwaway database of the rehearsal server (``database_url``, else an embedded server).

    ``reuse_base=False`` drops a cached base template first (a cold run; used by bench/rehearse.py).
    """
    started = time.perf_counter()
    entries = _entries(structural)
    base = [e for e in entries if new is not None and e[0].file not in new]
    fresh = [e for e in entries if new is None or e[0].file in new]
    # a new file PostgreSQL's parser already rejected would only fail again: stop before it
    unparsable = {f.file for f in structural.findings if f.severity == ERROR and f.family == "syntax"}
    cut = next((i for i, (e, _) in enumerate(fresh) if e.file in unparsable), len(fresh))
    fresh, held_back = fresh[:cut], fresh[cut:]
    settings = _rehearsal_settings(config)
    setup = load_setup(config)
    findings: list[Finding] = []
    migrations: list[RehearsedMigration] = []

    if not fresh:  # nothing to rehearse: no server, no database
        return RehearsalResult(
            findings=[],
            migrations=_held_back(held_back),
            base_reused=False,
            base_seconds=0.0,
            base_files=len(base),
            server="not started (no new migration to rehearse)",
            total_seconds=time.perf_counter() - started,
        )
    with rehearsal_server(config, database_url) as (admin_url, server):
        admin = _connect(admin_url)
        store = BaseStore(admin)
        token = uuid.uuid4().hex[:12]
        target = f"{REHEARSAL_PREFIX}{token}"
        target_url = _with_dbname(admin_url, target)
        try:
            with admin.cursor() as cur:
                cur.execute("SHOW server_version")
                server_version = cur.fetchone()[0]
            store.sweep()
            store.claim(target)
            base_started = time.perf_counter()
            key = base_key(base, settings, setup)
            template = base_template_name(key)
            base_reused = False
            base_error: Finding | None = None
            if not base:
                store.create_empty(target)
                if setup:
                    setup.run(target_url)
            else:
                if not reuse_base:
                    store.forget(key)
                for attempt in range(3):  # another run may evict the template between two steps
                    if store.exists(template) and store.clone(template, target):
                        base_reused = attempt == 0
                        break
                    base_error = _build_base(store, admin_url, base, settings, template, token, setup)
                    if base_error is not None:
                        break
                else:
                    raise ConnectionFailure(
                        f"could not copy the base template {template} on {server} three times",
                        remedy="other rehearsals on this server keep evicting it: raise KEEP_BASES or retry",
                    )
            base_seconds = time.perf_counter() - base_started

            if base_error is not None:
                findings.append(base_error)
                migrations = [
                    RehearsedMigration(
                        e.file,
                        None,
                        e.transactional,
                        status="not rehearsed",
                        note=f"the existing history failed to apply ({base_error.file})",
                    )
                    for e, _ in fresh
                ]
            else:
                migrations, more = _rehearse_new(target_url, base, fresh, settings)
                findings.extend(more)
            migrations += _held_back(held_back)
        finally:
            with admin.cursor() as cur:
                _drop_database(cur, target)
            admin.close()

    return RehearsalResult(
        findings=sorted(with_configured_levels(findings, config.rules), key=Finding.sort_key),
        migrations=migrations,
        base_reused=base_reused,
        base_seconds=base_seconds,
        base_files=len(base),
        server=server,
        server_version=server_version,
        total_seconds=time.perf_counter() - started,
        database=target,
        base_key=key if base else "",
        blocking_severity=config.blocking_severity,
    )


def _held_back(entries: list[Entry]) -> list[RehearsedMigration]:
    out = []
    for e, _ in entries:
        first = entries[0][0].file
        note = "it has syntax errors" if e.file == first else f"{first} before it has syntax errors"
        out.append(RehearsedMigration(e.file, None, e.transactional, status="not rehearsed", note=note))
    return out


def _build_base(
    store: BaseStore,
    admin_url: str,
    base: list[Entry],
    settings: ExecutorSettings,
    template: str,
    token: str,
    setup: Setup | None = None,
) -> Finding | None:
    """Apply the setup script and the base history into a build database and publish it as
    ``template``; a finding when the history does not apply."""
    build = f"{template}{BUILD_INFIX}{token[:8]}"
    build_url = _with_dbname(admin_url, build)
    store.claim(build)
    store.create_empty(build)
    finding = None
    try:
        if setup:
            setup.run(build_url)  # its failure is a configuration error (exit 2), not a finding
        try:
            _apply(build_url, base, settings, None)
        except SchemagateError as err:
            finding, _ = _failure_finding(err, err.file or base[0][0].file, rule=RULE_BASE_FAILED, base=True)
    except BaseException:
        with store.admin.cursor() as cur:
            _drop_database(cur, build)
        raise
    if finding is not None:
        with store.admin.cursor() as cur:
            _drop_database(cur, build)
        return finding
    store.publish(build, template)
    return None


def _rehearse_new(
    url: str, base: list[Entry], fresh: list[Entry], settings: ExecutorSettings
) -> tuple[list[RehearsedMigration], list[Finding]]:
    """Apply the new migrations on top of the base (one executor run, hooks around each) and
    describe each: applied with its locks, failed, or not rehearsed after a failure."""
    probe = _Probe(url, settings, {e.file for e, _ in fresh})
    failure: SchemagateError | None = None
    try:
        _apply(url, _ordered(base + fresh), settings, probe)
    except SchemagateError as err:
        failure = err
    finally:
        probe.stop()
    failed_file = None
    if failure is not None:
        failed_file = failure.file if failure.file in probe.watched else probe.current
    migrations: list[RehearsedMigration] = []
    findings: list[Finding] = []
    for entry, _ in fresh:
        watch = probe.watches.get(entry.file)
        if watch is not None and watch.done:
            result = probe.result(entry)
            migrations.append(result)
            findings.extend(_lock_findings(result))
        elif failure is not None and entry.file == failed_file:
            finding, detail = _failure_finding(failure, entry.file, rule=RULE_FAILED, base=False)
            findings.append(finding)
            migrations.append(
                RehearsedMigration(
                    entry.file,
                    probe.elapsed_ms(entry.file),
                    entry.transactional,
                    status="failed",
                    error=detail,
                )
            )
        else:
            why = f"{failed_file} failed before it" if failed_file else "the executor stopped before it"
            migrations.append(
                RehearsedMigration(entry.file, None, entry.transactional, status="not rehearsed", note=why)
            )
    if failure is not None and failed_file is None:  # a refusal about no new file in particular
        finding, _ = _failure_finding(failure, failure.file or "", rule=RULE_FAILED, base=False)
        findings.append(finding)
    return migrations, findings
