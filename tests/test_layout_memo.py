"""The layout memo (validator/layout_memo.py): a remembered detection gives exactly what detection
gives, on the realistic histories of every layout; any change to the directory or to the layouts'
code is a miss; a broken memo is a miss, never an error; a no-op apply writes it under
.schemagate/, which ignores itself, unless the project turned its caches off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from executor import layouts
from tests.conftest import REPO_ROOT
from tests.histories import (
    WRITERS,
    dbmate_bookings,
    diesel_registry,
    flyway_billing,
    golang_migrate_fleet,
    prisma_scheduling,
)
from validator import layout_memo
from validator.discovery import DirectoryTree, discover

HISTORIES = WRITERS


def shape(found) -> tuple:
    return (
        found.layout,
        [(f.rel, f.section, f.checksum, f.name.version, f.name.kind, f.script_name) for f in found.files],
        [(x.rule, x.file, x.line, x.message) for x in found.findings],
        list(found.support_files),
    )


class DetectCalls:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = layouts.detect

        def counting(tree):
            self.count += 1
            return real(tree)

        monkeypatch.setattr(layouts, "detect", counting)


@pytest.mark.parametrize("layout", sorted(HISTORIES))
def test_a_remembered_layout_gives_what_detection_gives(
    layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = HISTORIES[layout](tmp_path / "migrations")
    memo = tmp_path / ".schemagate" / "cache" / "layout.json"
    detected = discover(root)
    assert detected.layout == layout
    calls = DetectCalls(monkeypatch)

    first = discover(root, memo=memo)  # a miss: detects and remembers
    assert calls.count == 1
    assert json.loads(memo.read_text())["answers"] == {layout_memo.tree_key(DirectoryTree(root)): layout}
    second = discover(root, memo=memo)  # a hit: that one layout alone
    assert calls.count == 1
    assert shape(first) == shape(second) == shape(detected)


def test_any_change_to_the_directory_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = flyway_billing.write(tmp_path / "migrations")
    memo = tmp_path / "layout.json"
    before = discover(root, memo=memo)
    calls = DetectCalls(monkeypatch)
    first_file = root / before.files[0].rel

    first_file.write_bytes(first_file.read_bytes() + b"\n-- edited after it was applied\n")
    edited = discover(root, memo=memo)
    assert calls.count == 1 and shape(edited) == shape(discover(root))
    assert edited.files[0].checksum != before.files[0].checksum  # the edit is seen

    (root / "README.md").write_text("how we write migrations\n")  # a file no layout takes counts too
    with_readme = discover(root, memo=memo)
    assert calls.count == 3 and shape(with_readme) == shape(discover(root))
    assert len(json.loads(memo.read_text())["answers"]) == 3


def test_a_wrong_answer_can_only_come_from_the_same_contents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is the contents: a dbmate directory and a Flyway directory never share one, and a
    layout file that changes (an upgrade) changes every key."""
    dbmate = dbmate_bookings.write(tmp_path / "dbmate")
    flyway = flyway_billing.write(tmp_path / "flyway")
    assert layout_memo.tree_key(DirectoryTree(dbmate)) != layout_memo.tree_key(DirectoryTree(flyway))
    before = layout_memo.code_key()
    copy = tmp_path / "layouts"
    copy.mkdir()
    for source in Path(layouts.__file__).parent.glob("*.py"):
        (copy / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(layouts, "__file__", str(copy / "__init__.py"))
    layout_memo.code_key.cache_clear()
    try:
        assert layout_memo.code_key() == before  # the same sources, the same key
        (copy / "flyway.py").write_bytes((copy / "flyway.py").read_bytes() + b"\n# an upgrade\n")
        layout_memo.code_key.cache_clear()
        assert layout_memo.code_key() != before
    finally:
        monkeypatch.undo()
        layout_memo.code_key.cache_clear()
    assert layout_memo.code_key() == before


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b'{"format": 99, "answers": {}}', b'{"format": 1, "answers": []}', b"\xff\xfe"],
)
def test_a_broken_memo_is_a_miss_and_is_written_again(tmp_path: Path, content: bytes) -> None:
    root = prisma_scheduling.write(tmp_path / "migrations")
    memo = tmp_path / "layout.json"
    memo.write_bytes(content)
    found = discover(root, memo=memo)
    assert found.layout == "prisma"
    assert json.loads(memo.read_text()) == {
        "format": 1,
        "answers": {layout_memo.tree_key(DirectoryTree(root)): "prisma"},
    }


def test_a_memo_that_cannot_be_written_is_only_slower(tmp_path: Path) -> None:
    root = diesel_registry.write(tmp_path / "migrations")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory would go\n")
    found = discover(root, memo=blocker / "layout.json")
    assert found.layout == "diesel" and shape(found) == shape(discover(root))


def test_a_remembered_answer_for_a_layout_that_no_longer_exists_is_ignored(tmp_path: Path) -> None:
    root = golang_migrate_fleet.write(tmp_path / "migrations")
    memo = tmp_path / "layout.json"
    key = layout_memo.tree_key(DirectoryTree(root))
    memo.write_text(json.dumps({"format": 1, "answers": {key: "liquibase"}}))
    assert discover(root, memo=memo).layout == "golang-migrate"
    assert json.loads(memo.read_text())["answers"][key] == "golang-migrate"


def test_only_the_newest_answers_are_kept(tmp_path: Path) -> None:
    memo = tmp_path / "layout.json"
    for i in range(layout_memo.KEEP + 5):
        layout_memo.remember(memo, f"key{i}", "flyway")
    answers = json.loads(memo.read_text())["answers"]
    assert list(answers) == [f"key{i}" for i in range(5, layout_memo.KEEP + 5)]
    layout_memo.remember(memo, "key5", "dbmate")  # remembered again: now the newest
    assert list(json.loads(memo.read_text())["answers"])[-1] == "key5"


def no_op(project: Path, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "schemagate", "apply", "--yes"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "DATABASE_URL": url},
    )


def test_a_no_op_apply_remembers_the_layout_under_the_ignored_state_directory(
    tmp_path: Path, fresh_db: str
) -> None:
    project = tmp_path / "project"
    golang_migrate_fleet.write(project / golang_migrate_fleet.ROOT)
    (project / "pyproject.toml").write_text(
        f'[tool.schemagate]\nmigrations = "{golang_migrate_fleet.ROOT}"\n', encoding="utf-8"
    )
    first = no_op(project, fresh_db)  # applies everything (the full CLI): no memo needed
    assert first.returncode == 0, first.stdout + first.stderr
    memo = project / ".schemagate" / "cache" / "layout.json"
    for _ in range(2):
        again = no_op(project, fresh_db)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.startswith("nothing to apply: database is up to date")
    assert list(json.loads(memo.read_text())["answers"].values()) == ["golang-migrate"]
    assert (project / ".schemagate" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_project_without_caches_gets_no_memo(tmp_path: Path, fresh_db: str) -> None:
    project = tmp_path / "project"
    dbmate_bookings.write(project / dbmate_bookings.ROOT)
    (project / "pyproject.toml").write_text(
        f'[tool.schemagate]\nmigrations = "{dbmate_bookings.ROOT}"\n\n[tool.schemagate.lint]\ncache = false\n',
        encoding="utf-8",
    )
    for _ in range(2):
        run = no_op(project, fresh_db)
        assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("nothing to apply: database is up to date")
    assert not (project / ".schemagate" / "cache" / "layout.json").exists()
