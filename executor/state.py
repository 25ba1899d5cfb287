"""Join "what the bundle holds" with "what the database recorded" into one info list.

Modelled on Flyway's MigrationInfoImpl / MigrationState: a pure function over plain data (no
database), so every state is unit-tested without PostgreSQL.  Validation returns data:
``refusals`` lists the errors, the executor decides to raise the first before applying anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from executor.errors import ChecksumMismatch, MigrationRefused, SchemagateError
from executor.history import HistoryRow, HistoryType
from executor.manifest import Manifest, ManifestEntry
from executor.naming import REPEATABLE, UNDO, VERSIONED, Version
from executor.settings import ExecutorSettings


class MigrationState(StrEnum):
    PENDING = "pending"  # in the bundle, not applied yet
    APPLIED = "applied"  # applied, checksum matches (or history only: applied)
    FAILED = "failed"  # a success=false row: a non-transactional migration failed part-way
    DRIFTED = "drifted"  # applied, but the bundle's file has another checksum
    MISSING = "missing"  # applied, absent from the bundle
    OUT_OF_ORDER = "out_of_order"  # pending, but lower than the highest applied version
    OUTDATED = "outdated"  # repeatable whose checksum changed since it was applied: re-applied
    BASELINE = "baseline"  # the baseline row
    BELOW_BASELINE = "below_baseline"  # in the bundle, at or below the baseline: ignored
    FUTURE = "future"  # applied, newer than anything in the bundle
    UNDO = "undo"  # an undo file, available on explicit request

    def __str__(self) -> str:
        return self.value

    # Flags in the manner of Flyway's MigrationState (isResolved, isApplied, isFailed): what a state
    # says of every migration in it, so a caller asks the flag instead of listing states.  They
    # describe a state with a bundle; ``info`` on the history alone resolves nothing (its rows are
    # applied, failed or baseline).

    @property
    def is_resolved(self) -> bool:
        """The bundle has a file for it (Flyway: resolved)."""
        return self in _RESOLVED

    @property
    def is_applied(self) -> bool:
        """The history has a row for it that still counts, a failed one included (Flyway: applied)."""
        return self in _APPLIED

    @property
    def is_failed(self) -> bool:
        """Its row says success = false: the database may hold part of its changes (Flyway: failed)."""
        return self is MigrationState.FAILED

    @property
    def is_pending(self) -> bool:
        """In the bundle, never applied, and waiting to be (OUT_OF_ORDER only when out-of-order
        migrations are allowed; BELOW_BASELINE and UNDO files are not waiting)."""
        return self in (MigrationState.PENDING, MigrationState.OUT_OF_ORDER)

    @property
    def is_settled(self) -> bool:
        """Nothing for an apply to do and nothing for it to refuse: applied as the bundle has it, the
        baseline, a file below it, an undo file (a database where every migration is settled is up
        to date with the bundle)."""
        return self in _SETTLED


_RESOLVED = frozenset(
    {
        MigrationState.PENDING,
        MigrationState.APPLIED,
        MigrationState.FAILED,
        MigrationState.DRIFTED,
        MigrationState.OUT_OF_ORDER,
        MigrationState.OUTDATED,
        MigrationState.BELOW_BASELINE,
        MigrationState.UNDO,
    }
)
_APPLIED = frozenset(
    {
        MigrationState.APPLIED,
        MigrationState.FAILED,
        MigrationState.DRIFTED,
        MigrationState.MISSING,
        MigrationState.OUTDATED,
        MigrationState.BASELINE,
        MigrationState.FUTURE,
    }
)
_SETTLED = frozenset(
    {MigrationState.APPLIED, MigrationState.BASELINE, MigrationState.BELOW_BASELINE, MigrationState.UNDO}
)


class Refusal(StrEnum):
    """The rule ids of the refusals ``refusals`` returns (``SchemagateError.rule``)."""

    FAILED_MIGRATION = "failed-migration"
    CHECKSUM_DRIFT = "checksum-drift"
    MISSING_MIGRATION = "missing-migration"
    OUT_OF_ORDER = "out-of-order"


_KIND_OF_TYPE: dict[str, str] = {  # a row counted as its HistoryType -> the migration kind
    HistoryType.SQL: VERSIONED,
    HistoryType.REPEATABLE: REPEATABLE,
    HistoryType.BASELINE: "baseline",
    HistoryType.UNDO: UNDO,
}


@dataclass
class MigrationInfo:
    """One line of ``schemagate info``: a migration of the bundle, of the history, or of both, and its
    state."""

    file: str
    kind: str  # versioned | repeatable | undo | baseline
    version: str | None
    description: str
    state: MigrationState
    bundle_checksum: str | None = None
    applied_checksum: str | None = None
    installed_rank: int | None = None
    installed_on: datetime | None = None
    installed_by: str | None = None
    execution_time_ms: int | None = None
    reason: str = ""  # a human sentence explaining the state
    # INVALID indexes in the database that this (recorded, non-transactional) migration should have
    # built: filled in by ``executor.planning.info`` (executor.index_validity.annotate)
    invalid_indexes: list[str] = field(default_factory=list)
    entry: ManifestEntry | None = field(default=None, repr=False, compare=False)
    row: HistoryRow | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "version": self.version,
            "description": self.description,
            "state": self.state.value,
            "bundle_checksum": self.bundle_checksum,
            "applied_checksum": self.applied_checksum,
            "installed_rank": self.installed_rank,
            "installed_on": self.installed_on.isoformat() if self.installed_on else None,
            "installed_by": self.installed_by,
            "execution_time_ms": self.execution_time_ms,
            "reason": self.reason,
            "invalid_indexes": list(self.invalid_indexes),
        }


def _version(text: str | None) -> Version | None:
    if text is None:
        return None
    try:
        return Version.parse(text.strip())
    except ValueError:
        return None


def _counts_as(row: HistoryRow) -> str:
    """The type a row counts as: an imported row is a versioned (or, without a version, repeatable)
    migration that another tool applied."""
    if row.type == HistoryType.IMPORTED:
        return HistoryType.SQL if row.version is not None else HistoryType.REPEATABLE
    if row.type == HistoryType.BASELINE and row.checksum:  # `baseline` of a file on disk, with its checksum
        return HistoryType.SQL
    return row.type


def _from_row(
    row: HistoryRow, state: MigrationState, reason: str, entry: ManifestEntry | None
) -> MigrationInfo:
    return MigrationInfo(
        file=row.script,
        kind=_KIND_OF_TYPE.get(_counts_as(row), row.type.lower()),
        version=row.version,
        description=row.description,
        state=state,
        bundle_checksum=entry.sha256 if entry else None,
        applied_checksum=row.checksum,
        installed_rank=row.installed_rank,
        installed_on=row.installed_on,
        installed_by=row.installed_by,
        execution_time_ms=row.execution_time_ms,
        reason=reason,
        entry=entry,
        row=row,
    )


def _from_entry(entry: ManifestEntry, state: MigrationState, reason: str) -> MigrationInfo:
    return MigrationInfo(
        file=entry.file,
        kind=entry.kind,
        version=entry.version,
        description=entry.description,
        state=state,
        bundle_checksum=entry.sha256,
        reason=reason,
        entry=entry,
    )


def _applied_sentence(row: HistoryRow) -> str:
    when = (
        row.installed_on.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
        if row.installed_on
        else "at an unknown time"
    )
    if row.type == HistoryType.BASELINE:
        return f"marked as applied by `schemagate baseline` {when} (user {row.installed_by})"
    if row.type == HistoryType.IMPORTED:
        tool = (row.run_id or "").removeprefix("import:") or "another tool"
        return f"applied by {tool} {when} (user {row.installed_by}); imported into schemagate's history"
    return f"applied {when} by {row.installed_by} in {row.execution_time_ms} ms (run {row.run_id})"


def build_info(
    manifest: Manifest | None, history: list[HistoryRow], settings: ExecutorSettings | None = None
) -> list[MigrationInfo]:
    """One info per history row that still counts, then one per bundle file not applied yet.

    ``manifest=None`` describes the history alone (``schemagate info`` without a bundle): rows are
    applied, failed or baseline.  History rows come first in installed_rank order, then pending
    versioned files in version order, new repeatables, and undo files.
    """
    rows = sorted(history, key=lambda r: r.installed_rank)
    with_bundle = manifest is not None
    versioned: dict[Version, ManifestEntry] = {}
    for e in manifest.versioned if manifest else []:
        v = e.parsed_version
        if v is not None:
            versioned.setdefault(v, e)
    repeatables = {e.file: e for e in (manifest.repeatable if manifest else [])}
    max_bundle = max(versioned) if versioned else None

    # the latest row per version / per repeatable script counts; an UNDO row undoes its version
    latest_versioned: dict[Version, HistoryRow] = {}
    latest_repeatable: dict[str, HistoryRow] = {}
    baseline: HistoryRow | None = None
    counts = [_counts_as(r) for r in rows]  # once per row: both loops below ask
    for r, counts_as in zip(rows, counts, strict=True):
        if counts_as == HistoryType.SQL:
            v = _version(r.version)
            if v is not None:
                latest_versioned[v] = r
        elif counts_as == HistoryType.UNDO:
            v = _version(r.version)
            if v is not None and r.success and v in latest_versioned:
                del latest_versioned[v]
        elif counts_as == HistoryType.REPEATABLE:
            latest_repeatable[r.script] = r
        elif counts_as == HistoryType.BASELINE and r.success:
            baseline = r
    baseline_version = _version(baseline.version) if baseline else None
    applied_versions = [v for v, r in latest_versioned.items() if r.success]
    if baseline_version is not None:
        applied_versions.append(baseline_version)
    highest_applied = max(applied_versions) if applied_versions else None
    counted = {id(r) for r in latest_versioned.values()} | {id(r) for r in latest_repeatable.values()}

    infos: list[MigrationInfo] = []
    for r, counts_as in zip(rows, counts, strict=True):
        if counts_as == HistoryType.BASELINE:
            infos.append(
                _from_row(
                    r,
                    MigrationState.BASELINE,
                    f"baseline: the database was adopted at version "
                    f"{r.version}; files up to it are not applied",
                    None,
                )
            )
        elif r.type == HistoryType.UNDO:
            infos.append(
                _from_row(
                    r, MigrationState.APPLIED, f"undo of version {r.version} " + _applied_sentence(r), None
                )
            )
        elif id(r) not in counted:
            continue  # superseded by a later row for the same version or repeatable
        elif counts_as == HistoryType.SQL:
            v = _version(r.version)
            entry = versioned.get(v) if v is not None else None
            infos.append(_versioned_row_info(r, v, entry, with_bundle, max_bundle))
        elif counts_as == HistoryType.REPEATABLE:
            infos.append(_repeatable_row_info(r, repeatables.get(r.script), with_bundle))

    if manifest is None:
        return infos
    for v in sorted(versioned):
        if v in latest_versioned:
            continue
        e = versioned[v]
        if baseline_version is not None and v <= baseline_version:
            infos.append(
                _from_entry(
                    e,
                    MigrationState.BELOW_BASELINE,
                    f"at or below the baseline version {baseline_version.text}: not applied",
                )
            )
        elif highest_applied is not None and v < highest_applied:
            infos.append(
                _from_entry(
                    e,
                    MigrationState.OUT_OF_ORDER,
                    f"not applied, but version {e.version} is lower than the highest applied "
                    f"version {highest_applied}",
                )
            )
        else:
            infos.append(_from_entry(e, MigrationState.PENDING, "not applied yet"))
    for file, e in repeatables.items():
        if file not in latest_repeatable:
            infos.append(_from_entry(e, MigrationState.PENDING, "repeatable, not applied yet"))
    for e in manifest.undo:
        infos.append(
            _from_entry(e, MigrationState.UNDO, f"undo of version {e.version}: applied only on request")
        )
    return infos


def _versioned_row_info(
    r: HistoryRow,
    v: Version | None,
    entry: ManifestEntry | None,
    with_bundle: bool,
    max_bundle: Version | None,
) -> MigrationInfo:
    settled = _failed_or_history_only(r, entry, with_bundle)
    if settled is not None:
        return settled
    if entry is None:
        if v is not None and max_bundle is not None and v > max_bundle:
            return _from_row(
                r,
                MigrationState.FUTURE,
                f"{_applied_sentence(r)}; newer than every file in the "
                "bundle (the database is ahead of this bundle)",
                None,
            )
        return _from_row(
            r,
            MigrationState.MISSING,
            f"{_applied_sentence(r)}; the bundle has no file with version {r.version}",
            None,
        )
    if entry.sha256 != r.checksum:
        return _from_row(
            r,
            MigrationState.DRIFTED,
            f"the file changed after it was applied (applied checksum "
            f"{(r.checksum or '')[:12]}…, bundle {entry.sha256[:12]}…)",
            entry,
        )
    return _from_row(r, MigrationState.APPLIED, _applied_sentence(r), entry)


def _failed_or_history_only(
    r: HistoryRow, entry: ManifestEntry | None, with_bundle: bool
) -> MigrationInfo | None:
    """The state of a row that needs no comparison with the bundle: a failed row, or any row when
    there is no bundle (``info`` on the history alone).  None: compare with the bundle."""
    if not r.success:
        return _from_row(
            r,
            MigrationState.FAILED,
            "failed part-way outside a transaction: the database may hold part of its changes",
            entry,
        )
    if not with_bundle:
        return _from_row(r, MigrationState.APPLIED, _applied_sentence(r), None)
    return None


def _repeatable_row_info(r: HistoryRow, entry: ManifestEntry | None, with_bundle: bool) -> MigrationInfo:
    settled = _failed_or_history_only(r, entry, with_bundle)
    if settled is not None:
        return settled
    if entry is None:
        return _from_row(
            r,
            MigrationState.MISSING,
            f"{_applied_sentence(r)}; the file is no longer in the "
            "bundle (its objects stay in the database; this does not block a run)",
            None,
        )
    if entry.sha256 != r.checksum:
        return _from_row(
            r,
            MigrationState.OUTDATED,
            "the file changed since it was last applied: it will be applied again",
            entry,
        )
    return _from_row(r, MigrationState.APPLIED, _applied_sentence(r), entry)


def refusals(infos: list[MigrationInfo], settings: ExecutorSettings) -> list[SchemagateError]:
    """Everything that stops a run before it applies anything, as data (the caller raises)."""
    errors: list[SchemagateError] = []
    for i in infos:
        version = f"version {i.version}" if i.version else "repeatable"
        context = {"version": i.version, "state": i.state.value, "installed_rank": i.installed_rank}
        if i.state.is_failed:
            errors.append(
                MigrationRefused(
                    f"{i.file} ({version}) failed part-way in an earlier run (history row "
                    f"{i.installed_rank} has "
                    "success = false); the database may hold part of its changes",
                    file=i.file,
                    rule="failed-migration",  # literal: tests/test_rule_catalog.py scans for rule="..."
                    remedy=(
                        "inspect the database and undo or complete the partial change by hand, then run "
                        "`schemagate repair` and apply again (an INVALID index that the file's CREATE INDEX "
                        "CONCURRENTLY left is dropped and built again by the next apply)"
                    ),
                    context=context,
                )
            )
        elif i.state is MigrationState.DRIFTED:
            errors.append(
                ChecksumMismatch(
                    f"{i.file} ({version}) was changed after it was applied: the database recorded checksum "
                    f"{i.applied_checksum}, the bundle has {i.bundle_checksum}",
                    file=i.file,
                    rule="checksum-drift",
                    remedy=(
                        "restore the file exactly as it was applied and put the change in a new migration "
                        "(`schemagate new <description>`); if the edit changes nothing in the database (a "
                        "comment, "
                        "white space), run `schemagate repair --realign-checksums`"
                    ),
                    context={**context, "expected": i.applied_checksum, "actual": i.bundle_checksum},
                )
            )
        elif i.state is MigrationState.MISSING and i.kind == VERSIONED and not settings.allow_missing:
            errors.append(
                MigrationRefused(
                    f"{i.file} ({version}) is applied to the database but missing from the bundle",
                    file=i.file,
                    rule="missing-migration",
                    remedy=(
                        "restore the file in the migrations directory (applied migrations are never "
                        "deleted), or, "
                        "if it was removed on purpose, allow missing migrations (allow_missing)"
                    ),
                    context=context,
                )
            )
        elif i.state is MigrationState.OUT_OF_ORDER and not settings.allow_out_of_order:
            errors.append(
                MigrationRefused(
                    f"{i.file} ({version}) is pending but lower than the highest applied version: {i.reason}",
                    file=i.file,
                    rule="out-of-order",
                    remedy=(
                        "rename it above the highest applied version (`schemagate new` picks the next "
                        "number), or "
                        "enable out-of-order migrations (allow_out_of_order) if applying it late is safe"
                    ),
                    context=context,
                )
            )
    return errors
