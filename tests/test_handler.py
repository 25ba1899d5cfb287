"""The real Lambda handler, end to end.

Given an event of the exact shape the service sends (``tests/events/``: the CodePipeline Lambda
invoke action's job event, CloudFormation custom resource requests, a direct invocation), S3,
Secrets Manager, KMS and SNS from moto, a real PostgreSQL database, CodePipeline's job-result calls
observed over HTTP (``tests/codepipeline_stub.py``) and the custom resource's ``ResponseURL``
served by a local HTTP server: when ``executor.handler.handle`` runs, then the pipeline is told the
right thing, the database holds exactly what it should, and nothing leaks the password.
"""

from __future__ import annotations

import copy
import io
import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import psycopg2
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from executor.artifact import zip_bundle
from executor.bundle import Bundle, make_bundle
from executor.checksum import file_checksum
from executor.credentials import clear_cache
from executor.handler import handle
from executor.manifest import ManifestEntry
from executor.signing import sign_manifest
from tests.codepipeline_stub import CodePipelineStub
from tests.conftest import temporary_database

EVENTS = Path(__file__).parent / "events"
PASSWORD = "Pw-4b1d9e7c-never-log-me"
REGION = "us-east-1"
JOB_EVENT = json.loads((EVENTS / "codepipeline_job.json").read_text())
EXECUTION_ID = json.loads(
    JOB_EVENT["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"]
)["pipeline_execution_id"]
ARTIFACT = JOB_EVENT["CodePipeline.job"]["data"]["inputArtifacts"][0]["location"]["s3Location"]

GOOD = {
    "V1__create_customers.sql": b"CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);\n",
    "V2__create_invoices.sql": b"CREATE TABLE invoices (id bigint PRIMARY KEY,\n"
    b"  customer_id bigint NOT NULL REFERENCES customers (id));\n",
    "V3__index_invoices.sql": b"CREATE INDEX invoices_customer_idx ON invoices (customer_id);\n",
}


class LambdaContext:
    """The part of the Lambda context object the handler uses."""

    def __init__(self, remaining_ms: int = 900_000) -> None:
        self.remaining_ms = remaining_ms
        self.aws_request_id = "3f9a1c2e-request"
        self.function_name = "schemagate-executor"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def make_test_bundle(files: dict[str, bytes]) -> Bundle:
    entries = []
    for name, data in files.items():
        version, _, rest = name[1:].partition("__")
        entries.append(
            (
                ManifestEntry(
                    file=name,
                    kind="versioned",
                    version=version,
                    description=rest[:-4].replace("_", " "),
                    sha256=file_checksum(data),
                ),
                data,
            )
        )
    return make_bundle(entries, source={"repository": "example/app", "commit": "0123abc"})


def job_event(
    *, job_id: str | None = None, user_parameters: dict | None = None, continuation: str | None = None
) -> dict:
    event = copy.deepcopy(JOB_EVENT)
    job = event["CodePipeline.job"]
    if job_id:
        job["id"] = job_id
    if user_parameters is not None:
        job["data"]["actionConfiguration"]["configuration"]["UserParameters"] = json.dumps(user_parameters)
    if continuation:
        job["data"]["continuationToken"] = continuation
    return event


@dataclass
class World:
    stub: CodePipelineStub
    s3: Any
    kms: Any
    db_url: str
    secret_arn: str
    topic_arn: str

    def upload(self, data: bytes | Bundle, key: str | None = None) -> None:
        body = zip_bundle(data) if isinstance(data, Bundle) else data
        self.s3.put_object(Bucket=ARTIFACT["bucketName"], Key=key or ARTIFACT["objectKey"], Body=body)

    def query(self, sql: str) -> list[tuple]:
        conn = psycopg2.connect(self.db_url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            conn.close()

    def tables(self) -> set[str]:
        return {r[0] for r in self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}

    def history(self) -> list[tuple]:
        if "schemagate_history" not in self.tables():
            return []
        return self.query(
            "SELECT script, success, run_id, bundle_sha256 FROM public.schemagate_history "
            "ORDER BY installed_rank"
        )

    def notifications(self) -> list[tuple[str | None, str]]:
        topic = sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics[self.topic_arn]
        return [(n[2], n[1]) for n in topic.sent_notifications]  # (subject, message)


@contextmanager
def aws_world(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    clear_cache()  # the secrets, and the boto3 clients made outside this mock (executor.aws_clients)
    url = urlsplit(db_url)
    with mock_aws(), CodePipelineStub() as stub:
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        monkeypatch.setenv("AWS_ENDPOINT_URL_CODEPIPELINE", stub.url)
        monkeypatch.setenv("SCHEMAGATE_DB_SSLMODE", "disable")  # the local server has no TLS
        monkeypatch.setenv("SCHEMAGATE_DB_CONNECT_TIMEOUT", "2")
        monkeypatch.delenv("SCHEMAGATE_SIGNING_KEY_ID", raising=False)
        # these tests build unsigned bundles; tests/test_faults_bundles.py checks the refusal without it
        monkeypatch.setenv("SCHEMAGATE_ALLOW_UNSIGNED_BUNDLES", "true")
        monkeypatch.delenv("SCHEMAGATE_SIGNING_ALGORITHM", raising=False)
        monkeypatch.delenv("SCHEMAGATE_SCHEMA", raising=False)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=ARTIFACT["bucketName"])
        sm = boto3.client("secretsmanager", region_name=REGION)
        secret = {
            "engine": "postgres",
            "host": url.hostname,
            "port": url.port or 5432,
            "username": url.username or "postgres",
            "password": PASSWORD,
            "dbname": url.path.lstrip("/"),
        }
        secret_arn = sm.create_secret(Name="app/db/migrator", SecretString=json.dumps(secret))["ARN"]
        topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="schemagate")["TopicArn"]
        monkeypatch.setenv("SCHEMAGATE_DB_SECRET_ARN", secret_arn)
        monkeypatch.setenv("SCHEMAGATE_NOTIFY_TOPIC_ARN", topic_arn)
        yield World(stub, s3, boto3.client("kms", region_name=REGION), db_url, secret_arn, topic_arn)
        clear_cache()  # before the mock stops: its clients must not serve code outside it
    clear_cache()


@pytest.fixture
def world(fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A fresh database of its own: for the cases that change it."""
    with aws_world(fresh_db, monkeypatch) as w:
        yield w


@pytest.fixture(scope="module")
def untouched_db(pg_admin_url: str) -> Iterator[str]:
    """One database shared by the cases that must be refused before any database access."""
    with temporary_database(pg_admin_url, prefix="sg_untouched") as url:
        yield url


@pytest.fixture
def refusing_world(untouched_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The shared database, still empty: every case using it asserts it stays so."""
    with aws_world(untouched_db, monkeypatch) as w:
        assert w.tables() == set(), "an earlier case wrote to the shared database"
        yield w
        assert w.tables() == set(), "a refused run wrote to the database"


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def emf_metrics(text: str) -> dict[str, list[tuple[float, dict]]]:
    """metric name -> [(value, dimensions)] from the EMF objects printed."""
    found: dict[str, list[tuple[float, dict]]] = {}
    for doc in json_lines(text):
        if "_aws" not in doc:
            continue
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        dims = {d: doc[d] for d in directive["Dimensions"][0]}
        for metric in directive["Metrics"]:
            for value in doc[metric["Name"]]:
                found.setdefault(metric["Name"], []).append((value, dims))
    return found


# --------------------------------------------------------------------------------------------
# CodePipeline jobs


def test_success_applies_reports_logs_counts_and_notifies(
    world: World, capsys: pytest.CaptureFixture
) -> None:
    bundle = make_test_bundle(GOOD)
    world.upload(bundle)

    handle(job_event(), LambdaContext())

    result = world.stub.only(JOB_EVENT["CodePipeline.job"]["id"])
    assert result.operation == "PutJobSuccessResult"
    assert result.signed
    assert "continuationToken" not in result.params
    assert result.params["executionDetails"]["percentComplete"] == 100
    assert result.params["executionDetails"]["externalExecutionId"] == EXECUTION_ID
    assert world.history() == [(name, True, EXECUTION_ID, bundle.bundle_sha256) for name in GOOD]
    assert {"customers", "invoices"} <= world.tables()

    out = capsys.readouterr().out
    logs = [line for line in json_lines(out) if "level" in line]
    assert logs and all(line["pipeline_execution_id"] == EXECUTION_ID for line in logs)
    assert all(line["lambda_request_id"] == LambdaContext().aws_request_id for line in logs)
    verified = next(i for i, line in enumerate(logs) if line["message"].startswith("verified bundle"))
    assert all(line["bundle_sha256"] == bundle.bundle_sha256 for line in logs[verified:])
    metrics = emf_metrics(out)
    assert metrics["MigrationsApplied"][0][0] == 3
    assert metrics["Duration"][0][0] > 0
    assert "Failures" not in metrics

    [(subject, message)] = world.notifications()
    assert subject is not None and "applied 3" in subject and EXECUTION_ID in message
    assert "V3__index_invoices.sql" in message and bundle.bundle_sha256 in message


def test_nothing_pending_succeeds_without_changes(world: World) -> None:
    world.upload(make_test_bundle(GOOD))
    handle(job_event(job_id="job-first"), LambdaContext())
    before = world.history()

    handle(job_event(job_id="job-second"), LambdaContext())

    result = world.stub.only("job-second")
    assert result.operation == "PutJobSuccessResult"
    assert "up to date" in result.params["executionDetails"]["summary"]
    assert world.history() == before
    assert "NOTHING_TO_DO" in world.notifications()[-1][1]


def test_sql_failure_fails_the_job_and_leaves_the_database_unchanged(
    world: World, capsys: pytest.CaptureFixture
) -> None:
    world.upload(
        make_test_bundle(
            {
                "V1__create_and_break.sql": b"CREATE TABLE half_done (id int);\n"
                b"SELECT * FROM no_such_table;\n",
            }
        )
    )

    handle(job_event(), LambdaContext())

    result = world.stub.only(JOB_EVENT["CodePipeline.job"]["id"])
    assert result.operation == "PutJobFailureResult"
    details = result.params["failureDetails"]
    assert details["type"] == "JobFailed"
    assert details["message"].startswith("[SQL_ERROR]")
    assert "V1__create_and_break.sql:2" in details["message"]
    assert "no_such_table" in details["message"] and "remedy:" in details["message"]
    assert len(details["message"]) <= 1000
    assert "half_done" not in world.tables()  # rolled back with the failing statement
    assert world.history() == []

    out = capsys.readouterr().out
    errors = [line for line in json_lines(out) if line.get("level") == "ERROR"]
    assert errors and errors[0]["category"] == "SQL_ERROR"
    assert emf_metrics(out)["Failures"] == [
        (1.0, {"service": "schemagate-executor", "Category": "SQL_ERROR"})
    ]
    [(subject, message)] = world.notifications()
    assert subject is not None and "FAILED (SQL_ERROR)" in subject and "remedy:" in message
    assert "bundle: " in message and "database: " in message


def _refused(world: World, category: str) -> str:
    result = world.stub.only(JOB_EVENT["CodePipeline.job"]["id"])
    assert result.operation == "PutJobFailureResult"
    message = result.params["failureDetails"]["message"]
    assert message.startswith(f"[{category}]"), message
    assert world.tables() == set()  # refused before the database was touched
    return message


def test_tampered_bundle_is_refused(refusing_world: World) -> None:
    bundle = make_test_bundle(GOOD)
    bundle.files["V2__create_invoices.sql"] += b"DROP TABLE customers;\n"
    refusing_world.upload(bundle)
    handle(job_event(), LambdaContext())
    assert "V2__create_invoices.sql" in _refused(refusing_world, "BUNDLE_INTEGRITY")


def test_zip_with_parent_directory_entry_is_refused(refusing_world: World) -> None:
    data = io.BytesIO(zip_bundle(make_test_bundle(GOOD)))
    with zipfile.ZipFile(data, "a") as archive:
        archive.writestr("../../tmp/evil.sql", b"DROP SCHEMA public CASCADE;")
    refusing_world.upload(data.getvalue())
    handle(job_event(), LambdaContext())
    assert "escapes the bundle" in _refused(refusing_world, "SECURITY_VIOLATION")


def test_signatures_are_required_when_a_key_is_configured(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    required = world.kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
    other = world.kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
    monkeypatch.setenv("SCHEMAGATE_SIGNING_KEY_ID", required)

    # signed with another key
    bundle = make_test_bundle(GOOD)
    sign_manifest(bundle.manifest, other, world.kms)
    world.upload(bundle)
    handle(job_event(), LambdaContext())
    assert "does not verify" in _refused(world, "SECURITY_VIOLATION")

    # unsigned
    world.upload(make_test_bundle(GOOD))
    handle(job_event(job_id="job-unsigned"), LambdaContext())
    assert (
        world.stub.only("job-unsigned").params["failureDetails"]["message"].startswith("[SECURITY_VIOLATION]")
    )

    # signed with the right key
    good = make_test_bundle(GOOD)
    sign_manifest(good.manifest, required, world.kms)
    world.upload(good)
    handle(job_event(job_id="job-signed"), LambdaContext())
    assert world.stub.only("job-signed").operation == "PutJobSuccessResult"
    assert len(world.history()) == 3


def test_missing_secret_is_a_configuration_error(
    refusing_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusing_world.upload(make_test_bundle(GOOD))
    monkeypatch.setenv("SCHEMAGATE_DB_SECRET_ARN", refusing_world.secret_arn + "-gone")
    handle(job_event(), LambdaContext())
    result = refusing_world.stub.only(JOB_EVENT["CodePipeline.job"]["id"])
    assert result.params["failureDetails"]["type"] == "ConfigurationError"
    assert result.params["failureDetails"]["message"].startswith("[CONFIGURATION_ERROR]")
    assert "SCHEMAGATE_DB_SECRET_ARN" in result.params["failureDetails"]["message"]


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A TCP port that accepts connections (kernel backlog) and never answers: a hung server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def closed_port() -> int:
    """A TCP port nobody listens on: connections are refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_unreachable_database_fails_within_the_connect_timeout(
    refusing_world: World, blackhole: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusing_world.upload(make_test_bundle(GOOD))
    monkeypatch.setenv("SCHEMAGATE_DB_HOST", "127.0.0.1")
    monkeypatch.setenv("SCHEMAGATE_DB_PORT", str(blackhole))
    started = time.monotonic()
    handle(job_event(), LambdaContext())
    elapsed = time.monotonic() - started
    message = refusing_world.stub.only(JOB_EVENT["CodePipeline.job"]["id"]).params["failureDetails"][
        "message"
    ]
    assert message.startswith("[CONNECTION_ERROR]")
    assert elapsed < 8, f"took {elapsed:.1f}s with connect_timeout=2"


def test_low_remaining_time_continues_in_the_next_invocation(world: World) -> None:
    bundle = make_test_bundle(GOOD)
    world.upload(bundle)
    short = LambdaContext(remaining_ms=1_000)  # below the continuation margin after every migration

    handle(job_event(job_id="job-1"), short)
    first = world.stub.only("job-1")
    assert first.operation == "PutJobSuccessResult"
    token = first.params["continuationToken"]
    assert 0 < first.params["executionDetails"]["percentComplete"] < 100
    applied_first = len(world.history())
    assert 1 <= applied_first < 3
    assert world.notifications() == []  # told once, when the run is over

    # CodePipeline re-invokes with the token (a new job id); enough time now
    handle(job_event(job_id="job-2", continuation=token), LambdaContext())
    second = world.stub.only("job-2")
    assert second.operation == "PutJobSuccessResult"
    assert "continuationToken" not in second.params
    assert world.history() == [(name, True, EXECUTION_ID, bundle.bundle_sha256) for name in GOOD]
    [(subject, message)] = world.notifications()
    assert (
        subject is not None and "applied 3 migration(s)" in subject
    )  # the whole run, not only the last invocation
    assert "SUCCEEDED" in message and all(name in message for name in GOOD)


def test_continuation_refuses_a_replaced_bundle(world: World) -> None:
    world.upload(make_test_bundle(GOOD))
    handle(job_event(job_id="job-1"), LambdaContext(remaining_ms=1_000))
    token = world.stub.only("job-1").params["continuationToken"]
    world.upload(make_test_bundle({**GOOD, "V4__more.sql": b"CREATE TABLE more (id int);\n"}))
    handle(job_event(job_id="job-2", continuation=token), LambdaContext())
    message = world.stub.only("job-2").params["failureDetails"]["message"]
    assert message.startswith("[SECURITY_VIOLATION]") and "changed between invocations" in message

    # a dry run fails where the real run would: V1 was edited after it was applied
    world.upload(
        make_test_bundle({**GOOD, "V1__create_customers.sql": b"CREATE TABLE customers (id int);\n"})
    )
    handle(job_event(job_id="job-dry", user_parameters={"dry_run": True}), LambdaContext())
    message = world.stub.only("job-dry").params["failureDetails"]["message"]
    assert message.startswith("[CHECKSUM_MISMATCH]") and "V1__create_customers.sql" in message


def test_user_parameters_dry_run_and_bad_json(
    refusing_world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    refusing_world.upload(make_test_bundle(GOOD))
    # notifying is best effort: a missing topic does not fail the run
    monkeypatch.setenv("SCHEMAGATE_NOTIFY_TOPIC_ARN", refusing_world.topic_arn + "-gone")
    handle(
        job_event(job_id="job-dry", user_parameters={"dry_run": True, "pipeline_execution_id": "e-1"}),
        LambdaContext(),
    )
    assert "dry run: 3" in refusing_world.stub.only("job-dry").params["executionDetails"]["summary"]
    assert refusing_world.history() == []
    assert any(
        line["message"].startswith("could not notify")
        for line in json_lines(capsys.readouterr().out)
        if "message" in line
    )

    event = job_event(job_id="job-bad")
    event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] = "{not json"
    handle(event, LambdaContext())
    details = refusing_world.stub.only("job-bad").params["failureDetails"]
    assert details["type"] == "ConfigurationError" and "UserParameters" in details["message"]
    handle(job_event(job_id="job-unknown", user_parameters={"drop_everything": True}), LambdaContext())
    assert "drop_everything" in refusing_world.stub.only("job-unknown").params["failureDetails"]["message"]


# --------------------------------------------------------------------------------------------
# direct invocation and CloudFormation


def test_direct_plan_info_and_apply(world: World) -> None:
    event = json.loads((EVENTS / "direct_plan.json").read_text())
    world.upload(make_test_bundle(GOOD), key=urlsplit(event["bundle"]).path.lstrip("/"))

    planned = handle(event, LambdaContext())
    assert planned["ok"] and planned["pending"] == list(GOOD)
    assert world.history() == []

    applied = handle({**event, "action": "apply"}, LambdaContext())
    assert applied["ok"] and [a["script"] for a in applied["applied"]] == list(GOOD)
    assert json.dumps(applied)  # a JSON document for `aws lambda invoke`

    described = handle({"action": "info"}, LambdaContext())
    assert [m["state"] for m in described["migrations"]] == ["applied"] * 3

    refused = handle({"action": "apply", "bundle": "https://not-s3"}, LambdaContext())
    assert refused == {**refused, "ok": False, "category": "CONFIGURATION_ERROR"}
    unknown = handle({"hello": "world"}, LambdaContext())
    assert unknown["ok"] is False and "cannot tell what kind of invocation" in unknown["message"]


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict]]]:
    """Stands in for CloudFormation's pre-signed S3 response URL."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {
                    "body": json.loads(body),
                    "content_type": self.headers.get("Content-Type"),
                    "size": len(body),
                    "path": self.path,
                }
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cfn-response?X-Amz-Signature=abc", received
    server.shutdown()
    server.server_close()


def test_custom_resource_create_applies_and_answers_cloudformation(world: World, response_url) -> None:
    url, received = response_url
    event = json.loads((EVENTS / "cloudformation_create.json").read_text())
    event["ResponseURL"] = url
    bundle_url = urlsplit(event["ResourceProperties"]["Bundle"])
    world.s3.create_bucket(Bucket=bundle_url.netloc)
    world.upload(make_test_bundle(GOOD), key=bundle_url.path.lstrip("/"))
    world.s3.copy_object(
        Bucket=bundle_url.netloc,
        Key=bundle_url.path.lstrip("/"),
        CopySource={"Bucket": ARTIFACT["bucketName"], "Key": bundle_url.path.lstrip("/")},
    )

    handle(event, LambdaContext())

    [answer] = received
    body = answer["body"]
    assert body["Status"] == "SUCCESS", body
    assert (body["RequestId"], body["StackId"], body["LogicalResourceId"]) == (
        event["RequestId"],
        event["StackId"],
        event["LogicalResourceId"],
    )
    assert body["PhysicalResourceId"] == "schemagate:app-db:Migrate"
    assert body["Data"]["Applied"] == "3"
    assert answer["content_type"] == "" and answer["size"] < 4096
    assert len(world.history()) == 3

    delete = json.loads((EVENTS / "cloudformation_delete.json").read_text())
    delete["ResponseURL"] = url
    handle(delete, LambdaContext())
    assert received[1]["body"]["Status"] == "SUCCESS"
    assert received[1]["body"]["PhysicalResourceId"] == delete["PhysicalResourceId"]
    assert len(world.history()) == 3  # Delete never reverts migrations


def test_custom_resource_failure_is_reported_to_cloudformation(refusing_world: World, response_url) -> None:
    url, received = response_url
    event = json.loads((EVENTS / "cloudformation_create.json").read_text())
    event["ResponseURL"] = url
    event["ResourceProperties"]["Bundle"] = "s3://missing-bucket/bundle.zip"
    handle(event, LambdaContext())
    body = received[0]["body"]
    assert body["Status"] == "FAILED" and body["Reason"].startswith("[BUNDLE_INTEGRITY]")
    assert body["PhysicalResourceId"]

    # a request the executor cannot even parse is still answered (CloudFormation would wait an hour)
    del event["ResourceProperties"]["Bundle"]
    handle(event, LambdaContext())
    body = received[1]["body"]
    assert body["Status"] == "FAILED" and body["Reason"].startswith("[CONFIGURATION_ERROR]")
    assert body["RequestId"] == event["RequestId"] and "Bundle" in body["Reason"]


# --------------------------------------------------------------------------------------------
# secrets


def test_no_output_log_or_message_contains_a_secret(
    world: World,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
    response_url,
) -> None:
    url, received = response_url
    answers: list[Any] = []
    world.upload(make_test_bundle({"V1__ok.sql": b"CREATE TABLE ok (id int);\n"}))
    answers.append(handle(job_event(job_id="leak-success"), LambdaContext()))
    answers.append(
        handle({"action": "plan", "bundle": f"s3://{ARTIFACT['bucketName']}/{ARTIFACT['objectKey']}"})
    )
    world.upload(
        make_test_bundle({"V1__ok.sql": b"CREATE TABLE ok (id int);\n", "V2__fails.sql": b"SELECT 1/0;\n"})
    )
    answers.append(handle(job_event(job_id="leak-sql"), LambdaContext()))
    event = json.loads((EVENTS / "cloudformation_create.json").read_text())
    event["ResponseURL"] = url
    event["ResourceProperties"]["Bundle"] = f"s3://{ARTIFACT['bucketName']}/{ARTIFACT['objectKey']}"
    answers.append(handle(event, LambdaContext()))
    monkeypatch.setenv("SCHEMAGATE_DB_HOST", "127.0.0.1")
    monkeypatch.setenv("SCHEMAGATE_DB_PORT", str(closed_port))
    clear_cache()
    answers.append(handle(job_event(job_id="leak-unreachable"), LambdaContext()))
    answers.append(handle({"action": "info"}, LambdaContext()))

    out, err = capfd.readouterr()
    creds = JOB_EVENT["CodePipeline.job"]["data"]["artifactCredentials"]
    everything = "\n".join(
        [
            out,
            err,
            json.dumps(answers, default=str),
            json.dumps([r.params for r in world.stub.results], default=str),
            json.dumps(world.notifications()),
            json.dumps([r["body"] for r in received]),
        ]
    )
    assert "CONNECTION_ERROR" in everything and "SQL_ERROR" in everything  # the failure paths ran
    for secret in (PASSWORD, creds["secretAccessKey"], creds["sessionToken"]):
        assert secret not in everything
    assert json_lines(out), "the handler logs as JSON lines"


def test_a_file_that_runs_as_written_is_applied_by_the_pipeline_job(world: World) -> None:
    """Accepted history with BEGIN and COMMIT of its own (``own_transactions`` in the manifest, as
    ``schemagate validate`` writes it) builds a new database through the Lambda too."""
    seed = (
        b"-- run by hand with psql in 2024, batch by batch, then recorded by Flyway\n"
        b"BEGIN;\nINSERT INTO customers VALUES (1, 'Ada');\nCOMMIT;\n"
        b"BEGIN;\nSAVEPOINT second;\nINSERT INTO customers VALUES (2, 'Grace');\nRELEASE SAVEPOINT second;\nCOMMIT;\n"
    )
    bundle = make_bundle(
        [
            (
                ManifestEntry(
                    "V1__create_customers.sql",
                    "versioned",
                    "1",
                    "create customers",
                    file_checksum(GOOD["V1__create_customers.sql"]),
                ),
                GOOD["V1__create_customers.sql"],
            ),
            (
                ManifestEntry(
                    "V2__seed_customers_by_hand.sql",
                    "versioned",
                    "2",
                    "seed customers by hand",
                    file_checksum(seed),
                    transactional=False,
                    own_transactions=True,
                ),
                seed,
            ),
        ],
        source={"repository": "example/app", "commit": "0123abc"},
    )
    world.upload(bundle)

    handle(job_event(job_id="job-as-written"), LambdaContext())

    assert world.stub.only("job-as-written").operation == "PutJobSuccessResult"
    assert world.query("SELECT id, name FROM customers ORDER BY id") == [(1, "Ada"), (2, "Grace")]
    assert [(script, ok) for script, ok, *_ in world.history()] == [
        ("V1__create_customers.sql", True),
        ("V2__seed_customers_by_hand.sql", True),
    ]
