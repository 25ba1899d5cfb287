"""`schemagate validate` end to end through the real CLI: exit codes, reports, bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from executor.bundle import load_bundle
from executor.signing import KmsSignatureVerifier
from schemagate.cli import main
from validator.config import load_config
from validator.validate import run_validation

REPO = Path(__file__).resolve().parent.parent

CUSTOMERS = """CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL
);
"""
INVOICES = """CREATE TABLE invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    amount numeric(12, 2) NOT NULL
);
"""
VIEW_SELECT_STAR = "CREATE OR REPLACE VIEW customer_list AS SELECT * FROM customers;\n"
SYNTAX_ERROR = (
    "CREATE TABLE payments (\n    id bigint PRIMARY KEY,\n    amount numeric(12, 2) NOT NULL,\n);\n"
)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.test", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def make_project(root: Path, files: dict[str, str], *, pyproject: str = "", commit: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.schemagate]\nmigrations = "migrations"\n' + pyproject)
    (root / "migrations").mkdir(exist_ok=True)
    for name, text in files.items():
        (root / "migrations" / name).write_text(text)
    if commit:
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "history")
    return root


def run_cli(root: Path, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(root)
    for var in [v for v in os.environ if v.startswith("CODEBUILD_")]:
        monkeypatch.delenv(var)
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_migrations_exit_0_with_reports_and_a_verified_bundle(tmp_path, monkeypatch, capsys):
    root = make_project(
        tmp_path / "p", {"V1__create_customers.sql": CUSTOMERS, "V2__create_invoices.sql": INVOICES}
    )
    code, out, _ = run_cli(root, monkeypatch, capsys, "--reports", "reports", "--bundle", "bundle")
    assert code == 0, out
    assert "2 files checked" in out and "0 errors, 0 warnings -- passed" in out
    assert "reports: reports/junit.xml, reports/report.md, reports/report.json" in out

    bundle = load_bundle(root / "bundle")
    assert [m.file for m in bundle.manifest.migrations] == [
        "V1__create_customers.sql",
        "V2__create_invoices.sql",
    ]
    assert bundle.manifest.source["commit"] == git(root, "rev-parse", "HEAD")
    assert bundle.manifest.source["branch"] == "main"
    assert bundle.manifest.findings == {"error": 0, "warning": 0}
    assert f"bundle: bundle (bundle_sha256 {bundle.bundle_sha256})" in out

    report = json.loads((root / "reports" / "report.json").read_text())
    assert report["summary"] == {
        "files": 2,
        "errors": 0,
        "warnings": 0,
        "judged": 2,
        "accepted_history": 0,
        "down_scripts": 0,
    }
    assert report["bundle"]["bundle_sha256"] == bundle.bundle_sha256
    suites = {s.get("name"): s for s in ET.parse(root / "reports" / "junit.xml").getroot()}
    assert {"naming", "order", "syntax", "lint", "integrity"} <= set(suites)
    assert [c.get("name") for c in suites["syntax"]] == [
        "V1__create_customers.sql",
        "V2__create_invoices.sql",
    ]
    assert bundle.bundle_sha256 in (root / "reports" / "report.md").read_text()


def test_error_finding_exit_1_no_bundle_and_stale_bundle_removed(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p", {"V1__create_customers.sql": CUSTOMERS})
    assert run_cli(root, monkeypatch, capsys, "--bundle", "bundle")[0] == 0
    assert (root / "bundle" / "manifest.json").is_file()

    (root / "migrations" / "V2__create_payments.sql").write_text(SYNTAX_ERROR)
    code, out, _ = run_cli(root, monkeypatch, capsys, "--reports", "reports", "--bundle", "bundle")
    assert code == 1
    assert "V2__create_payments.sql:4:1" in out  # the stray comma before `)`: file:line:col
    assert "bundle not written: 1 blocking finding (the earlier bundle in bundle was removed)" in out
    assert not (root / "bundle" / "manifest.json").exists() and not (root / "bundle" / "migrations").exists()

    syntax = ET.parse(root / "reports" / "junit.xml").getroot().find("testsuite[@name='syntax']")
    failure = syntax.find("testcase[@name='V2__create_payments.sql']/failure")
    assert failure is not None and failure.get("message").startswith("V2__create_payments.sql:4:1 ")
    assert syntax.find("testcase[@name='V1__create_customers.sql']/failure") is None
    report = json.loads((root / "reports" / "report.json").read_text())
    assert report["summary"]["errors"] == 1 and report["bundle"] is None


def test_warnings_do_not_block_unless_configured(tmp_path, monkeypatch, capsys):
    files = {"V1__create_customers.sql": CUSTOMERS, "R__customer_list.sql": VIEW_SELECT_STAR}
    root = make_project(tmp_path / "warn", files)
    code, out, _ = run_cli(root, monkeypatch, capsys, "--bundle", "bundle")
    assert code == 0
    assert "R__customer_list.sql:1:48 lint-AM04" in out
    assert load_bundle(root / "bundle").manifest.findings == {"error": 0, "warning": 1}

    strict = make_project(tmp_path / "strict", files, pyproject='blocking_severity = "warning"\n')
    code, out, _ = run_cli(strict, monkeypatch, capsys, "--bundle", "bundle")
    assert code == 1 and not (strict / "bundle" / "manifest.json").exists()

    # --no-lint: sqlfluff does not run, so nothing is found and no lint suite is reported
    code, out, _ = run_cli(strict, monkeypatch, capsys, "--no-lint", "--reports", "reports")
    assert code == 0 and "lint-AM04" not in out
    names = [s.get("name") for s in ET.parse(strict / "reports" / "junit.xml").getroot()]
    assert "lint" not in names and "syntax" in names


@pytest.mark.parametrize("setup", ["missing", "empty", "not-a-directory"])
def test_bad_migrations_directory_exit_2(tmp_path, monkeypatch, capsys, setup):
    root = make_project(tmp_path / "p", {}, commit=False)
    target = root / "migrations"
    if setup == "missing":
        target.rmdir()
    elif setup == "not-a-directory":
        target.rmdir()
        target.write_text("")
    code, _out, err = run_cli(root, monkeypatch, capsys, "--reports", "reports")
    assert code == 2
    expected = {"missing": "does not exist", "empty": "no migration", "not-a-directory": "is not a directory"}
    assert expected[setup] in err and "Traceback" not in err
    assert "remedy:" in err
    assert not (root / "reports").exists()


def test_usage_errors_exit_2(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p", {"V1__create_customers.sql": CUSTOMERS})
    code, _, err = run_cli(root, monkeypatch, capsys, "--sign-with-kms", "alias/x")
    assert code == 2 and "add --bundle DIR" in err
    code, _, err = run_cli(root, monkeypatch, capsys, "--no-such-option")
    assert code == 2


def test_base_ref_refuses_an_edited_applied_migration(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p", {"V1__create_customers.sql": CUSTOMERS})
    git(root, "checkout", "-qb", "feature")
    (root / "migrations" / "V1__create_customers.sql").write_text(
        CUSTOMERS.replace("email text", "email varchar")
    )
    (root / "migrations" / "V2__create_invoices.sql").write_text(INVOICES)
    git(root, "commit", "-qam", "edit applied file")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "new file")
    code, _out, _ = run_cli(
        root, monkeypatch, capsys, "--base-ref", "main", "--reports", "reports", "--no-lint"
    )
    assert code == 1
    report = json.loads((root / "reports" / "report.json").read_text())
    edited = [
        f for f in report["findings"] if f["file"] == "V1__create_customers.sql" and f["severity"] == "error"
    ]
    assert edited and edited[0]["family"] in ("integrity", "order")
    assert report["source"]["base_ref"] == "main" and report["source"]["branch"] == "feature"


def test_sign_with_kms_signs_the_written_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    root = make_project(tmp_path / "p", {"V1__create_customers.sql": CUSTOMERS})
    with mock_aws():
        kms = boto3.client("kms")
        key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["KeyId"]
        result = run_validation(
            load_config(root),
            lint=False,
            sign_with_kms=key_id,
            bundle_dir=root / "bundle",
            reports_dir=root / "reports",
        )
        assert result.exit_code == 0
        bundle = load_bundle(root / "bundle", signature_verifier=KmsSignatureVerifier(key_id, kms_client=kms))
    assert bundle.manifest.signature["key_id"].endswith(key_id)
    assert json.loads((root / "reports" / "report.json").read_text())["bundle"]["signed_with"] == key_id


def test_python_dash_m_entry_point_returns_the_exit_code(tmp_path):
    root = make_project(tmp_path / "p", {"V1__create_customers.sql": SYNTAX_ERROR})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEBUILD_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "schemagate", "validate", "--no-lint"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "V1__create_customers.sql:4:1" in done.stdout
