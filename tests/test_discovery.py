"""validator/discovery.py: every file under the migrations directory is classified."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.checksum import file_checksum
from executor.errors import ConfigurationError
from validator.discovery import discover, has_sql, skip_sql_trivia


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def test_migrations_are_found_recursively_in_application_order(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "R__view.sql": "create view v as select 1;",
            "V10__ten.sql": "select 10;",
            "sub/V2__two.sql": "select 2;",
            "V1__one.sql": "select 1;",
            "U2__undo_two.sql": "select -2;",
            "README.md": "# notes",
            ".gitkeep": "",
            ".hidden/V99__x.sql": "select 99;",
        },
    )
    files, findings = discover(tmp_path)
    assert findings == []
    assert [f.rel for f in files] == [
        "V1__one.sql",
        "sub/V2__two.sql",
        "V10__ten.sql",
        "R__view.sql",
        "U2__undo_two.sql",
    ]
    two = files[1]
    assert two.path == tmp_path / "sub" / "V2__two.sql" and two.text == "select 2;"
    assert two.checksum == file_checksum(b"select 2;") and two.data == b"select 2;"


@pytest.mark.parametrize(
    ("name", "example"),
    [
        ("v1__x.sql", "V1__x.sql"),
        ("V1_x.sql", "V1__x.sql"),
        ("V1__x.SQL", "V1__x.sql"),
        ("V1__.sql", "V1__describe_the_change.sql"),
        ("V1.sql", "V1__describe_the_change.sql"),
        ("sub/v2__y.sql", "sub/V2__y.sql"),
    ],
)
def test_near_misses_are_errors_showing_a_correct_name(tmp_path: Path, name: str, example: str) -> None:
    write(tmp_path, {"V0__base.sql": "select 1;", name: "select 1;"})
    files, findings = discover(tmp_path)
    assert [f.rel for f in files] == ["V0__base.sql"]
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.rule, finding.family, finding.severity, finding.file) == (
        "naming-malformed",
        "naming",
        "error",
        name,
    )
    assert example in finding.help
    assert finding.line is None


def test_invalid_utf8_names_byte_offset_and_line(tmp_path: Path) -> None:
    data = "select 1;\n-- café\nselect 'x".encode() + b"\xe9t\xe9';\n"
    write(tmp_path, {"V1__latin1.sql": data})
    files, findings = discover(tmp_path)
    assert len(files) == 1 and files[0].text is None  # kept: order checks still see the version
    (finding,) = findings
    offset = data.index(b"\xe9t")
    assert finding.rule == "naming-not-utf8" and finding.severity == "error"
    assert f"byte offset {offset}" in finding.message and "0xe9" in finding.message
    assert (finding.line, finding.column) == (3, 10)


def test_invalid_utf8_offset_counts_the_bom(tmp_path: Path) -> None:
    write(tmp_path, {"V1__x.sql": b"\xef\xbb\xbfselect \xff;"})
    (_,), (finding,) = discover(tmp_path)
    assert "byte offset 10" in finding.message and finding.line == 1
    assert finding.column == 8  # the column an editor shows: the BOM is no character of the line


@pytest.mark.parametrize(
    "content", ["", "   \n\t\n", "-- nothing yet\n", "/* a /* nested */ comment */\n;\n"]
)
def test_files_without_sql_are_errors(tmp_path: Path, content: str) -> None:
    write(tmp_path, {"V1__empty.sql": content})
    files, findings = discover(tmp_path)
    assert len(files) == 1
    assert [f.rule for f in findings] == ["naming-empty-file"]
    assert "V1__empty.sql" in findings[0].help


def test_bom_and_crlf_are_normalised_in_text_and_checksum(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"V1__a.sql": b"\xef\xbb\xbfselect 1;\r\nselect 2;\r\n", "V2__b.sql": b"select 1;\nselect 2;\n"},
    )
    (a, b), findings = discover(tmp_path)
    assert findings == []
    assert a.text == "select 1;\nselect 2;\n" and a.checksum == b.checksum
    assert a.data.startswith(b"\xef\xbb\xbf")  # bytes stay as they are on disk (bundled byte for byte)


def test_nonexistent_directory_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        discover(tmp_path / "nope")
    assert info.value.exit_code == 2 and "does not exist" in info.value.message
    assert "schemagate new" in (info.value.remedy or "")


def test_a_file_instead_of_a_directory_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "f.sql").write_text("select 1;")
    with pytest.raises(ConfigurationError, match="not a directory"):
        discover(tmp_path / "f.sql")


def test_directory_without_migrations_is_a_configuration_error(tmp_path: Path) -> None:
    write(tmp_path, {"README.md": "x", ".gitkeep": ""})
    with pytest.raises(ConfigurationError) as info:
        discover(tmp_path)
    assert "holds no migration files" in info.value.message and info.value.exit_code == 2


def test_only_malformed_files_give_findings_not_a_crash(tmp_path: Path) -> None:
    write(tmp_path, {"v1__x.sql": "select 1;"})
    files, findings = discover(tmp_path)
    assert files == [] and [f.rule for f in findings] == ["naming-malformed"]


def test_trivia_skipping() -> None:
    text = "  -- a\n /* b /* c */ d */\n\tselect 1; -- e"
    assert text[skip_sql_trivia(text) :].startswith("select 1;")
    assert not has_sql("-- x\n/* y */ ; ;")
    assert has_sql("-- x\nselect 1")


def test_a_link_out_of_the_directory_is_refused_and_its_target_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    write(outside, {"evil.sql": "DROP TABLE customers;", "more/V9__x.sql": "DROP TABLE invoices;"})
    migrations = write(
        tmp_path / "migrations",
        {"V1__create_customers.sql": "CREATE TABLE customers (id bigint PRIMARY KEY);\n"},
    )
    (migrations / "V2__looks_innocent.sql").symlink_to(outside / "evil.sql")
    (migrations / "shared").symlink_to(outside / "more", target_is_directory=True)
    (migrations / "V3__same_dir.sql").symlink_to(migrations / "V1__create_customers.sql")

    files, findings = discover(migrations)

    refused = {f.file: f for f in findings if f.rule == "symlink-outside"}
    assert set(refused) == {"V2__looks_innocent.sql", "shared"}
    assert str(outside / "evil.sql") in refused["V2__looks_innocent.sql"].message
    assert all(f.severity == "error" for f in refused.values())
    # the target's bytes are in no migration; a link inside the directory is an ordinary file
    assert [f.rel for f in files] == ["V1__create_customers.sql", "V3__same_dir.sql"]
    assert all(b"DROP TABLE" not in f.data for f in files)


def test_a_file_over_the_size_limit_is_an_error_and_is_not_read(tmp_path: Path) -> None:
    big = (
        "INSERT INTO audit_log (id, note) VALUES " + ",".join(f"({i}, 'n{i}')" for i in range(20000)) + ";\n"
    )
    write(
        tmp_path,
        {"V1__create_audit_log.sql": "CREATE TABLE audit_log (id bigint, note text);\n", "V2__load.sql": big},
    )
    files, findings = discover(tmp_path, max_file_bytes=100_000)
    assert [f.rel for f in files] == ["V1__create_audit_log.sql"]
    [finding] = findings
    assert finding.rule == "file-too-large" and finding.file == "V2__load.sql"
    assert "0.1 MiB" in finding.message and "max_file_mb" in finding.help
