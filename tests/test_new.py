"""schemagate new: the next version in the existing files' style, a valid description, or a refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from executor.errors import ConfigurationError
from executor.naming import Version, parse_name
from schemagate.cli import main
from schemagate.cmd_new import create_migration, next_version, slug_description

NOW = datetime(2026, 11, 21, 23, 58, 7, tzinfo=UTC)


def versions(*texts: str) -> list[Version]:
    return [Version.parse(t) for t in texts]


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ((), "001"),
        (tuple(f"{n:03d}" for n in range(1, 43)), "043"),
        (("1", "7"), "8"),
        (("9",), "10"),
        (("098", "099"), "100"),
        (("999",), "1000"),
        (("1.1", "1.2"), "1.3"),
        (("1.9",), "1.10"),
        (("2.09",), "2.10"),
        (("1_2",), "1_3"),
        (("2024_05_01_1200", "2024_05_02_0900"), "2026_11_21_2358"),
        (("2024.05.01.1200",), "2026.11.21.2358"),
        (("20240501120000",), "20261121235807"),
        (("20240501",), "20261121"),
        (("2030_01_01_0000",), "2030_01_01_0001"),  # clock behind the newest file: count on
    ],
)
def test_next_version_follows_the_existing_style(existing: tuple[str, ...], expected: str) -> None:
    assert next_version(versions(*existing), now=NOW) == expected


def test_the_highest_version_sets_the_style_whatever_the_file_order() -> None:
    assert next_version(versions("010", "2", "009"), now=NOW) == "011"


@pytest.mark.parametrize(
    ("words", "slug"),
    [
        (("add", "invoice", "status"), "add_invoice_status"),
        (("add invoice status",), "add_invoice_status"),
        (("Add-Invoice", " due_at "), "Add_Invoice_due_at"),
        (("v2", "backfill"), "v2_backfill"),
    ],
)
def test_description_from_words(words: tuple[str, ...], slug: str) -> None:
    assert slug_description(words) == slug


@pytest.mark.parametrize(
    ("words", "problem", "example"),
    [
        (("añadir", "índice"), "'ñ'", "schemagate new anadir indice"),
        (("drop;", "table"), "';'", "schemagate new drop table"),
        (("add", "v1.2", "column"), "'.'", "schemagate new add v1 2 column"),
        (("  ",), "empty", "schemagate new add invoice status"),
        (("x" * 200,), "longer than", "schemagate new "),
    ],
)
def test_descriptions_that_cannot_make_a_name_are_refused(
    words: tuple[str, ...], problem: str, example: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        slug_description(words)
    assert info.value.exit_code == 2
    assert problem in info.value.message and example in (info.value.remedy or "")


def test_create_migration_writes_a_header_and_numbers_after_existing(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("V001__a.sql", "sub/V002__b.sql", "R__view.sql", "U002__b.sql", "README.md", "v9__bad.sql"):
        (tmp_path / name).write_text("select 1;\n")
    path = create_migration(tmp_path, ("add", "invoice", "status"), now=NOW)
    assert path == tmp_path / "V003__add_invoice_status.sql"
    assert parse_name(path.name).ok
    text = path.read_text()
    assert text.startswith(
        "-- V003: add invoice status\n-- Created by `schemagate new` on 2026-11-21 23:58 UTC."
    )


def test_cli_creates_the_file_and_prints_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.schemagate]\nmigrations = "db/migrations"\n')
    assert main(["new", "create", "customers"]) == 0
    assert main(["new", "add", "invoice", "status"]) == 0
    out = capsys.readouterr()
    created = tmp_path / "db" / "migrations"
    assert sorted(p.name for p in created.iterdir()) == [
        "V001__create_customers.sql",
        "V002__add_invoice_status.sql",
    ]
    assert out.out.splitlines() == [
        str(created / "V001__create_customers.sql"),
        str(created / "V002__add_invoice_status.sql"),
    ]
    assert "created directory" in out.err


def test_cli_migrations_option_and_explicit_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    mig = tmp_path / "m"
    mig.mkdir()
    (mig / "V1.4__x.sql").write_text("select 1;")
    assert main(["new", "--migrations", "m", "next"]) == 0
    assert main(["new", "--migrations", "m", "--version", "2.0", "release", "two"]) == 0
    assert sorted(p.name for p in mig.iterdir()) == ["V1.4__x.sql", "V1.5__next.sql", "V2.0__release_two.sql"]
    capsys.readouterr()
    assert main(["new", "--migrations", "m", "--version", "2", "again"]) == 2  # 2 == 2.0
    assert "already used" in capsys.readouterr().err
    assert main(["new", "--migrations", "m", "--version", "2.x", "bad"]) == 2


def test_cli_refuses_a_bad_description_with_exit_2_and_an_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new", "--migrations", "m", "añadir", "columna"]) == 2
    err = capsys.readouterr().err
    assert "schemagate new anadir columna" in err
    assert not (tmp_path / "m").exists()
    assert main(["new"]) == 2  # the description is required
