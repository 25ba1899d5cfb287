"""psycopg2 loaded without Python's ``ssl`` module (``executor.driver``, the CLI's apply path): TLS
connections still work, on a real server with TLS on, and ``ssl`` is importable afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localdb import server as localdb_server
from localdb.server import EmbeddedPostgres

REPO_ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import sys
from executor import driver
driver.load()
assert "ssl" not in sys.modules, "ssl was imported"
from executor.connection import connect
conn = connect(sys.argv[1])
with conn.cursor() as cur:
    cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    print(*cur.fetchone())
conn.close()
import ssl  # still importable for whoever needs it later
print(ssl.OPENSSL_VERSION.split()[0])
"""


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory):
    """An embedded PostgreSQL with ``ssl = on`` and a self-signed certificate, run with the
    distribution's binaries (built with OpenSSL; the pgserver wheel's are built without it)."""
    bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if not bindirs:
        pytest.skip("no distribution PostgreSQL (built with OpenSSL) under /usr/lib/postgresql")
    patch = pytest.MonkeyPatch()
    patch.setattr(localdb_server, "candidate_bindirs", lambda: bindirs)
    server = EmbeddedPostgres(tmp_path_factory.mktemp("tls") / "postgres")
    server.start()
    try:
        pgdata = server._pgdata()
        server.stop()
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-keyout", str(pgdata / "server.key"), "-out", str(pgdata / "server.crt")],
            check=True, capture_output=True,
        )  # fmt: skip
        owner = pgdata.stat()
        for name in ("server.key", "server.crt"):
            os.chown(pgdata / name, owner.st_uid, owner.st_gid)
            os.chmod(pgdata / name, 0o600)
        with (pgdata / "postgresql.auto.conf").open("a") as conf:
            conf.write("ssl = on\n")
        url = server.start()
        yield url
    finally:
        server.stop()
        patch.undo()


def run_check(url: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", CHECK, url], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_tls_connection_works_with_psycopg2_loaded_without_the_ssl_module(tls_server: str) -> None:
    sep = "&" if "?" in tls_server else "?"
    ssl_on, tls_version, openssl = run_check(f"{tls_server}{sep}sslmode=require")
    assert ssl_on == "True"
    assert tls_version.startswith("TLSv1.")
    assert openssl == "OpenSSL"


def test_a_plain_connection_to_the_same_server_is_not_encrypted(tls_server: str) -> None:
    sep = "&" if "?" in tls_server else "?"
    ssl_on, *_ = run_check(f"{tls_server}{sep}sslmode=disable")
    assert ssl_on == "False"


def test_load_leaves_an_already_imported_ssl_in_place() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import ssl, sys; from executor import driver; driver.load(); "
         "import psycopg2; print(sys.modules['ssl'] is ssl)"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "True"
