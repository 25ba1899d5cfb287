"""Structural checks over real SQL: no false syntax errors on valid PostgreSQL, and the project's
own example schema validates, bundles and applies.

The corpus is what ships on disk, no network: the SQL scripts of the PostgreSQL installation in the
pgserver wheel (extension scripts, information_schema.sql, system_views.sql, system_functions.sql,
snowball_create.sql, ...) plus the server's own under /usr/share/postgresql/<major> where present.
psql meta-commands (``\\echo ... \\quit``) are dropped and extension placeholders filled in; every
script is cut into migration-sized files of a few statements, numbered V00001.. in one directory.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pgserver
import psycopg2
import pytest
from pglast import ast
from pglast.parser import parse_sql, split

from executor.errors import SchemagateError
from executor.headers import split_statements
from tests.helpers import fetch_value
from validator.config import ValidatorConfig, load_config
from validator.discovery import skip_sql_trivia
from validator.structural import bundle_from_directory, check_structure

REPO_ROOT = Path(__file__).resolve().parent.parent
STATEMENTS_PER_FILE = 3


def corpus_sources() -> list[Path]:
    roots = [Path(pgserver.__file__).parent / "pginstall" / "share" / "postgresql"]
    roots += sorted(Path("/usr/share/postgresql").glob("[0-9]*"))
    return [p for root in roots for p in sorted(root.glob("extension/*.sql")) + sorted(root.glob("*.sql"))]


def as_migration_text(script: str) -> str:
    script = re.sub(r"^\\.*$", "", script, flags=re.MULTILINE)  # psql meta-commands
    for placeholder, value in (
        ("@extschema@", "public"),
        ("@extowner@", "postgres"),
        ("MODULE_PATHNAME", "$libdir/x"),
    ):
        script = script.replace(placeholder, value)
    return script


def chunks(script: str) -> list[str]:
    """The script cut after every STATEMENTS_PER_FILE-th statement (comments travel along)."""
    slices = split(script, only_slices=True)
    out, start = [], 0
    for i in range(STATEMENTS_PER_FILE - 1, len(slices), STATEMENTS_PER_FILE):
        end = slices[i].stop
        semicolon = script.find(";", end)
        end = semicolon + 1 if semicolon >= 0 and not script[end:semicolon].strip() else end
        out.append(script[start:end])
        start = end
    if slices and slices[-1].stop > start:
        out.append(script[start:])
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    directory = tmp_path_factory.mktemp("corpus")
    n = 0
    for source in corpus_sources():
        stem = re.sub(r"[^A-Za-z0-9]+", "_", source.stem).strip("_")
        for chunk in chunks(as_migration_text(source.read_text(encoding="utf-8"))):
            n += 1
            (directory / f"V{n:05d}__{stem}.sql").write_text(chunk, encoding="utf-8")
    return directory, n


def test_hundreds_of_real_scripts_parse_without_false_syntax_errors(corpus: tuple[Path, int]) -> None:
    directory, count = corpus
    assert count >= 300
    config = ValidatorConfig(project_root=directory, migrations=directory)
    started = time.perf_counter()
    result = check_structure(config)
    elapsed = time.perf_counter() - started
    size = sum(mf.path.stat().st_size for mf in result.files)
    statements = sum(len(p.statements) for p in result.parsed)
    print(f"\ncorpus: {count} files, {statements} statements, {size / 1e6:.2f} MB in {elapsed:.2f} s")
    assert [
        f"{f.location} {f.rule} {f.message}" for f in result.findings if f.family in ("syntax", "naming")
    ] == []
    assert len(result.parsed) == count and statements >= 3 * count * 0.8
    functions = sum(isinstance(s.node, ast.CreateFunctionStmt) for p in result.parsed for s in p.statements)
    assert functions >= 100
    assert elapsed < 20


def test_the_executor_cuts_every_file_where_postgresql_s_parser_does(corpus: tuple[Path, int]) -> None:
    """The executor cannot use pglast (the Lambda stays lean), so it splits files with its own lexer
    (executor.headers); on every corpus file it must start each statement where pglast does."""
    directory, _ = corpus
    atomic = 0
    for path in sorted(directory.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        raw = parse_sql(text)
        atomic += sum(isinstance(r.stmt, ast.CreateFunctionStmt) and r.stmt.sql_body is not None for r in raw)
        theirs = [skip_sql_trivia(text, r.stmt_location or 0) for r in raw]
        assert [s.start for s in split_statements(text)] == theirs, path.name
    assert atomic >= 20  # BEGIN ATOMIC bodies, where the lexer has to follow the grammar


def test_plpgsql_samples_parse_cleanly_and_are_valid_postgresql(fresh_db: str) -> None:
    """The scripts above hold no PL/pgSQL, so tests/corpus/plpgsql holds hand-written bodies in the
    shapes migrations use (triggers, %ROWTYPE, cursors, exceptions, DO blocks, a committing
    procedure and its CALL).  The server itself confirms they are valid by running them."""
    directory = REPO_ROOT / "tests" / "corpus" / "plpgsql"
    result = check_structure(ValidatorConfig(project_root=directory, migrations=directory))
    assert result.findings == []
    bodies = sum(
        isinstance(s.node, (ast.CreateFunctionStmt, ast.DoStmt)) for p in result.parsed for s in p.statements
    )
    assert bodies >= 10
    not_transactional = [p.rel for p in result.parsed if not p.transactional]
    assert not_transactional == ["V008__call_batched_procedure.sql"]  # CALL of a procedure that commits
    conn = psycopg2.connect(fresh_db)
    try:
        for p in result.parsed:
            conn.autocommit = not p.transactional
            with conn.cursor() as cur:
                cur.execute(p.text)
            if p.transactional:
                conn.commit()
    finally:
        conn.close()


def test_example_schema_has_no_structural_findings() -> None:
    result = check_structure(load_config(REPO_ROOT))
    assert result.findings == []
    assert 8 <= len(result.files) <= 12
    entries = [entry for entry, _ in result.manifest_entries()]
    assert entries[-1].kind == "repeatable" and entries[-1].file.startswith("R__")
    versions = [e.version for e in entries if e.kind == "versioned"]
    texts = [v for v in versions if v is not None]
    assert texts == versions == sorted(texts) and all(len(v) == 3 for v in texts)
    concurrent = [e for e in entries if not e.transactional]
    assert [e.file for e in concurrent] == ["V007__index_payments_received_at.sql"]
    assert concurrent[0].settings == {"statement_timeout": "1h"}


def test_example_schema_applies_in_order(fresh_db: str) -> None:
    bundle = bundle_from_directory(load_config(REPO_ROOT))
    assert bundle.origin.startswith("migrations ") and bundle.manifest.source["kind"] == "directory"
    conn = psycopg2.connect(fresh_db)
    try:
        for entry in bundle.manifest.migrations:
            conn.autocommit = not entry.transactional  # CREATE INDEX CONCURRENTLY outside a transaction
            with conn.cursor() as cur:
                cur.execute(bundle.sql(entry))
            if entry.transactional:
                conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("INSERT INTO customers (email, name) VALUES ('ada@example.com', 'Ada') RETURNING id")
            customer = fetch_value(cur)
            cur.execute(
                "INSERT INTO invoices (customer_id, number) VALUES (%s, 'INV-1') RETURNING id", (customer,)
            )
            invoice = fetch_value(cur)
            cur.execute(
                "INSERT INTO invoice_lines (invoice_id, description, quantity, unit_price_cents)"
                " VALUES (%s, 'x', 2, 500)",
                (invoice,),
            )
            cur.execute(
                "INSERT INTO payments (invoice_id, amount_cents, provider) VALUES (%s, 400, 'card')",
                (invoice,),
            )
            cur.execute("SELECT status::text, total_cents, paid_cents, open_cents FROM invoice_totals")
            assert cur.fetchall() == [("draft", 1000, 400, 600)]
            cur.execute(
                "SELECT convalidated FROM pg_constraint WHERE conname = 'payments_refund_of_payment_id_fkey'"
            )
            assert cur.fetchone() == (True,)
            cur.execute(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = 'payments_received_at_idx'::regclass"
            )
            assert cur.fetchone() == (True,)
    finally:
        conn.close()


def test_bundle_from_directory_refuses_error_findings_and_lists_them(tmp_path: Path) -> None:
    (tmp_path / "V1__ok.sql").write_text("create table t (a bigint);\n")
    (tmp_path / "V2__bad.sql").write_text("create table u (\n  a bigint,,\n);\n")
    (tmp_path / "v3__name.sql").write_text("select 1;\n")
    (tmp_path / "V5__gap.sql").write_text("select 1;\n")
    with pytest.raises(SchemagateError) as info:
        bundle_from_directory(ValidatorConfig(project_root=tmp_path, migrations=tmp_path))
    assert info.value.exit_code == 1
    message = info.value.message
    assert "2 error findings" in message
    assert "V2__bad.sql:2:12 syntax-error" in message and "v3__name.sql naming-malformed" in message
    assert "version-gap" not in message  # warnings do not block


def test_bundle_from_directory_builds_a_sealed_bundle(tmp_path: Path) -> None:
    (tmp_path / "V1__t.sql").write_bytes(b"create table t (a bigint);\r\n")
    (tmp_path / "V2__i.sql").write_text(
        "-- schemagate:set lock_timeout=2s\ncreate index concurrently i on t (a);\n"
    )
    (tmp_path / "R__v.sql").write_text("create or replace view v as select a from t;\n")
    bundle = bundle_from_directory(ValidatorConfig(project_root=tmp_path, migrations=tmp_path))
    entries = bundle.manifest.migrations
    assert [(e.file, e.transactional, e.settings) for e in entries] == [
        ("V1__t.sql", True, {}),
        ("V2__i.sql", False, {"lock_timeout": "2s"}),
        ("R__v.sql", True, {}),
    ]
    assert bundle.files["V1__t.sql"] == b"create table t (a bigint);\r\n"  # byte for byte
    assert bundle.manifest.bundle_sha256 == bundle.manifest.compute_sha256()


def test_call_of_a_committing_procedure_from_an_earlier_file_is_not_transactional(tmp_path: Path) -> None:
    (tmp_path / "V1__proc.sql").write_text(
        "create procedure purge() language plpgsql as $$ begin delete from t; commit; end $$;\n"
    )
    (tmp_path / "V2__call.sql").write_text("call purge();\n")
    (tmp_path / "V3__call_mixed.sql").write_text("create table x (a bigint);\ncall public.purge();\n")
    result = check_structure(ValidatorConfig(project_root=tmp_path, migrations=tmp_path))
    assert [(p.rel, p.transactional) for p in result.parsed] == [
        ("V1__proc.sql", True),
        ("V2__call.sql", False),
        ("V3__call_mixed.sql", False),
    ]
    assert result.findings == []  # each statement of V3 commits on its own, as psql would run them


# statements a tree-less parse must hand to the tree parse (each one decides a file's transactions,
# or is not ASCII), and three it reads alone
TRANSACTION_CASES = {
    "V1__concurrent_index.sql": "CREATE INDEX CONCURRENTLY bookings_guest_idx ON bookings (guest_id);\n",
    "V2__drop_concurrently.sql": "DROP INDEX CONCURRENTLY IF EXISTS bookings_old_idx;\n",
    "V3__reindex.sql": "REINDEX TABLE CONCURRENTLY bookings;\n",
    "V4__vacuum.sql": "VACUUM (ANALYZE) bookings;\n",
    "V5__detach.sql": "ALTER TABLE events DETACH PARTITION events_2024 CONCURRENTLY;\n",
    "V6__attach.sql": "ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');\n",
    "V7__wrapped.sql": "BEGIN;\nALTER TABLE bookings ADD COLUMN note text;\nCOMMIT;\n",
    "V8__do.sql": "DO $$ BEGIN PERFORM pg_sleep(0); END $$;\n",
    "V9__system.sql": "ALTER SYSTEM SET work_mem = '64MB';\n",
    "V10__cluster.sql": "CLUSTER;\n",
    "V11__lock.sql": "LOCK TABLE bookings IN SHARE MODE;\nCREATE INDEX CONCURRENTLY b_idx ON bookings (id);\n",
    "V12__not_ascii.sql": "COMMENT ON TABLE bookings IS 'réservations ✓';\nALTER TABLE bookings ADD COLUMN é int;\n",
    "V13__no_semicolon.sql": "-- trailing comment only after\nALTER TABLE bookings ADD COLUMN seats int -- the end\n",
    "V14__only_comments.sql": "-- nothing to do here\n/* really */\n",
    "V15__typo.sql": "ALTER TABLE bookings ADD COLUMN x int;\nALTR TABLE bookings DROP COLUMN x;\n",
}


def test_a_tree_less_parse_gives_what_the_tree_parse_gives(corpus: tuple[Path, int], tmp_path: Path) -> None:
    """``apply --migrations`` parses unknown files with ``trees=False``: libpg_query's JSON instead
    of pglast's tree where no statement needs one.  On every file of the corpus, the PL/pgSQL
    samples, the example, the six tool histories and the statements that decide transactions, it
    must find what ``parse_file`` finds (statements, positions, flags, settings, findings)."""
    from tests.histories import WRITERS
    from validator.discovery import discover
    from validator.parse import parse_file
    from validator.parse_cache import to_entry

    extras = tmp_path / "extras"
    extras.mkdir()
    for name, sql in TRANSACTION_CASES.items():
        (extras / name).write_text(sql, encoding="utf-8")
    directories = [corpus[0], REPO_ROOT / "tests" / "corpus" / "plpgsql", REPO_ROOT / "migrations", extras]
    directories += [write(tmp_path / layout) for layout, write in WRITERS.items()]
    tree_less = with_trees = 0
    for directory in directories:
        files, _ = discover(directory)
        assert files, directory
        for mf in files:
            full, light = parse_file(mf), parse_file(mf, trees=False)
            assert to_entry(light) == to_entry(full), mf.path
            assert [s.text for s in light.statements] == [s.text for s in full.statements], mf.path
            if light.statements and all(s.node is None for s in light.statements):
                tree_less += 1
            else:
                with_trees += 1
    print(f"\n{tree_less} files read without trees, {with_trees} with")
    assert tree_less >= 300 and with_trees >= 100
    took_trees = {
        mf.rel
        for mf in discover(extras).files
        if any(s.node is not None for s in parse_file(mf, trees=False).statements)
    }
    # all but the plain ALTER TABLE without a semicolon, the file of comments and the one that does not parse
    assert sorted(set(TRANSACTION_CASES) - took_trees) == [
        "V13__no_semicolon.sql",
        "V14__only_comments.sql",
        "V15__typo.sql",
    ]
