"""Flyway's layout (schemagate's own): ``V<version>__<description>.sql``, ``R__<description>.sql``,
``U<version>__<description>.sql`` anywhere under the migrations directory (Flyway scans
sub-directories too).  Names are parsed by ``executor.naming`` (a verdict with an example, like
Flyway's ResourceNameParser)."""

from __future__ import annotations

import re
from datetime import datetime

from executor.errors import ConfigurationError
from executor.layouts.base import Layout, NameProblem, NewMigration, Resolution, SourceTree
from executor.layouts.base import ResolvedMigration as Resolved
from executor.layouts.numbering import next_version
from executor.naming import VERSION_RE, VERSIONED, Version, parse_name

_PREFIX_SHAPED = re.compile(r"^([VvUu]\d|[Rr]__)")  # unmistakably meant as a Flyway name


class Flyway(Layout):
    name = "flyway"
    title = "Flyway"
    docs = "docs/layouts/flyway.md"
    patterns = "V<version>__<description>.sql, R__<description>.sql or U<version>__<description>.sql"

    def score(self, tree: SourceTree) -> int:
        return sum(1 for rel in tree.paths() if parse_name(rel).ok)

    def resolve(self, tree: SourceTree) -> Resolution:
        out = Resolution(layout=self.name, evidence=0)
        for rel in tree.paths():
            verdict = parse_name(rel)
            if not verdict.is_migration_like:
                continue
            out.migration_like += 1
            if _PREFIX_SHAPED.match(rel.rsplit("/", 1)[-1]):
                out.evidence = (out.evidence or 0) + 1
            if verdict.name is None:
                head, sep, _ = rel.rpartition("/")
                out.problems.append(
                    NameProblem(
                        rel=rel,
                        problem=verdict.problem or "not a migration name",
                        example=f"{head}{sep}{verdict.example or 'V1__describe_the_change.sql'}",
                    )
                )
                continue
            out.migrations.append(Resolved(rel=rel, name=verdict.name))
        return out

    def new_migration(
        self, tree: SourceTree, description: str, *, now: datetime, version: str | None = None
    ) -> NewMigration:
        existing = [
            m.version for m in self.resolve(tree).migrations if m.kind == VERSIONED and m.version is not None
        ]
        if version is None:
            version = next_version(existing, now=now)
        elif not VERSION_RE.match(version):
            raise ConfigurationError(
                f"--version {version!r} is not a migration version",
                remedy="digits separated by '.' or '_', for example --version 2.0 or --version 043",
            )
        elif Version.parse(version) in existing:
            raise ConfigurationError(
                f"version {version} is already used", remedy="leave out --version to get the next free one"
            )
        rel = f"V{version}__{description}.sql"
        return NewMigration(files={rel: header(version, description, now)}, edit_first=rel, version=version)


def header(version: str, description: str, now: datetime) -> str:
    return (
        f"-- V{version}: {description.replace('_', ' ')}\n"
        f"-- Created by `schemagate new` on {now.strftime('%Y-%m-%d %H:%M')} UTC.\n"
        "-- One change per file: the executor applies the file in a single transaction and records it.\n"
        "-- A statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY, ...) goes alone in\n"
        "-- a file of its own.\n"
        "\n"
    )
