"""Which layout a directory is taken for, when it holds no valid migration of any layout: the messages
must be in the terms of the tool it resembles (a Diesel directory with `upp.sql` must not be told that
the prefix must be an upper-case 'U')."""

from __future__ import annotations

from pathlib import Path

import pytest

from validator.discovery import discover


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "layout", "says"),
    [
        (
            {
                "2024-03-01-101500_create_users/upp.sql": "CREATE TABLE users (id bigint PRIMARY KEY);\n",
                "2024-03-01-101500_create_users/down.sql": "DROP TABLE users;\n",
                "2024-03-04-090000_create_posts/Up.sql": "CREATE TABLE posts (id bigint PRIMARY KEY);\n",
            },
            "diesel",
            "Diesel",
        ),
        (
            {
                "20240301101500_init/migrations.sql": 'CREATE TABLE "User" (id integer PRIMARY KEY);\n',
                "migration_lock.toml": 'provider = "postgresql"\n',
            },
            "prisma",
            "Prisma",
        ),
        (
            {"v1__init.sql": "CREATE TABLE a (id int);\n", "create_tables.sql": "SELECT 1;\n"},
            "flyway",
            "Flyway",
        ),
    ],
)
def test_a_directory_of_near_misses_is_judged_in_the_terms_of_the_tool_it_resembles(
    tmp_path: Path, files: dict[str, str], layout: str, says: str
) -> None:
    found = discover(write(tmp_path, files))
    assert found.layout == layout
    assert found.files == []
    assert found.findings and all(
        f.rule.startswith("naming") or f.rule.startswith("prisma") for f in found.findings
    )
    assert all(says in f.message for f in found.findings if f.rule == "naming-malformed")
    assert not any("upper-case 'U'" in f.message for f in found.findings)
