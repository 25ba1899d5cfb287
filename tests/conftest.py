"""Shared fixtures.

Every test that touches a database talks to a real PostgreSQL: the server named by
``SCHEMAGATE_TEST_DATABASE_URL`` (``.ci/run`` points it at 127.0.0.1:5432), otherwise an embedded
PostgreSQL started once per test session under ``.schemagate/test-server``.  Each test gets a fresh
database of its own (``fresh_db``), dropped afterwards, so tests can run in parallel.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a database on the test server with rights to create databases."""
    url = os.environ.get("SCHEMAGATE_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from localdb.server import EmbeddedPostgres

    # one embedded server shared by all xdist workers: the data directory is the repository's
    # the last xdist worker to leave stops the server it started
    with EmbeddedPostgres(REPO_ROOT / ".schemagate" / "test-server").running() as url:
        yield url


@contextmanager
def temporary_database(admin_url: str, prefix: str = "sg_test") -> Iterator[str]:
    """Create an empty database on the test server, yield its URL, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield _with_database(admin_url, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@pytest.fixture
def fresh_db(pg_admin_url: str) -> Iterator[str]:
    """A new, empty database for this test; yields its URL and drops it afterwards."""
    with temporary_database(pg_admin_url) as url:
        yield url
