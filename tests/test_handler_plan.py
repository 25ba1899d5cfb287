"""The Plan action before each approval, through the real handler.

Given the CodePipeline job event of a Plan action (``tests/events/codepipeline_plan_job.json``: the
bundle as input, the plan report as output artifact), a bundle validated the way the pipeline
validates it (billing history, rehearsed), S3 / Secrets Manager / KMS from moto, CodePipeline's job
results observed over HTTP and a real PostgreSQL database: the plan answers with the output
variables the approval shows, writes the report with the job's artifact credentials, and changes
nothing; after an Execute job it says 0 pending; drift fails it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from executor.apply import apply
from executor.bundle import Bundle
from executor.handler import handle
from executor.pipeline_job import CodePipelineJob
from executor.settings import ExecutorSettings
from executor.signing import sign_manifest
from tests import billing_project
from tests.test_handler import EVENTS, PASSWORD, LambdaContext, World, aws_world, json_lines

PLAN_EVENT = json.loads((EVENTS / "codepipeline_plan_job.json").read_text())
APPLY_EVENT = json.loads((EVENTS / "codepipeline_job.json").read_text())
PLAN_JOB = PLAN_EVENT["CodePipeline.job"]
REPORT = PLAN_JOB["data"]["outputArtifacts"][0]["location"]["s3Location"]
ARTIFACT_SECRETS = tuple(v for k, v in PLAN_JOB["data"]["artifactCredentials"].items() if k != "accessKeyId")
V021 = "2026/V021__widen_invoice_amount.sql"
V022 = "2026/V022__index_invoices_paid_at.sql"


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str) -> Bundle:
    repository = billing_project.make_repository(tmp_path_factory.mktemp("billing"))
    return billing_project.validated_bundle(repository, pg_admin_url)


@pytest.fixture
def world(fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with aws_world(fresh_db, monkeypatch) as w:
        key = w.kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
        monkeypatch.setenv("SCHEMAGATE_SIGNING_KEY_ID", key)
        w.signing_key = key  # type: ignore[attr-defined]
        yield w


def upload_signed(world: World, bundle: Bundle) -> None:
    sign_manifest(bundle.manifest, world.signing_key, world.kms)  # type: ignore[attr-defined]
    world.upload(bundle)


def event(base: dict, job_id: str) -> dict:
    copied = copy.deepcopy(base)
    copied["CodePipeline.job"]["id"] = job_id
    return copied


def report_text(world: World) -> str:
    return world.s3.get_object(Bucket=REPORT["bucketName"], Key=REPORT["objectKey"])["Body"].read().decode()


def test_a_plan_job_answers_with_the_variables_and_leaves_the_database_untouched(
    world: World, rehearsed: Bundle, capsys: pytest.CaptureFixture
) -> None:
    upload_signed(world, rehearsed)

    handle(event(PLAN_EVENT, "plan-1"), LambdaContext())

    result = world.stub.only("plan-1")
    assert result.operation == "PutJobSuccessResult"
    variables = result.params["outputVariables"]
    pending = len(rehearsed.manifest.versioned) + len(rehearsed.manifest.repeatable)
    assert variables["pending"] == str(pending)
    assert variables["drift"] == "none"
    assert variables["summary"].startswith(f"{pending} pending: V001__create_accounts.sql, ")
    assert len(variables["summary"]) <= 160
    assert variables["plan_report"] == f"s3://{REPORT['bucketName']}/{REPORT['objectKey']}"
    assert variables["plan_report_link"].startswith(
        f"https://s3.console.aws.amazon.com/s3/object/{REPORT['bucketName']}?"
    )
    assert result.params["executionDetails"]["summary"] == variables["summary"]
    # a plan creates nothing, not even the history table
    assert world.tables() == set()

    text = report_text(world)
    assert "schemagate plan for production" in text
    assert f"{pending} migration(s) to apply, in this order (0 applied)" in text
    assert "ACCESS EXCLUSIVE + rewrite on public.invoices (not in this database yet)" in text
    head = world.s3.head_object(Bucket=REPORT["bucketName"], Key=REPORT["objectKey"])
    assert head["ServerSideEncryption"] == "aws:kms"  # with the key the job names
    out = capsys.readouterr().out
    assert PASSWORD not in out and not any(secret in out for secret in ARTIFACT_SECRETS)
    assert PASSWORD not in text


def test_after_an_apply_job_the_plan_says_nothing_is_pending(world: World, rehearsed: Bundle) -> None:
    upload_signed(world, rehearsed)
    handle(event(APPLY_EVENT, "execute-1"), LambdaContext())
    assert world.stub.only("execute-1").operation == "PutJobSuccessResult"
    history = world.history()

    handle(event(PLAN_EVENT, "plan-after"), LambdaContext())

    variables = world.stub.only("plan-after").params["outputVariables"]
    assert variables["pending"] == "0"
    assert variables["drift"] == "none"
    assert variables["summary"].startswith("up to date: nothing to apply")
    assert world.history() == history
    assert "nothing to apply: the database is up to date" in report_text(world)


def test_the_plan_shows_what_each_migration_locks_at_this_database_size(
    world: World, rehearsed: Bundle
) -> None:
    conn = psycopg2.connect(world.db_url)
    apply(conn, billing_project.history_only(rehearsed), ExecutorSettings())
    conn.close()
    billing_project.load_production_data(world.db_url)
    size = world.query("SELECT pg_size_pretty(pg_total_relation_size('public.invoices'))")[0][0]
    upload_signed(world, rehearsed)

    handle(event(PLAN_EVENT, "plan-sized"), LambdaContext())

    variables = world.stub.only("plan-sized").params["outputVariables"]
    assert variables["pending"] == "2"
    heaviest = f"ACCESS EXCLUSIVE + rewrite on public.invoices ({size}, ~20 k rows)"
    # the heaviest lock is kept whole; the file list is shortened to fit the approval's text
    assert variables["summary"].startswith(f"2 pending: {V021}, 2026/V022")
    assert variables["summary"].endswith(f"; heaviest: {heaviest}") and len(variables["summary"]) <= 160
    lines = report_text(world).splitlines()
    under = {
        lines[i].split()[0]: lines[i + 1].strip()
        for i, line in enumerate(lines)
        if line.startswith("  2026/")
    }
    assert under == {V021: heaviest, V022: f"SHARE on public.invoices ({size}, ~20 k rows)"}
    assert world.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'invoices_paid_at_idx'") == [(0,)]


def test_drift_fails_the_plan_job_before_anyone_is_asked(world: World, rehearsed: Bundle) -> None:
    conn = psycopg2.connect(world.db_url)
    apply(conn, billing_project.history_only(rehearsed), ExecutorSettings())
    conn.close()
    history = world.history()
    edited = billing_project.with_edited(
        rehearsed,
        "V007__backfill_accounts_country.sql",
        b"-- everyone registered before the VAT change was in Austria\n"
        b"UPDATE accounts SET country_code = 'AT' WHERE country_code IS NULL;\n",
    )
    upload_signed(world, edited)

    handle(event(PLAN_EVENT, "plan-drift"), LambdaContext())

    result = world.stub.only("plan-drift")
    assert result.operation == "PutJobFailureResult"
    message = result.params["failureDetails"]["message"]
    assert message.startswith("[CHECKSUM_MISMATCH]")
    assert "V007__backfill_accounts_country.sql: checksum-drift" in message
    assert f"s3://{REPORT['bucketName']}/{REPORT['objectKey']}" in message  # the full plan is there
    assert "remedy:" in message
    assert world.history() == history
    assert "REFUSED: 1 problem(s); nothing would be applied" in report_text(world)


def test_a_plan_job_with_an_unknown_action_is_a_configuration_error(world: World, rehearsed: Bundle) -> None:
    bad = event(PLAN_EVENT, "plan-typo")
    bad["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] = json.dumps(
        {"action": "plann"}
    )
    handle(bad, LambdaContext())
    details = world.stub.only("plan-typo").params["failureDetails"]
    assert details["type"] == "ConfigurationError"
    assert "unknown action 'plann'" in details["message"] and "apply, plan" in details["message"]
    assert world.tables() == set()


@pytest.mark.slow
def test_statements_never_outlive_the_lambda(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """statement_timeout (30 min by default) is capped by the invocation's remaining time minus the
    margin; a migration that needs longer is pointed at the CodeBuild executor."""
    from tests.test_handler import make_test_bundle

    monkeypatch.setenv("SCHEMAGATE_CONTINUATION_MARGIN_MS", "60000")
    bundle = make_test_bundle(
        {
            "V1__create_ledger.sql": b"CREATE TABLE ledger (id bigint PRIMARY KEY, amount_cents bigint);\n",
            "V2__rebuild_ledger_totals.sql": b"CREATE TABLE ledger_totals AS SELECT 1 AS n;\nSELECT pg_sleep(30);\n",
        }
    )
    upload_signed(world, bundle)

    handle(event(APPLY_EVENT, "execute-short"), LambdaContext(remaining_ms=62_000))

    details = world.stub.only("execute-short").params["failureDetails"]
    assert details["message"].startswith("[SQL_ERROR] V2__rebuild_ledger_totals.sql:2")
    assert "statement_timeout was capped at" in details["message"]
    assert "CodeBuild executor" in details["message"]
    assert [row[0] for row in world.history()] == ["V1__create_ledger.sql"]
    assert "ledger_totals" not in world.tables()  # rolled back with the statement that ran too long
    logs = [line for line in json_lines(capsys.readouterr().out) if line.get("level") == "ERROR"]
    assert logs and logs[0]["category"] == "SQL_ERROR"


def test_the_recorded_plan_event_names_its_report_artifact() -> None:
    from executor.events import parse_event

    job = parse_event(PLAN_EVENT)
    assert isinstance(job, CodePipelineJob)
    assert job.action == "plan" and job.environment == "production"
    assert job.output is not None and job.output.key == REPORT["objectKey"]
    assert job.encryption_key_id == PLAN_JOB["data"]["encryptionKey"]["id"]
    assert Path(EVENTS / "codepipeline_plan_job.json").is_file()


def test_the_execute_result_names_the_snapshot_taken_before_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_handler import GOOD, make_test_bundle

    monkeypatch.setenv("SCHEMAGATE_DB_INSTANCE_IDENTIFIER", "billing-staging")
    upload_signed(world, make_test_bundle(GOOD))
    execute = event(APPLY_EVENT, "execute-after-snapshot")
    configuration = execute["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]
    parameters = json.loads(configuration["UserParameters"])
    run = parameters["pipeline_execution_id"]
    configuration["UserParameters"] = json.dumps({**parameters, "snapshot": f"schemagate-staging-{run}"})

    handle(execute, LambdaContext())

    summary = world.stub.only("execute-after-snapshot").params["executionDetails"]["summary"]
    assert summary.startswith("applied 3 migration(s)")
    assert f"after snapshot schemagate-staging-{run}-billing-staging (bundle " in summary
