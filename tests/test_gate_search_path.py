"""``--search-path`` / ``[tool.schemagate] search_path``: a history written for ``search_path =
storage`` applies with it and fails without it, on a real PostgreSQL; the rehearsal uses it too.

The history is shaped like an object-storage service's: a first migration dumped from an existing
database (everything schema-qualified, as pg_dump writes it), then years of hand-written migrations
that name their tables without a schema because the service's role has ``search_path = storage``.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg2
import pytest

from schemagate.cli import main

STORAGE_HISTORY = {
    "V001__initial_schema.sql": """\
-- dumped from the production database when the service adopted migrations
CREATE SCHEMA IF NOT EXISTS storage;

CREATE TABLE storage.buckets (
    id          text NOT NULL PRIMARY KEY,
    name        text NOT NULL,
    owner       uuid,
    created_at  timestamptz DEFAULT now(),
    updated_at  timestamptz DEFAULT now()
);
CREATE UNIQUE INDEX bname ON storage.buckets USING btree (name);

CREATE TABLE storage.objects (
    id               uuid DEFAULT gen_random_uuid() NOT NULL PRIMARY KEY,
    bucket_id        text REFERENCES storage.buckets (id),
    name             text,
    owner            uuid,
    created_at       timestamptz DEFAULT now(),
    updated_at       timestamptz DEFAULT now(),
    last_accessed_at timestamptz DEFAULT now(),
    metadata         jsonb
);
CREATE UNIQUE INDEX bucketid_objname ON storage.objects USING btree (bucket_id, name);

CREATE FUNCTION storage.foldername(name text) RETURNS text[]
    LANGUAGE plpgsql AS $$
DECLARE
    _parts text[];
BEGIN
    SELECT string_to_array(name, '/') INTO _parts;
    RETURN _parts[1:array_length(_parts, 1) - 1];
END
$$;
""",
    "V002__add_buckets_public.sql": """\
ALTER TABLE buckets ADD COLUMN public boolean DEFAULT false;
""",
    "V003__objects_path_tokens.sql": """\
-- schemagate:ignore adding-field-with-default -- objects was empty in every environment at release 0.3
ALTER TABLE objects ADD COLUMN path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED;
""",
    "V004__create_search_function.sql": """\
CREATE OR REPLACE FUNCTION search(prefix text, bucketname text, limits int DEFAULT 100)
RETURNS TABLE (name text, id uuid, updated_at timestamptz, metadata jsonb)
LANGUAGE sql STABLE AS $$
    SELECT o.name, o.id, o.updated_at, o.metadata
      FROM objects AS o
     WHERE o.bucket_id = bucketname
       AND o.name ILIKE prefix || '%'
     ORDER BY o.name
     LIMIT limits
$$;
""",
    "V005__add_bucket_limits.sql": """\
ALTER TABLE buckets
    ADD COLUMN file_size_limit bigint,
    ADD COLUMN allowed_mime_types text[];
""",
    "V006__objects_owner_index.sql": """\
CREATE INDEX CONCURRENTLY IF NOT EXISTS objects_owner_idx ON objects (owner);
""",
    "V007__add_objects_version.sql": """\
ALTER TABLE objects ADD COLUMN version text;
""",
    "V008__create_s3_multipart_uploads.sql": """\
CREATE TABLE s3_multipart_uploads (
    id               text PRIMARY KEY,
    in_progress_size bigint NOT NULL DEFAULT 0,
    upload_signature text NOT NULL,
    bucket_id        text NOT NULL REFERENCES buckets (id),
    key              text COLLATE "C" NOT NULL,
    version          text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
""",
    "V009__backfill_bucket_public.sql": """\
DO $$
BEGIN
    UPDATE buckets SET public = false WHERE public IS NULL;
    RAISE NOTICE 'public flag set on % buckets', (SELECT count(*) FROM buckets);
END
$$;
""",
    "V010__get_size_by_bucket.sql": """\
CREATE OR REPLACE FUNCTION get_size_by_bucket()
RETURNS TABLE (size bigint, bucket_id text)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
        SELECT sum((o.metadata ->> 'size')::bigint)::bigint, o.bucket_id
          FROM objects AS o
         GROUP BY o.bucket_id;
END
$$;
""",
    "R__bucket_usage.sql": """\
CREATE OR REPLACE VIEW bucket_usage AS
SELECT b.id, b.name, count(o.id) AS objects
  FROM buckets AS b
  LEFT JOIN objects AS o ON o.bucket_id = b.id
 GROUP BY b.id, b.name;
""",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "storage-api"
    (root / "migrations").mkdir(parents=True)
    for name, text in STORAGE_HISTORY.items():
        (root / "migrations" / name).write_text(text)
    (root / "pyproject.toml").write_text('[tool.schemagate]\nmigrations = "migrations"\n')
    monkeypatch.chdir(root)
    for var in [v for v in os.environ if v.startswith("CODEBUILD_")]:
        monkeypatch.delenv(var)
    return root


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out + err


def query(url: str, sql: str) -> list[tuple]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_without_the_search_path_the_history_fails_at_its_first_unqualified_reference(
    project, capsys, fresh_db
):
    code, out = run(capsys, "apply", "--migrations", "migrations", "--database-url", fresh_db, "--yes")

    assert code == 1
    assert "V002__add_buckets_public.sql" in out and 'relation "buckets" does not exist' in out
    # V001 stays applied, V002 left nothing behind
    assert query(fresh_db, "SELECT script, success FROM schemagate_history ORDER BY installed_rank") == [
        ("V001__initial_schema.sql", True)
    ]
    assert query(
        fresh_db,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'buckets' AND column_name = 'public'",
    ) == [(0,)]


def test_search_path_option_applies_the_history_into_its_schema(project, capsys, fresh_db):
    code, out = run(
        capsys, "plan", "--migrations", "migrations", "--database-url", fresh_db, "--search-path", "storage"
    )
    assert code == 0 and "11 to apply" in out

    code, out = run(
        capsys,
        "apply",
        "--migrations",
        "migrations",
        "--database-url",
        fresh_db,
        "--yes",
        "--search-path",
        "storage",
    )

    assert code == 0, out
    assert query(fresh_db, "SELECT count(*) FROM schemagate_history WHERE success") == [(11,)]
    tables = query(
        fresh_db,
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_schema IN ('storage', 'public') ORDER BY 1, 2",
    )
    assert tables == [
        ("public", "schemagate_history"),  # the history table stays in its own schema
        ("storage", "bucket_usage"),
        ("storage", "buckets"),
        ("storage", "objects"),
        ("storage", "s3_multipart_uploads"),
    ]
    assert query(
        fresh_db,
        "SELECT indexrelid::regclass::text, indisvalid FROM pg_index WHERE indexrelid = 'storage.objects_owner_idx'::regclass",
    ) == [("storage.objects_owner_idx", True)]  # the non-transactional migration got it too
    assert query(fresh_db, "SELECT to_regprocedure('storage.search(text, text, integer)') IS NOT NULL") == [
        (True,)
    ]
    # the executor's session is back to the role's own search_path afterwards
    code, out = run(capsys, "apply", "--migrations", "migrations", "--database-url", fresh_db, "--yes")
    assert code == 0 and "up to date" in out


def test_search_path_from_pyproject_and_in_the_rehearsal(project, capsys, fresh_db, pg_admin_url):
    code, out = run(capsys, "validate", "--no-lint", "--rehearse", "--rehearsal-database-url", pg_admin_url)
    assert code == 1
    assert "V002__add_buckets_public.sql:1:1 rehearsal-failed" in out
    assert 'relation "buckets" does not exist' in out

    code, out = run(
        capsys,
        "validate",
        "--no-lint",
        "--rehearse",
        "--rehearsal-database-url",
        pg_admin_url,
        "--search-path",
        "storage",
    )
    assert code == 0, out

    (project / "pyproject.toml").write_text(
        '[tool.schemagate]\nmigrations = "migrations"\nsearch_path = "storage"\n'
    )
    code, out = run(capsys, "validate", "--no-lint", "--rehearse", "--rehearsal-database-url", pg_admin_url)
    assert code == 0, out
    assert "rehearsal-failed" not in out
    # rehearsed in the schema the history was written for
    assert "V003__objects_path_tokens.sql rehearsal-table-rewrite" in out and "on storage.objects" in out

    code, out = run(capsys, "apply", "--migrations", "migrations", "--database-url", fresh_db, "--yes")
    assert code == 0, out
    assert query(fresh_db, "SELECT count(*) FROM storage.buckets") == [(0,)]


@pytest.mark.parametrize(
    "value",
    ["storage; DROP TABLE buckets", "storage,", "'storage'"],
)
def test_a_malformed_search_path_is_a_configuration_error(project, capsys, fresh_db, value):
    code, out = run(
        capsys,
        "apply",
        "--migrations",
        "migrations",
        "--database-url",
        fresh_db,
        "--yes",
        "--search-path",
        value,
    )
    assert code == 2 and "--search-path" in out and "is not a list of schema names" in out
    assert query(fresh_db, "SELECT to_regclass('public.schemagate_history')") == [(None,)]

    (project / "pyproject.toml").write_text(f'[tool.schemagate]\nsearch_path = "{value}"\n')
    code, out = run(capsys, "validate", "--no-lint")
    assert code == 2 and "search_path" in out


def test_run_with_search_path_validates_and_applies(project, capsys, fresh_db):
    code, out = run(capsys, "run", "--yes", "--database-url", fresh_db, "--search-path", "storage")

    assert code == 0, out
    assert "11 applied" in out
    assert query(fresh_db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'storage'") == [(3,)]


def test_the_bundle_records_the_search_path_so_the_pipeline_applies_it_without_being_told(
    project, capsys, fresh_db, tmp_path
):
    (project / "pyproject.toml").write_text(
        '[tool.schemagate]\nmigrations = "migrations"\nsearch_path = "storage"\n'
    )
    bundle_dir = tmp_path / "bundle"
    code, out = run(capsys, "validate", "--no-lint", "--bundle", str(bundle_dir))
    assert code == 0, out
    import json

    assert json.loads((bundle_dir / "manifest.json").read_text())["search_path"] == "storage"
    # the executor (as in the Lambda: no pyproject.toml, no --search-path) applies it into storage
    (project / "pyproject.toml").write_text('[tool.schemagate]\nmigrations = "elsewhere"\n')
    code, out = run(capsys, "apply", "--bundle", str(bundle_dir), "--database-url", fresh_db, "--yes")
    assert code == 0, out
    assert query(
        fresh_db, "SELECT to_regclass('storage.buckets') IS NOT NULL, to_regclass('public.buckets')"
    ) == [(True, None)]
