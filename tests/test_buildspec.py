"""buildspec.yml runs as CodeBuild would run it, in a temporary copy of this repository.

What is real: the YAML is read here, every command of every phase after `install` runs verbatim
with `bash` (the buildspec declares `shell: bash`) in a git clone with an `origin` remote, with the
buildspec's `env.variables` and the variables CodeBuild sets for a webhook / pipeline build.
What is replaced: the `install` phase (`pip install '.[lint]'` needs the network, which tests do
not have).  Instead `schemagate` on PATH runs the *copy's* code with this virtualenv's Python and
packages -- the same code `pip install .` would install from the copy.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from executor.bundle import load_bundle

REPO = Path(__file__).resolve().parent.parent
PHASES_AFTER_INSTALL = ("pre_build", "build", "post_build")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.test", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def buildspec() -> dict:
    return yaml.safe_load((REPO / "buildspec.yml").read_text())


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> tuple[Path, Path]:
    """(work tree on `main` with `origin`, bin dir holding the `schemagate` shim)."""
    base = tmp_path_factory.mktemp("buildspec")
    seed = base / "seed"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
    for rel in filter(None, tracked.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (seed / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, seed / rel)
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "snapshot")
    git(base, "clone", "-q", "--bare", str(seed), "origin.git")
    git(base, "clone", "-q", str(base / "origin.git"), "work")
    work = base / "work"

    bindir = base / "bin"
    bindir.mkdir()
    shim = bindir / "schemagate"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH={work} exec {sys.executable} -m schemagate "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return work, bindir


@pytest.fixture(autouse=True)
def rehearsal_server(pg_admin_url, monkeypatch):
    """The buildspec rehearses (--rehearse); in tests it uses the test server, not an embedded one."""
    monkeypatch.setenv("SCHEMAGATE_REHEARSAL_DATABASE_URL", pg_admin_url)


def run_phases(spec: dict, work: Path, bindir: Path, codebuild_env: dict[str, str]) -> list[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEBUILD_")}
    env.update({k: str(v) for k, v in (spec.get("env", {}).get("variables") or {}).items()})
    env.update(codebuild_env)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    shell = spec.get("env", {}).get("shell", "bash")
    codes = []
    for phase in PHASES_AFTER_INSTALL:
        for command in (spec.get("phases", {}).get(phase) or {}).get("commands") or []:
            done = subprocess.run(
                [shell, "-c", command], cwd=work, env=env, capture_output=True, text=True, check=False
            )
            codes.append(done.returncode)
            if done.returncode != 0:  # CodeBuild stops the phase at the first failing command
                print(done.stdout, done.stderr)
                return codes
    return codes


def declared_report_files(spec: dict, work: Path) -> list[Path]:
    out = []
    for group in spec["reports"].values():
        assert group["file-format"] == "JUNITXML"
        base = work / group.get("base-directory", ".")
        for pattern in group["files"]:
            out += sorted(base.glob(pattern))
    return out


def artifact_dir(spec: dict, work: Path) -> Path:
    return work / spec["artifacts"]["base-directory"]


def test_buildspec_declares_junit_reports_and_the_bundle_artifact(buildspec):
    assert buildspec["version"] == 0.2
    (group,) = buildspec["reports"].values()
    assert group == {"file-format": "JUNITXML", "base-directory": "reports", "files": ["junit.xml"]}
    assert buildspec["artifacts"] == {"base-directory": "bundle", "files": ["**/*"]}
    assert buildspec["cache"]["paths"] == [".schemagate/cache/**/*"]  # the lint cache survives builds
    install = " ".join(buildspec["phases"]["install"]["commands"])
    assert "pip install" in install and "[lint,local]" in install  # local: the rehearsal's PostgreSQL
    assert "--rehearse" in buildspec["env"]["variables"]["SCHEMAGATE_VALIDATE_OPTIONS"]
    assert buildspec["env"]["exported-variables"] == ["SCHEMAGATE_BUNDLE_SHA256"]
    build = "\n".join(buildspec["phases"]["build"]["commands"])
    assert "schemagate validate --reports reports --bundle bundle" in build


def test_main_branch_build_writes_reports_and_a_verified_bundle(buildspec, checkout):
    work, bindir = checkout
    commit = git(work, "rev-parse", "HEAD")
    codes = run_phases(
        buildspec,
        work,
        bindir,
        {
            "CODEBUILD_RESOLVED_SOURCE_VERSION": commit,
            "CODEBUILD_SOURCE_REPO_URL": "https://ci-user:s3cr3t-token@git.example.test/acme/db.git",
            "CODEBUILD_INITIATOR": "codepipeline/schemagate",
            "CODEBUILD_BUILD_ID": "schemagate-validate:1234",
        },
    )
    assert codes and all(c == 0 for c in codes), codes

    reports = declared_report_files(buildspec, work)
    assert [p.name for p in reports] == ["junit.xml"]
    suites = [s.get("name") for s in ET.parse(reports[0]).getroot()]
    assert {"naming", "order", "syntax", "lint", "integrity", "rehearsal"} <= set(suites)

    bundle_dir = artifact_dir(buildspec, work)
    assert any(p.is_file() for p in bundle_dir.glob("**/*"))
    cached = [p for pattern in buildspec["cache"]["paths"] for p in work.glob(pattern) if p.is_file()]
    assert any(p.suffix == ".json" for p in cached), "the lint cache is where the buildspec caches it"
    bundle = load_bundle(bundle_dir)
    on_disk = sorted(p.name for p in (work / "migrations").glob("*.sql"))
    assert sorted(m.file for m in bundle.manifest.migrations) == on_disk
    source = bundle.manifest.source
    assert source["commit"] == commit and source["build_id"] == "schemagate-validate:1234"
    assert source["repository"] == "https://git.example.test/acme/db.git"  # the token is never recorded
    assert "s3cr3t" not in (bundle_dir / "manifest.json").read_text()
    assert "s3cr3t" not in (work / "reports" / "report.json").read_text()


def test_pr_build_compares_with_the_webhook_base_ref(buildspec, checkout):
    work, bindir = checkout
    git(work, "checkout", "-qb", "feature/edit-applied")
    applied = sorted((work / "migrations").glob("V*.sql"))[0]
    applied.write_text(applied.read_text() + "\n-- an edit after the fact\n")
    git(work, "commit", "-qam", "edit an applied migration")
    webhook = {
        "CODEBUILD_WEBHOOK_BASE_REF": "refs/heads/main",
        "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/feature/edit-applied",
        "CODEBUILD_WEBHOOK_TRIGGER": "pr/7",
        "CODEBUILD_RESOLVED_SOURCE_VERSION": git(work, "rev-parse", "HEAD"),
    }
    shutil.rmtree(work / "bundle", ignore_errors=True)
    codes = run_phases(buildspec, work, bindir, webhook)
    assert codes[-1] == 1  # the build fails ...

    (junit,) = declared_report_files(buildspec, work)  # ... but the reports are there for the Reports tab
    failures = ET.parse(junit).getroot().findall(f".//testcase[@name='{applied.name}']/failure")
    assert failures, "the edited applied migration must fail a test case"
    report = json.loads((work / "reports" / "report.json").read_text())
    assert report["source"]["base_ref"] == "main" and report["source"]["pull_request"] == "7"
    assert not (artifact_dir(buildspec, work) / "manifest.json").exists()

    # the same PR without the edit, adding a new migration instead, passes and yields a bundle
    git(work, "checkout", "-q", "main")
    git(work, "checkout", "-qb", "feature/add")
    (work / "migrations" / "V900__add_customer_notes.sql").write_text(
        "ALTER TABLE customers ADD COLUMN notes text;\n"
    )
    git(work, "add", "-A")
    git(work, "commit", "-qm", "add a migration")
    webhook["CODEBUILD_WEBHOOK_HEAD_REF"] = "refs/heads/feature/add"
    webhook["CODEBUILD_RESOLVED_SOURCE_VERSION"] = git(work, "rev-parse", "HEAD")
    codes = run_phases(buildspec, work, bindir, webhook)
    assert all(c == 0 for c in codes), codes
    bundle = load_bundle(artifact_dir(buildspec, work))
    assert "V900__add_customer_notes.sql" in {m.file for m in bundle.manifest.migrations}
    assert bundle.manifest.source["branch"] == "feature/add"


def test_main_branch_build_with_history_rehearses_only_what_the_merge_added(buildspec, checkout):
    """A full clone on main: the previous commit is the base, so only the merged file is rehearsed."""
    work, bindir = checkout
    git(work, "checkout", "-q", "main")
    git(work, "checkout", "-qb", "main-after-merge")
    (work / "migrations" / "V901__add_customer_tier.sql").write_text(
        "ALTER TABLE customers ADD COLUMN tier text;\n"
    )
    git(work, "add", "-A")
    git(work, "commit", "-qm", "merge: add a migration")
    shutil.rmtree(work / "bundle", ignore_errors=True)
    codes = run_phases(
        buildspec, work, bindir, {"CODEBUILD_RESOLVED_SOURCE_VERSION": git(work, "rev-parse", "HEAD")}
    )
    assert all(c == 0 for c in codes), codes
    (junit,) = declared_report_files(buildspec, work)
    suite = ET.parse(junit).getroot().find("testsuite[@name='rehearsal']")
    assert [c.get("name") for c in suite.iter("testcase")] == ["V901__add_customer_tier.sql"]
    assert (artifact_dir(buildspec, work) / "manifest.json").exists()


# -- a project with a long history that has old findings ------------------------------------------


@pytest.fixture
def project_checkout(tmp_path) -> tuple[Path, Path]:
    """(work tree on `main` with `origin`, bin dir) of a project -- not this repository -- whose
    forty migrations break today's rules in a dozen places, as real histories do.  `schemagate`
    on PATH runs this repository's code."""
    from tests.gate_history import make_project

    seed = make_project(tmp_path / "seed")
    shutil.copy2(REPO / "buildspec.yml", seed / "buildspec.yml")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "add the buildspec")
    git(tmp_path, "clone", "-q", "--bare", str(seed), "origin.git")
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), "work")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "schemagate"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m schemagate "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return tmp_path / "work", bindir


def _pull_request(work: Path, branch: str, files: dict[str, str]) -> dict[str, str]:
    """Commit ``files`` on a new branch off main; the variables of its CodeBuild webhook build."""
    from tests.gate_history import write_files

    git(work, "checkout", "-q", "main")
    git(work, "checkout", "-qb", branch)
    write_files(work, files)
    git(work, "add", "-A")
    git(work, "commit", "-qm", f"add {', '.join(files)}")
    return {
        "CODEBUILD_WEBHOOK_BASE_REF": "refs/heads/main",
        "CODEBUILD_WEBHOOK_HEAD_REF": f"refs/heads/{branch}",
        "CODEBUILD_WEBHOOK_TRIGGER": "pr/12",
        "CODEBUILD_RESOLVED_SOURCE_VERSION": git(work, "rev-parse", "HEAD"),
    }


def _merge_to_main(work: Path, files: dict[str, str]) -> dict[str, str]:
    """Commit ``files`` on main (a squash merge); the variables of the pipeline's build."""
    from tests.gate_history import write_files

    git(work, "checkout", "-q", "main")
    write_files(work, files)
    git(work, "add", "-A")
    git(work, "commit", "-qm", f"merge: {', '.join(files)}")
    return {
        "CODEBUILD_RESOLVED_SOURCE_VERSION": git(work, "rev-parse", "HEAD"),
        "CODEBUILD_INITIATOR": "codepipeline/taskboard-db",
    }


def _report(work: Path) -> dict:
    return json.loads((work / "reports" / "report.json").read_text())


def _assert_judged_alone_and_bundled(buildspec: dict, work: Path, new: str) -> None:
    from tests.gate_history import HISTORY

    report = _report(work)
    assert report["summary"]["errors"] == 0
    assert (report["summary"]["judged"], report["summary"]["accepted_history"]) == (1, len(HISTORY))
    assert not [f for f in report["findings"] if f["file"] in HISTORY]
    (junit,) = declared_report_files(buildspec, work)
    root = ET.parse(junit).getroot()
    for family in ("safety", "lint", "rehearsal"):
        suite = root.find(f"testsuite[@name='{family}']")
        assert suite is not None, family
        cases = [c.attrib["name"] for c in suite.iter("testcase")]
        assert cases[0] == new and all("accepted history" in c for c in cases[1:]), (family, cases)
    bundle = load_bundle(artifact_dir(buildspec, work))
    assert {m.file for m in bundle.manifest.migrations} == set(HISTORY) | {new}


def _assert_errors_only_in(work: Path, new: str) -> None:
    from tests.gate_history import NEW_UNSAFE_ERRORS

    errors = [f for f in _report(work)["findings"] if f["severity"] == "error"]
    assert {f["file"] for f in errors} == {new}
    assert {f["rule"] for f in errors} == NEW_UNSAFE_ERRORS
    assert not (work / "bundle" / "manifest.json").exists()


def test_pr_build_of_a_history_with_old_findings_judges_only_the_new_migration(buildspec, project_checkout):
    from tests.gate_history import NEW_CLEAN, NEW_UNSAFE

    work, bindir = project_checkout
    (new,) = NEW_CLEAN
    codes = run_phases(buildspec, work, bindir, _pull_request(work, "feature/archive", NEW_CLEAN))
    assert codes and all(c == 0 for c in codes), codes
    _assert_judged_alone_and_bundled(buildspec, work, new)

    (unsafe,) = NEW_UNSAFE
    codes = run_phases(buildspec, work, bindir, _pull_request(work, "feature/reviewers", NEW_UNSAFE))
    assert codes[-1] == 1
    _assert_errors_only_in(work, unsafe)


def test_main_branch_build_of_a_history_with_old_findings_judges_only_the_merge(buildspec, project_checkout):
    from tests.gate_history import NEW_CLEAN, NEW_UNSAFE

    work, bindir = project_checkout
    (new,) = NEW_CLEAN
    codes = run_phases(buildspec, work, bindir, _merge_to_main(work, NEW_CLEAN))
    assert codes and all(c == 0 for c in codes), codes
    _assert_judged_alone_and_bundled(buildspec, work, new)
    assert _report(work)["source"]["base_ref"] == "HEAD~1"

    git(work, "reset", "-q", "--hard", "HEAD~1")
    (unsafe,) = NEW_UNSAFE
    codes = run_phases(buildspec, work, bindir, _merge_to_main(work, NEW_UNSAFE))
    assert codes[-1] == 1
    _assert_errors_only_in(work, unsafe)


def test_pr_build_that_switches_off_its_own_rule_is_judged_with_the_base_configuration(
    buildspec, project_checkout
):
    from tests.gate_history import PYPROJECT

    work, bindir = project_checkout
    webhook = _pull_request(
        work,
        "feature/due-index",
        {"V041__index_tasks_due_on.sql": "CREATE INDEX tasks_due_on_idx ON tasks (due_on);\n"},
    )
    (work / "pyproject.toml").write_text(
        PYPROJECT + '\n[tool.schemagate.rules]\nrequire-concurrent-index-creation = "off"\n'
    )
    (work / "db" / "migrations" / ".sqlfluff").write_text("[sqlfluff]\nrules = None\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "quiet the gate")
    webhook["CODEBUILD_RESOLVED_SOURCE_VERSION"] = git(work, "rev-parse", "HEAD")

    codes = run_phases(buildspec, work, bindir, webhook)

    assert codes[-1] == 1
    errors = {(f["file"], f["rule"]) for f in _report(work)["findings"] if f["severity"] == "error"}
    assert errors == {
        ("V041__index_tasks_due_on.sql", "require-concurrent-index-creation"),
        (None, "gate-config-changed"),
    }
    changed = [f["message"] for f in _report(work)["findings"] if f["rule"] == "gate-config-changed"]
    assert len(changed) == 2
    assert any('rules.require-concurrent-index-creation is "off" here' in m for m in changed)
    sqlfluff = 'db/migrations/.sqlfluff [sqlfluff] rules is "None" here, (not set) on origin/main'
    assert any(sqlfluff in m for m in changed)
    (junit,) = declared_report_files(buildspec, work)
    (case,) = (
        ET.parse(junit).getroot().findall(".//testsuite[@name='integrity']/testcase[@name='(all files)']")
    )
    assert "merge the configuration change alone first" in case.find("failure").text
