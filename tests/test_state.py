"""The info join (bundle x history -> state) and the refusals, as a pure function: no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from executor.checksum import file_checksum
from executor.errors import ChecksumMismatch, MigrationRefused
from executor.history import HistoryRow
from executor.manifest import Manifest, ManifestEntry
from executor.settings import ExecutorSettings
from executor.state import MigrationState, build_info, refusals
from tests.helpers import sorted_rules

S = MigrationState
SETTINGS = ExecutorSettings()


def entry(file: str, sql: str | None = None) -> ManifestEntry:
    kind = {"V": "versioned", "R": "repeatable", "U": "undo"}[file[0]]
    version = None if kind == "repeatable" else file[1:].split("__")[0]
    return ManifestEntry(
        file=file,
        kind=kind,
        version=version,
        description=file.split("__")[1][:-4],
        sha256=file_checksum((sql or file).encode()),
    )


def row(
    rank: int,
    file: str,
    *,
    type: str | None = None,
    sql: str | None = None,
    success: bool = True,
    version: str | None = None,
) -> HistoryRow:
    e = entry(file, sql) if file[0] in "VRU" and "__" in file else None
    rtype = type or ("REPEATABLE" if file.startswith("R__") else "SQL")
    return HistoryRow(
        installed_rank=rank,
        version=version if version is not None else (e.version if e else None),
        description=file,
        type=rtype,
        script=file,
        checksum=e.sha256 if e and rtype != "BASELINE" else None,
        installed_by="app",
        installed_on=datetime(2026, 1, 1, tzinfo=UTC),
        execution_time_ms=5,
        success=success,
        bundle_sha256="b" * 64,
        run_id="local",
    )


def states(infos) -> dict[str, MigrationState]:
    return {i.file: i.state for i in infos}


def manifest(*entries: ManifestEntry) -> Manifest:
    return Manifest(migrations=list(entries))


def test_pending_and_applied() -> None:
    m = manifest(entry("V1__a.sql"), entry("V2__b.sql"), entry("R__view.sql"))
    infos = build_info(m, [row(1, "V1__a.sql")], SETTINGS)
    assert states(infos) == {"V1__a.sql": S.APPLIED, "V2__b.sql": S.PENDING, "R__view.sql": S.PENDING}
    applied = infos[0]
    assert (applied.installed_rank, applied.installed_by, applied.applied_checksum) == (
        1,
        "app",
        applied.bundle_checksum,
    )
    assert "applied 2026-01-01" in applied.reason
    assert refusals(infos, SETTINGS) == []


def test_versions_compare_numerically_so_001_is_1() -> None:
    infos = build_info(
        manifest(entry("V001__a.sql"), entry("V1.10__c.sql"), entry("V1.9__b.sql")),
        [row(1, "V001__a.sql", version="1")],
        SETTINGS,
    )
    assert states(infos)["V001__a.sql"] is S.APPLIED
    pending = [i.file for i in infos if i.state is S.PENDING]
    assert pending == ["V1.9__b.sql", "V1.10__c.sql"]


def test_a_changed_versioned_file_is_drifted_and_refused_with_both_checksums() -> None:
    m = manifest(entry("V1__a.sql", "CREATE TABLE a (id bigint);"))
    infos = build_info(m, [row(1, "V1__a.sql", sql="CREATE TABLE a (id int);")], SETTINGS)
    assert states(infos) == {"V1__a.sql": S.DRIFTED}
    (error,) = refusals(infos, SETTINGS)
    assert isinstance(error, ChecksumMismatch)
    assert error.file == "V1__a.sql" and error.rule == "checksum-drift"
    assert error.context["expected"] == file_checksum(b"CREATE TABLE a (id int);")
    assert error.context["actual"] == file_checksum(b"CREATE TABLE a (id bigint);")
    assert error.context["expected"] in error.message and error.context["actual"] in error.message
    assert error.remedy is not None and "repair --realign-checksums" in error.remedy


def test_an_applied_version_absent_from_the_bundle_is_missing_unless_allowed() -> None:
    m = manifest(entry("V1__a.sql"), entry("V3__c.sql"))
    infos = build_info(m, [row(1, "V1__a.sql"), row(2, "V2__b.sql")], SETTINGS)
    assert states(infos)["V2__b.sql"] is S.MISSING
    (error,) = refusals(infos, SETTINGS)
    assert (
        isinstance(error, MigrationRefused)
        and error.rule == "missing-migration"
        and error.file == "V2__b.sql"
    )
    assert refusals(infos, SETTINGS.with_overrides(allow_missing=True)) == []


def test_an_applied_version_newer_than_the_bundle_is_future_and_not_refused() -> None:
    infos = build_info(manifest(entry("V1__a.sql")), [row(1, "V1__a.sql"), row(2, "V2__b.sql")], SETTINGS)
    assert states(infos)["V2__b.sql"] is S.FUTURE
    assert refusals(infos, SETTINGS) == []


def test_a_pending_version_below_the_highest_applied_is_out_of_order_unless_enabled() -> None:
    m = manifest(entry("V1__a.sql"), entry("V2__b.sql"), entry("V3__c.sql"))
    infos = build_info(m, [row(1, "V1__a.sql"), row(2, "V3__c.sql")], SETTINGS)
    assert states(infos)["V2__b.sql"] is S.OUT_OF_ORDER
    (error,) = refusals(infos, SETTINGS)
    assert error.rule == "out-of-order" and error.file == "V2__b.sql" and "highest applied" in error.message
    assert refusals(infos, SETTINGS.with_overrides(allow_out_of_order=True)) == []


def test_a_failed_row_blocks_the_run_until_repair() -> None:
    m = manifest(entry("V1__a.sql"), entry("V2__b.sql"))
    infos = build_info(m, [row(1, "V1__a.sql"), row(2, "V2__b.sql", success=False)], SETTINGS)
    assert states(infos) == {"V1__a.sql": S.APPLIED, "V2__b.sql": S.FAILED}
    (error,) = refusals(infos, SETTINGS)
    assert (
        error.remedy is not None and error.rule == "failed-migration" and "schemagate repair" in error.remedy
    )


def test_repeatables_are_outdated_when_their_checksum_changes_and_only_the_latest_run_counts() -> None:
    m = manifest(entry("V1__a.sql"), entry("R__view.sql", "v2"))
    history = [row(1, "V1__a.sql"), row(2, "R__view.sql", sql="v0"), row(3, "R__view.sql", sql="v1")]
    infos = build_info(m, history, SETTINGS)
    assert [(i.file, i.state, i.installed_rank) for i in infos] == [
        ("V1__a.sql", S.APPLIED, 1),
        ("R__view.sql", S.OUTDATED, 3),
    ]
    assert refusals(infos, SETTINGS) == []
    current = build_info(m, [*history, row(4, "R__view.sql", sql="v2")], SETTINGS)
    assert states(current)["R__view.sql"] is S.APPLIED


def test_a_removed_repeatable_is_missing_but_does_not_block() -> None:
    infos = build_info(manifest(entry("V1__a.sql")), [row(1, "V1__a.sql"), row(2, "R__old.sql")], SETTINGS)
    assert states(infos)["R__old.sql"] is S.MISSING
    assert refusals(infos, SETTINGS) == []


def test_baseline_marks_lower_versions_below_baseline() -> None:
    m = manifest(entry("V1__a.sql"), entry("V2__b.sql"), entry("V3__c.sql"))
    infos = build_info(m, [row(1, "<< baseline >>", type="BASELINE", version="2")], SETTINGS)
    assert [(i.file, i.state) for i in infos] == [
        ("<< baseline >>", S.BASELINE),
        ("V1__a.sql", S.BELOW_BASELINE),
        ("V2__b.sql", S.BELOW_BASELINE),
        ("V3__c.sql", S.PENDING),
    ]
    assert refusals(infos, SETTINGS) == []


def test_undo_files_are_available_and_an_applied_undo_makes_its_version_pending_again() -> None:
    m = manifest(entry("V1__a.sql"), entry("V2__b.sql"), entry("U2__b.sql"))
    infos = build_info(m, [row(1, "V1__a.sql"), row(2, "V2__b.sql")], SETTINGS)
    assert states(infos)["U2__b.sql"] is S.UNDO
    undone = build_info(
        m, [row(1, "V1__a.sql"), row(2, "V2__b.sql"), row(3, "U2__b.sql", type="UNDO")], SETTINGS
    )
    assert [(i.file, i.state) for i in undone if i.kind == "versioned"] == [
        ("V1__a.sql", S.APPLIED),
        ("V2__b.sql", S.PENDING),
    ]


def test_history_alone_shows_applied_failed_and_baseline() -> None:
    history = [
        row(1, "<< baseline >>", type="BASELINE", version="1"),
        row(2, "V2__b.sql"),
        row(3, "V3__c.sql", success=False),
    ]
    infos = build_info(None, history, SETTINGS)
    assert [i.state for i in infos] == [S.BASELINE, S.APPLIED, S.FAILED]
    assert infos[1].to_dict()["state"] == "applied"


@pytest.mark.parametrize("allow", [False, True])
def test_every_problem_is_reported_not_just_the_first(allow: bool) -> None:
    m = manifest(entry("V1__a.sql", "changed"), entry("V2__b.sql"), entry("V4__d.sql"))
    history = [
        row(1, "V1__a.sql"),
        row(2, "V3__c.sql"),
        row(3, "V4__d.sql"),
        row(4, "V5__e.sql", success=False),
    ]
    infos = build_info(m, history, SETTINGS)
    assert states(infos) == {
        "V1__a.sql": S.DRIFTED,
        "V3__c.sql": S.MISSING,
        "V4__d.sql": S.APPLIED,
        "V5__e.sql": S.FAILED,
        "V2__b.sql": S.OUT_OF_ORDER,
    }
    settings = SETTINGS.with_overrides(allow_missing=allow, allow_out_of_order=allow)
    rules = sorted_rules(refusals(infos, settings))
    expected = ["checksum-drift", "failed-migration"]
    if not allow:
        expected += ["missing-migration", "out-of-order"]
    assert rules == sorted(expected)
