"""The parse cache (validator.parse_cache): a hit gives exactly what a fresh parse gives, an edit or
another parser is a miss, a broken pack is a miss and never an error; with the gate the safety
rules judge the new files only, with the same findings as when every file is judged; and a PR
run that finds everything cached or accepted never loads sqlfluff."""

from __future__ import annotations

import dataclasses
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gate_history import HISTORY, NEW_UNSAFE, commit_all, git, make_project, write_files
from tests.histories import flyway_billing
from validator.config import load_config
from validator.parse_cache import DEFAULT_CACHE_DIR, ParseCache
from validator.parsed import ParsedFile
from validator.safety import check_safety
from validator.structural import check_structure
from validator.validate import _safety_config, run_validation

REPO = Path(__file__).resolve().parent.parent

# what parse_file handles beyond plain DDL, each in a file of its own
TRICKY: dict[str, str] = {
    "V900__wrapped_in_a_transaction.sql": """\
BEGIN;
ALTER TABLE accounts ADD COLUMN locale text;
UPDATE accounts SET locale = 'en' WHERE locale IS NULL;
COMMIT;
""",
    "V901__procedure_that_commits.sql": """\
-- schemagate:set lock_timeout=5s statement_timeout=30min
CREATE PROCEDURE purge_expired_sessions()
LANGUAGE plpgsql AS $$
BEGIN
    LOOP
        DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < now() LIMIT 1000);
        EXIT WHEN NOT FOUND;
        COMMIT;
    END LOOP;
END;
$$;
""",
    "V902__call_it.sql": "CALL purge_expired_sessions();\n",
    "V903__concurrent_index.sql": """\
-- built without blocking writes
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_due_on_idx ON invoices (due_on);
""",
    "V904__broken_body.sql": """\
CREATE FUNCTION touch_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now()
    RETURN NEW;
END;
$$;
""",
    "V905__typo.sql": "ALTER TABLE accounts ADD COLUMN nickname text;\nALTR TABLE accounts DROP COLUMN nickname;\n",
    "V906__bad_header.sql": "-- schemagate:set lock_timeout=soon\nALTER TABLE plans ADD COLUMN tier text;\n",
    "V907__no_trailing_semicolon.sql": "COMMENT ON TABLE plans IS 'Prix en €, libellés accentués'",
    "V908__savepoint.sql": "SAVEPOINT before_backfill;\nUPDATE plans SET tier = 'basic';\n",
}


def project(tmp_path: Path) -> Path:
    root = tmp_path / "billing"
    migrations = root / "db" / "migration"
    flyway_billing.write(migrations)
    for name, sql in TRICKY.items():
        (migrations / name).write_text(sql, encoding="utf-8")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "billing"\nversion = "1"\n\n[tool.schemagate]\nmigrations = "db/migration"\n'
    )
    return root


def same(a: ParsedFile, b: ParsedFile) -> list[str]:
    """The fields in which two parses differ (statements and the wrapper compared field by field,
    parse trees included)."""
    out = []
    for f in dataclasses.fields(ParsedFile):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "statements":
            x, y = [dataclasses.astuple(s) for s in x], [dataclasses.astuple(s) for s in y]
        elif f.name == "wrapper":
            x = x and tuple(dataclasses.astuple(s) for s in x)
            y = y and tuple(dataclasses.astuple(s) for s in y)
        if x != y:
            out.append(f.name)
    return out


def test_a_hit_is_exactly_what_a_fresh_parse_gives(tmp_path):
    root = project(tmp_path)
    config = load_config(root)
    cache_dir = tmp_path / "cache"
    fresh = check_structure(config)
    assert {f.rule for f in fresh.findings} >= {
        "syntax-error",
        "plpgsql-syntax-error",
        "bad-header-setting",
        "explicit-transaction-control",
    }
    assert any(p.wrapper for p in fresh.parsed) and any(not p.transactional for p in fresh.parsed)

    first = ParseCache(cache_dir, config.migrations)
    filled = check_structure(config, parse_cache=first)
    assert (first.hits, first.misses, first.writes) == (0, len(fresh.files), 1)
    second = ParseCache(cache_dir, config.migrations)
    cached = check_structure(config, parse_cache=second)
    assert (second.hits, second.misses, second.writes) == (len(fresh.files), 0, 0)

    for result in (filled, cached):
        assert result.findings == fresh.findings
        assert result.manifest_entries() == fresh.manifest_entries()
        for a, b in zip(fresh.parsed, result.parsed, strict=True):
            assert same(a, b) == [], a.rel
    call = next(p for p in cached.parsed if p.rel == "V902__call_it.sql")
    assert call.transactional is False  # the procedure of another file commits: marked after the cache


def test_an_edit_or_another_parser_is_a_miss_and_a_broken_pack_is_no_error(tmp_path):
    root = project(tmp_path)
    config = load_config(root)
    cache_dir = tmp_path / "cache"
    check_structure(config, parse_cache=ParseCache(cache_dir, config.migrations))

    edited = config.migrations / "V903__concurrent_index.sql"
    edited.write_text(edited.read_text() + "CREATE INDEX invoices_paid_idx ON invoices (paid_at);\n")
    cache = ParseCache(cache_dir, config.migrations)
    result = check_structure(config, parse_cache=cache)
    assert cache.misses == 1 and cache.hits == len(result.files) - 1
    assert next(p for p in result.parsed if p.rel == edited.name).transactional is False

    other = ParseCache(cache_dir, config.migrations)
    other.key = "0" * 64  # another pglast or another parse.py: nothing of the old pack is used
    other.path = cache_dir / other.key[:24] / "pack.json"
    check_structure(config, parse_cache=other)
    assert other.hits == 0

    (pack,) = (cache_dir / cache.key[:24]).glob("*.json")
    pack.write_text('{"key": "' + cache.key + '", "entries": {"x": 1')  # cut short by a full disk
    broken = ParseCache(cache_dir, config.migrations)
    assert check_structure(config, parse_cache=broken).findings == check_structure(config).findings
    assert broken.hits == 0
    data = json.loads(pack.read_text())  # written again, whole
    name = next(iter(data["entries"]))
    data["entries"][name]["statements"] = data["entries"][name]["statements"][:-1]  # does not fit
    pack.write_text(json.dumps(data))
    tampered = ParseCache(cache_dir, config.migrations)
    assert check_structure(config, parse_cache=tampered).findings == check_structure(config).findings
    assert tampered.misses >= 1


def test_validate_caches_under_schemagate_and_cache_false_turns_it_off(tmp_path):
    root = project(tmp_path)
    first = run_validation(load_config(root), lint=False)
    pack_dir = root / DEFAULT_CACHE_DIR
    assert len(list(pack_dir.glob("*/*.json"))) == 1
    assert (root / ".schemagate" / ".gitignore").is_file()  # the cache is never committed
    second = run_validation(load_config(root), lint=False)
    assert second.findings == first.findings and second.exit_code == first.exit_code == 1

    off = tmp_path / "off"
    off.mkdir()
    root2 = project(off)
    with (root2 / "pyproject.toml").open("a") as f:
        f.write("\n[tool.schemagate.lint]\ncache = false\n")
    run_validation(load_config(root2), lint=False)
    assert not (root2 / DEFAULT_CACHE_DIR).exists()


def test_safety_judges_only_the_named_files_with_the_findings_of_a_full_run(tmp_path):
    """The accepted history only tells the catalog what it created: a judged file's findings are
    the ones it gets when every file is judged (its tables' columns, validated CHECKs, ...)."""
    root = make_project(tmp_path / "p")
    write_files(root, NEW_UNSAFE)
    config = _safety_config(load_config(root))
    structural = check_structure(config)
    forward = [p for p in structural.parsed if p.file.name.kind != "undo"]
    everything = check_safety(forward, config)
    files_with_findings = {f.file for f in everything.findings}
    assert len(files_with_findings) > 5  # the history has old findings in many files
    for judged in [{rel} for rel in sorted({p.rel for p in forward})] + [files_with_findings]:
        only = check_safety(forward, config, judged=judged)
        assert only.findings == [f for f in everything.findings if f.file in judged], judged
        assert [s.file for s in only.suppressions] == [
            s.file for s in everything.suppressions if s.file in judged
        ]


@pytest.mark.parametrize("warm", [False, True])
def test_a_pr_run_loads_sqlfluff_only_when_a_file_is_linted(tmp_path, warm):
    """One new file on a committed history, ``--base-ref main``: the first run lints it (in a
    worker), the second answers it from the cache and imports neither sqlfluff nor the rehearsal."""
    root = make_project(tmp_path / "p")
    git(root, "checkout", "-qb", "feature/next")
    write_files(root, NEW_UNSAFE)
    commit_all(root, "the next migration")
    script = (
        "import json, sys\nfrom pathlib import Path\n"
        "from validator.config import load_config\n"
        "from validator.validate import run_validation\n"
        f"r = run_validation(load_config(Path({str(root)!r})), base_ref='main')\n"
        "print(json.dumps({'judged': sorted(r.judgement.judged), 'linted': r.lint_stats.linted,\n"
        "  'cached': r.lint_stats.cached, 'findings': [f.rule for f in r.findings],\n"
        "  'modules': sorted(m for m in sys.modules if m.split('.')[0] == 'sqlfluff'\n"
        "                    or m.startswith('validator.rehearsal'))}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True
            ).stdout.splitlines()[-1]
        )
        for _ in range(2 if warm else 1)
    ]
    last = runs[-1]
    assert last["judged"] == sorted(NEW_UNSAFE)
    assert last["modules"] == []  # the lint ran in a worker the first time, from the cache the second
    assert (last["linted"], last["cached"]) == ((0, 1) if warm else (1, 0))
    assert len(runs) == 1 or runs[0]["findings"] == last["findings"]
    assert all(name in HISTORY or name in NEW_UNSAFE for name in last["judged"])


def test_parsing_code_is_part_of_the_key(tmp_path, monkeypatch):
    """The options key hashes the parser's own source, so an edited parse.py never reads entries
    an older one wrote."""
    from validator import parse_cache

    before = parse_cache.options_key()
    fake = tmp_path / "parse.py"
    fake.write_text(Path(sys.modules["validator.parse"].__file__).read_text() + "\n# edited\n")
    # options_key reads the source through the module's spec (importlib.util.find_spec), which for
    # an imported module is its __spec__, without importing anything
    spec = importlib.machinery.ModuleSpec("validator.parse", None, origin=str(fake))
    monkeypatch.setattr(sys.modules["validator.parse"], "__spec__", spec)
    parse_cache.options_key.cache_clear()
    try:
        assert parse_cache.options_key() != before
    finally:
        monkeypatch.undo()
        parse_cache.options_key.cache_clear()
    assert parse_cache.options_key() == before


def test_apply_path_answers_known_files_without_parsing_or_importing_pglast(tmp_path):
    """``apply --migrations`` (``bundle_from_directory``) takes the flags of a known file from the
    cache without a parse tree: a second run in a fresh process never imports pglast, and its
    bundle (transactional flags, settings) is the first run's."""
    import json
    import subprocess

    project = tmp_path / "project"
    migrations = project / "db"
    migrations.mkdir(parents=True)
    (migrations / "V1__accounts.sql").write_text(
        "-- schemagate:set lock_timeout=3s\nCREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
    )
    (migrations / "V2__accounts_email.sql").write_text(
        "CREATE INDEX CONCURRENTLY accounts_email ON accounts (email) WHERE email IS NOT NULL;\n"
    )
    (migrations / "V3__backfill.sql").write_text(
        "DO $$ BEGIN UPDATE accounts SET email = lower(email); END $$;\n"
    )
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from validator.config import load_config\n"
        "from validator.structural import bundle_from_directory\n"
        "b = bundle_from_directory(load_config(Path.cwd(), migrations=Path('db')))\n"
        "print(json.dumps([[e.script, e.transactional, e.settings] for e in b.manifest.migrations]))\n"
        "print('pglast' in sys.modules)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], cwd=project, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        for _ in range(2)
    ]
    assert runs[0][1] == "True" and runs[1][1] == "False"  # parsed cold, answered warm
    assert runs[0][0] == runs[1][0]
    entries = json.loads(runs[1][0])
    assert [e[1] for e in entries] == [True, False, True]
    assert entries[0][2] == {"lock_timeout": "3s"}
