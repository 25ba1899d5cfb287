"""The embedded PostgreSQL: start, reuse, stop, concurrent starts, running as root, failures.

These run real initdb/pg_ctl in pytest's temporary directory.  As root (the CI container) that
directory (/tmp/pytest-of-root, mode 0700) cannot be reached by the unprivileged user PostgreSQL
runs as, so the cluster lands in the documented /tmp/schemagate-0/... fallback: the real root path.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest

from localdb.server import EmbeddedPostgres, EmbeddedServerError, default_local_server
from tests.helpers import fetch_value

REPO_ROOT = Path(__file__).resolve().parent.parent


def _query(url: str, sql: str):
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            return fetch_value(cur) if cur.description else None
    finally:
        conn.close()


def _postmaster_pid(server: EmbeddedPostgres) -> int:
    return int((server._pgdata() / "postmaster.pid").read_text().splitlines()[0])


def _remove(server: EmbeddedPostgres) -> None:
    """Stop the server and delete a cluster that lives outside its data dir (the /tmp fallback)."""
    server.stop()
    pgdata = server._pgdata()
    if not pgdata.is_relative_to(server.data_dir):
        shutil.rmtree(pgdata.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One cluster for the tests of this module (initdb is the slow part); each test starts it as it needs."""
    srv = EmbeddedPostgres(tmp_path_factory.mktemp("embedded") / "project" / ".schemagate" / "postgres")
    yield srv
    _remove(srv)


def test_start_reuse_stop_keeps_data(server: EmbeddedPostgres) -> None:
    # given a fresh directory, when started, then it answers on 127.0.0.1 as a dev server
    url = server.start()
    assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith("/postgres")
    assert server.is_running and server.major == 16
    assert _query(url, "SHOW fsync") == "off"
    assert _query(url, "SHOW listen_addresses") == "127.0.0.1"
    _query(url, "CREATE TABLE kept (id int)")
    pid = _postmaster_pid(server)

    # a second object on the same directory reuses the running server (no initdb, same process)
    again = EmbeddedPostgres(server.data_dir)
    assert again.is_running
    assert again.start() == url
    assert _postmaster_pid(again) == pid

    # stop, then start: the data survived and a new postmaster runs
    again.stop()
    assert not server.is_running
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(url, connect_timeout=2)
    url2 = server.start()
    assert _query(url2, "SELECT to_regclass('public.kept') IS NOT NULL") is True
    assert _postmaster_pid(server) != pid
    assert (server.data_dir / "server.json").is_file() and server.log_file.is_file()


def test_as_root_runs_as_an_unprivileged_user_and_says_where_the_cluster_is(server: EmbeddedPostgres) -> None:
    server.start()
    pgdata = server._pgdata()
    owner = pgdata.stat().st_uid
    if os.geteuid() == 0:
        # PostgreSQL refuses root: the cluster belongs to another user, and because that user cannot
        # enter pytest's 0700 temp directory the cluster lives in the documented /tmp fallback
        assert owner != 0
        assert pgdata.parent.parent.name == f"schemagate-{os.geteuid()}"
        assert server.notice and str(pgdata) in server.notice
        assert not (server.data_dir / "data").exists()
    else:
        assert owner == os.geteuid()
        assert pgdata == server.data_dir / "data"
        assert server.notice is None


def test_concurrent_starts_share_one_server(tmp_path: Path) -> None:
    # given four processes starting the same never-initialised server at once
    data_dir = tmp_path / "shared"
    code = (
        "import sys; from pathlib import Path; from localdb.server import EmbeddedPostgres;"
        "print(EmbeddedPostgres(Path(sys.argv[1])).start())"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    server = EmbeddedPostgres(data_dir)
    try:
        # then all succeed with the same URL, and initdb ran once
        assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in results]
        urls = {out.strip() for out, _ in results}
        assert len(urls) == 1
        assert server.log_file.read_text().count("initdb") == 1
        assert _query(urls.pop(), "SELECT 1") == 1
    finally:
        _remove(server)


def test_start_failure_shows_the_log_tail(server: EmbeddedPostgres) -> None:
    # given a stopped cluster whose requested port is taken by another listener
    server.start()
    server.stop()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        busy = EmbeddedPostgres(server.data_dir, port=port)
        with pytest.raises(EmbeddedServerError) as excinfo:
            busy.start()
    message = str(excinfo.value)
    assert "pg_ctl start failed" in message
    assert "could not" in message  # PostgreSQL's own words from the log tail
    assert str(server.log_file) in message
    assert excinfo.value.exit_code == 1
    assert not busy.is_running
    # and the next start on a free port works again
    assert server.start().startswith("postgresql://postgres@127.0.0.1:")


def test_running_blocks_stop_the_server_only_when_the_last_user_leaves(server: EmbeddedPostgres) -> None:
    server.stop()
    # given a block that launches the server, and a second user entering while it runs
    with server.running() as url:
        with EmbeddedPostgres(server.data_dir).running() as url2:
            assert url2 == url
        # the inner user left, the outer one is still inside: the server keeps running
        assert server.is_running and _query(url, "SELECT 1") == 1
    # the last one out stops it
    assert not server.is_running

    # a server started explicitly (as the test fixture does) is left running by a block
    server.start()
    with server.running():
        pass
    assert server.is_running


def test_default_local_server_lives_under_dot_schemagate(tmp_path: Path) -> None:
    assert default_local_server(tmp_path).data_dir == tmp_path / ".schemagate" / "postgres"


def test_stop_on_a_never_started_directory_is_a_no_op(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "never")
    server.stop()
    assert not server.is_running
    assert not (tmp_path / "never").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to another OS user")
def test_as_root_binaries_the_server_user_cannot_reach_are_used_from_a_copy(tmp_path: Path) -> None:
    """A virtualenv inside a private directory (/root, `mktemp -d`): the unprivileged user cannot
    execute the wheel's binaries where they are, so a copy (with the wheel's vendored libraries)
    is made once in the per-uid fallback directory, and a cluster really starts from it."""
    import importlib.util

    from localdb.server import Binaries, _unprivileged_user

    spec = importlib.util.find_spec("pgserver")
    assert spec is not None and spec.submodule_search_locations is not None
    (location,) = spec.submodule_search_locations
    site = Path(location).parent
    private = tmp_path / "private" / "site-packages"  # tmp_path is 0700 as root
    ignore = shutil.ignore_patterns("include", "*.py", "__pycache__")
    shutil.copytree(
        site / "pgserver" / "pginstall", private / "pgserver" / "pginstall", symlinks=True, ignore=ignore
    )
    shutil.copytree(site / "pgserver.libs", private / "pgserver.libs", symlinks=True)
    runner = _unprivileged_user()
    unreachable = Binaries(private / "pgserver" / "pginstall" / "bin", 16)
    assert not runner.succeeds([unreachable.exe("postgres"), "-V"])

    server = EmbeddedPostgres(tmp_path / "server")
    copied = server._executable_binaries(unreachable, runner)
    try:
        assert copied.bindir != unreachable.bindir
        assert copied.bindir.is_relative_to(Path(tempfile.gettempdir()) / f"schemagate-{os.geteuid()}")
        assert runner.succeeds([copied.exe("postgres"), "-V"])
        assert runner.succeeds([copied.exe("initdb"), "-V"])  # its shared libraries resolve too
        assert server.notice and str(unreachable.bindir) in server.notice
        made = Path(copied.exe("postgres")).stat().st_mtime
        assert server._executable_binaries(unreachable, runner) == copied  # made once, reused
        assert Path(copied.exe("postgres")).stat().st_mtime == made
    finally:
        shutil.rmtree(copied.bindir.parents[2], ignore_errors=True)
