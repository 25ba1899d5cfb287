"""executor/naming.py: file names, versions and the suggestions shown for near-misses."""

from __future__ import annotations

import pytest

from executor.naming import (
    REPEATABLE,
    UNDO,
    VERSIONED,
    Version,
    format_version_like,
    looks_like_migration,
    parse_name,
    suggest_name,
)


@pytest.mark.parametrize(
    ("file", "kind", "version", "description"),
    [
        ("V1__init.sql", VERSIONED, "1", "init"),
        ("V001__create_customers.sql", VERSIONED, "001", "create customers"),
        ("V1.2__add_x.sql", VERSIONED, "1.2", "add x"),
        ("V2024_05_01_1200__add_x.sql", VERSIONED, "2024_05_01_1200", "add x"),
        ("R__invoice_totals_view.sql", REPEATABLE, None, "invoice totals view"),
        ("U7__drop_x.sql", UNDO, "7", "drop x"),
        ("sub/dir/V3__x.sql", VERSIONED, "3", "x"),
    ],
)
def test_well_formed_names(file: str, kind: str, version: str | None, description: str) -> None:
    verdict = parse_name(file)
    assert verdict.ok and verdict.name is not None
    assert verdict.name.kind == kind
    assert (verdict.name.version.text if verdict.name.version else None) == version
    assert verdict.name.description == description


@pytest.mark.parametrize(
    ("file", "problem_part", "example"),
    [
        ("v1__x.sql", "upper-case 'V'", "V1__x.sql"),
        ("V1_x.sql", "two underscores", "V1__x.sql"),
        ("V1__x.SQL", "lower-case '.sql'", "V1__x.sql"),
        ("V1__.sql", "description after '__' is empty", "V1__describe_the_change.sql"),
        ("V1.sql", "two underscores", "V1__describe_the_change.sql"),
        ("r__view.sql", "upper-case 'R'", "R__view.sql"),
        ("R1__view.sql", "repeatable migration has no version", "R__view.sql"),
        ("V1___ _.sql", "may not be only '_' and white space", "V1__describe_the_change.sql"),
        ("Vx__init.sql", "version must be digits", "V1__x_init.sql"),
        ("create_tables.sql", "must start with 'V'", "V1__create_tables.sql"),
        ("V1__x.sql.bak", "must end in '.sql'", "V1__x_sql_bak.sql"),
    ],
)
def test_near_misses_say_why_and_show_a_good_name(file: str, problem_part: str, example: str) -> None:
    verdict = parse_name(file)
    assert not verdict.ok and verdict.is_migration_like
    assert problem_part in (verdict.problem or "")
    assert verdict.example == example
    assert parse_name(verdict.example).ok  # the suggestion itself is valid


@pytest.mark.parametrize("file", ["README.md", ".gitkeep", "notes.txt", "schema.png"])
def test_other_files_are_not_migrations(file: str) -> None:
    assert not looks_like_migration(file)
    assert not parse_name(file).is_migration_like


def test_versions_compare_numerically_part_by_part() -> None:
    assert Version.parse("1.10") > Version.parse("1.9")
    assert Version.parse("001") == Version.parse("1")
    assert Version.parse("1.0") == Version.parse("1")
    assert Version.parse("2024_05_01_1200") < Version.parse("2024_05_02_0000")
    assert sorted(Version.parse(v) for v in ["10", "9", "1.5"]) == [
        Version.parse("1.5"),
        Version.parse("9"),
        Version.parse("10"),
    ]
    with pytest.raises(ValueError):
        Version.parse("1a")


def test_suggest_name_keeps_prefix_and_version() -> None:
    assert suggest_name("u12_drop thing.SQL") == "U12__drop_thing.sql"


@pytest.mark.parametrize(
    ("previous", "number", "expected"),
    [("042", 43, "043"), ("099", 100, "100"), ("999", 1000, "1000"), ("7", 8, "8"), (None, 1, "1")],
)
def test_format_version_like_keeps_padding(previous: str | None, number: int, expected: str) -> None:
    assert format_version_like(previous, number) == expected


@pytest.mark.parametrize(
    ("file", "description"),
    [
        ("V2__add-index.sql", "add-index"),
        ("V3__Add user.email column.sql", "Add user.email column"),
        ("V1.7.0__release_1.7.0_schema.sql", "release 1.7.0 schema"),
        ("R__views-reporting.sql", "views-reporting"),
    ],
)
def test_descriptions_accept_what_flyway_accepts(file: str, description: str) -> None:
    verdict = parse_name(file)
    assert verdict.ok, verdict.problem
    assert verdict.name is not None and verdict.name.description == description
