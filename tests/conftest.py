"""Shared fixtures.

Every test that touches a database talks to a real PostgreSQL: the server named by
``SCHEMAGATE_TEST_DATABASE_URL`` (``.ci/run`` points it at 127.0.0.1:5432), otherwise an embedded
PostgreSQL started once per test session under ``.schemagate/test-server``.  Each test gets a fresh
database of its own (``fresh_db``), dropped afterwards, so tests can run in parallel.  Fixtures that
build the same database for many tests (a history another tool migrated) build it once per test
process and give each test its own copy (``database_templates``).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.errors
import pytest

from executor.connection import scalar

REPO_ROOT = Path(__file__).resolve().parent.parent

# PYTHONDONTWRITEBYTECODE=1 (set on the shared test machine, as in many container images) makes
# every pytest process rewrite the asserts of every test module again and every Python process
# (each xdist worker, each `schemagate` subprocess a test launches) compile the project's modules
# again from source: about 6 s of CPU per worker before its first test.  The suite keeps the
# bytecode in the (git-ignored) __pycache__ directories instead; this conftest is imported before
# any test module, so from here on pytest caches its rewritten modules and Python its compiled
# ones, which the subprocesses read too.  What runs is the same code; a changed file is compiled
# again (the cache is keyed by the source's mtime and size).
sys.dont_write_bytecode = False


def _with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a database on the test server with rights to create databases."""
    url = os.environ.get("SCHEMAGATE_TEST_DATABASE_URL")
    if url:
        yield url
        _drops.wait()
        return
    from localdb.server import EmbeddedPostgres

    # one embedded server shared by all xdist workers: the data directory is the repository's
    # the last xdist worker to leave stops the server it started
    with EmbeddedPostgres(REPO_ROOT / ".schemagate" / "test-server").running() as url:
        yield url
        _drops.wait()  # before the server stops


class _BackgroundDrops:
    """``DROP DATABASE`` off the tests' path, and databases recycled instead of created.

    PostgreSQL (15) makes every DROP DATABASE request an immediate checkpoint and wait for it
    (0.2-0.8 s here, fsync on): done in the test's teardown, the test process waited for it after
    every test that had a database of its own.  Here a few threads of the test process drop them
    while the next tests run (concurrent drops share one checkpoint); ``wait()`` (at the end of the
    session, before an embedded server stops) waits for every drop and fails if one failed.  A
    dropped database's name is never used again (a uuid).

    ``CREATE DATABASE`` costs the server about 0.2 s of CPU on this machine's file system (ext4
    without a journal: the kernel's inode allocation skips the inodes of the ~300 files every dropped
    database deleted, block by block): a third of the server's CPU in a run of the suite.  So a
    test's database is recycled when it can be: its sessions ended, every object a test can create
    dropped (``_RESET``), and then it must be indistinguishable from a new copy of template0
    (``_FINGERPRINT``: catalog sizes, schemas, privileges, extensions, settings of the database).
    Only then is it kept, renamed, for the next test of this process that asks for an empty database;
    anything else is dropped as before.  What a test gets is the same either way: an empty database
    of its own under a new name."""

    THREADS = 3
    KEEP = 4  # recycled databases kept ready per server (more are dropped)

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a recycle finished
        self._local = threading.local()
        self._ready: dict[str, list[str]] = {}  # admin URL -> recycled databases, renamed sg_ready_*
        self._recycling: dict[str, int] = {}  # admin URL -> recycles not finished yet
        self._pristine: dict[str, str] = {}  # admin URL -> _FINGERPRINT of a new copy of template0
        self.recycling = os.environ.get("SCHEMAGATE_TEST_RECYCLE_DATABASES", "1") != "0"
        self.counts = {"created": 0, "recycled": 0, "dropped": 0}

    def _admin(self, admin_url: str) -> psycopg2.extensions.connection:
        admin = getattr(self._local, "admin", None)
        if admin is None or admin.closed or getattr(self._local, "url", None) != admin_url:
            admin = psycopg2.connect(admin_url)
            admin.autocommit = True
            self._local.admin, self._local.url = admin, admin_url
        return admin

    def _drop(self, admin_url: str, name: str) -> None:
        with self._admin(admin_url).cursor() as cur:
            # FORCE ends the sessions a test left behind (PostgreSQL 13+)
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.counts["dropped"] += 1

    def _submit(self, fn: Callable[..., None], *args: str) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.THREADS, thread_name_prefix="sg-dropdb")
            self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]
            self._pending.append(self._pool.submit(fn, *args))

    def drop(self, admin_url: str, name: str) -> None:
        self._submit(self._drop, admin_url, name)

    def release(self, admin_url: str, name: str) -> None:
        """A test is done with its database: recycle it (``_recycle``) or drop it."""
        if not self.recycling:
            self.drop(admin_url, name)
            return
        with self._lock:
            self._recycling[admin_url] = self._recycling.get(admin_url, 0) + 1
        self._submit(self._recycle, admin_url, name)

    def take(self, admin_url: str, name: str) -> bool:
        """Rename a recycled database to ``name``; False when none is ready (create one then).  A
        recycle under way is waited for (a few tenths of a second at most: cheaper than a CREATE)."""
        deadline = time.monotonic() + 2
        with self._changed:
            while not self._ready.get(admin_url) and self._recycling.get(admin_url):
                if not self._changed.wait(deadline - time.monotonic()):
                    break
            ready = self._ready.get(admin_url)
            kept = ready.pop() if ready else None
        if kept is None:
            return False
        with self._admin(admin_url).cursor() as cur:
            cur.execute(f'ALTER DATABASE "{kept}" RENAME TO "{name}"')
        self.counts["recycled"] += 1
        return True

    def _recycle(self, admin_url: str, name: str) -> None:
        kept = None
        try:
            with self._lock:
                full = len(self._ready.get(admin_url, ())) >= self.KEEP
            kept = None if full else self._reset(admin_url, name)
        except psycopg2.Error as exc:  # a role that may not end others' sessions, say: dropped as before
            _report({"dropped": name, "error": repr(exc)})
        finally:
            with self._changed:
                self._recycling[admin_url] -= 1
                if kept is not None:
                    self._ready.setdefault(admin_url, []).append(kept)
                self._changed.notify_all()
        if kept is None:
            self._drop(admin_url, name)

    def _reset(self, admin_url: str, name: str) -> str | None:
        """``name`` renamed sg_ready_* and emptied, or None when it is not then like a new copy of
        template0 (dropped here once renamed; before that, the caller drops it under its name).
        Renamed first, once its sessions are gone: no process the test left can connect to it again
        under a name it knows."""
        admin = self._admin(admin_url)
        pristine = self._pristine.get(admin_url)
        if pristine is None:  # what a new copy of template0 looks like, once per server
            probe = f"sg_probe_{uuid.uuid4().hex[:12]}"
            with admin.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{probe}" TEMPLATE template0')
            try:
                pristine = self._pristine[admin_url] = _fingerprint(_with_database(admin_url, probe))
            finally:
                self._drop(admin_url, probe)
        kept = f"sg_ready_{uuid.uuid4().hex[:12]}"
        with admin.cursor() as cur:
            deadline = time.monotonic() + 5
            while True:  # end the sessions the test left (a killed executor's, a pool's), then rename
                ended = scalar(
                    cur,
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
                if not ended:
                    try:
                        cur.execute(f'ALTER DATABASE "{name}" RENAME TO "{kept}"')
                        break
                    except psycopg2.errors.InvalidCatalogName:
                        return None  # the test dropped it itself
                    except psycopg2.errors.ObjectInUse:
                        pass  # a session came back
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.02)
        try:
            conn = psycopg2.connect(_with_database(admin_url, kept))
            try:
                with conn.cursor() as cur:
                    cur.execute(_RESET)
                conn.commit()
            finally:
                conn.close()
            after = _fingerprint(_with_database(admin_url, kept))
        except psycopg2.Error:  # connections refused (ALLOW_CONNECTIONS false, a limit), a drop that failed
            after = None
        if after != pristine:
            if after is not None:
                pairs = zip(after.split("\n"), pristine.split("\n"), strict=True)
                _report({"dropped": name, "differs": [[a, b] for a, b in pairs if a != b]})
            self._drop(admin_url, kept)
            return None
        return kept

    def wait(self) -> None:
        with self._lock:
            pool, pending = self._pool, self._pending
            self._pool, self._pending = None, []
            ready, self._ready = self._ready, {}
        if pool is None:
            return
        pool.shutdown(wait=True)
        with self._lock:  # recycled while the pool shut down
            for url, names in self._ready.items():
                ready.setdefault(url, []).extend(names)
            self._ready = {}
        for admin_url, names in ready.items():
            for name in names:
                self._drop(admin_url, name)
        errors = [f.exception() for f in pending if f.exception() is not None]
        if errors:
            raise RuntimeError(f"{len(errors)} test database(s) could not be dropped: {errors[0]!r}")
        _report(self.counts)


def _report(what: object) -> None:
    """One line of JSON in the file ``SCHEMAGATE_TEST_RECYCLE_REPORT`` names, if it names one: how
    many databases a test process created, recycled and dropped, and why one was not recycled."""
    path = os.environ.get("SCHEMAGATE_TEST_RECYCLE_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as report:
            report.write(json.dumps(what) + "\n")


# every object a test can leave in a database, dropped: event triggers first (they would fire on
# the rest), publications, extensions but plpgsql, every schema but public and the system's (the
# pg_temp_N and pg_toast_temp_N schemas a session that used temporary tables leaves too), every
# object of public (the schema itself stays: pg_init_privs holds its initial privileges), foreign
# data wrappers, large objects, the database's and its roles' settings and its comment.  A drop that
# fails is skipped: what is left then shows in _FINGERPRINT and the database is dropped instead.
_RESET = r"""
DO $reset$
DECLARE
    r record;
    db text := current_database();
BEGIN
    FOR r IN SELECT evtname FROM pg_event_trigger LOOP
        EXECUTE format('DROP EVENT TRIGGER %I', r.evtname);
    END LOOP;
    FOR r IN SELECT pubname FROM pg_publication LOOP
        EXECUTE format('DROP PUBLICATION %I', r.pubname);
    END LOOP;
    FOR r IN SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' LOOP
        EXECUTE format('DROP EXTENSION IF EXISTS %I CASCADE', r.extname);
    END LOOP;
    FOR r IN
        SELECT nspname FROM pg_namespace
        WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'public')
    LOOP
        EXECUTE format('DROP SCHEMA %I CASCADE', r.nspname);
    END LOOP;
    FOR attempt IN 1..3 LOOP
        FOR r IN
            SELECT o.type, o.identity
            FROM pg_depend d, LATERAL pg_identify_object(d.classid, d.objid, 0) o
            WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = 'public'::regnamespace
              AND d.deptype = 'n' AND d.objsubid = 0
        LOOP
            BEGIN
                EXECUTE format(
                    'DROP %s IF EXISTS %s CASCADE',
                    CASE r.type
                        WHEN 'composite type' THEN 'TYPE'
                        WHEN 'statistics object' THEN 'STATISTICS'
                        ELSE upper(r.type)
                    END,
                    r.identity
                );
            EXCEPTION WHEN OTHERS THEN
                NULL;
            END;
        END LOOP;
    END LOOP;
    FOR r IN SELECT fdwname FROM pg_foreign_data_wrapper LOOP
        EXECUTE format('DROP FOREIGN DATA WRAPPER %I CASCADE', r.fdwname);
    END LOOP;
    PERFORM lo_unlink(oid) FROM pg_largeobject_metadata;
    FOR r IN
        SELECT rolname FROM pg_db_role_setting s JOIN pg_roles a ON a.oid = s.setrole
        WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = db)
    LOOP
        EXECUTE format('ALTER ROLE %I IN DATABASE %I RESET ALL', r.rolname, db);
    END LOOP;
    EXECUTE format('ALTER DATABASE %I RESET ALL', db);
    EXECUTE format('COMMENT ON DATABASE %I IS NULL', db);
END
$reset$;
"""

# what a database holds beyond its tables' rows, in terms that do not name it: a recycled database
# must give exactly what a new copy of template0 gives
_CATALOGS = [
    "pg_class",
    "pg_attribute",
    "pg_type",
    "pg_proc",
    "pg_constraint",
    "pg_depend",
    "pg_description",
    "pg_trigger",
    "pg_rewrite",
    "pg_enum",
    "pg_operator",
    "pg_collation",
    "pg_cast",
    "pg_am",
    "pg_amop",
    "pg_amproc",
    "pg_opclass",
    "pg_opfamily",
    "pg_conversion",
    "pg_ts_config",
    "pg_ts_dict",
    "pg_ts_parser",
    "pg_ts_template",
    "pg_foreign_data_wrapper",
    "pg_foreign_server",
    "pg_user_mapping",
    "pg_event_trigger",
    "pg_default_acl",
    "pg_publication",
    "pg_largeobject_metadata",
    "pg_statistic_ext",
    "pg_policy",
    "pg_transform",
    "pg_init_privs",
    "pg_seclabel",
    "pg_inherits",
    "pg_attrdef",
    "pg_index",
    "pg_sequence",
    "pg_aggregate",
    "pg_range",
    "pg_language",
]
_FINGERPRINT = (
    "SELECT concat_ws(E'\n', "
    + ", ".join(f"(SELECT count(*) FROM {catalog})" for catalog in _CATALOGS)
    + """,
    (SELECT string_agg(extname || ' ' || extversion, ',' ORDER BY extname) FROM pg_extension),
    (SELECT string_agg(lanname || ' ' || coalesce(lanacl::text, ''), ',' ORDER BY lanname) FROM pg_language),
    (SELECT string_agg(nspname || ' ' || nspowner::regrole::text || ' ' || coalesce(nspacl::text, '')
                       || ' ' || coalesce(obj_description(oid, 'pg_namespace'), ''), ',' ORDER BY nspname)
     FROM pg_namespace),
    (SELECT md5(string_agg(oid::text || ' ' || coalesce(proacl::text, '') || ' ' || proowner::text, ','
                           ORDER BY oid))
     FROM pg_proc WHERE proacl IS NOT NULL OR proowner <> 10),
    (SELECT md5(string_agg(oid::text || ' ' || coalesce(relacl::text, '') || ' ' || relowner::text, ','
                           ORDER BY oid))
     FROM pg_class WHERE relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)),
    (SELECT concat_ws(' ', datdba::regrole, datacl, datconnlimit, datallowconn, datistemplate,
                      dattablespace, encoding, datcollate, datctype)
     FROM pg_database WHERE datname = current_database()),
    (SELECT count(*) FROM pg_db_role_setting
     WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())),
    (SELECT count(*) FROM pg_shdepend
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())),
    (SELECT count(*) FROM pg_shdescription
     WHERE objoid = (SELECT oid FROM pg_database WHERE datname = current_database())),
    (SELECT count(*) FROM pg_subscription
     WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())),
    (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()),
    (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()))"""
)


def _fingerprint(url: str) -> str:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            return str(scalar(cur, _FINGERPRINT))
    finally:
        conn.close()


_drops = _BackgroundDrops()
atexit.register(_drops.wait)  # a session cut short still drops what it made


@contextmanager
def temporary_database(admin_url: str, prefix: str = "sg_test", template: str = "template0") -> Iterator[str]:
    """Create a database on the test server (empty, or a copy of ``template``), yield its URL, drop
    or recycle it afterwards (in the background: ``_BackgroundDrops``)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    if template != "template0" or not _drops.take(admin_url, name):
        admin = psycopg2.connect(admin_url)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            admin.close()
        _drops.counts["created"] += 1
    try:
        yield _with_database(admin_url, name)
    finally:
        _drops.release(admin_url, name)


def content_key(*parts: str | Path) -> str:
    """A hash of strings and of files and directory trees (relative names and bytes): what a
    database template is built from, so a changed input builds a new one."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            digest.update(b"s\0" + part.encode() + b"\0")
            continue
        files = sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]
        for path in files:
            digest.update(b"f\0" + path.relative_to(part).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class DatabaseTemplates:
    """Databases built once per test process and copied for each test that asks
    (``CREATE DATABASE ... TEMPLATE``, a file copy: much cheaper than running the migrations again).
    Each test still gets a database of its own, identical to what the build left; they are keyed by
    ``content_key`` of everything the build reads, and dropped when the session ends."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._built: dict[str, str] = {}

    @contextmanager
    def copy(self, key: str, build: Callable[[str], object]) -> Iterator[str]:
        """A new database holding what ``build(url)`` leaves in an empty one; dropped afterwards."""
        template = self._built.get(key)
        if template is None:
            template = f"sg_template_{uuid.uuid4().hex[:12]}"
            admin = psycopg2.connect(self.admin_url)
            admin.autocommit = True
            try:
                with admin.cursor() as cur:
                    cur.execute(f'CREATE DATABASE "{template}" TEMPLATE template0')
                try:
                    build(_with_database(self.admin_url, template))
                    with admin.cursor() as cur:  # a copy needs the template without sessions
                        cur.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                            (template,),
                        )
                except BaseException:
                    with admin.cursor() as cur:
                        cur.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
                    raise
            finally:
                admin.close()
            self._built[key] = template
        with temporary_database(self.admin_url, template=template) as url:
            yield url

    def drop_all(self) -> None:
        admin = psycopg2.connect(self.admin_url)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                for template in self._built.values():
                    cur.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        finally:
            admin.close()
        self._built.clear()


@pytest.fixture(scope="session")
def database_templates(pg_admin_url: str) -> Iterator[DatabaseTemplates]:
    templates = DatabaseTemplates(pg_admin_url)
    yield templates
    templates.drop_all()


@pytest.fixture
def fresh_db(pg_admin_url: str) -> Iterator[str]:
    """A new, empty database for this test; yields its URL and drops it afterwards."""
    with temporary_database(pg_admin_url) as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_aws_clients() -> Iterator[None]:
    """The executor's cached boto3 clients (executor.aws_clients) never outlive a test: each test's
    moto mock (or none) gets clients of its own.  The fixtures that start a mock reset them too."""
    from executor import aws_clients

    aws_clients.reset()
    yield
    aws_clients.reset()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests marked ``slow`` run first: started last, one of them would keep a worker busy after
    the others are done (``--dist worksteal`` shares out the rest)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
