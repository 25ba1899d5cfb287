"""The safety catalog of the accepted history, kept between runs (validator.safety.catalog_cache):
a pull request is judged exactly as without it, and the old files' parse trees are not built."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from tests.gate_history import HISTORY, PYPROJECT, commit_all, git, make_project, write_files
from validator.config import load_config
from validator.discovery import discover
from validator.parse import parse_file
from validator.safety import check_sql
from validator.safety.catalog import Catalog
from validator.safety.catalog_cache import from_json, to_json
from validator.safety.engine import _record_only
from validator.validate import ValidationResult, run_validation

NO_CACHE = "\n[tool.schemagate.lint]\ncache = false\n"

# what the rules can only judge knowing the history: the declared types of the columns (widening a
# varchar or turning it into text rewrites nothing; the enum to text does), which tables are new
WIDEN = {
    "V041__widen_names_and_free_the_status.sql": """\
-- names outgrew their limits; the status becomes free text for the new workflow engine
ALTER TABLE projects ALTER COLUMN name TYPE text;
ALTER TABLE tasks ALTER COLUMN title TYPE varchar(500);
ALTER TABLE tasks ALTER COLUMN status TYPE text;
CREATE TABLE task_links (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id   integer NOT NULL,
    url       text NOT NULL
);
CREATE INDEX task_links_task_id_idx ON task_links (task_id);
CREATE INDEX tasks_title_idx ON tasks (title);
""",
}


@pytest.fixture(autouse=True)
def no_codebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("CODEBUILD_")]:
        monkeypatch.delenv(var)


def branch(root: Path) -> Path:
    git(root, "checkout", "-q", "-b", "widen-names")
    write_files(root, WIDEN)
    commit_all(root, "widen the names")
    return root


def judged_findings(root: Path) -> tuple[list[dict], ValidationResult]:
    result = run_validation(load_config(root), base_ref="main", lint=False)
    new = next(iter(WIDEN))
    return [f.to_dict() for f in result.findings if f.file and f.file.endswith(new)], result


def catalogs(root: Path) -> list[Path]:
    return sorted((root / ".schemagate" / "cache" / "catalog").rglob("*.json"))


def test_a_pull_request_is_judged_the_same_with_the_catalog_from_the_cache(tmp_path: Path) -> None:
    root = branch(make_project(tmp_path / "cached"))
    first, _ = judged_findings(root)  # builds the catalog from the old files' trees and keeps it
    assert len(catalogs(root)) == 1
    second, result = judged_findings(root)
    assert second == first
    assert result.structural is not None and result.report is not None and result.report.judged
    judged = set(result.report.judged)
    # the files before the judged one are never parsed into trees; the repeatable view, applied
    # after it, is read as before
    before = [p for p in result.structural.parsed if p.rel not in judged and p.file.name.kind != "repeatable"]
    assert len(before) == len([name for name in HISTORY if not name.startswith("R__")])
    assert all(p.trees_pending for p in before if p.statements)
    (view,) = [p for p in result.structural.parsed if p.file.name.kind == "repeatable"]
    assert not view.trees_pending

    uncached = branch(make_project(tmp_path / "uncached", pyproject=PYPROJECT + NO_CACHE))
    assert judged_findings(uncached)[0] == first
    assert catalogs(uncached) == []

    # and the history matters to these findings: judged alone, the file gets others
    alone = check_sql(WIDEN)
    assert sorted(f.rule for f in alone.findings) != sorted(
        f["rule"] for f in first if f["family"] == "safety"
    )


def test_an_unreadable_or_foreign_catalog_entry_is_a_miss(tmp_path: Path) -> None:
    root = branch(make_project(tmp_path / "p"))
    expected, _ = judged_findings(root)
    (entry,) = catalogs(root)
    for bad in ("not json", json.dumps({"key": "another", "catalog": {}}), json.dumps({"key": 1})):
        entry.write_text(bad)
        assert judged_findings(root)[0] == expected
        assert json.loads(entry.read_text())["key"] != "another"  # written again, whole


def test_the_catalog_comes_back_from_json_as_it_was(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    config = load_config(root)
    catalog = Catalog()
    for mf in discover(config.migrations).files:
        if mf.name.kind != "undo":
            _record_only(parse_file(mf), catalog)
    assert catalog.columns and catalog.types and catalog.checks  # the history fills every part
    back = from_json(json.loads(json.dumps(to_json(catalog))))
    lasting = [f.name for f in dataclasses.fields(Catalog) if not f.name.startswith("new_")]
    assert set(to_json(catalog)) == set(lasting)  # a new field of the catalog is kept too
    for name in lasting:
        if name != "columns":
            assert getattr(back, name) == getattr(catalog, name), name
    assert {t: set(c) for t, c in back.columns.items()} == {t: set(c) for t, c in catalog.columns.items()}
    for table, columns in catalog.columns.items():
        for column, declared in columns.items():
            assert back.column_type(table, column) == declared, (table, column)


def test_only_the_catalogs_used_last_are_kept(tmp_path: Path) -> None:
    from validator.safety import catalog_cache

    cache = catalog_cache.CatalogCache(tmp_path / "catalog")
    catalog = Catalog()
    catalog.types["task_status"] = "enum"
    keys = [f"{i:02x}" * 32 for i in range(catalog_cache.KEEP)]
    for age, key in enumerate(keys):
        cache.save(key, catalog)
        path = cache._path(key)
        assert path is not None
        os.utime(path, (1_000_000 + age, 1_000_000 + age))  # saved one after the other, long ago
    assert cache.load(keys[0]) is not None  # the oldest, used again
    newer = [f"{i:02x}" * 32 for i in range(100, 103)]
    for key in newer:
        cache.save(key, catalog)
    kept = {p.stem for p in (tmp_path / "catalog").rglob("*.json")}
    assert len(kept) == catalog_cache.KEEP
    assert {keys[0][:32], *(k[:32] for k in newer)} <= kept
    assert not {k[:32] for k in keys[1:4]} & kept  # the least recently used went
