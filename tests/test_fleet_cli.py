"""``schemagate apply --targets FILE --concurrency N`` on a dozen real databases, one of which fails.

Twelve tenants' databases on the test server get the billing history (tests/histories/
flyway_billing.py).  Tenant 07 has a hand-made ``coupons`` table that support created during an
incident, so its V011 fails: that tenant fails alone and is named, the eleven others complete, the
exit code is 1, and after the table is dropped the same command finishes tenant 07 and leaves the
others untouched.  Passwords are in every URL of the targets file and in no line printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from schemagate.cli import main
from tests.conftest import temporary_database
from tests.histories import flyway_billing

PASSWORD = "tenant-Pw-9f8e7d6c"
TENANTS = 12
FAILING = 7
HISTORY = sorted(
    (f for f in flyway_billing.FILES if f.split("/")[-1].startswith("V")), key=lambda f: f.split("/")[-1]
)


def with_password(url: str) -> str:
    """The URL with a password (the test server trusts local connections, so it is not checked)."""
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{PASSWORD}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def rows(url: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def history(url: str) -> list[tuple]:
    return rows(url, "SELECT script, success, installed_on FROM schemagate_history ORDER BY installed_rank")


@pytest.fixture
def tenants(pg_admin_url: str) -> Iterator[list[str]]:
    """Twelve fresh databases; tenant 07 with its hand-made table.  Dropped together at the end
    (concurrent DROP DATABASEs share their checkpoint; one after the other each waits for its own)."""
    databases = [temporary_database(pg_admin_url, prefix=f"sg_tenant{i:02d}") for i in range(1, TENANTS + 1)]
    urls = [db.__enter__() for db in databases]
    try:
        conn = psycopg2.connect(urls[FAILING - 1])
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE coupons (code text PRIMARY KEY, note text)")  # made by hand
        conn.close()
        yield urls
    finally:
        with ThreadPoolExecutor(max_workers=TENANTS) as pool:
            list(pool.map(lambda db: db.__exit__(None, None, None), databases))


def make_project(root: Path, monkeypatch: pytest.MonkeyPatch, urls: list[str]) -> Path:
    (root / "pyproject.toml").write_text('[tool.schemagate]\nmigrations = "db/migration"\n')
    flyway_billing.write(root / "db" / "migration")
    lines = ["# billing tenants, one database each", ""]
    lines += [with_password(url) for url in urls]
    (root / "tenants.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(root)
    for var in ("DATABASE_URL", "PGHOST", "PGSERVICE", "PGDATABASE", "PGPASSWORD"):
        monkeypatch.delenv(var, raising=False)
    return root


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tenants: list[str]) -> Path:
    return make_project(tmp_path, monkeypatch, tenants)


@pytest.fixture
def small_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_db: str) -> Path:
    return make_project(tmp_path, monkeypatch, [fresh_db])


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_failing_tenant_fails_alone_and_a_rerun_finishes_it(
    project: Path, tenants: list[str], capsys: pytest.CaptureFixture
) -> None:
    code, out = cli(capsys, "apply", "--targets", "tenants.txt", "--concurrency", "4", "--yes")

    assert code == 1
    assert PASSWORD not in out
    failing = tenants[FAILING - 1]
    failing_shown = with_password(failing).replace(PASSWORD, "***")
    failed_lines = [line for line in out.splitlines() if line.startswith("  FAILED")]
    assert len(failed_lines) == 1 and failing_shown in failed_lines[0]
    assert "[SQL_ERROR] 2025/V011__create_coupons.sql:1" in failed_lines[0]
    assert 'relation "coupons" already exists' in failed_lines[0]
    assert f"12 targets: 11 applied, 1 failed ({failing_shown})" in out
    assert sum(1 for line in out.splitlines() if line.startswith("  ok ")) == 11

    expected = [*HISTORY, "R__billing_views.sql", "R__mrr_function.sql"]
    for url in tenants:
        if url == failing:
            continue
        assert [(script, ok) for script, ok, _ in history(url)] == [(f, True) for f in expected]
    # tenant 07: what ran before V011 stays applied, V011 was rolled back, nothing after it ran
    before_failure = HISTORY[: HISTORY.index("2025/V011__create_coupons.sql")]
    assert [script for script, _, _ in history(failing)] == before_failure
    assert rows(failing, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'coupons'") == [
        (2,)
    ]
    done = {url: history(url) for url in tenants if url != failing}

    # support drops the stray table; the same command finishes the fleet
    conn = psycopg2.connect(failing)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP TABLE coupons")
    conn.close()
    code, out = cli(capsys, "apply", "--targets", "tenants.txt", "--concurrency", "4", "--yes")

    assert code == 0, out
    assert "12 targets: 1 applied, 11 up to date" in out
    assert PASSWORD not in out
    assert [script for script, _, _ in history(failing)] == expected
    assert {url: history(url) for url in tenants if url != failing} == done  # untouched


def test_a_bad_targets_file_names_the_line_and_hides_the_password(
    small_project: Path, fresh_db: str, capsys: pytest.CaptureFixture
) -> None:
    project, tenants = small_project, [fresh_db]
    good = with_password(tenants[0])
    (project / "bad.txt").write_text(f"{good}\nhost=db7 port=5432 password={PASSWORD} dbname='unterminated\n")
    code, out = cli(capsys, "apply", "--targets", "bad.txt", "--yes")
    assert code == 2
    assert "bad.txt:2" in out and "not a libpq URL or DSN" in out and "remedy:" in out
    assert PASSWORD not in out
    assert rows(tenants[0], "SELECT to_regclass('schemagate_history') IS NULL") == [(True,)]

    (project / "twice.txt").write_text(f"{good}\n{tenants[0]}\n")
    code, out = cli(capsys, "apply", "--targets", "twice.txt", "--yes")
    assert code == 2 and "line 2 lists the same database as line 1" in out


def test_targets_and_a_database_url_together_are_a_usage_error(
    small_project: Path, fresh_db: str, capsys: pytest.CaptureFixture
) -> None:
    tenants = [fresh_db]
    code, out = cli(capsys, "apply", "--targets", "tenants.txt", "--database-url", tenants[0], "--yes")
    assert code == 2 and "either --database-url or --targets FILE" in out
    code, out = cli(capsys, "apply", "--targets", "tenants.txt", "--concurrency", "0", "--yes")
    assert code == 2 and "--concurrency 0 is out of range" in out
    assert all(rows(url, "SELECT to_regclass('schemagate_history') IS NULL") == [(True,)] for url in tenants)
