"""Small typed helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from executor.naming import Version


class _Cursor(Protocol):
    def fetchone(self) -> tuple[Any, ...] | None: ...


class _Versioned(Protocol):
    @property
    def version(self) -> Version | None: ...


def fetch_value(cur: _Cursor) -> Any:
    """The first column of ``cur.fetchone()``, failing with a clear message (rather than a TypeError
    on None) when the query returned no row."""
    row = cur.fetchone()
    assert row is not None, "the query returned no row"
    return row[0]


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
