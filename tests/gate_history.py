"""A realistic migration history with old findings, for the tests of what the gate judges.

Forty versioned migrations of a task-tracking product written over a couple of years, the way a
real team's history reads: a first schema, enums, backfills in DO blocks, partial indexes, an index
built CONCURRENTLY in its own file, a trigger function, a repeatable view, and undo scripts for a
few versions.  Like most histories written before anyone ran a migration linter over them, a dozen
files break today's safety rules (indexes built without CONCURRENTLY, foreign keys and CHECKs
added without NOT VALID, a column type change, a rename, dropped columns and tables, SET NOT
NULL) and lint (``SELECT *`` frozen into a view).  All of it applies to an empty PostgreSQL.

``NEW_CLEAN`` and ``NEW_UNSAFE`` are the next migration a pull request adds.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

HISTORY: dict[str, str] = {
    "V001__create_accounts.sql": """\
-- Accounts are the tenants; every other table hangs off one.
CREATE TABLE accounts (
    id          serial PRIMARY KEY,
    name        varchar(255) NOT NULL,
    slug        varchar(64) NOT NULL UNIQUE,
    created_at  timestamp NOT NULL DEFAULT now()
);
""",
    "V002__create_users.sql": """\
CREATE TABLE users (
    id          serial PRIMARY KEY,
    account_id  integer NOT NULL REFERENCES accounts (id),
    email       varchar(255) NOT NULL,
    name        varchar(100),
    password_digest text NOT NULL,
    created_at  timestamp NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_account_email_key ON users (account_id, lower(email));
""",
    "V003__create_projects.sql": """\
CREATE TABLE projects (
    id          serial PRIMARY KEY,
    account_id  integer NOT NULL REFERENCES accounts (id),
    name        varchar(255) NOT NULL,
    legacy_code varchar(16),
    created_at  timestamp NOT NULL DEFAULT now()
);
""",
    "V004__create_task_status_type.sql": """\
CREATE TYPE task_status AS ENUM ('todo', 'doing', 'done');
""",
    "V005__create_tasks.sql": """\
CREATE TABLE tasks (
    id          serial PRIMARY KEY,
    project_id  integer NOT NULL,
    title       varchar(255),
    descr       text,
    status      task_status NOT NULL DEFAULT 'todo',
    due_on      date,
    created_at  timestamp NOT NULL DEFAULT now()
);
""",
    "V006__index_users_email.sql": """\
-- login looks users up by e-mail across accounts
CREATE INDEX users_email_idx ON users (lower(email));
""",
    "V007__tasks_project_fk.sql": """\
ALTER TABLE tasks
    ADD CONSTRAINT tasks_project_id_fkey FOREIGN KEY (project_id) REFERENCES projects (id);
""",
    "V008__create_comments.sql": """\
CREATE TABLE comments (
    id          bigserial PRIMARY KEY,
    task_id     integer NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    author_id   integer NOT NULL REFERENCES users (id),
    body        text NOT NULL,
    created_at  timestamp NOT NULL DEFAULT now()
);

CREATE INDEX comments_task_id_idx ON comments (task_id);
""",
    "V009__add_tasks_assignee.sql": """\
ALTER TABLE tasks ADD COLUMN assignee_id integer REFERENCES users (id);
""",
    "V010__index_tasks_project_status.sql": """\
CREATE INDEX tasks_project_status_idx ON tasks (project_id, status);
""",
    "V011__create_tags.sql": """\
CREATE TABLE tags (
    id          serial PRIMARY KEY,
    account_id  integer NOT NULL REFERENCES accounts (id),
    label       varchar(50) NOT NULL,
    color       char(7) NOT NULL DEFAULT '#cccccc',
    UNIQUE (account_id, label)
);

CREATE TABLE task_tags (
    task_id integer NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    tag_id  integer NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, tag_id)
);
""",
    "V012__widen_users_name.sql": """\
-- some customers have very long names
ALTER TABLE users ALTER COLUMN name TYPE varchar(200);
""",
    "V013__create_legacy_sessions.sql": """\
CREATE TABLE legacy_sessions (
    token       char(40) PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES users (id),
    expires_at  timestamp NOT NULL
);
""",
    "V014__backfill_task_titles.sql": """\
-- tasks imported from the old tracker have no title: use the first line of the description
DO $$
DECLARE
    fixed integer;
BEGIN
    UPDATE tasks
       SET title = left(split_part(coalesce(descr, 'untitled'), E'\\n', 1), 255)
     WHERE title IS NULL;
    GET DIAGNOSTICS fixed = ROW_COUNT;
    RAISE NOTICE 'backfilled % task titles', fixed;
END
$$;
""",
    "V015__rename_tasks_descr.sql": """\
ALTER TABLE tasks RENAME COLUMN descr TO description;
""",
    "V016__add_task_status_blocked.sql": """\
ALTER TYPE task_status ADD VALUE IF NOT EXISTS 'blocked' AFTER 'doing';
""",
    "V017__create_audit_log.sql": """\
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  integer NOT NULL,
    actor_id    integer,
    action      text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_account_created_idx ON audit_log (account_id, created_at DESC);
""",
    "V018__create_touch_updated_at.sql": """\
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
""",
    "V019__drop_projects_legacy_code.sql": """\
ALTER TABLE projects DROP COLUMN legacy_code;
""",
    "V020__add_tasks_updated_at.sql": """\
ALTER TABLE tasks ADD COLUMN updated_at timestamptz;

CREATE TRIGGER tasks_touch_updated_at
    BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
""",
    "V021__create_attachments.sql": """\
CREATE TABLE attachments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id      integer NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    uploaded_by  integer NOT NULL REFERENCES users (id),
    file_name    text NOT NULL,
    content_type text NOT NULL,
    byte_size    bigint NOT NULL CHECK (byte_size >= 0),
    storage_key  text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
""",
    "V022__tasks_title_not_null.sql": """\
ALTER TABLE tasks ALTER COLUMN title SET NOT NULL;
""",
    "V023__index_open_tasks_due.sql": """\
-- the "due soon" widget only looks at open tasks
CREATE INDEX tasks_open_due_on_idx ON tasks (due_on) WHERE status <> 'done';
""",
    "V024__create_memberships.sql": """\
CREATE TYPE membership_role AS ENUM ('viewer', 'editor', 'admin');

CREATE TABLE memberships (
    project_id  integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        membership_role NOT NULL DEFAULT 'viewer',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
""",
    "V025__backfill_memberships.sql": """\
-- everybody was an editor of every project of their account before roles existed
INSERT INTO memberships (project_id, user_id, role)
SELECT p.id, u.id, 'editor'
  FROM projects AS p
  JOIN users AS u ON u.account_id = p.account_id
ON CONFLICT DO NOTHING;
""",
    "V026__comments_body_length.sql": """\
ALTER TABLE comments ADD CONSTRAINT comments_body_length CHECK (char_length(body) <= 20000);
""",
    "V027__drop_legacy_sessions.sql": """\
DROP TABLE legacy_sessions;
""",
    "V028__create_notifications.sql": """\
CREATE TABLE notifications (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    task_id     integer REFERENCES tasks (id) ON DELETE SET NULL,
    read_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notifications_unread_idx ON notifications (user_id, created_at) WHERE read_at IS NULL;
""",
    "V029__index_comments_author.sql": """\
CREATE INDEX CONCURRENTLY IF NOT EXISTS comments_author_id_idx ON comments (author_id);
""",
    "V030__add_projects_archived.sql": """\
ALTER TABLE projects ADD COLUMN archived boolean NOT NULL DEFAULT false;
""",
    "V031__audit_log_account_fk.sql": """\
ALTER TABLE audit_log
    ADD CONSTRAINT audit_log_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id);
""",
    "V032__create_saved_filters.sql": """\
CREATE TABLE saved_filters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text NOT NULL,
    query       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);
""",
    "V033__users_add_last_seen.sql": """\
ALTER TABLE users ADD COLUMN last_seen_at timestamptz;
""",
    "V034__drop_users_password_digest.sql": """\
-- authentication moved to the identity provider in release 7
ALTER TABLE users DROP COLUMN password_digest;
""",
    "V035__create_task_events.sql": """\
CREATE TABLE task_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id     integer NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    from_status task_status,
    to_status   task_status NOT NULL,
    changed_by  integer REFERENCES users (id),
    changed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION record_task_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO task_events (task_id, from_status, to_status)
        VALUES (NEW.id, OLD.status, NEW.status);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER tasks_record_status
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW EXECUTE FUNCTION record_task_status();
""",
    "V036__seed_default_tags.sql": """\
INSERT INTO tags (account_id, label, color)
SELECT a.id, t.label, t.color
  FROM accounts AS a
 CROSS JOIN (VALUES ('bug', '#d73a4a'), ('feature', '#a2eeef'), ('chore', '#cfd3d7')) AS t (label, color)
ON CONFLICT (account_id, label) DO NOTHING;
""",
    "V037__index_tasks_assignee.sql": """\
CREATE INDEX tasks_assignee_id_idx ON tasks (assignee_id) WHERE assignee_id IS NOT NULL;
""",
    "V038__accounts_add_plan.sql": """\
CREATE TYPE account_plan AS ENUM ('free', 'team', 'enterprise');

ALTER TABLE accounts ADD COLUMN plan account_plan NOT NULL DEFAULT 'free';
""",
    "V039__create_webhooks.sql": """\
CREATE TABLE webhooks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  integer NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url         text NOT NULL CHECK (url ~ '^https://'),
    secret      text NOT NULL,
    events      text[] NOT NULL DEFAULT ARRAY['task.created'],
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
""",
    "V040__validate_audit_log_fk.sql": """\
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'audit_log_account_id_fkey' AND NOT convalidated) THEN
        ALTER TABLE audit_log VALIDATE CONSTRAINT audit_log_account_id_fkey;
    END IF;
END
$$;
""",
    "R__project_overview.sql": """\
-- the dashboard reads this; SELECT * froze the column list when the view was first made
CREATE OR REPLACE VIEW project_overview AS
SELECT *
  FROM projects AS p
 WHERE NOT p.archived;
""",
    "U019__drop_projects_legacy_code.sql": """\
ALTER TABLE projects ADD COLUMN legacy_code varchar(16);
""",
    "U033__users_add_last_seen.sql": """\
ALTER TABLE users DROP COLUMN last_seen_at;
""",
    "U039__create_webhooks.sql": """\
DROP TABLE webhooks;
""",
}

# a migration a pull request adds: nothing in it breaks a rule (an ADD COLUMN without a default)
NEW_CLEAN = {
    "V041__add_tasks_archived_at.sql": """\
-- archiving replaces deleting tasks; the column stays NULL for live tasks
ALTER TABLE tasks ADD COLUMN archived_at timestamptz;
""",
}

# the same pull request written carelessly: a blocking index build and a foreign key that scans
# the table under lock
NEW_UNSAFE = {
    "V041__tasks_reviewer.sql": """\
ALTER TABLE tasks ADD COLUMN reviewer_id integer;

ALTER TABLE tasks ADD CONSTRAINT tasks_reviewer_id_fkey FOREIGN KEY (reviewer_id) REFERENCES users (id);

CREATE INDEX tasks_reviewer_id_idx ON tasks (reviewer_id);
""",
}
# the errors NEW_UNSAFE must get, by rule
NEW_UNSAFE_ERRORS = {"adding-foreign-key-constraint", "require-concurrent-index-creation"}


# -- git repositories holding a project ------------------------------------------------------------

PYPROJECT = (
    '[project]\nname = "taskboard-db"\nversion = "1.0.0"\n\n[tool.schemagate]\nmigrations = "db/migrations"\n'
)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=dev",
            "-c",
            "user.email=dev@example.test",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def write_files(root: Path, files: dict[str, str], directory: str = "db/migrations") -> None:
    for name, text in files.items():
        path = root / directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


def make_project(root: Path, *, pyproject: str = PYPROJECT, files: dict[str, str] | None = None) -> Path:
    """A git repository on `main` whose first commit holds pyproject.toml and the history."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(pyproject)
    write_files(root, HISTORY if files is None else files)
    git(root, "init", "-q")
    commit_all(root, "the history so far")
    return root
