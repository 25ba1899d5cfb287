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
   from a second connection (``locks.LockObserver``).  Relfilenodes before
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

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from executor.apply import ApplyHooks
from executor.apply import apply as executor_apply
from executor.bundle import make_bundle
from executor.connection import scalar
from executor.errors import ConfigurationError, ConnectionFailure, SchemagateError
from executor.manifest import ManifestEntry
from executor.naming import Version
from executor.settings import ExecutorSettings
from validator.findings import ERROR, Finding
from validator.rehearsal.base import (
    BUILD_INFIX,
    REHEARSAL_PREFIX,
    BaseStore,
    Entry,
    Setup,
    base_key,
    base_template_name,
    load_setup,
)
from validator.rehearsal.findings import (
    RULE_BASE_FAILED,
    RULE_FAILED,
    data_probe_findings,
    failure_finding,
    lock_findings,
    with_configured_levels,
)
from validator.rehearsal.outcome import RehearsedMigration
from validator.rehearsal.probe import Probe
from validator.rehearsal.report import RehearsalResult
from validator.rehearsal.server import connect, drop_database, rehearsal_server, with_dbname

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

    from validator.config import ValidatorConfig
    from validator.parsed import ParsedFile
    from validator.rehearsal.data_probe import DataProbe
    from validator.safety.rules.data_dependent_change import DataDependentStatement
    from validator.structural import StructuralResult


def _apply(url: str, entries: list[Entry], settings: ExecutorSettings, hooks: ApplyHooks | None) -> None:
    """Apply whatever of ``entries`` is pending in the database at ``url`` with the executor."""
    bundle = make_bundle(entries, source={"rehearsal": True}, origin="rehearsal")
    conn = connect(url, autocommit=False)
    try:
        executor_apply(conn, bundle, settings, hooks=hooks)
    finally:
        conn.close()


DATA_PROBE_SETTING = "data_probe"  # [tool.schemagate.rehearsal] data_probe = false turns it off


def data_probe_enabled(config: ValidatorConfig) -> bool:
    """``[tool.schemagate.rehearsal] data_probe`` (true unless set to false)."""
    table = config.raw.get("rehearsal") or {}
    value = table.get(DATA_PROBE_SETTING, True) if isinstance(table, dict) else True
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"[tool.schemagate.rehearsal] {DATA_PROBE_SETTING} = {value!r} is not true or false",
            file="pyproject.toml",
            remedy=f"{DATA_PROBE_SETTING} = false turns the data probe off; remove the key to keep it on",
        )
    return value


@dataclass
class DataProbeInput:
    """What the data probe needs: the data-dependent statements of the new files, their parse."""

    targets: dict[str, list[DataDependentStatement]]
    parsed: dict[str, ParsedFile]
    search_path: str | None


def _data_probe_input(
    config: ValidatorConfig, structural: StructuralResult, entries: list[Entry], fresh: list[Entry]
) -> DataProbeInput | None:
    if not data_probe_enabled(config):
        return None
    from validator.rehearsal.data_probe import data_dependent_statements

    by_rel = {p.rel: p for p in structural.parsed if p.key == p.rel}
    files = [by_rel[e.file] for e, _ in entries if e.file in by_rel]
    judged = {e.file for e, _ in fresh}
    targets = data_dependent_statements(files, judged=judged, target_postgres=config.target_postgres)
    if not targets:
        return None
    return DataProbeInput(targets, {f: by_rel[f] for f in targets}, config.executor.search_path)


def _rehearsal_settings(config: ValidatorConfig) -> ExecutorSettings:
    # order is the structural checks' business: rehearse a new file even when it is out of order;
    # nobody else uses the throwaway database, so a lock wait is not worth retrying
    return config.executor.with_overrides(
        allow_out_of_order=True, lock_retries=0, run_id="rehearsal", advisory_lock_wait_s=5.0, dry_run=False
    )


def _ordered(entries: list[Entry]) -> list[Entry]:
    """Application order (as validator.structural orders the manifest): versioned by version, then
    repeatables by description; undo files are never rehearsed."""
    versioned = sorted((e for e in entries if e[0].kind == "versioned"), key=lambda e: _version(e[0]))
    repeatable = sorted(
        (e for e in entries if e[0].kind == "repeatable"), key=lambda e: (e[0].description, e[0].file)
    )
    return versioned + repeatable


def _version(entry: ManifestEntry) -> Version:
    version = entry.parsed_version
    if version is None:  # a versioned entry always has one (executor.manifest)
        raise ValueError(f"{entry.file} is versioned but has no version")
    return version


def _entries(structural: StructuralResult) -> list[Entry]:
    """The manifest entries (with their bytes) of validator.structural's result, in application order."""
    return _ordered([(entry, data) for entry, data in structural.manifest_entries()])


def rehearse(
    config: ValidatorConfig,
    structural: StructuralResult,
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
    probe_input = _data_probe_input(config, structural, entries, fresh) if fresh else None
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
        admin = connect(admin_url)
        store = BaseStore(admin)
        token = uuid.uuid4().hex[:12]
        target = f"{REHEARSAL_PREFIX}{token}"
        target_url = with_dbname(admin_url, target)
        try:
            with admin.cursor() as cur:
                server_version = str(scalar(cur, "SHOW server_version"))
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
                migrations, more = _rehearse_new(target_url, base, fresh, settings, probe_input)
                findings.extend(more)
            migrations += _held_back(held_back)
        finally:
            with admin.cursor() as cur:
                drop_database(cur, target)
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
    build_url = with_dbname(admin_url, build)
    store.claim(build)
    store.create_empty(build)
    finding = None
    try:
        if setup:
            setup.run(build_url)  # its failure is a configuration error (exit 2), not a finding
        try:
            _apply(build_url, base, settings, None)
        except SchemagateError as err:
            finding, _ = failure_finding(err, err.file or base[0][0].file, rule=RULE_BASE_FAILED, base=True)
    except BaseException:
        with store.admin.cursor() as cur:
            drop_database(cur, build)
        raise
    if finding is not None:
        with store.admin.cursor() as cur:
            drop_database(cur, build)
        return finding
    store.publish(build, template)
    return None


def _rehearse_new(
    url: str,
    base: list[Entry],
    fresh: list[Entry],
    settings: ExecutorSettings,
    probe_input: DataProbeInput | None = None,
) -> tuple[list[RehearsedMigration], list[Finding]]:
    """Apply the new migrations on top of the base (one executor run, hooks around each) and
    describe each: applied with its locks, failed, or not rehearsed after a failure.  With
    ``probe_input``, the data probe runs before each migration holding a data-dependent statement
    (in a transaction of its own connection, rolled back: the run does not see its rows)."""
    probe = Probe(url, settings, {e.file for e, _ in fresh})
    hooks = probe.hooks()
    data: DataProbe | None = None
    if probe_input is not None:
        from validator.rehearsal.data_probe import DataProbe

        data = DataProbe(url, probe_input.targets, probe_input.parsed, probe_input.search_path)
        hooks = _with_data_probe(hooks, data, probe)
    failure: SchemagateError | None = None
    try:
        _apply(url, _ordered(base + fresh), settings, hooks)
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
            findings.extend(lock_findings(result))
        elif failure is not None and entry.file == failed_file:
            finding, detail = failure_finding(failure, entry.file, rule=RULE_FAILED, base=False)
            findings.append(finding)
            started_ms, ended_ms = probe.window(entry.file)
            migrations.append(
                RehearsedMigration(
                    entry.file,
                    probe.elapsed_ms(entry.file),
                    entry.transactional,
                    status="failed",
                    error=detail,
                    started_ms=started_ms,
                    ended_ms=ended_ms,
                    lock_spans=probe.spans(entry),
                )
            )
        else:
            why = f"{failed_file} failed before it" if failed_file else "the executor stopped before it"
            migrations.append(
                RehearsedMigration(entry.file, None, entry.transactional, status="not rehearsed", note=why)
            )
    if failure is not None and failed_file is None:  # a refusal about no new file in particular
        finding, _ = failure_finding(failure, failure.file or "", rule=RULE_FAILED, base=False)
        findings.append(finding)
    if data is not None:
        for m in migrations:
            m.data_probes = data.results.get(m.file, [])
            findings.extend(data_probe_findings(m.file, m.data_probes))
    return migrations, findings


def _with_data_probe(hooks: ApplyHooks, data: DataProbe, probe: Probe) -> ApplyHooks:
    """``hooks`` with the data probe first before each migration (its time left out of the times)."""
    watch_before = hooks.before_migration

    def before_migration(conn: Connection, entry: ManifestEntry) -> None:
        if entry.file in probe.watched:
            probe.pause(data.before_migration(conn, entry))
        if watch_before is not None:
            watch_before(conn, entry)

    return ApplyHooks(
        before_migration=before_migration,
        before_commit=hooks.before_commit,
        after_migration=hooks.after_migration,
    )
