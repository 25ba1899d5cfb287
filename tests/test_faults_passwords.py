"""Passwords that should have been percent-encoded in a database URL (``?``, ``#``, ``@``, ``/``)
never appear in any output: CLI stdout/stderr of every database command, exceptions, report
files, the Lambda's logs, answers, job results and notifications."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

import boto3
import pytest

from executor.connection import connect, mask_url, scrub
from executor.credentials import clear_cache
from executor.errors import ConfigurationError, ConnectionFailure
from executor.handler import handle
from schemagate.cli import main
from tests.database_faults import history_rows
from tests.test_handler import JOB_EVENT, REGION, LambdaContext, aws_world, job_event, make_test_bundle

SECRET = "K7#p?xQ2@w/9Zr"  # generated the way password managers do
PIECES = ["K7#p", "p?xQ2", "xQ2", "Q2@w", "w/9Zr", "9Zr", "K7#p?xQ2", "xQ2@w/9Zr"]


def leaked(text: str) -> list[str]:
    """The pieces of SECRET (three characters or more) found in ``text``."""
    return [piece for piece in PIECES if piece in text]


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:pa?ss1234@db.internal:5432/prod", "postgresql://app:***@db.internal:5432/prod"),
        ("postgresql://app:pa@ss1234@db.internal:5432/prod", "postgresql://app:***@db.internal:5432/prod"),
        ("postgresql://app:s/ecret12@db.internal:5432/prod", "postgresql://app:***@db.internal:5432/prod"),
        ("postgresql://app:abc#def12@db.internal/prod", "postgresql://app:***@db.internal/prod"),
        (
            f"postgresql://app:{SECRET}@db.internal/prod?sslmode=require",
            "postgresql://app:***@db.internal/prod?sslmode=require",
        ),
        # Azure's user@server user names, pasted raw
        (
            "postgresql://app@pgsrv:Hunter?22@pgsrv.postgres.database.azure.com/prod",
            "postgresql://app@pgsrv:***@pgsrv.postgres.database.azure.com/prod",
        ),
        (
            "postgresql://db.internal:5432/prod?password=x@y&sslmode=require",
            "postgresql://db.internal:5432/prod?password=***&sslmode=require",
        ),
        (
            "postgresql://db.internal/prod?user=me@corp&sslmode=require",
            "postgresql://db.internal/prod?user=me@corp&sslmode=require",
        ),
        ("postgresql://app:p%40ss@db.internal/prod", "postgresql://app:***@db.internal/prod"),
    ],
)
def test_mask_url_hides_a_raw_password_however_libpq_would_read_it(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_scrub_removes_the_pieces_libpq_would_quote() -> None:
    url = "postgresql://postgres:pa@ss-Secr3t@127.0.0.1:1/db"
    message = 'could not translate host name "ss-Secr3t@127.0.0.1" to address; see postgresql://postgres:pa@ss-Secr3t@h/db'
    scrubbed = scrub(message, url)
    assert "Secr3t" not in scrubbed and "ss-Secr3t" not in scrubbed
    assert "postgres:***@h/db" in scrubbed


@pytest.mark.parametrize(
    ("password", "misread"),
    [
        ("K7p@w9Zr-x", "the host"),
        ("s3cret/path", "the port"),
        ("1234/abcd", "the database name"),
        (SECRET, "the database name"),
    ],
)
def test_a_url_libpq_would_misread_is_refused_before_connecting(password: str, misread: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        connect(f"postgresql://postgres:{password}@127.0.0.1/postgres")
    error = caught.value
    text = str(error) + json.dumps(error.to_dict()) + repr(error)
    assert error.remedy is not None and misread in error.message and "percent-encode" in error.remedy
    assert error.exit_code == 2 and "postgresql://postgres:***@127.0.0.1/postgres" in error.message
    pieces = [p for p in re.split(r"[@/#?]", password) if len(p) >= 3]
    assert pieces and not [p for p in pieces if p in text]


def test_a_percent_encoded_password_works_and_a_raw_question_mark_too(fresh_db: str) -> None:
    # trust authentication on the test server ignores the password: the URL only has to be read right
    parts = urlsplit(fresh_db)
    for password in (quote(SECRET, safe=""), "pa?ss#1234"):
        url = f"{parts.scheme}://{parts.username}:{password}@{parts.hostname}:{parts.port}{parts.path}"
        conn = connect(url)
        try:
            assert conn.info.dbname == parts.path.lstrip("/")
        finally:
            conn.close()


def test_a_failed_connection_with_a_raw_question_mark_hides_the_whole_password() -> None:
    with pytest.raises(ConnectionFailure) as caught:
        connect("postgresql://postgres:K7#p?xQ2zz@127.0.0.1:1/postgres", connect_timeout=2)
    text = str(caught.value) + json.dumps(caught.value.to_dict())
    assert "postgres:***@127.0.0.1:1" in text
    assert "K7#p" not in text and "xQ2zz" not in text


# -- every CLI command ------------------------------------------------------------------------------

MIGRATIONS = {
    "V1__create_customers.sql": "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);\n",
    "V2__add_customers_email.sql": "ALTER TABLE customers ADD COLUMN email text;\n",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "migrations").mkdir()
    for name, sql in MIGRATIONS.items():
        (tmp_path / "migrations" / name).write_text(sql)
    monkeypatch.chdir(tmp_path)
    for var in ("DATABASE_URL", "PGHOST", "PGSERVICE", "PGDATABASE", "PGPASSWORD"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


COMMANDS = [
    ["plan"],
    ["apply", "--yes"],
    ["info"],
    ["info", "--json"],
    ["repair"],
    ["baseline", "--version", "1"],
    ["undo", "--yes"],
    ["run", "--yes"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
@pytest.mark.parametrize(
    ("url", "code"),
    [
        (f"postgresql://postgres:{SECRET}@127.0.0.1:1/postgres", 2),  # '@' and '/': refused before libpq
        (
            "postgresql://postgres:K7#p?xQ2Zr@127.0.0.1:1/postgres?connect_timeout=2",
            1,
        ),  # '?': refused by the server
    ],
    ids=["at-sign", "question-mark"],
)
def test_no_command_shows_the_password_when_it_cannot_connect(
    project: Path, capsys, command: list[str], url: str, code: int
) -> None:
    assert main([*command, "--database-url", url]) == code
    captured = capsys.readouterr()
    everything = captured.out + captured.err
    assert "postgres:***@127.0.0.1:1" in everything
    assert not leaked(everything) and "K7#p" not in everything and "xQ2Zr" not in everything


def test_no_output_or_report_file_shows_the_password_when_it_works(
    project: Path, fresh_db: str, capsys
) -> None:
    parts = urlsplit(fresh_db)
    url = f"postgresql://postgres:K7#p?xQ2Zr@{parts.hostname}:{parts.port}{parts.path}"
    assert main(["apply", "--database-url", url, "--yes"]) == 0
    assert main(["info", "--database-url", url, "--json"]) == 0
    assert main(["validate", "--rehearse", "--rehearsal-database-url", url, "--reports", "reports"]) == 0
    captured = capsys.readouterr()
    files = "\n".join(p.read_text() for p in (project / "reports").iterdir())
    everything = captured.out + captured.err + files
    assert "postgres:***@" in everything and "rehearsed" in files
    assert "K7#p" not in everything and "xQ2Zr" not in everything
    assert history_rows(fresh_db) == [(name, True) for name in MIGRATIONS]


# -- the Lambda ----------------------------------------------------------------------------------------


def test_the_lambda_never_shows_a_password_full_of_url_characters(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    with aws_world(fresh_db, monkeypatch) as world:
        secret = json.loads(
            boto3.client("secretsmanager", region_name=REGION).get_secret_value(SecretId=world.secret_arn)[
                "SecretString"
            ]
        )
        boto3.client("secretsmanager", region_name=REGION).put_secret_value(
            SecretId=world.secret_arn, SecretString=json.dumps({**secret, "password": SECRET})
        )
        clear_cache()
        answers = []
        world.upload(
            make_test_bundle(
                {"V1__ok.sql": b"CREATE TABLE ok (id int);\n", "V2__fails.sql": b"SELECT 1/0;\n"}
            )
        )
        answers.append(handle(job_event(job_id="sql-failure"), LambdaContext()))
        answers.append(handle({"action": "info"}, LambdaContext()))
        monkeypatch.setenv("SCHEMAGATE_DB_PORT", "1")  # nobody listens: the connection is refused
        clear_cache()
        answers.append(handle(job_event(job_id="unreachable"), LambdaContext()))
        answers.append(handle({"action": "info"}, LambdaContext()))
        results = [r.params for r in world.stub.results]
        notifications = world.notifications()
        out, err = capfd.readouterr()
    everything = "\n".join(
        [
            out,
            err,
            json.dumps(answers, default=str),
            json.dumps(results, default=str),
            json.dumps(notifications),
        ]
    )
    assert "SQL_ERROR" in everything and "CONNECTION_ERROR" in everything  # both failure paths ran
    assert results[-1]["failureDetails"]["message"].startswith("[CONNECTION_ERROR]")
    assert SECRET not in everything and not leaked(everything)
    assert JOB_EVENT["CodePipeline.job"]["data"]["artifactCredentials"]["secretAccessKey"] not in everything
