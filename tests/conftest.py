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
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

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
    """``DROP DATABASE`` off the tests' path.  PostgreSQL (15) makes every DROP DATABASE request an
    immediate checkpoint and wait for it (0.2-0.8 s here, fsync on): done in the test's teardown,
    the test process waited for it after every test that had a database of its own.  Here a few
    threads of the test process drop them while the next tests run (concurrent drops share one
    checkpoint); ``wait()`` (at the end of the session, before an embedded server stops) waits for
    every drop and fails if one failed.  A dropped database's name is never used again (a uuid)."""

    THREADS = 3

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def _drop(self, admin_url: str, name: str) -> None:
        admin = getattr(self._local, "admin", None)
        if admin is None or admin.closed or getattr(self._local, "url", None) != admin_url:
            admin = psycopg2.connect(admin_url)
            admin.autocommit = True
            self._local.admin, self._local.url = admin, admin_url
        with admin.cursor() as cur:
            # FORCE ends the sessions a test left behind (PostgreSQL 13+)
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop(self, admin_url: str, name: str) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.THREADS, thread_name_prefix="sg-dropdb")
            self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]
            self._pending.append(self._pool.submit(self._drop, admin_url, name))

    def wait(self) -> None:
        with self._lock:
            pool, pending = self._pool, self._pending
            self._pool, self._pending = None, []
        if pool is None:
            return
        pool.shutdown(wait=True)  # the threads' connections close with them (garbage-collected)
        errors = [f.exception() for f in pending if f.exception() is not None]
        if errors:
            raise RuntimeError(f"{len(errors)} test database(s) could not be dropped: {errors[0]!r}")


_drops = _BackgroundDrops()
atexit.register(_drops.wait)  # a session cut short still drops what it made


@contextmanager
def temporary_database(admin_url: str, prefix: str = "sg_test", template: str = "template0") -> Iterator[str]:
    """Create a database on the test server (empty, or a copy of ``template``), yield its URL, drop
    it afterwards (in the background: ``_BackgroundDrops``)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        admin.close()
    try:
        yield _with_database(admin_url, name)
    finally:
        _drops.drop(admin_url, name)


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
