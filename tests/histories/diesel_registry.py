"""A Diesel history of a private package registry (crates, versions, owners, tokens, downloads), the
way a Rust team that has used Diesel since 2017 has it:

- ``00000000000000_diesel_initial_setup`` exactly as ``diesel setup`` writes it (the
  ``diesel_manage_updated_at`` / ``diesel_set_updated_at`` helpers), used by later migrations;
- directory names in both styles Diesel generated over the years: ``20170308140537_...`` (Diesel 0.x)
  then ``2018-01-11-153012_...`` (``diesel migration generate`` since 1.0);
- ``up.sql`` files that start with Diesel's ``-- Your SQL goes here``, ``down.sql`` files that drop what
  the up script made, one migration made with ``--no-down`` (no ``down.sql``);
- ``metadata.toml`` with ``run_in_transaction = false`` for the indexes built ``CONCURRENTLY``;
- enums (and a value added later), partial and GIN indexes, a trigger function, a DO block, data
  backfills, a constraint added ``NOT VALID`` and validated later, a generated column;
- the ``.keep`` file ``diesel setup`` leaves in the directory.
"""

from __future__ import annotations

from pathlib import Path

INITIAL_SETUP_UP = """\
-- This file was automatically created by Diesel to setup helper functions
-- and other internal bookkeeping. This file is safe to edit, any future
-- changes will be added to existing projects as new migrations.




-- Sets up a trigger for the given table to automatically set a column called
-- `updated_at` whenever the row is modified (unless `updated_at` was included
-- in the modified columns)
--
-- # Example
--
-- ```sql
-- CREATE TABLE users (id SERIAL PRIMARY KEY, updated_at TIMESTAMP NOT NULL DEFAULT NOW());
--
-- SELECT diesel_manage_updated_at('users');
-- ```
CREATE OR REPLACE FUNCTION diesel_manage_updated_at(_tbl regclass) RETURNS VOID AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER set_updated_at BEFORE UPDATE ON %s
                    FOR EACH ROW EXECUTE PROCEDURE diesel_set_updated_at()', _tbl);
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION diesel_set_updated_at() RETURNS trigger AS $$
BEGIN
    IF (
        NEW IS DISTINCT FROM OLD AND
        NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at
    ) THEN
        NEW.updated_at := current_timestamp;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

INITIAL_SETUP_DOWN = """\
-- This file was automatically created by Diesel to setup helper functions
-- and other internal bookkeeping. This file is safe to edit, any future
-- changes will be added to existing projects as new migrations.

DROP FUNCTION IF EXISTS diesel_manage_updated_at(_tbl regclass);
DROP FUNCTION IF EXISTS diesel_set_updated_at();
"""

NO_TRANSACTION = "run_in_transaction = false\n"

FILES: dict[str, str] = {
    ".keep": "",
    "00000000000000_diesel_initial_setup/up.sql": INITIAL_SETUP_UP,
    "00000000000000_diesel_initial_setup/down.sql": INITIAL_SETUP_DOWN,
    # -- Diesel 0.x: compact timestamps -------------------------------------------------------------
    "20170308140537_create_users/up.sql": """\
CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    gh_login VARCHAR NOT NULL,
    name VARCHAR,
    email VARCHAR,
    gh_access_token VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE UNIQUE INDEX users_gh_login ON users (lower(gh_login));
SELECT diesel_manage_updated_at('users');
""",
    "20170308140537_create_users/down.sql": """\
DROP TABLE users;
""",
    "20170308141215_create_crates/up.sql": """\
CREATE TABLE crates (
    id SERIAL PRIMARY KEY,
    name VARCHAR NOT NULL,
    description VARCHAR,
    homepage VARCHAR,
    documentation VARCHAR,
    repository VARCHAR,
    downloads INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE UNIQUE INDEX index_crate_name ON crates (lower(name));
SELECT diesel_manage_updated_at('crates');
""",
    "20170308141215_create_crates/down.sql": """\
DROP TABLE crates;
""",
    "20170309101002_create_versions/up.sql": """\
CREATE TABLE versions (
    id SERIAL PRIMARY KEY,
    crate_id INTEGER NOT NULL REFERENCES crates (id) ON DELETE CASCADE,
    num VARCHAR NOT NULL,
    features JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW(),
    CONSTRAINT unique_num UNIQUE (crate_id, num)
);
SELECT diesel_manage_updated_at('versions');
""",
    "20170309101002_create_versions/down.sql": """\
DROP TABLE versions;
""",
    "20170315120011_create_crate_owners/up.sql": """\
CREATE TABLE crate_owners (
    crate_id INTEGER NOT NULL REFERENCES crates (id) ON DELETE CASCADE,
    owner_id INTEGER NOT NULL,
    created_by INTEGER REFERENCES users (id),
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW(),
    PRIMARY KEY (crate_id, owner_id)
);
SELECT diesel_manage_updated_at('crate_owners');
""",
    "20170315120011_create_crate_owners/down.sql": """\
DROP TABLE crate_owners;
""",
    "20170402093017_add_downloads_to_versions/up.sql": """\
ALTER TABLE versions ADD COLUMN downloads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN yanked BOOLEAN NOT NULL DEFAULT FALSE;
""",
    "20170402093017_add_downloads_to_versions/down.sql": """\
ALTER TABLE versions DROP COLUMN yanked;
ALTER TABLE versions DROP COLUMN downloads;
""",
    "20170615151200_create_keywords/up.sql": """\
CREATE TABLE keywords (
    id SERIAL PRIMARY KEY,
    keyword VARCHAR NOT NULL,
    crates_cnt INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE UNIQUE INDEX index_keywords_keyword ON keywords (lower(keyword));
CREATE TABLE crates_keywords (
    crate_id INTEGER NOT NULL REFERENCES crates (id) ON DELETE CASCADE,
    keyword_id INTEGER NOT NULL REFERENCES keywords (id),
    PRIMARY KEY (crate_id, keyword_id)
);
""",
    "20170615151200_create_keywords/down.sql": """\
DROP TABLE crates_keywords;
DROP TABLE keywords;
""",
    # -- Diesel 1.x and later: `diesel migration generate` ------------------------------------------
    "2018-01-11-153012_create_api_tokens/up.sql": """\
-- Your SQL goes here
CREATE TABLE api_tokens (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    token BYTEA NOT NULL,
    name VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    last_used_at TIMESTAMP,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX api_tokens_token ON api_tokens (token);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id) WHERE NOT revoked;
""",
    "2018-01-11-153012_create_api_tokens/down.sql": """\
-- This file should undo anything in `up.sql`
DROP TABLE api_tokens;
""",
    "2018-03-20-201533_create_version_downloads/up.sql": """\
-- Your SQL goes here
CREATE TABLE version_downloads (
    version_id INTEGER NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    downloads INTEGER NOT NULL DEFAULT 1,
    counted INTEGER NOT NULL DEFAULT 0,
    date DATE NOT NULL DEFAULT CURRENT_DATE,
    processed BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (version_id, date)
);
""",
    "2018-03-20-201533_create_version_downloads/down.sql": """\
-- This file should undo anything in `up.sql`
DROP TABLE version_downloads;
""",
    "2018-05-14-100402_index_version_downloads_unprocessed/up.sql": """\
CREATE INDEX CONCURRENTLY IF NOT EXISTS index_version_downloads_not_processed
    ON version_downloads (processed) WHERE processed = FALSE;
""",
    "2018-05-14-100402_index_version_downloads_unprocessed/down.sql": """\
DROP INDEX CONCURRENTLY IF EXISTS index_version_downloads_not_processed;
""",
    "2018-05-14-100402_index_version_downloads_unprocessed/metadata.toml": NO_TRANSACTION,
    "2018-07-02-120000_create_categories/up.sql": """\
-- Your SQL goes here
CREATE TABLE categories (
    id SERIAL PRIMARY KEY,
    category VARCHAR NOT NULL,
    slug VARCHAR NOT NULL,
    description VARCHAR NOT NULL DEFAULT '',
    crates_cnt INTEGER NOT NULL DEFAULT 0,
    path TEXT NOT NULL,
    CONSTRAINT categories_slug_key UNIQUE (slug)
);
CREATE TABLE crates_categories (
    crate_id INTEGER NOT NULL REFERENCES crates (id) ON DELETE CASCADE,
    category_id INTEGER NOT NULL REFERENCES categories (id) ON DELETE CASCADE,
    PRIMARY KEY (crate_id, category_id)
);
INSERT INTO categories (category, slug, description, path) VALUES
    ('Command line utilities', 'command-line-utilities', 'Applications to run at the command line.',
     'command-line-utilities'),
    ('Database interfaces', 'database', 'Crates to interface with database management systems.', 'database'),
    ('Web programming', 'web-programming', 'Crates to create applications for the web.', 'web-programming');
""",
    "2018-07-02-120000_create_categories/down.sql": """\
-- This file should undo anything in `up.sql`
DROP TABLE crates_categories;
DROP TABLE categories;
""",
    "2018-09-18-083011_add_crates_textsearchable/up.sql": """\
ALTER TABLE crates ADD COLUMN textsearchable_index_col tsvector NOT NULL DEFAULT ''::tsvector;
CREATE INDEX index_crates_name_search ON crates USING gin (textsearchable_index_col);

CREATE FUNCTION trigger_crates_name_search() RETURNS trigger AS $$
BEGIN
    NEW.textsearchable_index_col :=
        setweight(to_tsvector('pg_catalog.english', coalesce(NEW.name, '')), 'A') ||
        setweight(to_tsvector('pg_catalog.english', coalesce(NEW.description, '')), 'C');
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER trigger_crates_tsvector_update BEFORE INSERT OR UPDATE OF name, description ON crates
    FOR EACH ROW EXECUTE PROCEDURE trigger_crates_name_search();

UPDATE crates SET name = name;
""",
    "2018-09-18-083011_add_crates_textsearchable/down.sql": """\
DROP TRIGGER trigger_crates_tsvector_update ON crates;
DROP FUNCTION trigger_crates_name_search();
ALTER TABLE crates DROP COLUMN textsearchable_index_col;
""",
    "2019-01-07-151627_create_owner_kind/up.sql": """\
CREATE TYPE owner_kind AS ENUM ('user', 'team');
ALTER TABLE crate_owners ADD COLUMN owner_kind owner_kind;
""",
    "2019-01-07-151627_create_owner_kind/down.sql": """\
ALTER TABLE crate_owners DROP COLUMN owner_kind;
DROP TYPE owner_kind;
""",
    # generated with `diesel migration generate --no-down`: a data backfill has nothing to undo
    "2019-01-07-162003_backfill_owner_kind/up.sql": """\
-- Your SQL goes here
UPDATE crate_owners SET owner_kind = 'user' WHERE owner_kind IS NULL;
ALTER TABLE crate_owners ALTER COLUMN owner_kind SET NOT NULL;
ALTER TABLE crate_owners ALTER COLUMN owner_kind SET DEFAULT 'user';
""",
    "2019-04-22-090011_create_teams/up.sql": """\
-- Your SQL goes here
CREATE TABLE teams (
    id SERIAL PRIMARY KEY,
    login VARCHAR NOT NULL UNIQUE,
    github_id INTEGER NOT NULL UNIQUE,
    name VARCHAR,
    avatar VARCHAR
);
""",
    "2019-04-22-090011_create_teams/down.sql": """\
-- This file should undo anything in `up.sql`
DROP TABLE teams;
""",
    "2019-08-13-141500_add_versions_license_check/up.sql": """\
ALTER TABLE versions ADD COLUMN license VARCHAR;
ALTER TABLE versions ADD CONSTRAINT versions_license_length CHECK (char_length(license) <= 256) NOT VALID;
""",
    "2019-08-13-141500_add_versions_license_check/down.sql": """\
ALTER TABLE versions DROP CONSTRAINT versions_license_length;
ALTER TABLE versions DROP COLUMN license;
""",
    "2019-08-13-141501_validate_versions_license_check/up.sql": """\
ALTER TABLE versions VALIDATE CONSTRAINT versions_license_length;
""",
    "2019-08-13-141501_validate_versions_license_check/down.sql": """\
-- nothing to undo: a validated constraint stays valid
SELECT 1;
""",
    "2020-02-10-103000_create_readme_renderings/up.sql": """\
-- Your SQL goes here
CREATE TABLE readme_renderings (
    version_id INTEGER PRIMARY KEY REFERENCES versions (id) ON DELETE CASCADE,
    rendered_at TIMESTAMP NOT NULL DEFAULT NOW()
);
""",
    "2020-02-10-103000_create_readme_renderings/down.sql": """\
-- This file should undo anything in `up.sql`
DROP TABLE readme_renderings;
""",
    "2020-06-29-174211_add_crates_max_upload_size/up.sql": """\
ALTER TABLE crates ADD COLUMN max_upload_size INTEGER;
COMMENT ON COLUMN crates.max_upload_size IS 'bytes; NULL means the registry default';
""",
    "2020-06-29-174211_add_crates_max_upload_size/down.sql": """\
ALTER TABLE crates DROP COLUMN max_upload_size;
""",
    "2020-11-05-080000_create_background_jobs/up.sql": """\
-- Your SQL goes here
CREATE TABLE background_jobs (
    id BIGSERIAL PRIMARY KEY,
    job_type TEXT NOT NULL,
    data JSONB NOT NULL,
    retries INTEGER NOT NULL DEFAULT 0,
    last_retry TIMESTAMP NOT NULL DEFAULT '1970-01-01',
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    priority SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX background_jobs_ready ON background_jobs (priority DESC, id) WHERE retries < 5;
""",
    "2020-11-05-080000_create_background_jobs/down.sql": """\
-- This file should undo anything in `up.sql`
DROP TABLE background_jobs;
""",
    "2021-03-15-120000_add_owner_kind_org/up.sql": """\
ALTER TYPE owner_kind ADD VALUE IF NOT EXISTS 'org' AFTER 'team';
""",
    "2021-03-15-120000_add_owner_kind_org/down.sql": """\
-- PostgreSQL cannot drop an enum value; rows that use it are moved back to 'team'
UPDATE crate_owners SET owner_kind = 'team' WHERE owner_kind::text = 'org';
""",
    "2021-09-01-000000_create_dependencies/up.sql": """\
-- Your SQL goes here
CREATE TYPE dependency_kind AS ENUM ('normal', 'build', 'dev');
CREATE TABLE dependencies (
    id SERIAL PRIMARY KEY,
    version_id INTEGER NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    crate_id INTEGER NOT NULL REFERENCES crates (id) ON DELETE CASCADE,
    req VARCHAR NOT NULL,
    optional BOOLEAN NOT NULL,
    default_features BOOLEAN NOT NULL,
    features TEXT[] NOT NULL,
    target VARCHAR,
    kind dependency_kind NOT NULL DEFAULT 'normal'
);
CREATE INDEX index_dependencies_version_id ON dependencies (version_id);
""",
    "2021-09-01-000000_create_dependencies/down.sql": """\
-- This file should undo anything in `up.sql`
DROP TABLE dependencies;
DROP TYPE dependency_kind;
""",
    "2022-01-20-130000_add_versions_checksum/up.sql": """\
ALTER TABLE versions ADD COLUMN checksum CHAR(64);
DO $$
BEGIN
    -- versions published before checksums were kept get a placeholder the index job recomputes
    UPDATE versions SET checksum = repeat('0', 64) WHERE checksum IS NULL;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'versions_checksum_not_null') THEN
        ALTER TABLE versions ADD CONSTRAINT versions_checksum_not_null CHECK (checksum IS NOT NULL);
    END IF;
END
$$;
""",
    "2022-01-20-130000_add_versions_checksum/down.sql": """\
ALTER TABLE versions DROP CONSTRAINT IF EXISTS versions_checksum_not_null;
ALTER TABLE versions DROP COLUMN checksum;
""",
    "2022-06-07-090000_index_dependencies_crate_id/up.sql": """\
CREATE INDEX CONCURRENTLY IF NOT EXISTS index_dependencies_crate_id ON dependencies (crate_id);
""",
    "2022-06-07-090000_index_dependencies_crate_id/down.sql": """\
DROP INDEX CONCURRENTLY IF EXISTS index_dependencies_crate_id;
""",
    "2022-06-07-090000_index_dependencies_crate_id/metadata.toml": NO_TRANSACTION,
    "2023-02-14-101010_add_versions_semver_major/up.sql": """\
ALTER TABLE versions ADD COLUMN semver_major INTEGER
    GENERATED ALWAYS AS (CASE WHEN num ~ '^[0-9]+\\.' THEN split_part(num, '.', 1)::integer END) STORED;
""",
    "2023-02-14-101010_add_versions_semver_major/down.sql": """\
ALTER TABLE versions DROP COLUMN semver_major;
""",
    "2023-05-30-160000_create_crate_owner_invitations/up.sql": """\
-- Your SQL goes here
CREATE TABLE crate_owner_invitations (
    invited_user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invited_by_user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    crate_id INTEGER NOT NULL REFERENCES crates (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    token TEXT NOT NULL DEFAULT md5(random()::text),
    expires_at TIMESTAMP NOT NULL DEFAULT NOW() + INTERVAL '30 days',
    PRIMARY KEY (invited_user_id, crate_id)
);
CREATE UNIQUE INDEX crate_owner_invitations_token ON crate_owner_invitations (token);
""",
    "2023-05-30-160000_create_crate_owner_invitations/down.sql": """\
-- This file should undo anything in `up.sql`
DROP TABLE crate_owner_invitations;
""",
    "2023-10-02-120000_api_tokens_scopes/up.sql": """\
CREATE TYPE token_scope AS ENUM ('publish-new', 'publish-update', 'yank', 'change-owners');
ALTER TABLE api_tokens ADD COLUMN crate_scopes TEXT[];
ALTER TABLE api_tokens ADD COLUMN endpoint_scopes token_scope[];
ALTER TABLE api_tokens ADD COLUMN expired_at TIMESTAMP;
""",
    "2023-10-02-120000_api_tokens_scopes/down.sql": """\
ALTER TABLE api_tokens DROP COLUMN expired_at;
ALTER TABLE api_tokens DROP COLUMN endpoint_scopes;
ALTER TABLE api_tokens DROP COLUMN crate_scopes;
DROP TYPE token_scope;
""",
    "2024-01-15-093000_create_deleted_crates/up.sql": """\
-- Your SQL goes here
CREATE TABLE deleted_crates (
    id SERIAL PRIMARY KEY,
    name VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    message VARCHAR,
    available_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX deleted_crates_canon_crate_name_index ON deleted_crates (lower(replace(name, '-', '_')));
""",
    "2024-01-15-093000_create_deleted_crates/down.sql": """\
-- This file should undo anything in `up.sql`
DROP TABLE deleted_crates;
""",
    "2024-03-04-141200_index_versions_created_at/up.sql": """\
CREATE INDEX CONCURRENTLY IF NOT EXISTS versions_created_at_idx ON versions (created_at);
""",
    "2024-03-04-141200_index_versions_created_at/down.sql": """\
DROP INDEX CONCURRENTLY IF EXISTS versions_created_at_idx;
""",
    "2024-03-04-141200_index_versions_created_at/metadata.toml": """\
# CREATE INDEX CONCURRENTLY cannot run inside a transaction
run_in_transaction = false
""",
    "2024-05-21-080000_add_crates_trustpub_only/up.sql": """\
-- Your SQL goes here
ALTER TABLE crates ADD COLUMN trustpub_only BOOLEAN NOT NULL DEFAULT FALSE;
""",
    "2024-05-21-080000_add_crates_trustpub_only/down.sql": """\
-- This file should undo anything in `up.sql`
ALTER TABLE crates DROP COLUMN trustpub_only;
""",
}


def write(root: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (files or FILES).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
