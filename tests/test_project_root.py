"""Every command behaves the same from any subdirectory: the project root is the nearest directory with
a pyproject.toml holding [tool.schemagate] or a schemagate.toml (never beyond the git work tree), and
its `.schemagate/` ignores itself, so `git add -A` commits none of schemagate's local state."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from executor.errors import ConfigurationError
from localdb.server import default_local_server
from localdb.state_dir import GITIGNORE
from schemagate.cli import main
from tests.histories.flyway_billing import FILES, write
from validator.config import find_project_root, load_config

MIGRATIONS = "src/main/resources/db/migration"


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
def monorepo(tmp_path: Path) -> Path:
    """A repository whose service has its own pyproject.toml (no [tool.schemagate]: a Python package),
    and the schemagate settings at the repository root."""
    root = tmp_path / "shop"
    (root / "services" / "billing").mkdir(parents=True)
    (root / "services" / "billing" / "pyproject.toml").write_text('[project]\nname = "billing"\n')
    (root / "pyproject.toml").write_text(f'[tool.schemagate]\nmigrations = "{MIGRATIONS}"\n')
    write(root / MIGRATIONS, FILES)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "history")
    return root


def test_the_root_is_the_nearest_directory_that_configures_schemagate(monorepo):
    for start in (monorepo, monorepo / MIGRATIONS / "2025", monorepo / "services" / "billing"):
        assert find_project_root(start) == monorepo
    config = load_config(monorepo / MIGRATIONS / "2026")
    assert config.migrations == monorepo / MIGRATIONS and config.config_file == monorepo / "pyproject.toml"


def test_schemagate_toml_marks_a_project_without_pyproject(tmp_path):
    root = tmp_path / "go-service"
    (root / "db" / "migrations").mkdir(parents=True)
    (root / "schemagate.toml").write_text('migrations = "db/migrations"\nblocking_severity = "warning"\n')
    (root / "db" / "migrations" / "V1__create_orders.sql").write_text("CREATE TABLE orders (id bigint);\n")
    config = load_config(root / "db" / "migrations")
    assert config.project_root == root and config.migrations == root / "db" / "migrations"
    assert config.blocking_severity == "warning" and config.config_file == root / "schemagate.toml"


def test_a_mistake_in_schemagate_toml_names_that_file(tmp_path):
    (tmp_path / "schemagate.toml").write_text('migration = "db/migrations"\n')
    with pytest.raises(ConfigurationError) as error:
        load_config(tmp_path)
    assert error.value.file == "schemagate.toml" and error.value.exit_code == 2
    assert error.value.message.startswith("schemagate.toml migration: unknown key")
    assert "did you mean 'migrations'?" in (error.value.remedy or "")


def test_settings_in_both_files_are_refused(tmp_path):
    (tmp_path / "schemagate.toml").write_text('migrations = "db"\n')
    (tmp_path / "pyproject.toml").write_text('[tool.schemagate]\nmigrations = "migrations"\n')
    with pytest.raises(ConfigurationError, match="both configure schemagate"):
        load_config(tmp_path)


def test_the_walk_stops_at_the_top_of_the_work_tree(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.schemagate]\nmigrations = "elsewhere"\n')
    repo = tmp_path / "checkout"
    (repo / "migrations").mkdir(parents=True)
    git(repo, "init", "-q")
    # a [tool.schemagate] above the repository (a home directory's) is not this project's
    assert find_project_root(repo / "migrations") == repo


def test_validate_from_a_subdirectory_is_the_same_as_from_the_root(monorepo, monkeypatch, capsys):
    monkeypatch.chdir(monorepo)
    assert main(["validate", "--no-lint", "--format", "json"]) == 1
    from_root = capsys.readouterr().out
    monkeypatch.chdir(monorepo / MIGRATIONS / "2025")
    assert main(["validate", "--no-lint", "--format", "json"]) == 1
    from_inside = capsys.readouterr().out
    strip = lambda text: text.split('"timings"')[0]  # noqa: E731 - durations differ
    assert strip(from_root) == strip(from_inside)
    assert '"files": 22' in from_inside


def test_the_embedded_server_lives_in_the_project_root_whatever_the_subdirectory(monorepo):
    server = default_local_server(find_project_root(monorepo / MIGRATIONS / "2026"))
    assert server.data_dir == monorepo / ".schemagate" / "postgres"
    assert (monorepo / ".schemagate" / ".gitignore").read_text() == GITIGNORE


def test_the_lint_cache_is_never_committed(monorepo, monkeypatch, capsys):
    """What the issue saw: `git add -A` after a first validate committed the lint cache."""
    monkeypatch.chdir(monorepo / MIGRATIONS)
    main(["validate", "--format", "json"])  # lints all 22 files, caching each one
    capsys.readouterr()
    cache = monorepo / ".schemagate" / "cache" / "lint"
    assert len(list(cache.rglob("*.json"))) >= 20
    assert (monorepo / ".schemagate" / ".gitignore").read_text().splitlines()[-1] == "*"
    git(monorepo, "add", "-A")
    assert git(monorepo, "status", "--porcelain") == ""  # nothing new to commit


def test_an_edited_ignore_file_is_kept(tmp_path):
    state = tmp_path / ".schemagate"
    state.mkdir()
    (state / ".gitignore").write_text("*\n!README.md\n")
    default_local_server(tmp_path)
    assert (state / ".gitignore").read_text() == "*\n!README.md\n"
    assert os.access(state, os.W_OK)
