"""validator/order.py: duplicate versions, undo without its version, gaps."""

from __future__ import annotations

from pathlib import Path

from validator.config import ValidatorConfig
from validator.discovery import discover
from validator.order import check_order


def order_findings(tmp_path: Path, names: list[str]):
    for rel in names:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("select 1;\n")
    files, naming = discover(tmp_path)
    assert naming == []
    return check_order(files, ValidatorConfig(project_root=tmp_path, migrations=tmp_path))


def test_clean_history_has_no_findings(tmp_path: Path) -> None:
    assert (
        order_findings(tmp_path, ["V001__a.sql", "V002__b.sql", "V003__c.sql", "R__v.sql", "U002__b.sql"])
        == []
    )


def test_same_version_written_differently_is_a_duplicate(tmp_path: Path) -> None:
    findings = order_findings(tmp_path, ["V1__a.sql", "V001__b.sql", "V2__c.sql"])
    (dup,) = findings
    assert (dup.rule, dup.family, dup.severity) == ("duplicate-version", "order", "error")
    assert "V001__b.sql" in dup.message and "V1__a.sql" in dup.message
    assert dup.file in ("V1__a.sql", "V001__b.sql")


def test_dotted_versions_with_trailing_zero_are_duplicates(tmp_path: Path) -> None:
    assert [f.rule for f in order_findings(tmp_path, ["V1.1__a.sql", "V1.1.0__b.sql"])] == [
        "duplicate-version"
    ]


def test_duplicates_across_subdirectories(tmp_path: Path) -> None:
    findings = order_findings(tmp_path, ["a/V5__x.sql", "b/V5__y.sql", "a/R__view.sql", "b/R__view.sql"])
    assert sorted(f.rule for f in findings) == ["duplicate-repeatable", "duplicate-version"]


def test_undo_without_its_version(tmp_path: Path) -> None:
    (finding,) = order_findings(tmp_path, ["V1__a.sql", "U2__b.sql"])
    assert (finding.rule, finding.severity, finding.file) == ("undo-without-version", "error", "U2__b.sql")
    assert "V2__*.sql" in finding.message


def test_two_undo_files_for_one_version(tmp_path: Path) -> None:
    findings = order_findings(tmp_path, ["V1__a.sql", "U1__a.sql", "U001__b.sql"])
    assert [f.rule for f in findings] == ["duplicate-version"]
    assert "undo version" in findings[0].message


def test_gaps_are_warnings_that_name_the_missing_numbers(tmp_path: Path) -> None:
    findings = order_findings(
        tmp_path, ["V001__a.sql", "V002__b.sql", "V004__c.sql", "V008__d.sql", "V010__e.sql"]
    )
    assert [(f.rule, f.severity, f.file) for f in findings] == [
        ("version-gap", "warning", "V004__c.sql"),
        ("version-gap", "warning", "V008__d.sql"),
        ("version-gap", "warning", "V010__e.sql"),
    ]
    assert "version V003 is missing between V002__b.sql and V004__c.sql" in findings[0].message
    assert "versions V005..V007 are missing" in findings[1].message
    assert "version V009 is missing" in findings[2].message


def test_no_gap_warning_for_dotted_or_timestamp_versions(tmp_path: Path) -> None:
    assert order_findings(tmp_path / "a", ["V1.1__a.sql", "V1.5__b.sql", "V3__c.sql"]) == []
    assert order_findings(tmp_path / "b", ["V2024_05_01_1200__a.sql", "V2024_06_01_0900__b.sql"]) == []
    assert order_findings(tmp_path / "c", ["V20240501120000__a.sql", "V20240601090000__b.sql"]) == []


def test_history_not_starting_at_one_is_not_a_gap(tmp_path: Path) -> None:
    assert order_findings(tmp_path, ["V100__baseline.sql", "V101__next.sql"]) == []
