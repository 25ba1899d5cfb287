"""A fleet as the pipeline runs it, through the real handler, step by step.

The pipeline's fleet stage is: a ``fleet_input`` job freezes the targets from SSM into the stage's
input artifact; a Step Functions Distributed Map invokes the executor once per target and writes
each child's result to S3 (ResultWriter); a ``fleet_summary`` invocation reads them back; for a
plan, a ``fleet_report`` job turns the state machine's output into the approval's variables.

moto has no Step Functions interpreter, so the tests play the state machine's part exactly as
pipeline/fleet_state_machine.py defines it (one direct invocation per target; a child whose answer
is not ``ok`` fails with ``Error`` = its category and ``Cause`` = its answer as JSON) against real
databases, moto S3 / SSM / Secrets Manager / RDS, and CodePipeline's job results over HTTP.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import psycopg2
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.stepfunctions.models import stepfunctions_backends

from executor.apply import apply
from executor.handler import handle
from executor.settings import ExecutorSettings
from executor.signing import sign_manifest
from tests import billing_project
from tests.conftest import temporary_database
from tests.helpers import fetch_value
from tests.test_handler import ARTIFACT, EVENTS, PASSWORD, REGION, LambdaContext, World, aws_world

INPUT_EVENT = json.loads((EVENTS / "codepipeline_fleet_input_job.json").read_text())
REPORT_EVENT = json.loads((EVENTS / "codepipeline_fleet_report_job.json").read_text())
TARGET_EVENT = json.loads((EVENTS / "direct_fleet_target_apply.json").read_text())
RUN_ID = TARGET_EVENT["pipeline_execution_id"]
SNAPSHOT_PREFIX = f"schemagate-tenants-{RUN_ID}"
PARAMETER = "/schemagate/tenants/targets"
RESULTS_BUCKET = ARTIFACT["bucketName"]
TENANTS = 4
FAILING = 3  # tenant 3 has a hand-made coupons table: its V011 fails


@dataclass
class Fleet:
    world: World
    urls: list[str]
    arns: list[str]
    names: list[str]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str):
    repository = billing_project.make_repository(tmp_path_factory.mktemp("billing"))
    return billing_project.validated_bundle(repository, pg_admin_url)


@pytest.fixture
def fleet(pg_admin_url: str, monkeypatch: pytest.MonkeyPatch, bundle) -> Iterator[Fleet]:
    databases = [temporary_database(pg_admin_url, prefix=f"sg_fleet{i}") for i in range(1, TENANTS + 1)]
    urls = [db.__enter__() for db in databases]
    try:
        conn = psycopg2.connect(urls[FAILING - 1])
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE coupons (code text PRIMARY KEY, note text)")
        conn.close()
        with aws_world(urls[0], monkeypatch) as world:
            key = world.kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"][
                "KeyId"
            ]
            monkeypatch.setenv("SCHEMAGATE_SIGNING_KEY_ID", key)
            monkeypatch.setenv("SCHEMAGATE_ENVIRONMENT", "tenants")
            monkeypatch.setenv("SCHEMAGATE_FLEET_TARGETS_PARAMETER", PARAMETER)
            monkeypatch.delenv("SCHEMAGATE_DB_SECRET_ARN")  # a fleet's function has no database of its own
            sign_manifest(bundle.manifest, key, world.kms)
            world.upload(bundle)
            sm = boto3.client("secretsmanager", region_name=REGION)
            arns, names = [], []
            for i, url in enumerate(urls, start=1):
                parts = urlsplit(url)
                secret = {
                    "engine": "postgres",
                    "host": parts.hostname,
                    "port": parts.port or 5432,
                    "username": parts.username or "postgres",
                    "password": PASSWORD,
                    "dbname": parts.path.lstrip("/"),
                    "dbInstanceIdentifier": f"billing-tenants-{(i + 1) // 2}",  # two tenants per instance
                }
                arns.append(
                    sm.create_secret(Name=f"tenants/t{i:02d}", SecretString=json.dumps(secret))["ARN"]
                )
                names.append(f"tenant-{i:02d}")
            yield Fleet(world, urls, arns, names)
    finally:
        with ThreadPoolExecutor(max_workers=TENANTS) as pool:
            list(pool.map(lambda db: db.__exit__(None, None, None), databases))


def put_targets(fleet: Fleet, value: Any) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=PARAMETER,
        Type="String",
        Value=value if isinstance(value, str) else json.dumps(value),
        Overwrite=True,
    )


def job(base: dict, job_id: str) -> dict:
    copied = copy.deepcopy(base)
    copied["CodePipeline.job"]["id"] = job_id
    return copied


def artifact_bytes(world: World, event: dict) -> bytes:
    location = event["CodePipeline.job"]["data"]["outputArtifacts"][0]["location"]["s3Location"]
    return world.s3.get_object(Bucket=location["bucketName"], Key=location["objectKey"])["Body"].read()


def run_map(fleet: Fleet, document: dict, action: str, prefix: str, *, snapshot: bool = False) -> dict:
    """Play the Distributed Map: one invocation per target (``snapshot``: the snapshot steps first,
    their name merged into the answer as NameTheSnapshot does), each child's result written the way
    ResultWriter writes it (Transformation NONE, JSON), then return ResultWriterDetails."""
    succeeded, failed = [], []
    for item in document["targets"]:
        child_input = {"target": item, "bundle": document["bundle"], "run_id": document["run_id"]}
        taken = None
        if snapshot:
            taken = handle(
                {
                    "action": "snapshot",
                    "snapshot": document["snapshot"],
                    "target_secret_arn": item["secret_arn"],
                    "environment": document["environment"],
                    "pipeline_execution_id": document["run_id"],
                },
                LambdaContext(),
            )
            assert taken["ok"] and taken["available"], taken
        answer = handle(
            {
                "action": action,
                "bundle": document["bundle"],
                "target_secret_arn": item["secret_arn"],
                "environment": document["environment"],
                "pipeline_execution_id": document["run_id"],
            },
            LambdaContext(),
        )
        entry = {
            "ExecutionArn": f"arn:aws:states:{REGION}:{DEFAULT_ACCOUNT_ID}:execution:fleet/Map:{item['name']}",
            "Input": json.dumps(child_input),
            "InputDetails": {"Included": True},
            "Name": item["name"],
        }
        if taken is not None and answer.get("ok"):
            answer = {**answer, "snapshot": taken["snapshot"]}
        if answer.get("ok"):
            succeeded.append({**entry, "Output": json.dumps(answer), "Status": "SUCCEEDED"})
        else:  # the Fail state: ErrorPath $.category, CausePath States.JsonToString($)
            failed.append(
                {**entry, "Error": answer["category"], "Cause": json.dumps(answer), "Status": "FAILED"}
            )
    s3 = fleet.world.s3
    files: dict[str, list] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    for status, entries in (("SUCCEEDED", succeeded), ("FAILED", failed)):
        if entries:
            key = f"{prefix}/run-1/{status}_0.json"
            body = json.dumps(entries).encode()
            s3.put_object(Bucket=RESULTS_BUCKET, Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    manifest = {
        "DestinationBucket": RESULTS_BUCKET,
        "MapRunArn": "arn:aws:states:map-run",
        "ResultFiles": files,
    }
    s3.put_object(
        Bucket=RESULTS_BUCKET, Key=f"{prefix}/run-1/manifest.json", Body=json.dumps(manifest).encode()
    )
    return {"Bucket": RESULTS_BUCKET, "Key": f"{prefix}/run-1/manifest.json"}


def freeze_targets(fleet: Fleet) -> dict:
    put_targets(
        fleet, [{"secretArn": arn, "name": name} for arn, name in zip(fleet.arns, fleet.names, strict=True)]
    )
    handle(job(INPUT_EVENT, "targets-1"), LambdaContext())
    assert fleet.world.stub.only("targets-1").operation == "PutJobSuccessResult"
    with zipfile.ZipFile(io.BytesIO(artifact_bytes(fleet.world, INPUT_EVENT))) as archive:
        return json.loads(archive.read("input.json"))


def history(url: str) -> list[str]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('schemagate_history') IS NOT NULL")
            if not fetch_value(cur):
                return []
            cur.execute("SELECT script FROM schemagate_history WHERE success ORDER BY installed_rank")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------


def test_the_targets_are_frozen_into_the_stage_input(fleet: Fleet) -> None:
    document = freeze_targets(fleet)
    variables = fleet.world.stub.only("targets-1").params["outputVariables"]
    assert variables == {"targets": str(TENANTS)}
    assert document["bundle"] == f"s3://{ARTIFACT['bucketName']}/{ARTIFACT['objectKey']}"
    assert document["run_id"] == RUN_ID and document["environment"] == "tenants"
    assert document["snapshot"] == SNAPSHOT_PREFIX
    assert document["targets"] == [
        {"name": name, "secret_arn": arn} for arn, name in zip(fleet.arns, fleet.names, strict=True)
    ]
    assert all(history(url) == [] for url in fleet.urls)  # nothing touched a database


def test_a_bad_targets_parameter_fails_the_job_naming_it(fleet: Fleet) -> None:
    for n, (value, problem) in enumerate(
        [
            ("tenants: acme, globex", "is not JSON"),
            ("[]", "is not a non-empty JSON list"),
            (json.dumps(["arn:aws:s3:::not-a-secret"]), "item 1 of the fleet parameter"),
            (json.dumps([fleet.arns[0], {"secretArn": fleet.arns[0]}]), "items 1 and 2"),
        ]
    ):
        put_targets(fleet, value)
        handle(job(INPUT_EVENT, f"targets-bad-{n}"), LambdaContext())
        details = fleet.world.stub.only(f"targets-bad-{n}").params["failureDetails"]
        assert details["type"] == "ConfigurationError"
        assert PARAMETER in details["message"] and problem in details["message"]


def test_execute_applies_each_target_alone_and_the_summary_names_the_one_that_failed(fleet: Fleet) -> None:
    document = freeze_targets(fleet)

    results = run_map(fleet, document, "apply", "fleet-results/tenants/apply")
    summary = handle(
        {
            "action": "fleet_summary",
            "results": results,
            "fleet_action": "apply",
            "pipeline_execution_id": RUN_ID,
        },
        LambdaContext(),
    )

    assert summary["ok"] is False  # the state machine's Choice sends this to its Fail state
    assert summary["counts"] == {"applied": TENANTS - 1, "failed": 1}
    [failed] = summary["failed"]
    assert failed["target"] == f"tenant-{FAILING:02d}"
    assert failed["category"] == "SQL_ERROR" and "coupons" in failed["message"]
    assert summary["text"] == f"{TENANTS} targets: {TENANTS - 1} applied, 1 failed (tenant-{FAILING:02d})"
    expected = [e.script for e in fleet_bundle_entries(fleet)]
    for i, url in enumerate(fleet.urls, start=1):
        if i == FAILING:
            assert "2025/V011__create_coupons.sql" not in history(url)
            assert history(url)[-1] == "V010__validate_past_due_since_check.sql"
        else:
            assert history(url) == expected
    assert PASSWORD not in json.dumps(summary)

    # the hand-made table is dropped; the stage is retried: the failed target finishes, the others stay
    conn = psycopg2.connect(fleet.urls[FAILING - 1])
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP TABLE coupons")
    conn.close()
    results = run_map(fleet, document, "apply", "fleet-results/tenants/apply-retry")
    summary = handle(
        {"action": "fleet_summary", "results": results, "fleet_action": "apply"}, LambdaContext()
    )
    assert summary["ok"] is True
    assert summary["counts"] == {"up to date": TENANTS - 1, "applied": 1}
    assert all(history(url) == expected for url in fleet.urls)


def fleet_bundle_entries(fleet: Fleet):
    from executor.artifact import S3Location, fetch_bundle

    bundle = fetch_bundle(S3Location(ARTIFACT["bucketName"], ARTIFACT["objectKey"]), fleet.world.s3)
    return [e for e in bundle.manifest.migrations if e.kind in ("versioned", "repeatable")]


def test_the_plan_report_job_gives_the_approval_the_fleet_variables(fleet: Fleet) -> None:
    document = freeze_targets(fleet)
    results = run_map(fleet, document, "plan", "fleet-results/tenants/plan")
    summary = handle({"action": "fleet_summary", "results": results, "fleet_action": "plan"}, LambdaContext())
    assert summary["ok"] is True and summary["counts"] == {"planned": TENANTS}
    assert all(history(url) == [] for url in fleet.urls)  # planning changes nothing
    execution_arn = start_execution_with_output(REPORT_EVENT, summary)

    handle(job(REPORT_EVENT, "report-1"), LambdaContext())

    result = fleet.world.stub.only("report-1")
    assert result.operation == "PutJobSuccessResult", result.params
    variables = result.params["outputVariables"]
    pending = len(fleet_bundle_entries(fleet))
    assert variables["pending"] == str(pending) and variables["targets"] == str(TENANTS)
    assert variables["drift"] == "none"
    assert variables["summary"].startswith(
        f"{TENANTS} targets: {TENANTS} planned; pending: V001__create_accounts.sql"
    )
    text = artifact_bytes(fleet.world, REPORT_EVENT).decode()
    assert f"2026/V021__widen_invoice_amount.sql  ({TENANTS} of {TENANTS})" in text
    assert "what they lock, on the target where the table is largest:" in text
    assert execution_arn.endswith(RUN_ID)


def test_drift_on_one_target_fails_the_fleet_plan(fleet: Fleet, bundle) -> None:
    document = freeze_targets(fleet)
    # tenant 02 was once migrated from a copy of the history whose V001 someone had edited
    edited = billing_project.with_edited(
        billing_project.history_only(bundle),
        "V001__create_accounts.sql",
        bundle.files["V001__create_accounts.sql"] + b"-- with a comment\n",
    )
    conn = psycopg2.connect(fleet.urls[1])
    apply(conn, edited, ExecutorSettings())
    conn.close()
    results = run_map(fleet, document, "plan", "fleet-results/tenants/plan-drift")
    summary = handle({"action": "fleet_summary", "results": results, "fleet_action": "plan"}, LambdaContext())
    assert summary["drifted"] == [
        {"target": "tenant-02", "drift": "V001__create_accounts.sql: checksum-drift"}
    ]
    start_execution_with_output(REPORT_EVENT, summary)

    handle(job(REPORT_EVENT, "report-drift"), LambdaContext())

    details = fleet.world.stub.only("report-drift").params["failureDetails"]
    assert details["message"].startswith("[CHECKSUM_MISMATCH]")
    assert "tenant-02: V001__create_accounts.sql: checksum-drift" in details["message"]
    assert (
        "DRIFT (the stage fails; nothing is applied anywhere):"
        in artifact_bytes(fleet.world, REPORT_EVENT).decode()
    )


def start_execution_with_output(event: dict, output: dict) -> str:
    """A finished execution of the fleet's plan state machine whose output is ``output``."""
    params = json.loads(
        event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"]
    )
    arn = params["execution_arn"]
    machine, name = arn.split(":")[-2:]
    states = boto3.client("stepfunctions", region_name=REGION)
    role = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/schemagate-fleet"
    try:
        machine_arn = states.create_state_machine(
            name=machine,
            definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
            roleArn=role,
        )["stateMachineArn"]
    except states.exceptions.StateMachineAlreadyExists:
        machine_arn = arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0]
    started = states.start_execution(stateMachineArn=machine_arn, name=name, input="{}")["executionArn"]
    execution = stepfunctions_backends[DEFAULT_ACCOUNT_ID][REGION].describe_execution(started)
    execution.status, execution.output = "SUCCEEDED", json.dumps(output)  # what the real run ended with
    return started


# --------------------------------------------------------------------------------------------
# snapshot before apply


def test_a_snapshot_is_taken_once_per_instance_and_named(fleet: Fleet) -> None:
    rds = boto3.client("rds", region_name=REGION)
    for identifier in ("billing-tenants-1", "billing-tenants-2"):
        rds.create_db_instance(
            DBInstanceIdentifier=identifier,
            DBInstanceClass="db.t4g.micro",
            Engine="postgres",
            MasterUsername="schemagate_admin",
            MasterUserPassword="Master-Pw-123456",
            AllocatedStorage=20,
        )
    answers = [
        handle(
            {
                "action": "snapshot",
                "snapshot": SNAPSHOT_PREFIX,
                "target_secret_arn": arn,
                "environment": "tenants",
                "pipeline_execution_id": RUN_ID,
            },
            LambdaContext(),
        )
        for arn in fleet.arns
    ]
    assert all(a["ok"] for a in answers), answers
    names = [a["snapshot"] for a in answers]
    assert names == [f"{SNAPSHOT_PREFIX}-billing-tenants-{n}" for n in (1, 1, 2, 2)]
    assert {a["source"] for a in answers} == {"billing-tenants-1", "billing-tenants-2"}
    assert all(a["status"] == "available" and a["available"] for a in answers)
    snapshots = rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    assert sorted(s["DBSnapshotIdentifier"] for s in snapshots) == sorted(set(names))  # one per instance
    tags = rds.list_tags_for_resource(ResourceName=snapshots[0]["DBSnapshotArn"])["TagList"]
    assert {"Key": "schemagate-environment", "Value": "tenants"} in tags
    assert {"Key": "schemagate-run", "Value": RUN_ID} in tags

    # Execute with snapshots: the summary (the state machine's output, the job's result) names them
    document = freeze_targets(fleet)
    results = run_map(fleet, document, "apply", "fleet-results/tenants/apply-snap", snapshot=True)
    summary = handle(
        {"action": "fleet_summary", "results": results, "fleet_action": "apply"}, LambdaContext()
    )
    assert summary["snapshots"] == sorted(set(names))
    assert len(rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]) == 2  # nothing new


def test_a_snapshot_without_an_instance_to_name_is_a_configuration_error(fleet: Fleet) -> None:
    sm = boto3.client("secretsmanager", region_name=REGION)
    secret = json.loads(sm.get_secret_value(SecretId=fleet.arns[0])["SecretString"])
    del secret["dbInstanceIdentifier"]
    sm.put_secret_value(SecretId=fleet.arns[0], SecretString=json.dumps(secret))
    from executor.credentials import clear_cache

    clear_cache()
    answer = handle(
        {"action": "snapshot", "snapshot": SNAPSHOT_PREFIX, "target_secret_arn": fleet.arns[0]},
        LambdaContext(),
    )
    assert answer["ok"] is False and answer["category"] == "CONFIGURATION_ERROR"
    assert "databaseInstanceIdentifier" in answer["remedy"]
    assert PASSWORD not in json.dumps(answer)
