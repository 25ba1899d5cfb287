"""`schemagate validate --format text|json|sarif|github`, on a Flyway history kept where a Spring Boot
project keeps it (``src/main/resources/db/migration``, a subdirectory of the repository), through
the real CLI: SARIF against the SARIF 2.1.0 schema and code scanning's own requirements, paths
relative to the repository root, workflow commands escaped as the runner reads them, the JSON
document, and the plain text with and without colour (a real pseudo-terminal)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from schemagate.cli import main
from tests.histories.flyway_billing import FILES, write
from validator.reports import _escape_data, _escape_property
from validator.rule_catalog import all_rules

SCHEMA = Path(__file__).parent / "sarif" / "sarif-schema-2.1.0-rtm.5.json"
MIGRATIONS = "src/main/resources/db/migration"
# a pull request adding one migration: a blocking index build (an error) and a varchar column (a warning)
NEW_FILE = "2026/V021__index_invoices_account.sql"
NEW_SQL = """\
-- invoices by account, for the account page (100k rows in production)
ALTER TABLE invoices ADD COLUMN note varchar(200);
CREATE INDEX invoices_account_idx ON invoices (account_id) WHERE status <> 'void';
"""
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.test", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository whose migrations live in a subdirectory; main holds the history, the branch adds one."""
    root = tmp_path / "billing-service"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "billing"\n\n[tool.schemagate]\nmigrations = "{MIGRATIONS}"\n', encoding="utf-8"
    )
    write(root / MIGRATIONS, FILES)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "history")
    git(root, "checkout", "-q", "-b", "feature/account-page")
    (root / MIGRATIONS / NEW_FILE).write_text(NEW_SQL, encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "index invoices by account")
    return root


def validate(root: Path, monkeypatch, capsys, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd or root)
    for var in [v for v in os.environ if v.startswith(("CODEBUILD_", "GITHUB_"))]:
        monkeypatch.delenv(var)
    code = main(["validate", "--no-lint", "--base-ref", "main", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_sarif_is_valid_against_the_sarif_schema_and_names_files_from_the_repository_root(
    project, monkeypatch, capsys
):
    code, out, err = validate(project, monkeypatch, capsys, "--format", "sarif", "--reports", "reports")
    assert code == 1
    log = json.loads(out)  # stdout holds the document alone
    jsonschema.validate(log, json.loads(SCHEMA.read_text(encoding="utf-8")))
    assert "-- failed" in err  # the verdict goes to stderr

    run = log["runs"][0]
    driver = run["tool"]["driver"]
    rules = {r["id"]: r for r in driver["rules"]}
    # every rule schemagate has, each with what code scanning shows
    assert {r.id for r in all_rules()} <= set(rules)
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["helpUri"].startswith("https://") and rule["help"]["text"]
    assert rules["require-concurrent-index-creation"]["helpUri"].endswith(
        "docs/rules.md#require-concurrent-index-creation"
    )
    assert rules["version-gap"]["helpUri"].endswith("docs/checks.md#version-gap")
    assert rules["rehearsal-blocking-lock"]["helpUri"].endswith("docs/rehearsal.md#rehearsal-blocking-lock")
    assert rules["application-rollback-compatibility"]["defaultConfiguration"]["enabled"] is False

    index = next(r for r in run["results"] if r["ruleId"] == "require-concurrent-index-creation")
    location = index["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": f"{MIGRATIONS}/{NEW_FILE}", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 3, "startColumn": 38}  # at the table it locks
    assert index["level"] == "error"
    assert driver["rules"][index["ruleIndex"]]["id"] == index["ruleId"]
    # GitHub code scanning refuses a result without a file: every result has one, in the repository
    for result in run["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri and not uri.startswith(("/", "file:")) and (project / uri).exists(), uri
        assert result["message"]["text"]
    # the report files are the same as without --format
    report = json.loads((project / "reports" / "report.json").read_text(encoding="utf-8"))
    assert {f["rule"] for f in report["findings"]} == {r["ruleId"] for r in run["results"]}


def test_sarif_names_the_same_paths_from_a_subdirectory_and_encodes_spaces(project, monkeypatch, capsys):
    inner = project / MIGRATIONS / "2025"
    code, out, _ = validate(project, monkeypatch, capsys, "--format", "sarif", cwd=inner)
    assert code == 1
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in json.loads(out)["runs"][0]["results"]
    }
    assert f"{MIGRATIONS}/{NEW_FILE}" in uris
    # the history's "V016__Rename display name.sql" (judged without a base ref) is percent-encoded
    code, out, _ = main_sarif_without_base_ref(project, monkeypatch, capsys)
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in json.loads(out)["runs"][0]["results"]
    }
    assert f"{MIGRATIONS}/2025/V016__Rename%20display%20name.sql" in uris


def main_sarif_without_base_ref(project: Path, monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.chdir(project)
    code = main(["validate", "--no-lint", "--format", "sarif"])
    out, err = capsys.readouterr()
    return code, out, err


def test_sarif_file_is_written_beside_the_text_output(project, monkeypatch, capsys):
    code, out, _ = validate(project, monkeypatch, capsys, "--sarif", "out/schemagate.sarif")
    assert code == 1
    assert "sarif: out/schemagate.sarif" in out and "error: " in out  # text on stdout as usual
    log = json.loads((project / "out" / "schemagate.sarif").read_text(encoding="utf-8"))
    jsonschema.validate(log, json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_github_format_annotates_with_repository_paths_and_escapes_the_message(project, monkeypatch, capsys):
    code, out, _ = validate(project, monkeypatch, capsys, "--format", "github")
    assert code == 1
    lines = out.splitlines()
    index = next(line for line in lines if "title=require-concurrent-index-creation" in line)
    assert index.startswith(
        f"::error file={MIGRATIONS}/{NEW_FILE},line=3,col=38,title=require-concurrent-index-creation::"
    )
    message = index.split("::", 2)[2]
    assert "\n" not in message and "%0Ahelp: " in message and "%0Adocs: https" in message
    # one workflow command per finding, then the plain verdict
    assert all(line.startswith(("::error ", "::warning ")) for line in lines[:-1])
    assert lines[-1].startswith("schemagate: ") and lines[-1].endswith("-- failed")
    warnings = [line for line in lines if line.startswith("::warning ")]
    assert warnings and all(f"file={MIGRATIONS}/" in w for w in warnings)


def test_workflow_command_escaping_is_what_the_runner_unescapes():
    # the runner (actions/runner, ActionCommand.Unescape*) turns these back into the text
    assert _escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert _escape_property("db/V1,x:y.sql") == "db/V1%2Cx%3Ay.sql"
    assert _escape_property("%") == "%25"


def test_json_format_is_the_report_json_document(project, monkeypatch, capsys):
    code, out, _ = validate(project, monkeypatch, capsys, "--format", "json", "--reports", "reports")
    assert code == 1
    printed = json.loads(out)
    written = json.loads((project / "reports" / "report.json").read_text(encoding="utf-8"))
    printed.pop("timings"), written.pop("timings")
    assert printed == written
    assert printed["summary"]["judged"] == 1 and printed["passed"] is False


def test_text_shows_severity_in_words_help_and_docs_without_a_single_escape_code(
    project, monkeypatch, capsys
):
    code, out, _ = validate(project, monkeypatch, capsys)
    assert code == 1
    assert not ANSI.search(out)  # not a terminal: plain
    lines = out.splitlines()
    first = next(n for n, line in enumerate(lines) if "require-concurrent-index-creation" in line)
    # shown relative to the working directory, so a terminal or editor opens it
    assert lines[first].startswith(f"error: {MIGRATIONS}/{NEW_FILE}:3:38 require-concurrent-index-creation: ")
    assert lines[first + 1].startswith("  help: ") and "CONCURRENTLY" in lines[first + 1]
    assert (
        lines[first + 2]
        == "  docs: https://github.com/schemagate/schemagate/blob/main/docs/rules.md#require-concurrent-index-creation"
    )


def run_on_a_terminal(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """The real console script with stdout on a pseudo-terminal (what a developer's shell gives it)."""
    leader, follower = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    environment.update({"TERM": "xterm-256color", **(env or {})})
    process = subprocess.Popen(
        [sys.executable, "-m", "schemagate", *args],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=environment,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            process.kill()
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_colour_only_on_a_terminal_and_never_with_no_color(project):
    args = ("validate", "--no-lint", "--base-ref", "main")
    coloured = run_on_a_terminal(project, *args)
    assert ANSI.search(coloured), coloured[:500]
    # the stages a long validation goes through, on one line rewritten in place
    assert "\r\x1b[2K  parsing 23 files" in coloured and "\r\x1b[2K  safety rules on 1 file" in coloured
    assert "error" in ANSI.sub("", coloured)

    for plain in (
        run_on_a_terminal(project, *args, env={"NO_COLOR": "1"}),
        run_on_a_terminal(project, "--no-color", *args),
    ):
        assert "error: " in plain and "  help: " in plain
        assert not ANSI.search(plain), plain[:500]
