"""validator/gitref.py against a real git repository: applied migrations are immutable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from executor.checksum import file_checksum
from executor.errors import ConfigurationError
from validator.config import ValidatorConfig
from validator.discovery import discover
from validator.gitref import check_immutability, files_at_ref, new_files, resolve_base_ref

BASE = {
    "V001__customers.sql": "create table customers (id bigint);\n",
    "V002__invoices.sql": "create table invoices (id bigint);\n",
    "V003__payments.sql": "create table payments (id bigint);\n",
    "R__view.sql": "create or replace view v as select 1;\n",
    "README.md": "notes\n",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        [
            "git",
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
            "-C",
            str(repo),
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with db/migrations committed on main and a branch `feature` checked out."""
    root = tmp_path / "repo"
    mig = root / "db" / "migrations"
    mig.mkdir(parents=True)
    for name, text in BASE.items():
        (mig / name).write_text(text)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    git(root, "checkout", "-q", "-b", "feature")
    return root


def findings(repo: Path, base_ref: str = "main", *, out_of_order: bool = False):
    mig = repo / "db" / "migrations"
    files, naming = discover(mig)
    assert naming == []
    config = ValidatorConfig(project_root=repo, migrations=mig, out_of_order=out_of_order)
    return check_immutability(files, mig, base_ref, config)


def rules(found) -> list[tuple[str, str | None]]:
    return sorted((f.rule, f.file) for f in found)


def test_untouched_history_plus_a_new_version_is_clean(repo: Path) -> None:
    (repo / "db/migrations/V004__refunds.sql").write_text("create table refunds (id bigint);\n")
    assert findings(repo) == []
    files, _ = discover(repo / "db/migrations")
    assert new_files(files, repo / "db/migrations", "main") == {"V004__refunds.sql"}
    assert new_files(files, repo / "db/migrations", None) == {f.rel for f in files}


def test_modified_file_is_an_error(repo: Path) -> None:
    (repo / "db/migrations/V002__invoices.sql").write_text("create table invoices (id bigint, x text);\n")
    (found,) = findings(repo)
    assert (found.rule, found.family, found.severity, found.file) == (
        "migration-modified",
        "order",
        "error",
        "V002__invoices.sql",
    )
    assert "main" in found.message and "schemagate new" in found.help


def test_committed_modification_is_found_too(repo: Path) -> None:
    (repo / "db/migrations/V001__customers.sql").write_text("create table customers (id int);\n")
    git(repo, "commit", "-qam", "edit")
    assert rules(findings(repo)) == [("migration-modified", "V001__customers.sql")]


def test_line_ending_only_change_is_not_a_modification(repo: Path) -> None:
    path = repo / "db/migrations/V002__invoices.sql"
    path.write_bytes(b"\xef\xbb\xbf" + BASE["V002__invoices.sql"].replace("\n", "\r\n").encode())
    assert findings(repo) == []


def test_repeatable_may_change(repo: Path) -> None:
    (repo / "db/migrations/R__view.sql").write_text("create or replace view v as select 2;\n")
    assert findings(repo) == []


def test_deleted_file_is_an_error(repo: Path) -> None:
    (repo / "db/migrations/V002__invoices.sql").unlink()
    (found,) = findings(repo)
    assert (found.rule, found.file) == ("migration-deleted", "V002__invoices.sql")
    assert "git checkout main" in found.help


def test_renamed_file_is_an_error(repo: Path) -> None:
    git(repo, "mv", "db/migrations/V003__payments.sql", "db/migrations/V003__create_payments.sql")
    (found,) = findings(repo)
    assert (found.rule, found.file) == ("migration-renamed", "V003__create_payments.sql")
    assert "V003__payments.sql" in found.message and "git mv" in found.help


def test_moved_into_subdirectory_is_a_rename(repo: Path) -> None:
    (repo / "db/migrations/old").mkdir()
    git(repo, "mv", "db/migrations/V001__customers.sql", "db/migrations/old/V001__customers.sql")
    assert rules(findings(repo)) == [("migration-renamed", "old/V001__customers.sql")]


def test_new_version_lower_than_the_highest_on_the_ref(repo: Path) -> None:
    (repo / "db/migrations/V003__payments.sql").rename(repo / "db/migrations/V005__payments.sql")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "renumber")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "feature")  # main now ends at V005
    git(repo, "checkout", "-q", "-b", "late")
    (repo / "db/migrations/V004__late.sql").write_text("select 1;\n")
    (found,) = findings(repo)
    assert (found.rule, found.file) == ("version-not-increasing", "V004__late.sql")
    assert "V005__payments.sql" in found.message and "out_of_order" in found.help
    assert findings(repo, out_of_order=True) == []


def test_merge_base_decides_what_was_deleted(repo: Path) -> None:
    """A migration merged to main after the branch was cut is not 'deleted' on the branch, but the
    branch's new version must still come after it."""
    git(repo, "checkout", "-q", "main")
    (repo / "db/migrations/V004__on_main.sql").write_text("select 4;\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "main moves on")
    git(repo, "checkout", "-q", "feature")
    (repo / "db/migrations/V004__on_branch.sql").write_text("select 44;\n")
    assert rules(findings(repo)) == [("version-not-increasing", "V004__on_branch.sql")]


def test_unknown_ref_names_the_ref_and_how_to_fetch_it(repo: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        findings(repo, "origin/release-9")
    assert "origin/release-9" in info.value.message and info.value.exit_code == 2
    assert "git fetch origin release-9" in (info.value.remedy or "")


def test_not_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "V1__a.sql").write_text("select 1;")
    files, _ = discover(tmp_path)
    with pytest.raises(ConfigurationError, match="not inside a git repository"):
        check_immutability(files, tmp_path, "main", None)


def test_codebuild_base_ref_resolves_to_the_remote_tracking_branch(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CodeBuild PR builds: CODEBUILD_WEBHOOK_BASE_REF=refs/heads/main in a clone without a local main."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--branch", "feature", str(repo), str(clone)], check=True)
    assert git(clone, "branch", "--list", "main") == ""  # only origin/main exists
    (clone / "db/migrations/V001__customers.sql").write_text("changed\n")
    monkeypatch.setenv("CODEBUILD_WEBHOOK_BASE_REF", "refs/heads/main")
    base_ref = resolve_base_ref(None)
    assert base_ref == "refs/heads/main"
    assert rules(findings(clone, base_ref)) == [("migration-modified", "V001__customers.sql")]
    assert resolve_base_ref("origin/main") == "origin/main"  # the CLI value wins
    monkeypatch.delenv("CODEBUILD_WEBHOOK_BASE_REF")
    assert resolve_base_ref(None) is None and resolve_base_ref("  ") is None


def test_files_at_ref_lists_migrations_with_blob_checksums(repo: Path) -> None:
    at_ref = files_at_ref(repo, "main", repo / "db" / "migrations")
    assert at_ref == {
        name: file_checksum(text.encode()) for name, text in BASE.items() if name.endswith(".sql")
    }


def test_check_structure_runs_the_immutability_check_with_a_base_ref(repo: Path) -> None:
    from validator.structural import check_structure

    mig = repo / "db" / "migrations"
    (mig / "V002__invoices.sql").write_text("create table invoices (id bigint, note text);\n")
    (mig / "V2.5__between.sql").write_text("select 1;\n")
    config = ValidatorConfig(project_root=repo, migrations=mig)
    assert check_structure(config).findings == []  # no base ref: no immutability check
    found = check_structure(config, base_ref="main").findings
    assert [(f.rule, f.file) for f in found] == [
        ("migration-modified", "V002__invoices.sql"),
        ("version-not-increasing", "V2.5__between.sql"),
    ]


def test_one_run_asks_git_each_question_once_and_forgets_the_answers_after(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from validator import gitref

    asked: list[tuple[str, ...]] = []
    real_run = subprocess.run

    def counting_run(argv: list[str], *args: object, **kwargs: object) -> object:
        asked.append(tuple(argv[3:5]))
        return real_run(argv, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", counting_run)
    mig = repo / "db" / "migrations"
    with gitref.one_run():
        first = gitref.resolve_commit(gitref.repo_root_of(mig), "main")
        assert gitref.resolve_commit(gitref.repo_root_of(mig), "main") == first
    assert asked.count(("rev-parse", "--show-toplevel")) == 1
    assert asked.count(("cat-file", "--batch-check")) == 1

    git(repo, "checkout", "-q", "main")  # main moves on: the next run sees it
    (mig / "V004__refunds.sql").write_text("create table refunds (id bigint);\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "refunds")
    with gitref.one_run():
        assert (
            gitref.resolve_commit(gitref.repo_root_of(mig), "main")
            == git(repo, "rev-parse", "main").strip()
            != first
        )
