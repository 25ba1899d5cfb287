"""Reports: one list of findings rendered as JUnit (CodeBuild), Markdown (PR comment), JSON, console."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from validator.findings import Finding
from validator.reports import (
    CODEBUILD_MAX_CASES,
    BundleInfo,
    JUnitCase,
    ReportData,
    ReportSection,
    console_lines,
    render_junit,
    render_markdown,
    write_reports,
)
from validator.safety.suppressions import Suppression

FILES = ["V1__create_customers.sql", "V2__add_email.sql", "V3__drop_legacy.sql"]


def finding(
    rule: str,
    family: str,
    severity: str,
    file: str | None,
    line: int | None = 3,
    column: int | None = 5,
    message: str = "something is wrong",
    help: str = "do this instead",
) -> Finding:
    return Finding(
        rule=rule,
        family=family,
        severity=severity,
        file=file,
        line=line,
        column=column,
        message=message,
        help=help,
        docs=f"https://example.test/rules#{rule}",
    )


@dataclass
class FakeRehearsal:
    """A ReportSection as the rehearsal implements it."""

    title: str = "Rehearsal"
    cases: list[JUnitCase] = field(default_factory=list)

    def markdown(self) -> str:
        return "| file | locks |\n|---|---|\n| V3__drop_legacy.sql | AccessExclusiveLock on legacy |"

    def to_json(self) -> dict:
        return {"migrations": [{"file": "V3__drop_legacy.sql", "locks": ["AccessExclusiveLock"]}]}

    def junit_suite(self) -> tuple[str, list[JUnitCase]]:
        return "rehearsal", self.cases


def sample(**overrides) -> ReportData:
    data = ReportData(
        files=list(FILES),
        findings=[
            finding(
                "ban-drop-column",
                "safety",
                "error",
                "V3__drop_legacy.sql",
                2,
                1,
                message="dropping a column | breaks old readers",
            ),
            finding("lint-AM04", "lint", "warning", "V2__add_email.sql", 7, 12),
            finding(
                "naming-version-gap", "order", "warning", None, None, None, message="versions 4-6 are missing"
            ),
        ],
        checks=["naming", "order", "syntax", "integrity", "lint", "safety"],
        suppressions=[
            # as check_sql leaves them: the first waived a finding, the second suppresses nothing
            Suppression(
                "V2__add_email.sql",
                1,
                ("adding-not-nullable-field",),
                "table is empty in prod",
                "statement",
                used=True,
                statement=0,
                used_rules={"adding-not-nullable-field"},
            ),
            Suppression("V1__create_customers.sql", 4, ("ban-drop-table",), "", "statement", statement=1),
        ],
        timings={"lint": 1.5},
        source={"repository": "https://example.test/repo.git", "commit": "abc123", "branch": "feature/x"},
    )
    for k, v in overrides.items():
        setattr(data, k, v)
    return data


def parse(data: ReportData, **kw) -> ET.Element:
    return ET.fromstring(render_junit(data, **kw))


def suite(root: ET.Element, name: str) -> ET.Element:
    found = root.find(f"testsuite[@name='{name}']")
    assert found is not None, [s.get("name") for s in root]
    return found


def test_junit_has_a_suite_per_family_that_ran_and_a_case_per_file():
    root = parse(sample())
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root.findall("testsuite")] == [
        "naming",
        "order",
        "syntax",
        "lint",
        "safety",
        "integrity",
    ]
    naming = suite(root, "naming")
    assert [c.get("name") for c in naming.findall("testcase")] == FILES
    assert {c.get("classname") for c in naming.findall("testcase")} == {"schemagate.naming"}
    assert naming.get("tests") == "3" and naming.get("failures") == "0"
    # a whole-run finding gets a case of its own
    assert "(all files)" in [c.get("name") for c in suite(root, "order").findall("testcase")]
    assert root.get("tests") == str(sum(int(s.get("tests")) for s in root.findall("testsuite")))


def test_junit_error_is_a_failure_with_location_rule_message_and_help():
    root = parse(sample())
    safety = suite(root, "safety")
    assert safety.get("failures") == "1"
    case = safety.find("testcase[@name='V3__drop_legacy.sql']")
    failure = case.find("failure")
    assert failure is not None
    assert (
        failure.get("message")
        == "V3__drop_legacy.sql:2:1 ban-drop-column: dropping a column | breaks old readers"
    )
    assert "help: do this instead" in failure.text
    assert "docs: https://example.test/rules#ban-drop-column" in failure.text
    # the other files pass
    assert all(
        c.find("failure") is None
        for c in safety.findall("testcase")
        if c.get("name") != "V3__drop_legacy.sql"
    )


def test_junit_warning_passes_with_system_out_unless_warnings_block():
    lint = suite(parse(sample()), "lint")
    case = lint.find("testcase[@name='V2__add_email.sql']")
    assert case.find("failure") is None
    assert "warning: V2__add_email.sql:7:12 lint-AM04" in case.find("system-out").text
    assert lint.get("time") == "1.500"

    strict = suite(parse(sample(blocking_severity="warning")), "lint")
    failure = strict.find("testcase[@name='V2__add_email.sql']/failure")
    assert failure is not None and failure.get("message").startswith("V2__add_email.sql:7:12 lint-AM04")


def test_junit_folds_passing_cases_to_stay_within_codebuild_limit():
    files = [f"V{i}__t{i}.sql" for i in range(1, 401)]
    data = sample(files=files, findings=[finding("ban-drop-column", "safety", "error", "V7__t7.sql")])
    root = parse(data)
    total = sum(int(s.get("tests")) for s in root.findall("testsuite"))
    assert total <= CODEBUILD_MAX_CASES
    safety = suite(root, "safety")
    names = [c.get("name") for c in safety.findall("testcase")]
    assert "V7__t7.sql" in names and "399 files without findings" in names
    assert safety.find("testcase[@name='V7__t7.sql']/failure") is not None


def test_section_supplies_its_own_suite():
    cases = [
        JUnitCase(
            "V3__drop_legacy.sql",
            "schemagate.rehearsal",
            "V3__drop_legacy.sql:2:1 takes AccessExclusiveLock",
            "details",
            0.25,
        )
    ]
    section = FakeRehearsal(cases=cases)
    assert isinstance(section, ReportSection)
    data = sample(sections=[section], checks=["naming", "order", "syntax", "integrity", "rehearsal"])
    reh = suite(parse(data), "rehearsal")
    (case,) = reh.findall("testcase")
    assert case.get("time") == "0.250" and case.find("failure").text == "details"


def test_report_json_shape(tmp_path):
    data = sample(bundle=None, bundle_note="bundle not written: 1 blocking finding")
    paths = write_reports(data, tmp_path / "reports")
    doc = json.loads(paths["json"].read_text())
    # DESIGN's three keys, plus what the review checks judged (every file, here)
    assert doc["summary"] == {
        "files": 3,
        "errors": 1,
        "warnings": 2,
        "judged": 3,
        "accepted_history": 0,
        "down_scripts": 0,
    }
    for f in doc["findings"]:
        assert set(f) == {"rule", "family", "severity", "file", "line", "column", "message", "help", "docs"}
    whole_run = next(f for f in doc["findings"] if f["rule"] == "naming-version-gap")
    assert whole_run["line"] is None and whole_run["file"] is None
    assert doc["passed"] is False
    first = doc["suppressions"][0]
    assert {k: first[k] for k in ("file", "line", "rules", "reason", "scope", "used")} == {
        "file": "V2__add_email.sql",
        "line": 1,
        "rules": ["adding-not-nullable-field"],
        "reason": "table is empty in prod",
        "scope": "statement",
        "used": True,
    }
    assert doc["bundle"] is None and doc["bundle_note"].startswith("bundle not written")
    assert ET.parse(paths["junit"]).getroot().tag == "testsuites"
    assert paths["markdown"].read_text().startswith("## schemagate validate: ❌ failed")


def test_report_json_suppressions_are_plain_json(tmp_path):
    doc = json.loads(write_reports(sample(), tmp_path / "reports")["json"].read_text())
    for entry in doc["suppressions"]:
        assert not any(isinstance(v, str) and v.startswith(("{", "set(")) for v in entry.values()), entry
        assert set(entry) == {"file", "line", "rules", "reason", "scope", "used", "used_rules"}, entry
        assert all(isinstance(r, str) for r in entry["used_rules"]), entry
    # the suppression the sample marks as used silenced its rule, and report.json says which
    assert any(e["used"] and e["used_rules"] for e in doc["suppressions"]), doc["suppressions"]


def test_report_markdown_lists_findings_suppressions_bundle_and_sections():
    bundle = BundleInfo(path="bundle", bundle_sha256="f" * 64, migrations=3, signed_with="alias/schemagate")
    md = render_markdown(
        sample(
            findings=[finding("lint-AM04", "lint", "warning", "V2__add_email.sql", 7, 12, message="a | b")],
            bundle=bundle,
            sections=[FakeRehearsal()],
        )
    )
    assert md.startswith("## schemagate validate: ✅ passed")
    assert "**3** migration files checked: **0** errors, **1** warnings" in md
    assert (
        "| ⚠️ warning | `V2__add_email.sql:7:12` | [`lint-AM04`](https://example.test/rules#lint-AM04) "
        "| a \\| b |" in md
    )
    assert "table is empty in prod" in md
    assert "**no: suppresses nothing**" in md  # the unused ignore is called out
    assert f"`bundle_sha256`: `{'f' * 64}`" in md and "alias/schemagate" in md
    assert "### Rehearsal" in md and "AccessExclusiveLock on legacy" in md
    assert "branch `feature/x`" in md


def test_console_lines_say_the_severity_in_words_with_help_and_docs_and_point_at_the_reports(tmp_path):
    data = sample()
    paths = write_reports(data, tmp_path)
    lines = console_lines(data, paths)
    texts = [t for t, _ in lines]
    drop = texts.index(
        "error: V3__drop_legacy.sql:2:1 ban-drop-column: dropping a column | breaks old readers"
    )
    assert texts[drop + 1].startswith("  help: ") and texts[drop + 2].startswith("  docs: https://")
    assert ("warning: V2__add_email.sql:7:12 lint-AM04: something is wrong", "warning") in lines
    assert any(t.startswith("3 files checked") and "1 error, 2 warnings -- failed" in t for t in texts)
    assert texts[-1] == f"reports: {paths['junit']}, {paths['markdown']}, {paths['json']}"


def test_junit_stays_valid_xml_whatever_a_message_quotes():
    data = sample(
        findings=[
            finding(
                "syntax-error",
                "syntax",
                "error",
                "V1__create_customers.sql",
                message='bad byte \x0c near "<tag> & \x00"',
            )
        ]
    )
    root = parse(data)  # would raise on an invalid character
    failure = root.find(".//testcase[@name='V1__create_customers.sql']/failure")
    assert failure.get("message").endswith('bad byte \ufffd near "<tag> & \ufffd"')
    assert "T" in root.find("testsuite").get("timestamp") and "+" not in root.find("testsuite").get(
        "timestamp"
    )
