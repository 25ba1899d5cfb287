"""An embedded PostgreSQL for `schemagate run` and the tests, kept under a directory you choose.

``EmbeddedPostgres(data_dir).start()`` runs ``initdb`` once and ``pg_ctl start`` when the server is
not running, and returns an admin URL (``postgresql://postgres@127.0.0.1:<port>/postgres``).  It is
idempotent and safe to call from several processes at once (pytest-xdist workers): every start and
stop holds an ``fcntl`` lock on ``<data_dir's parent>/.<data_dir name>.lock``.

Binaries: the ``pgserver`` wheel (PostgreSQL 16, ``pip install schemagate[local]``), otherwise a
system install (``pg_config --bindir``, ``/usr/lib/postgresql/<major>/bin``, newest first).  An
existing cluster is always started with binaries of its own major version.  We drive ``initdb`` and
``pg_ctl`` ourselves; pgserver's server class is not used (it adds users and chmods parents).

What is created, and where (nothing else on the system is touched):

- ``<data_dir>/``                 created if missing
- ``<data_dir>/data/``            the cluster (``PGDATA``, mode 0700)
- ``<data_dir>/postgres.log``     initdb and server output (appended by this process; over 10 MB
                                  it becomes ``postgres.log.1`` at the next start)
- ``<data_dir>/server.json``      where the cluster lives, the OS user running it, the last port
- ``<data_dir>/../.<name>.lock``  the start/stop lock file
- ``<data_dir>/../.<name>.users`` shared locks of the processes inside ``running()``
- in ``PGDATA``: ``schemagate.conf`` (included from ``postgresql.conf``) with the settings below

The server listens on 127.0.0.1 only, on a free port picked at first start (and kept while it is
free), with no Unix socket (so no socket path length limit applies).  Authentication is ``trust``:
any local user of this machine can connect as ``postgres`` while it runs, so keep it for
development data.  ``fsync``, ``synchronous_commit`` and ``full_page_writes`` are off: fast, and a
crash of the *machine* may lose or corrupt this local data (a crash of PostgreSQL itself does not).

Running as root: PostgreSQL refuses to run as root, so ``initdb``, ``pg_ctl`` and the server run
as an unprivileged existing user: the owner of an existing cluster, else ``$SCHEMAGATE_POSTGRES_USER``,
else ``postgres`` if that user exists, else ``nobody``.  ``<data_dir>/data`` is chowned to that
user.  If that user cannot reach ``<data_dir>`` (a parent directory without search permission for
it, e.g. under ``/root``), the cluster is created instead in
``<tmp>/schemagate-<euid>/<name>-<hash>/data`` (``<tmp>`` usually ``/tmp``; the per-uid directory is
mode 0755 owned by root, the cluster directory 0700 owned by the user), ``server.json`` records it,
and :attr:`EmbeddedPostgres.notice` says so.  That copy does not survive a reboot that clears /tmp;
the next start then runs initdb again.  Likewise, when that user cannot execute the binaries where
they are (the pgserver wheel in a virtualenv under such a directory), the wheel's installation is
copied once to ``<tmp>/schemagate-<euid>/postgres-<major>-<hash>/`` (about 30 MB) and run from there.

The server keeps running after ``start()`` returns (in its own session, so Ctrl-C in the calling
terminal does not stop it); ``stop()`` stops it with ``pg_ctl stop -m fast``.  ``with
server.running() as url:`` scopes it to a block instead: the CLI uses that, so a `schemagate`
command leaves no server behind.  POSIX only (fcntl).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executor.errors import ConfigurationError, ConnectionFailure

SUPERUSER = "postgres"
LOG_FILE = "postgres.log"
STATE_FILE = "server.json"
CONF_FILE = "schemagate.conf"
START_TIMEOUT_S = 60
LOG_ROTATE_BYTES = 10 * 1024 * 1024
SERVER_SETTINGS = """\
# Written by schemagate (localdb/server.py): a local development server.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
# fast, and acceptable for local data: a crash of the machine (not of PostgreSQL) may lose it
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
logging_collector = off
log_min_messages = warning
"""


class EmbeddedServerError(ConnectionFailure):
    """initdb or the server failed; the message carries the tail of the server log."""


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    major: int

    def exe(self, name: str) -> str:
        return str(self.bindir / name)


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int

    def subprocess_kwargs(self) -> dict[str, Any]:
        """``subprocess.run`` arguments that run a child as this user (and no other group)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def succeeds(self, argv: list[str]) -> bool:
        """Whether ``argv`` exits 0 when run as this user (a probe: output discarded).  A program
        this user may not execute (a parent directory it cannot search) is a plain False."""
        try:
            probe = subprocess.run(
                argv, cwd="/", check=False, capture_output=True, **self.subprocess_kwargs()
            )
        except PermissionError:
            return False
        return probe.returncode == 0


def _major_of(bindir: Path) -> int | None:
    postgres = bindir / "postgres"
    if not (postgres.is_file() and os.access(postgres, os.X_OK)):
        return None
    try:
        out = subprocess.run(
            [str(postgres), "-V"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(match.group(1)) if match else None


def candidate_bindirs() -> list[Path]:
    """Where PostgreSQL binaries may be, in order of preference (pgserver wheel first)."""
    found: list[Path] = []
    spec = importlib.util.find_spec("pgserver")  # locates the package without importing it
    if spec and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            found.append(Path(location) / "pginstall" / "bin")
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            found.append(Path(out.stdout.strip()))

    def version_key(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    found.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version_key, reverse=True))
    unique: list[Path] = []
    for p in found:
        if p not in unique:
            unique.append(p)
    return unique


def find_binaries(major: int | None = None) -> Binaries:
    """The first usable installation (of ``major`` when given)."""
    tried = []
    for bindir in candidate_bindirs():
        found = _major_of(bindir)
        tried.append(f"{bindir} ({found or 'unusable'})")
        if found is not None and (major is None or found == major):
            return Binaries(bindir, found)
    wanted = f"PostgreSQL {major} " if major else "PostgreSQL "
    raise ConfigurationError(
        f"no {wanted}binaries found for the embedded server (tried: {', '.join(tried) or 'nothing'})",
        remedy="pip install 'schemagate[local]' (the pgserver wheel), install PostgreSQL, "
        "or pass --database-url / set DATABASE_URL",
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _unprivileged_user() -> OsUser:
    names = [os.environ.get("SCHEMAGATE_POSTGRES_USER"), "postgres", "nobody"]
    for name in names:
        if not name:
            continue
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    raise ConfigurationError(
        "running as root, and no unprivileged user (postgres, nobody) exists to run PostgreSQL",
        remedy="set SCHEMAGATE_POSTGRES_USER to an existing non-root user, or run schemagate as non-root",
    )


class EmbeddedPostgres:
    """A local PostgreSQL cluster under ``data_dir`` (see the module docstring for what is created)."""

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.requested_port = port
        self.notice: str | None = None  # set when the cluster had to live outside data_dir
        self._port: int | None = None
        self._major: int | None = None

    # -- public API --------------------------------------------------------------------------

    def start(self) -> str:
        """Start the server unless it runs already (initdb on first use); return the admin URL.

        A server launched here keeps running until ``stop()`` (see ``running()`` for a scoped use).
        """
        return self._start(auto_stop=False)

    def _start(self, *, auto_stop: bool) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            pgdata = self._pgdata()
            port = self._running_port(pgdata)
            if port is not None:
                self._port = port
                self._major = self._major or self._cluster_major(pgdata)
                return self.url()
            runner = self._runner(pgdata)
            pgdata = self._place_cluster(pgdata, runner)
            bins = self._binaries_for(pgdata, runner)
            if not (pgdata / "PG_VERSION").is_file():
                self._initdb(bins, pgdata, runner)
            self._launch(bins, pgdata, runner)
            self._save_state(auto_stop=auto_stop)
            self._major = bins.major
            return self.url()

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """Start (or reuse) the server for a block; stop it afterwards if the block's start launched it
        (or another ``running()`` block's did) and no other process is inside a ``running()`` block.

        Every user holds a shared ``flock`` on ``<parent>/.<name>.users`` from before its start
        until the end of the block; the last one out takes it exclusively and stops the server.  So
        two `schemagate` commands on the same directory never stop the server under each other, and
        a server started with plain ``start()`` (the test fixture) is left running.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir.parent / f".{self.data_dir.name}.users", "a") as users:
            fcntl.flock(users, fcntl.LOCK_SH)
            try:
                yield self._start(auto_stop=True)
            finally:
                fcntl.flock(users, fcntl.LOCK_UN)
                try:
                    fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass  # another process still uses the server: it stops it when it is done
                else:
                    if self._state().get("auto_stop"):
                        self.stop()

    def url(self, dbname: str = SUPERUSER) -> str:
        port = self._port or self._running_port(self._pgdata())
        if port is None:
            raise ConnectionFailure(
                f"the embedded PostgreSQL in {self.data_dir} is not running", remedy="call start() first"
            )
        return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{dbname}"

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are rolled back); no-op when stopped."""
        if not self.data_dir.is_dir():
            return
        with self._locked():
            pgdata = self._pgdata()
            if self._running_port(pgdata) is None:
                self._port = None
                return
            runner = self._runner(pgdata)
            bins = self._binaries_for(pgdata, runner)
            self._run(
                bins,
                runner,
                ["pg_ctl", "stop", "-D", str(pgdata), "-m", "fast", "-w", "-t", "60"],
                what="pg_ctl stop",
            )
            self._port = None

    @property
    def is_running(self) -> bool:
        return self._running_port(self._pgdata()) is not None

    @property
    def major(self) -> int | None:
        """The PostgreSQL major version of the cluster (None before the first start)."""
        return self._major or self._cluster_major(self._pgdata())

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_FILE

    def ensure_database(self, dbname: str) -> str:
        """Create ``dbname`` if it does not exist (the server must be running); return its URL."""
        import psycopg2
        from psycopg2 import sql

        conn = psycopg2.connect(self.url())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
                if cur.fetchone() is None:
                    with contextlib.suppress(psycopg2.errors.DuplicateDatabase):  # a concurrent creator won
                        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        finally:
            conn.close()
        return self.url(dbname)

    # -- where things live ------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.data_dir.parent / f".{self.data_dir.name}.lock"
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _state(self) -> dict:
        try:
            return json.loads((self.data_dir / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _save_state(self, **values: object) -> None:
        state = {**self._state(), **values}
        tmp = self.data_dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.data_dir / STATE_FILE)

    def _pgdata(self) -> Path:
        recorded = self._state().get("pgdata")
        if recorded and Path(recorded).is_dir():
            if Path(recorded) != self.data_dir / "data":
                self.notice = f"the cluster for {self.data_dir} lives in {recorded} (see localdb/server.py)"
            return Path(recorded)
        return self.data_dir / "data"

    def _fallback_dir(self) -> Path:
        digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:10]
        return self._fallback_base() / f"{self.data_dir.name}-{digest}"

    @staticmethod
    def _fallback_base() -> Path:
        """``<tmp>/schemagate-<euid>``: 0755, owned by us, writable only by us (checked)."""
        base = Path(tempfile.gettempdir()) / f"schemagate-{os.geteuid()}"
        base.mkdir(mode=0o755, exist_ok=True)
        info = base.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
            raise ConfigurationError(
                f"{base} exists but is not a directory owned by uid {os.geteuid()} and writable only by it",
                remedy=f"remove {base}, or run schemagate as a normal user",
            )
        return base

    def _runner(self, pgdata: Path) -> OsUser | None:
        """The OS user that runs PostgreSQL: None for ourselves, or an unprivileged one as root."""
        if os.geteuid() != 0:
            return None
        if pgdata.exists():
            owner = pgdata.stat().st_uid
            if owner != 0:
                entry = pwd.getpwuid(owner)
                return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
        return _unprivileged_user()

    def _place_cluster(self, pgdata: Path, runner: OsUser | None) -> Path:
        """Create PGDATA where ``runner`` can reach it; remember the choice in server.json."""
        if pgdata.exists() or runner is None:
            pgdata.mkdir(mode=0o700, exist_ok=True)
            if runner is not None and pgdata.stat().st_uid != runner.uid and not any(pgdata.iterdir()):
                os.chown(pgdata, runner.uid, runner.gid)
            self._save_state(
                pgdata=str(pgdata), os_user=runner.name if runner else pwd.getpwuid(os.geteuid()).pw_name
            )
            return pgdata
        if self._user_can_reach(runner, self.data_dir):
            target = self.data_dir / "data"
            self.notice = None
        else:
            outer = self._fallback_dir()
            outer.mkdir(mode=0o700, exist_ok=True)
            os.chown(outer, runner.uid, runner.gid)
            target = outer / "data"
            self.notice = (
                f"user {runner.name} (PostgreSQL cannot run as root) cannot reach {self.data_dir}: "
                f"the cluster lives in {target} instead"
            )
        target.mkdir(mode=0o700, exist_ok=True)
        os.chown(target, runner.uid, runner.gid)
        self._save_state(pgdata=str(target), os_user=runner.name)
        return target

    @staticmethod
    def _user_can_reach(runner: OsUser, directory: Path) -> bool:
        return runner.succeeds(["test", "-x", str(directory)])

    @staticmethod
    def _cluster_major(pgdata: Path) -> int | None:
        try:
            return int((pgdata / "PG_VERSION").read_text().strip())
        except (OSError, ValueError):
            return None

    def _binaries_for(self, pgdata: Path, runner: OsUser | None) -> Binaries:
        """Binaries of the cluster's major version that ``runner`` can execute."""
        return self._executable_binaries(find_binaries(self._cluster_major(pgdata)), runner)

    def _running_port(self, pgdata: Path) -> int | None:
        """The port of a running, ready server on ``pgdata`` (from postmaster.pid), else None."""
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            return None
        status = lines[7].strip() if len(lines) > 7 else ""
        if status != "ready" or not _pid_alive(pid):
            return None
        return port if _accepts(port) else None

    # -- running the binaries -----------------------------------------------------------------

    def _run(
        self, bins: Binaries, runner: OsUser | None, argv: list[str], *, what: str, new_session: bool = False
    ) -> None:
        kwargs = runner.subprocess_kwargs() if runner is not None else {}
        env = {**os.environ, "LC_ALL": "C", "TZ": os.environ.get("TZ", "UTC")}
        for var in ("PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGOPTIONS"):
            env.pop(var, None)
        if self.log_file.is_file() and self.log_file.stat().st_size > LOG_ROTATE_BYTES:
            self.log_file.replace(self.log_file.with_name(LOG_FILE + ".1"))  # keep one previous log
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- schemagate {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}\n".encode())
            log.flush()
            try:
                result = subprocess.run(
                    [bins.exe(argv[0]), *argv[1:]],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd="/",
                    env=env,
                    check=False,
                    start_new_session=new_session,
                    timeout=START_TIMEOUT_S + 30,
                    **kwargs,
                )
            except subprocess.TimeoutExpired:
                result = None
        if result is None or result.returncode != 0:
            raise EmbeddedServerError(
                f"{what} failed for the embedded PostgreSQL {bins.major} in {self.data_dir}; "
                f"last lines of {self.log_file}:\n{_tail(self.log_file)}",
                remedy=f"read {self.log_file}; or delete {self.data_dir} to start afresh",
                context={"data_dir": str(self.data_dir)},
            )

    def _executable_binaries(self, bins: Binaries, runner: OsUser | None) -> Binaries:
        """``bins``, or, when ``runner`` cannot execute them where they are (the pgserver wheel in a
        virtualenv under a private directory such as /root or a mktemp dir), a copy of the wheel's
        installation in the per-uid fallback directory, made once and shared by every cluster of
        this uid.  The copy keeps the layout below site-packages: ``<package>/.../{bin,lib,share}``
        (relocatable) and auditwheel's ``<package>.libs`` (found through an RPATH relative to the
        binaries)."""
        if runner is None or runner.succeeds([bins.exe("postgres"), "-V"]):
            return bins
        install = bins.bindir.parent  # e.g. site-packages/pgserver/pginstall
        site = install.parent.parent
        if (install / "share").is_dir() and (install / "lib").is_dir():
            layout = install.relative_to(site)
            parts = [layout, *(p for p in [Path(f"{layout.parts[0]}.libs")] if (site / p).is_dir())]
            digest = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:10]
            copy = self._fallback_base() / f"postgres-{bins.major}-{digest}"
            copied = Binaries(copy / layout / "bin", bins.major)
            if not Path(copied.exe("postgres")).is_file():
                # copied aside, then renamed into place: a concurrent start never sees half a copy
                partial = copy.with_name(f"{copy.name}.partial-{os.getpid()}")
                shutil.rmtree(partial, ignore_errors=True)
                for part in parts:
                    shutil.copytree(
                        site / part, partial / part, symlinks=True, ignore=shutil.ignore_patterns("include")
                    )
                try:
                    partial.rename(copy)
                except OSError:  # another process put its copy in place first
                    shutil.rmtree(partial, ignore_errors=True)
            if runner.succeeds([copied.exe("postgres"), "-V"]):
                note = f"user {runner.name} cannot execute {bins.bindir}: using a copy in {copy}"
                self.notice = f"{self.notice}; {note}" if self.notice else note
                return copied
        raise ConfigurationError(
            f"user {runner.name} (PostgreSQL cannot run as root) cannot execute {bins.bindir}/postgres",
            remedy="install PostgreSQL somewhere that user can read (e.g. the system package), "
            "set SCHEMAGATE_POSTGRES_USER, or run schemagate as a normal user",
        )

    def _initdb(self, bins: Binaries, pgdata: Path, runner: OsUser | None) -> None:
        self._run(
            bins,
            runner,
            [
                "initdb",
                "-D",
                str(pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            what="initdb",
        )
        conf = pgdata / CONF_FILE
        conf.write_text(SERVER_SETTINGS, encoding="utf-8")
        with open(pgdata / "postgresql.conf", "a", encoding="utf-8") as main_conf:
            main_conf.write(f"\ninclude_if_exists = '{CONF_FILE}'\n")
        if runner is not None:
            os.chown(conf, runner.uid, runner.gid)

    def _launch(self, bins: Binaries, pgdata: Path, runner: OsUser | None) -> None:
        remembered = self._state().get("port")
        if self.requested_port:
            port = self.requested_port
        elif remembered and _port_is_free(int(remembered)):
            port = int(remembered)
        else:
            port = _free_port()
        for attempt in range(2):
            try:
                self._run(
                    bins,
                    runner,
                    [
                        "pg_ctl",
                        "start",
                        "-D",
                        str(pgdata),
                        "-w",
                        "-t",
                        str(START_TIMEOUT_S),
                        "-o",
                        f"-p {int(port)}",
                    ],
                    what="pg_ctl start",
                    new_session=True,
                )
                break
            except EmbeddedServerError:
                # another program took the port between our check and the bind: pick a new one once
                if attempt or self.requested_port or "could not bind" not in _tail(self.log_file, 8):
                    raise
                port = _free_port()
        self._port = int(port)
        self._save_state(port=self._port)


def default_local_server(project_root: Path) -> EmbeddedPostgres:
    """The server `schemagate` uses when no database is configured:
    ``<project root>/.schemagate/postgres``, whichever subdirectory the command runs in (the CLI
    passes the root ``validator.config.find_project_root`` found), so all commands share it."""
    from localdb.state_dir import state_directory

    return EmbeddedPostgres(state_directory(project_root) / "postgres")
