"""Small typed helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from executor.connection import one_value
from executor.naming import Version
from tests.database_faults import rows

if TYPE_CHECKING:
    from click.testing import Result


class _Versioned(Protocol):
    @property
    def version(self) -> Version | None: ...


# the first column of the row the last query returned; LookupError naming the query when it
# returned none (rather than a TypeError on None)
fetch_value = one_value


def version_of(named: _Versioned) -> Version:
    """The version of a versioned (or undo) migration; None is only for repeatables, which have
    none."""
    assert named.version is not None, f"{named} has no version"
    return named.version


def version_text(named: _Versioned) -> str:
    """The version of a versioned (or undo) migration as written in its name."""
    return version_of(named).text


class _Ruled(Protocol):
    @property
    def rule(self) -> str | None: ...


def sorted_rules(errors: Iterable[_Ruled]) -> list[str]:
    """The rule ids of refusals (SchemagateError.rule), sorted; every refusal names its rule."""
    rules = [e.rule for e in errors]
    assert None not in rules, f"a refusal without a rule: {rules}"
    return sorted(r for r in rules if r is not None)


def validate_rehearsed(migrations: Path, reports: Path, rehearsal_url: str) -> Result:
    """``schemagate validate --no-lint --rehearse`` of ``migrations`` on the server of
    ``rehearsal_url``, run in this process (click's runner), the reports written into ``reports``."""
    from click.testing import CliRunner

    from schemagate.cli import cli

    argv = ["validate", "--migrations", str(migrations), "--reports", str(reports), "--no-lint"]
    return CliRunner().invoke(cli, [*argv, "--rehearse", "--rehearsal-database-url", rehearsal_url])


# extensions a test can create to stand for "an extension": the first the server ships is used
# (PostgreSQL from Debian has the contrib modules; the embedded server of pgserver has vector)
_STAND_IN_EXTENSIONS = ("pgcrypto", "hstore", "citext", "vector")


def available_extension(url: str) -> str:
    """An extension the server at ``url`` can create, other than plpgsql."""
    query = "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)"
    found = {row[0] for row in rows(url, query, (list(_STAND_IN_EXTENSIONS),))}
    names = [name for name in _STAND_IN_EXTENSIONS if name in found]
    assert names, f"the test server ships none of {', '.join(_STAND_IN_EXTENSIONS)}"
    return names[0]
