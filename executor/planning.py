"""What an apply would do: the plan (the migrations to apply, in order, each with its reason, and the
refusals), and the info list it is built from.  Reads only: changes nothing, creates no table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from executor.bundle import Bundle
from executor.errors import SchemagateError
from executor.history import read_history
from executor.manifest import ManifestEntry
from executor.naming import REPEATABLE, Version
from executor.session import autocommit, bounded
from executor.settings import ExecutorSettings
from executor.state import MigrationInfo, MigrationState, build_info, refusals
from executor.vocabulary import PlanReason

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

    from executor import index_validity


@dataclass
class Plan:
    """What an apply would do: the migrations to apply in order, each with its reason, and the
    refusals that stop it."""

    infos: list[MigrationInfo]
    to_apply: list[tuple[ManifestEntry, PlanReason]]  # (entry, why)
    refusals: list[SchemagateError]

    def summary(self) -> str:
        if self.refusals:
            return f"{len(self.refusals)} refusal(s): nothing will be applied"
        if not self.to_apply:
            return "the database is up to date: nothing to apply"
        return f"{len(self.to_apply)} migration(s) to apply: " + ", ".join(e.file for e, _ in self.to_apply)


def plan_from(infos: list[MigrationInfo], settings: ExecutorSettings) -> Plan:
    versioned: list[tuple[Version, ManifestEntry, PlanReason]] = []
    repeatable: list[tuple[ManifestEntry, PlanReason]] = []
    for i in infos:
        if i.entry is None:
            continue
        if i.state is MigrationState.PENDING and i.kind != REPEATABLE:
            versioned.append((i.entry.required_version, i.entry, PlanReason.PENDING))
        elif i.state is MigrationState.OUT_OF_ORDER and settings.allow_out_of_order:
            versioned.append((i.entry.required_version, i.entry, PlanReason.OUT_OF_ORDER))
        elif i.state is MigrationState.PENDING:
            repeatable.append((i.entry, PlanReason.REPEATABLE_NEW))
        elif i.state is MigrationState.OUTDATED:
            repeatable.append((i.entry, PlanReason.REPEATABLE_CHANGED))
    versioned.sort(key=lambda t: t[0])
    return Plan(
        infos=infos,
        to_apply=[(e, why) for _, e, why in versioned] + repeatable,
        refusals=refusals(infos, settings),
    )


def info(conn: Connection, bundle: Bundle | None, settings: ExecutorSettings) -> list[MigrationInfo]:
    """The info list; ``bundle=None`` describes the history alone.  Changes nothing.

    A recorded migration whose index is INVALID in the database lists it in ``invalid_indexes``.
    """
    from executor import index_validity  # info and plan only: apply plans from the history alone

    with autocommit(conn, exclusive=False), bounded(conn, settings, "reading the history"):
        rows = read_history(conn, settings)
        infos = build_info(bundle.manifest if bundle else None, rows, settings)
        with conn.cursor() as cur:
            index_validity.annotate(cur, bundle, infos)
    return infos


def invalid_indexes(
    conn: Connection, bundle: Bundle | None, settings: ExecutorSettings, infos: list[MigrationInfo]
) -> list[tuple[index_validity.IndexRow, str | None]]:
    """Every INVALID index in the database, with the recorded migration that should have built it
    (its file, or None).  Changes nothing."""
    from executor import index_validity

    with (
        autocommit(conn, exclusive=False),
        bounded(conn, settings, "looking for INVALID indexes"),
        conn.cursor() as cur,
    ):
        return index_validity.annotate(cur, bundle, infos)


def plan(conn: Connection, bundle: Bundle, settings: ExecutorSettings) -> Plan:
    """What ``apply`` would do and why, with its refusals.  Changes nothing, creates no table."""
    return plan_from(info(conn, bundle, settings), settings)
