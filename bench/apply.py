"""Benchmark: `schemagate apply` beside one `psql` session and dbmate, on the same migrations.

    .venv/bin/python bench/apply.py [--count 500] [--repeat 3] [--latency-ms X] [--keep]

Generates a history of ``--count`` realistic migrations (tables with identity keys and foreign keys,
columns with defaults and checks, plain and partial indexes, enums and enum values, seed data,
backfills as UPDATEs and as a DO block, views, a trigger function, notices) into a temporary
directory, twice: Flyway names (``V1__create_x.sql``) for psql and schemagate, dbmate's layout
(``20260101000001_create_x.sql`` with ``-- migrate:up`` / ``-- migrate:down`` sections) for dbmate,
the same SQL in both.  Then in ONE run, on the same server, each tool into a fresh database:

- **psql** (the baseline): ONE `psql` session running ``BEGIN; \\i file; COMMIT;`` per file
  (``ON_ERROR_STOP``): no history table, no checks; psql sends each statement as its own query.
- **dbmate** (the real one, ``dbmate`` from the npm registry, installed into the tools' cache
  outside the repository, see ``bench/dbmate_tool.py``; its Go binary run directly, without the
  npm package's Node.js launcher, which would add about 0.1 s to every call):
  ``dbmate migrate --no-dump-schema`` (a transaction per migration and its ``schema_migrations``
  row).
- **floor** (``bench/floor_client.py``): a Python process that imports psycopg2 and sends each file
  as schemagate's one message does (``BEGIN``, the file, a history row, ``COMMIT``), with no checks,
  lock or output: the floor of schemagate's protocol for a Python client.  schemagate / floor is
  what schemagate's own client work costs; floor / psql what the interpreter, the driver and the
  history row cost.
- **schemagate**: ``schemagate apply --migrations DIR --yes`` as a real CLI process
  (structural checks, checksums, the history table, the advisory lock, a transaction per
  migration with its history row).
- **no-op re-runs**, each a process on the now up-to-date database: ``schemagate apply
  --migrations DIR``, ``schemagate apply --bundle DIR`` (the pipeline's path), ``dbmate migrate``,
  and for reference the bare interpreter start-up (``python -c pass``) and ``schemagate --help``.

Every tool gets the same connection settings (``sslmode=disable`` unless the server's URL names
an ``sslmode``).  Times are wall-clock times of the whole process (start-up included; beside them
the client's CPU time, user + system, of the process and its children), medians over ``--repeat``
repetitions (each into fresh databases; the tools' order rotates between repetitions), measured
directly against the server, never through the proxy.

**Round trips** are counted in a separate pass (fresh databases again) through a counting proxy
(``bench/pg_proxy.py``) between each client and PostgreSQL: it reads the client->server messages
of every connection and counts as a round trip each message the client must wait on, a simple
query ``'Q'`` or the ``'S'`` Sync that ends a batch of extended-protocol Parse/Bind/Execute
messages; the connection handshake is not counted (the connections are shown beside).  Printed
per tool: connections, messages by type, round trips in all and per migration (for schemagate and
dbmate also those of the no-op run, the fixed part).  The same pass says, per apply, how long the
process ran **before the first migration** reached the server (the proxy notes when it first reads
the start of the first file's first statement): start-up, reading and checking the files,
connecting, the history and the lock; the rest of the run is the migrations and the exit.  One run
each, through the proxy: a decomposition, not a timing to compare with the medians above.

``--latency-ms X``: the proxy holds each client->server batch X ms (one way; so about X ms per
round trip, as on a network: an executor Lambda to RDS in another availability zone is about 1 ms),
and the three applies and the no-ops are timed again through it, so the cost of round trips on a
real network shows.

Printed at the end: ratios against the baselines measured in the same run (schemagate/psql,
schemagate/dbmate: the median of each repetition's own ratio, the tools of a repetition running
back to back, so that a load coming and going on a shared machine weighs on both sides; no-op
schemagate/dbmate) beside issue 15's targets (apply <= dbmate and
<= 1.1x psql, <= 1.2 round trips per migration, no-op <= 0.15 s) and whether each is met.  A time
never fails the benchmark; the databases do: every one must end with the same tables, columns,
indexes, enum values and row counts, and schemagate's and dbmate's histories must hold every
migration, or it exits 1.

The server: ``$SCHEMAGATE_TEST_DATABASE_URL`` (a role that may create databases), otherwise the
embedded PostgreSQL in ``.schemagate/test-server``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from dbmate_tool import DBMATE_VERSION, dbmate_argv, dbmate_binary, dbmate_env, native_binary
from pg_proxy import CountingProxy, round_trips

from executor.connection import one_value

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

# issue 15, "Done when"
TARGET_VS_DBMATE = 1.0
TARGET_VS_PSQL = 1.1
TARGET_ROUND_TRIPS = 1.2
TARGET_NOOP_S = 0.15

TOOLS = ("psql", "dbmate", "floor", "schemagate", "schemagate-warm", "schemagate-bundle")
PARSE_CACHE = Path(".schemagate") / "cache" / "parse"  # validator.parse_cache.DEFAULT_CACHE_DIR
RECORDING = ("dbmate", "floor", "schemagate", "schemagate-warm", "schemagate-bundle")  # keep a history
OWN_TABLES = ("schemagate_history", "schema_migrations", "bench_floor_history")  # the tools' history tables


# -- the generated history -----------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    number: int
    description: str
    up: str
    down: str


def generate(count: int) -> list[Migration]:
    """``count`` migrations of mixed, realistic shapes, in order (the same for every seed)."""
    tables: list[str] = []  # created tables
    columns: dict[str, list[str]] = {}
    enums: list[str] = []
    out: list[Migration] = []
    for n in range(1, count + 1):
        shape = n % 10 if tables else 0
        down = ""
        if shape in (0, 5):  # a new table, with a foreign key to an earlier one when there is one
            t = f"entity_{len(tables) + 1}"
            ref = tables[-1] if tables else None
            fk = f",\n    parent_id bigint REFERENCES {ref} (id) ON DELETE CASCADE" if ref else ""
            sql = (
                f"-- {t}: a new table\n"
                f"CREATE TABLE {t} (\n"
                f"    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
                f"    name text NOT NULL,\n"
                f"    created_at timestamptz NOT NULL DEFAULT now(),\n"
                f"    updated_at timestamptz NOT NULL DEFAULT now(){fk}\n"
                f");\n"
                f"COMMENT ON TABLE {t} IS 'generated by bench/apply.py';\n"
            )
            if ref:
                sql += f"CREATE INDEX {t}_parent_id_idx ON {t} (parent_id);\n"
            down = f"DROP TABLE {t};\n"
            tables.append(t)
            columns[t] = ["name"]
            desc = f"create_{t}"
        elif shape == 1:  # add a nullable column, backfilled from another one every other time
            t = tables[n % len(tables)]
            c = f"attr_{n}"
            sql = f"ALTER TABLE {t} ADD COLUMN {c} text;\n"
            if n % 20 == 11:
                sql += (
                    f"-- backfill the new column for the existing rows\n"
                    f"UPDATE {t} SET {c} = lower(name) WHERE {c} IS NULL;\n"
                )
            down = f"ALTER TABLE {t} DROP COLUMN {c};\n"
            columns[t].append(c)
            desc = f"add_{c}_to_{t}"
        elif shape == 2:  # an index on an existing column; every other one partial
            t = tables[(n * 7) % len(tables)]
            c = columns[t][-1]
            where = f" WHERE {c} IS NOT NULL" if n % 20 == 12 else ""
            sql = f"CREATE INDEX IF NOT EXISTS {t}_{c}_idx_{n} ON {t} ({c}){where};\n"
            down = f"DROP INDEX IF EXISTS {t}_{c}_idx_{n};\n"
            desc = f"index_{t}_{c}" + ("_partial" if where else "")
        elif shape == 3:  # an enum type and a column using it
            e = f"status_{len(enums) + 1}"
            t = tables[n % len(tables)]
            sql = (
                f"CREATE TYPE {e} AS ENUM ('draft', 'active', 'archived');\n"
                f"ALTER TABLE {t} ADD COLUMN {e} {e} NOT NULL DEFAULT 'draft';\n"
            )
            down = f"ALTER TABLE {t} DROP COLUMN {e};\nDROP TYPE {e};\n"
            enums.append(e)
            desc = f"add_enum_{e}"
        elif shape == 4:  # seed data
            t = tables[n % len(tables)]
            sql = f"INSERT INTO {t} (name) SELECT 'row ' || g FROM generate_series(1, 200) AS g;\n"
            down = f"DELETE FROM {t} WHERE name LIKE 'row %';\n"
            desc = f"seed_{t}"
        elif shape == 6:  # a data backfill: a plain UPDATE, or every other time a DO block
            t = tables[(n * 3) % len(tables)]
            if n % 20 == 16:
                sql = (
                    f"-- backfill in PL/pgSQL, only where there is something to do\n"
                    f"DO $$\n"
                    f"DECLARE\n"
                    f"    touched bigint;\n"
                    f"BEGIN\n"
                    f"    IF EXISTS (SELECT 1 FROM {t} WHERE name LIKE 'row %') THEN\n"
                    f"        UPDATE {t} SET name = initcap(name), updated_at = now() WHERE id % 5 = 0;\n"
                    f"        GET DIAGNOSTICS touched = ROW_COUNT;\n"
                    f"        RAISE NOTICE 'backfilled % rows of {t}', touched;\n"
                    f"    END IF;\n"
                    f"END $$;\n"
                )
                desc = f"backfill_{t}_plpgsql"
            else:
                sql = f"UPDATE {t} SET name = upper(name) WHERE id % 3 = 0;\n"
                desc = f"backfill_{t}"
        elif shape == 7:  # a default and a check constraint
            t = tables[n % len(tables)]
            c = f"score_{n}"
            sql = (
                f"ALTER TABLE {t} ADD COLUMN {c} integer NOT NULL DEFAULT 0;\n"
                f"ALTER TABLE {t} ADD CONSTRAINT {t}_{c}_check CHECK ({c} >= 0);\n"
            )
            down = f"ALTER TABLE {t} DROP COLUMN {c};\n"
            columns[t].append(c)
            desc = f"add_{c}"
        elif shape == 8:  # an enum gains a value (allowed in a transaction since PostgreSQL 12)
            if enums:
                sql = f"ALTER TYPE {enums[-1]} ADD VALUE IF NOT EXISTS 'deleted_{n}';\n"
                desc = f"extend_{enums[-1]}"
            else:
                sql = "SELECT 1;\n"
                desc = "noop"
        elif shape == 9 and n % 20 == 9:  # a view over a table, and a notice from a DO block
            t = tables[n % len(tables)]
            sql = (
                f"CREATE OR REPLACE VIEW {t}_recent_{n} AS\n"
                f"    SELECT id, name FROM {t} WHERE created_at > now() - interval '7 days';\n"
                f"DO $$ BEGIN RAISE NOTICE 'migration {n} done'; END $$;\n"
            )
            down = f"DROP VIEW {t}_recent_{n};\n"
            desc = f"view_{t}"
        else:  # shape 9, the other times: a trigger keeping updated_at current
            t = tables[n % len(tables)]
            sql = (
                f"CREATE OR REPLACE FUNCTION {t}_touch() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n"
                f"    NEW.updated_at := now();\n"
                f"    RETURN NEW;\n"
                f"END;\n"
                f"$$;\n"
                f"DROP TRIGGER IF EXISTS {t}_touch ON {t};\n"
                f"CREATE TRIGGER {t}_touch BEFORE UPDATE ON {t}\n"
                f"    FOR EACH ROW EXECUTE FUNCTION {t}_touch();\n"
            )
            down = f"DROP TRIGGER {t}_touch ON {t};\nDROP FUNCTION {t}_touch();\n"
            desc = f"touch_trigger_{t}"
        out.append(Migration(n, desc, sql, down))
    return out


def write_flyway(directory: Path, history: list[Migration]) -> list[Path]:
    """``V<n>__<description>.sql`` files, for psql and schemagate; returned in order."""
    directory.mkdir(parents=True)
    files = []
    for m in history:
        path = directory / f"V{m.number}__{m.description}.sql"
        path.write_text(m.up, encoding="utf-8")
        files.append(path)
    return files


def write_dbmate(directory: Path, history: list[Migration]) -> None:
    """dbmate's layout: ``<14-digit version>_<description>.sql`` with up and down sections."""
    directory.mkdir(parents=True)
    for m in history:
        text = f"-- migrate:up\n{m.up}\n-- migrate:down\n{m.down}"
        (directory / f"{20260101000000 + m.number}_{m.description}.sql").write_text(text, encoding="utf-8")


# -- the server ------------------------------------------------------------------------------


def admin_url() -> str:
    url = os.environ.get("SCHEMAGATE_TEST_DATABASE_URL")
    if url:
        return url
    from localdb.server import EmbeddedPostgres

    return EmbeddedPostgres(REPO_ROOT / ".schemagate" / "test-server").start()


def with_database(url: str, dbname: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + dbname, p.query, p.fragment))


def tool_url(admin: str, dbname: str) -> str:
    """The URL every tool gets for ``dbname``: the same TLS for all of them, ``sslmode=disable``
    unless the server's URL names one (dbmate's driver knows no ``prefer``, libpq's default)."""
    url = with_database(admin, dbname)
    if "sslmode=" in urlsplit(url).query:
        return url
    p = urlsplit(url)
    return urlunsplit(
        (p.scheme, p.netloc, p.path, "&".join(q for q in (p.query, "sslmode=disable") if q), "")
    )


def redact(text: str, admin: str) -> str:
    """``text`` without the server's password (a tool's error may quote its URL)."""
    password = urlsplit(admin).password
    return text.replace(password, "***") if password else text


def create_database(admin: str) -> str:
    name = f"sg_bench_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    conn.close()
    return name


def drop_database(admin: str, name: str) -> None:
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


def server_version(admin: str) -> str:
    conn = psycopg2.connect(admin)
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        version: str = one_value(cur)
    conn.close()
    return version


def schema_shape(url: str) -> dict[str, list[tuple]]:
    """What the migrations built: tables and columns, indexes, enum values, views, rows per table."""
    conn = psycopg2.connect(url)
    shape: dict[str, list[tuple]] = {}
    with conn.cursor() as cur:
        cur.execute(
            """SELECT table_name, column_name, data_type, column_default FROM information_schema.columns
               WHERE table_schema = 'public' AND NOT (table_name = ANY (%s)) ORDER BY 1, 2""",
            (list(OWN_TABLES),),
        )
        shape["columns"] = cur.fetchall()
        cur.execute(
            """SELECT tablename, indexname, indexdef FROM pg_indexes
               WHERE schemaname = 'public' AND NOT (tablename = ANY (%s)) ORDER BY 1, 2""",
            (list(OWN_TABLES),),
        )
        shape["indexes"] = cur.fetchall()
        cur.execute(
            """SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
               ORDER BY 1, e.enumsortorder"""
        )
        shape["enum values"] = cur.fetchall()
        cur.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public' ORDER BY 1")
        shape["views"] = cur.fetchall()
        cur.execute(
            """SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND NOT t.tgisinternal ORDER BY 1"""
        )
        shape["triggers"] = cur.fetchall()
        tables = sorted({row[0] for row in shape["columns"]} - {row[0] for row in shape["views"]})
        rows = []
        for table in tables:
            cur.execute(f'SELECT count(*) FROM public."{table}"')
            rows.append((table, one_value(cur)))
        shape["rows"] = rows
    conn.close()
    return shape


def history_rows(url: str, tool: str) -> int | None:
    """Migrations recorded by ``tool`` in its history table (None for psql, which keeps none)."""
    query = {
        "schemagate": "SELECT count(*) FROM public.schemagate_history WHERE success AND version IS NOT NULL",
        "dbmate": "SELECT count(*) FROM public.schema_migrations",
        "floor": "SELECT count(*) FROM public.bench_floor_history",
    }.get(tool.removesuffix("-warm").removesuffix("-bundle"))
    if query is None:
        return None
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute(query)
        count = one_value(cur)
    conn.close()
    return count


def find_psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    from localdb.server import candidate_bindirs

    for bindir in candidate_bindirs():
        if (bindir / "psql").is_file():
            return str(bindir / "psql")
    raise SystemExit("psql not found on PATH nor next to the embedded PostgreSQL binaries")


# -- the runs --------------------------------------------------------------------------------


class BenchFailure(Exception):
    """A tool failed or the databases differ: the benchmark exits 1 with this message."""


def timed(argv: list[str], *, env: dict[str, str], cwd: Path, what: str) -> tuple[float, float]:
    """Run ``argv`` to its end: its wall-clock time and the CPU time (user + system) it and its
    children used, or ``BenchFailure`` with its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise BenchFailure(f"{what} failed (exit {done.returncode}):\n{tail}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@dataclass
class Bench:
    """The tools, the files and the commands, each returning a process's wall-clock time."""

    psql: str
    dbmate: Path
    workdir: Path
    flyway_dir: Path
    dbmate_dir: Path
    files: list[Path]
    bundle_dir: Path | None = None
    env: dict[str, str] = field(init=False)
    libpq_env: dict[str, str] = field(init=False)
    script: Path = field(init=False)

    def __post_init__(self) -> None:
        self.env = {**dbmate_env(), "PYTHONPATH": str(REPO_ROOT)}
        # libpq (psql, psycopg2): no GSSAPI encryption attempt, so that the proxy can read every
        # connection; dbmate's driver (lib/pq) refuses this variable, and never tries GSSAPI
        self.libpq_env = {**self.env, "PGGSSENCMODE": "disable"}
        self.script = self.workdir / "all.psql"
        self.script.write_text("".join(f"BEGIN;\n\\i {f}\nCOMMIT;\n" for f in self.files), encoding="utf-8")

    def schemagate(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "schemagate", *args]

    def apply(self, tool: str, url: str) -> tuple[float, float]:
        if tool == "psql":
            argv = [self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(self.script)]
        elif tool == "dbmate":
            argv = dbmate_argv(self.dbmate, url, self.dbmate_dir, "migrate")
        elif tool == "floor":
            argv = [sys.executable, str(REPO_ROOT / "bench" / "floor_client.py"), url, *map(str, self.files)]
        elif tool == "schemagate-bundle":  # the pipeline's path: the files were judged when it was built
            argv = self.schemagate("apply", "--database-url", url, "--bundle", str(self.bundle_dir), "--yes")
        else:
            if tool == "schemagate":  # cold: every file parsed, as on the first run after a checkout
                shutil.rmtree(self.workdir / PARSE_CACHE, ignore_errors=True)
            argv = self.schemagate(
                "apply", "--database-url", url, "--migrations", str(self.flyway_dir), "--yes"
            )
        env = self.env if tool == "dbmate" else self.libpq_env
        return timed(argv, env=env, cwd=self.workdir, what=f"{tool} apply")

    def noop(self, name: str, url: str) -> tuple[float, float]:
        argv = {
            "schemagate apply --migrations DIR": self.schemagate(
                "apply", "--database-url", url, "--migrations", str(self.flyway_dir), "--yes"
            ),
            "schemagate apply --bundle DIR": self.schemagate(
                "apply", "--database-url", url, "--bundle", str(self.bundle_dir), "--yes"
            ),
            "dbmate migrate": dbmate_argv(self.dbmate, url, self.dbmate_dir, "migrate"),
            "python -c pass (bare interpreter start-up)": [sys.executable, "-c", "pass"],
            "schemagate --help (CLI start-up)": self.schemagate("--help"),
        }[name]
        env = self.env if name.startswith("dbmate") else self.libpq_env
        return timed(argv, env=env, cwd=self.workdir, what=name)


NOOPS = (
    ("schemagate apply --migrations DIR", "schemagate"),
    ("schemagate apply --bundle DIR", "schemagate"),
    ("dbmate migrate", "dbmate"),
    ("python -c pass (bare interpreter start-up)", None),
    ("schemagate --help (CLI start-up)", None),
)


def write_approved_bundle(migrations: Path, workdir: Path) -> Path:
    """The bundle `schemagate validate --bundle` would write (structural checks only: no lint here)."""
    from executor.bundle import write_bundle
    from validator.config import load_config
    from validator.structural import bundle_from_directory

    target = workdir / "bundle"
    write_bundle(bundle_from_directory(load_config(workdir, migrations=migrations)), target)
    return target


class Databases:
    """One fresh database per tool; ``close`` leaves them to ``drop_all`` (run after every timing:
    DROP DATABASE checkpoints, which would weigh on the next repetition), unless they are kept."""

    pending: ClassVar[list[tuple[str, str]]] = []  # (admin URL, database) to drop at the end

    def __init__(self, admin: str, keep: bool) -> None:
        self.admin = admin
        self.keep = keep
        self.names = {tool: create_database(admin) for tool in TOOLS}
        self.urls = {tool: tool_url(admin, name) for tool, name in self.names.items()}

    def close(self) -> None:
        if not self.keep:
            Databases.pending += [(self.admin, name) for name in self.names.values()]

    def __enter__(self) -> Databases:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @classmethod
    def drop_all(cls) -> None:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda job: drop_database(*job), cls.pending))
        cls.pending.clear()


def verify(dbs: Databases, count: int, what: str) -> None:
    """The databases hold the same schema and data; every history every migration."""
    shapes = {tool: schema_shape(url) for tool, url in dbs.urls.items()}
    for tool in RECORDING:
        for part, rows in shapes["psql"].items():
            if shapes[tool][part] != rows:
                only_psql = sorted(set(rows) - set(shapes[tool][part]))[:5]
                only_tool = sorted(set(shapes[tool][part]) - set(rows))[:5]
                raise BenchFailure(
                    f"{what}: the {tool} database differs from the psql one in its {part}: "
                    f"only in psql's {only_psql}, only in {tool}'s {only_tool}"
                )
        recorded = history_rows(dbs.urls[tool], tool)
        if recorded != count:
            raise BenchFailure(f"{what}: {tool}'s history holds {recorded} migrations, not {count}")
    if not shapes["psql"]["columns"]:
        raise BenchFailure(f"{what}: the psql database holds no tables: nothing was applied")


def check_noop(dbs: Databases, tool: str, count: int, name: str) -> None:
    recorded = history_rows(dbs.urls[tool], tool)
    if recorded != count:
        raise BenchFailure(f"{name} on the up-to-date database changed its history ({recorded} != {count})")


@dataclass
class Times:
    """Per apply (by tool) and per no-op (by name): wall-clock seconds and client CPU seconds."""

    applies: dict[str, list[float]] = field(default_factory=lambda: {tool: [] for tool in TOOLS})
    apply_cpu: dict[str, list[float]] = field(default_factory=lambda: {tool: [] for tool in TOOLS})
    noops: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name, _ in NOOPS})
    noop_cpu: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name, _ in NOOPS})
    held: dict[str, list[float]] = field(default_factory=lambda: {tool: [] for tool in TOOLS})


def measure_times(
    bench: Bench, admin: str, args: argparse.Namespace, via: Callable[[str], CountingProxy] | None
) -> Times:
    """``--repeat`` repetitions, each into fresh databases: apply times per tool, no-op times.

    ``via``: a proxy factory (the latency pass) or None (straight to the server)."""
    times = Times()
    label = "latency pass" if via else "timing pass"
    for rep in range(args.repeat):
        order = TOOLS[rep % len(TOOLS) :] + TOOLS[: rep % len(TOOLS)]
        with Databases(admin, args.keep) as dbs:
            proxies = {tool: via(url) for tool, url in dbs.urls.items()} if via else {}
            try:
                urls = {tool: (proxies[tool].url if via else url) for tool, url in dbs.urls.items()}
                for tool in order:
                    wall, cpu = bench.apply(tool, urls[tool])
                    times.applies[tool].append(wall)
                    times.apply_cpu[tool].append(cpu)
                    if via:  # what the added latency really cost the apply
                        times.held[tool].append(proxies[tool].held())
                verify(dbs, args.count, f"{label} {rep + 1}")
                for name, noop_tool in NOOPS:
                    if via and noop_tool is None:  # start-up alone: nothing goes through the proxy
                        continue
                    wall, cpu = bench.noop(name, urls[noop_tool or "schemagate"])
                    times.noops[name].append(wall)
                    times.noop_cpu[name].append(cpu)
                    if noop_tool:
                        check_noop(dbs, noop_tool, args.count, name)
            finally:
                for proxy in proxies.values():
                    proxy.close()
    return times


@dataclass
class Passage:
    """The round-trip pass: each apply's and no-op's messages, and when each apply's first migration
    went out."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    # tool -> (seconds from the process's start to the first bytes of the first migration, whole run)
    first_migration: dict[str, tuple[float, float]] = field(default_factory=dict)


def first_migration_marker(first_file: Path) -> bytes:
    """The start of the first migration's first statement (its first line that is not a comment):
    every tool sends these bytes when, and only when, that migration runs."""
    lines = first_file.read_text(encoding="utf-8").splitlines()
    line = next(x for x in lines if x.strip() and not x.lstrip().startswith("--"))
    return line.strip().encode("utf-8")


def count_round_trips(bench: Bench, admin: str, args: argparse.Namespace) -> Passage:
    """One pass through counting proxies (no added latency): messages per tool, apply and no-op,
    and how long each tool's process ran before it sent the first migration."""
    passage = Passage()
    counts = passage.counts
    marker = first_migration_marker(bench.files[0])
    with Databases(admin, args.keep) as dbs:
        for tool in TOOLS:
            with CountingProxy(dbs.urls[tool], marker=marker) as proxy:
                started = time.perf_counter()
                wall, _cpu = bench.apply(tool, proxy.url)
                if proxy.first_seen is None:
                    raise BenchFailure(f"{tool} never sent the first migration ({marker.decode()!r})")
                passage.first_migration[tool] = (proxy.first_seen - started, wall)
                counts[tool] = proxy.totals()
                if tool not in ("psql", "floor"):
                    proxy.reset()
                    noop = {"dbmate": "dbmate migrate", "schemagate-bundle": "schemagate apply --bundle DIR"}
                    bench.noop(noop.get(tool, "schemagate apply --migrations DIR"), proxy.url)
                    counts[f"{tool} no-op"] = proxy.totals()
        verify(dbs, args.count, "round-trip pass")
    return passage


def start_proxy(url: str, latency_ms: float) -> CountingProxy:
    """A running proxy to ``url`` adding ``latency_ms`` per client->server batch; close it after."""
    return CountingProxy(url, latency_ms=latency_ms).__enter__()


# -- the report ------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def runs(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def met(value: float, target: float) -> str:
    return "met" if value <= target else "NOT met"


APPLY_LABELS = {
    "psql": "psql, one session (BEGIN; \\i file; COMMIT; per file)",
    "dbmate": "dbmate migrate --no-dump-schema",
    "floor": "floor: python + psycopg2, one message per file",
    "schemagate": "schemagate apply --migrations DIR --yes",
    "schemagate-warm": "  the same, parse cache warm (after a validate or plan)",
    "schemagate-bundle": "schemagate apply --bundle DIR --yes (the pipeline's path)",
}


def print_times(title: str, times: Times) -> None:
    print(f"\n{title}")
    print(f"  {'apply, each into a fresh database':<58} {'median':>8}  {'client CPU':>10}   runs")
    for tool in TOOLS:
        wall, cpu = times.applies[tool], times.apply_cpu[tool]
        print(f"  {APPLY_LABELS[tool]:<58} {median(wall):>6.3f} s  {median(cpu):>8.3f} s   {runs(wall)}")
    print(f"  {'no-op re-run on the up-to-date database (process)':<58}")
    for name, _ in NOOPS:
        wall, cpu = times.noops[name], times.noop_cpu[name]
        if wall:
            print(f"  {name:<58} {median(wall):>6.3f} s  {median(cpu):>8.3f} s   {runs(wall)}")


def print_round_trips(counts: dict[str, Counter[str]], count: int) -> None:
    print(
        "\nround trips (counting proxy, no added latency; a round trip is a client->server 'Q' simple"
        "\nquery or an extended-protocol 'S' Sync; the connection handshake is not counted)"
    )
    print(
        f"  {'':<20} {'conns':>5} {'Q':>6} {'P':>6} {'B':>6} {'E':>6} {'S':>6}"
        f" {'round trips':>12} {'per migration':>14}"
    )
    for name, c in counts.items():
        rt = round_trips(c)
        per = f"{rt / count:.2f}" if "no-op" not in name else "(fixed)"
        print(
            f"  {name:<20} {c['connections']:>5} {c['Q']:>6} {c['P']:>6} {c['B']:>6} {c['E']:>6}"
            f" {c['S']:>6} {rt:>12} {per:>14}"
        )
        if c["encrypted"]:
            print(f"  ({name}: {c['encrypted']} encrypted connections could not be read)")
    for tool in ("dbmate", "schemagate"):
        marginal = (round_trips(counts[tool]) - round_trips(counts[f"{tool} no-op"])) / count
        print(f"  {tool}: {marginal:.2f} round trips per migration beyond those of its no-op run")


def print_first_migration(first: dict[str, tuple[float, float]]) -> None:
    """Where each apply's time went, from the round-trip pass (one run each, through the proxy):
    before its first migration reached the server (start-up, reading and checking the files,
    connecting, the history, the lock), and from there to its exit (the migrations, then exiting)."""
    print(
        "\nbefore the first migration (the round-trip pass: one run each, through the proxy; from the"
        "\nprocess's start to the first bytes of the first migration, then to the process's exit)"
    )
    print(f"  {'apply':<58} {'before':>8}  {'after':>8}  {'whole':>8}")
    for tool in TOOLS:
        before, wall = first[tool]
        print(f"  {APPLY_LABELS[tool]:<58} {before:>6.3f} s  {wall - before:>6.3f} s  {wall:>6.3f} s")


def paired(times: dict[str, list[float]], a: str, b: str) -> float:
    """The median over the repetitions of ``a``'s time over ``b``'s in the same repetition: the
    tools of one repetition run back to back, so a load that comes and goes on a shared machine
    weighs on both sides of each ratio (a ratio of two medians mixes repetitions)."""
    return median([x / y for x, y in zip(times[a], times[b], strict=True)])


def print_ratios(title: str, times: Times, rt_per: float | None) -> list[tuple[str, bool]]:
    a = times.applies
    sg_dm, sg_ps = paired(a, "schemagate", "dbmate"), paired(a, "schemagate", "psql")
    dm_ps = paired(a, "dbmate", "psql")
    warm_dm, warm_ps = paired(a, "schemagate-warm", "dbmate"), paired(a, "schemagate-warm", "psql")
    noop_sg = median(times.noops["schemagate apply --migrations DIR"])
    noop_dm = median(times.noops["dbmate migrate"])
    rows = [
        (
            "apply schemagate / dbmate",
            f"{sg_dm:.2f}x",
            f"<= {TARGET_VS_DBMATE:.1f}x",
            sg_dm <= TARGET_VS_DBMATE,
        ),
        (
            "apply schemagate / psql",
            f"{sg_ps:.2f}x",
            f"<= {TARGET_VS_PSQL:.1f}x",
            sg_ps <= TARGET_VS_PSQL,
        ),
        ("  the same, parse cache warm / dbmate", f"{warm_dm:.2f}x", "(reference)", None),
        ("  the same, parse cache warm / psql", f"{warm_ps:.2f}x", "(reference)", None),
        ("apply dbmate / psql", f"{dm_ps:.2f}x", "(reference)", None),
        ("apply floor (python + psycopg2) / psql", f"{paired(a, 'floor', 'psql'):.2f}x", "(reference)", None),
        ("apply schemagate / floor", f"{paired(a, 'schemagate', 'floor'):.2f}x", "(reference)", None),
        (
            "  the same, parse cache warm / floor",
            f"{paired(a, 'schemagate-warm', 'floor'):.2f}x",
            "(reference)",
            None,
        ),
        (
            "apply --bundle (pipeline) / psql",
            f"{paired(a, 'schemagate-bundle', 'psql'):.2f}x",
            "(reference)",
            None,
        ),
        (
            "apply --bundle (pipeline) / dbmate",
            f"{paired(a, 'schemagate-bundle', 'dbmate'):.2f}x",
            "(reference)",
            None,
        ),
    ]
    if rt_per is not None:
        rows.append(
            (
                "round trips per migration, schemagate",
                f"{rt_per:.2f}",
                f"<= {TARGET_ROUND_TRIPS}",
                rt_per <= TARGET_ROUND_TRIPS,
            )
        )
    rows += [
        (
            "no-op schemagate apply (process)",
            f"{noop_sg:.3f} s",
            f"<= {TARGET_NOOP_S} s",
            noop_sg <= TARGET_NOOP_S,
        ),
        ("no-op schemagate / dbmate", f"{noop_sg / noop_dm:.2f}x", "(reference)", None),
    ]
    print(f"\n{title}; apply ratios: the median of each repetition's own ratio")
    print(f"  {'':<40} {'measured':>10}   {'target':<12} result")
    for label, value, target, ok in rows:
        result = "" if ok is None else ("met" if ok else "NOT met")
        print(f"  {label:<40} {value:>10}   {target:<12} {result}")
    return [(label, ok) for label, _, _, ok in rows if ok is not None]


def latency_pass(
    bench: Bench,
    admin: str,
    args: argparse.Namespace,
    direct: Times,
    counts: dict[str, Counter[str]],
) -> None:
    """Time everything again through proxies adding ``--latency-ms``; print beside the direct times."""
    ms = args.latency_ms
    times = measure_times(bench, admin, args, lambda url: start_proxy(url, ms))
    print_times(f"times through the proxy adding {ms:g} ms per client->server batch", times)
    print_ratios(f"ratios through the proxy with {ms:g} ms latency", times, None)
    print(
        f"\n  {'time added by the latency (apply)':<34} {'measured':>10} {'held by proxy':>14}"
        f"   round trips x {ms:g} ms"
    )
    for tool in TOOLS:
        added = median(times.applies[tool]) - median(direct.applies[tool])
        expected = round_trips(counts[tool]) * ms / 1000
        print(f"  {tool:<34} {added:>8.3f} s {median(times.held[tool]):>12.3f} s   {expected:.3f} s")
    print(
        "  (the proxy holds each batch with time.sleep, which overshoots when the machine is busy:"
        "\n  compare the tools with one another, and 'held by proxy' with round trips x latency)"
    )


def compile_bytecode() -> None:
    """Write the project's .pyc files first, as an install does: without them (this machine sets
    PYTHONDONTWRITEBYTECODE=1, so the interpreter never writes them) every schemagate process would
    compile its modules from source again, about 30 ms that a user's machine does not pay."""
    import compileall

    for package in ("executor", "validator", "schemagate", "localdb"):
        compileall.compile_dir(REPO_ROOT / package, quiet=2)


def tool_version(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=500, help="migrations to generate (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; medians are printed (default 3)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="also time every tool through the proxy, which adds this many ms per client->server batch",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files and databases")
    args = parser.parse_args()
    if args.count < 1 or args.repeat < 1 or args.latency_ms < 0:
        parser.error("--count and --repeat must be at least 1, --latency-ms not negative")

    admin = admin_url()
    compile_bytecode()
    psql = find_psql()
    dbmate = native_binary(dbmate_binary())
    workdir = Path(tempfile.mkdtemp(prefix="schemagate-bench-"))
    history = generate(args.count)
    files = write_flyway(workdir / "migrations", history)
    write_dbmate(workdir / "db" / "migrations", history)
    bench = Bench(psql, dbmate, workdir, workdir / "migrations", workdir / "db" / "migrations", files)
    bench.bundle_dir = write_approved_bundle(bench.flyway_dir, workdir)

    server = urlsplit(admin)
    print(
        f"server: {server.hostname}:{server.port} (PostgreSQL {server_version(admin)}); "
        f"{args.count} generated migrations; medians of {args.repeat}"
    )
    print(
        f"tools: {tool_version([psql, '--version'])} ({psql}); dbmate {DBMATE_VERSION} ({dbmate}); "
        f"schemagate: {sys.executable} -m schemagate (Python {sys.version.split()[0]})"
    )
    checks: list[tuple[str, bool]] = []
    try:
        times = measure_times(bench, admin, args, None)
        passage = count_round_trips(bench, admin, args)
        counts = passage.counts
        rt_per = round_trips(counts["schemagate"]) / args.count
        print_times("times, straight to the server (no proxy)", times)
        print_round_trips(counts, args.count)
        print_first_migration(passage.first_migration)
        checks = print_ratios("ratios and issue 15's targets (times straight to the server)", times, rt_per)
        if args.latency_ms:
            latency_pass(bench, admin, args, times, counts)
    except BenchFailure as failure:
        print(f"\nFAILED: {redact(str(failure), admin)}", file=sys.stderr)
        return 1
    finally:
        Databases.drop_all()
        if args.keep:
            print(f"\nkept: {workdir} (the databases too)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    unmet = [label for label, ok in checks if not ok]
    print(
        "\nevery database ended with the same schema and rows; "
        + (f"targets not met: {', '.join(unmet)}" if unmet else "every target met")
        + " (a time never fails this benchmark)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
