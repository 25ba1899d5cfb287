"""The executor's vocabularies (StrEnums equal to the strings callers have always seen), the flags
on the migration state, and the CodePipeline job read through Powertools' data class."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from executor import planning
from executor.errors import Category, ConfigurationError
from executor.events import ACTIONS, RequestType, parse_event
from executor.fleet import FleetResult, TargetOutcome, TargetStatus
from executor.history import HistoryType
from executor.pipeline_job import (
    CodePipelineJob,
    Continuation,
    FailureType,
    job_id,
    job_secrets,
    parse_codepipeline_job,
)
from executor.state import MigrationState, Refusal, build_info, refusals
from executor.vocabulary import Action, EventKind, PlanReason, RunStatus
from tests.test_state import SETTINGS, entry, manifest, row

S = MigrationState
EVENTS = Path(__file__).parent / "events"
# the modules of the apply machinery (executor.apply and the parts it was split into)
APPLY_SOURCE = "\n".join(
    path.read_text(encoding="utf-8") for path in sorted(Path(planning.__file__).parent.glob("*.py"))
)


def test_every_value_is_the_string_callers_already_use() -> None:
    assert [str(a) for a in ACTIONS] == ["info", "plan", "apply", "import", "snapshot", "fleet_summary"]
    as_str: str = Action.FLEET_REPORT  # a StrEnum: a str wherever callers pass the plain string
    assert as_str == "fleet_report" and json.dumps({"a": Action.APPLY}) == '{"a": "apply"}'
    assert f"{RunStatus.NOTHING_TO_DO}" == "NOTHING_TO_DO"
    assert [str(t) for t in RequestType] == ["Create", "Update", "Delete"]
    assert [str(s) for s in TargetStatus] == ["applied", "planned", "up to date", "failed"]
    assert {
        PlanReason(w) for w in ("pending", "out of order", "repeatable changed", "repeatable new")
    } == set(PlanReason)


def test_the_apply_modules_name_event_kinds_and_plan_reasons_by_their_enums() -> None:
    """No event kind, plan reason or history type is written as a plain string any more: every
    ``Event(`` of the apply modules starts with an ``EventKind`` member, and those members cover the
    kinds a run reports."""
    assert not re.findall(r'Event\(\s*"', APPLY_SOURCE)
    kinds = set(re.findall(r"Event\(\s*EventKind\.(\w+)", APPLY_SOURCE))
    assert {"START", "APPLIED", "FAILED", "RETRY", "NOTICE", "WAITING_FOR_LOCK"} <= kinds
    assert kinds <= {k.name for k in EventKind}
    assert not re.findall(r"^WHY_\w+ = ", APPLY_SOURCE, flags=re.M)
    assert not re.findall(r'^TYPE_\w+ = "', APPLY_SOURCE, flags=re.M)
    assert {str(t) for t in HistoryType} == {"SQL", "REPEATABLE", "BASELINE", "UNDO", "IMPORTED"}


def test_action_flags() -> None:
    assert [a for a in Action if a.needs_bundle] == [Action.PLAN, Action.APPLY, Action.IMPORT]
    assert [a for a in Action if a.is_fleet_step] == [Action.SNAPSHOT, Action.FLEET_SUMMARY]
    assert [a for a in Action if a.is_fleet_job] == [Action.FLEET_INPUT, Action.FLEET_REPORT]


# the flags per state, as Flyway's MigrationState has them: (resolved, applied, failed, pending, settled)
FLAGS = {
    S.PENDING: (True, False, False, True, False),
    S.APPLIED: (True, True, False, False, True),
    S.FAILED: (True, True, True, False, False),
    S.DRIFTED: (True, True, False, False, False),
    S.MISSING: (False, True, False, False, False),
    S.OUT_OF_ORDER: (True, False, False, True, False),
    S.OUTDATED: (True, True, False, False, False),
    S.BASELINE: (False, True, False, False, True),
    S.BELOW_BASELINE: (True, False, False, False, True),
    S.FUTURE: (False, True, False, False, False),
    S.UNDO: (True, False, False, False, True),
}


def test_the_flags_of_every_state() -> None:
    assert set(FLAGS) == set(MigrationState)
    for state, flags in FLAGS.items():
        assert (state.is_resolved, state.is_applied, state.is_failed, state.is_pending, state.is_settled) == (
            flags
        ), state


def _every_state() -> list:
    """A billing service's history that reaches every state at once."""
    m = manifest(
        entry("V1__create_accounts.sql"),
        entry("V2__create_invoices.sql"),
        entry("V3__add_invoice_due_date.sql", "ALTER TABLE invoices ADD due_date date; -- edited"),
        entry("V4__index_invoices_by_account.sql"),
        entry("V6__create_payments.sql"),
        entry("V7__create_refunds.sql"),
        entry("R__account_balances_view.sql", "CREATE OR REPLACE VIEW account_balances AS SELECT 2"),
        entry("R__invoice_totals_view.sql"),
        entry("U2__create_invoices.sql"),
    )
    history = [
        row(1, "<< baseline >>", type="BASELINE", version="1"),
        row(2, "V2__create_invoices.sql"),
        row(3, "V3__add_invoice_due_date.sql", sql="ALTER TABLE invoices ADD due_date date"),
        row(4, "V5__drop_legacy_ledger.sql"),
        row(5, "V6__create_payments.sql", success=False),
        row(6, "R__account_balances_view.sql", sql="CREATE OR REPLACE VIEW account_balances AS SELECT 1"),
        row(7, "V9__add_refund_reason.sql"),
    ]
    return build_info(m, history, SETTINGS)


def test_the_flags_agree_with_what_the_join_found() -> None:
    infos = _every_state()
    for i in infos:
        # applied: the history has a row for it; pending and settled: what a plan does with it
        assert i.state.is_applied == (i.row is not None), i.file
        if i.state.is_resolved:
            assert i.entry is not None, i.file
    refused = {e.rule for e in refusals(infos, SETTINGS)}
    assert refused == set(Refusal)
    assert refused == {"failed-migration", "checksum-drift", "missing-migration", "out-of-order"}
    plan = planning.plan_from(infos, SETTINGS.with_overrides(allow_out_of_order=True))
    planned = {e.file for e, _ in plan.to_apply}
    assert planned == {
        "V4__index_invoices_by_account.sql",
        "V7__create_refunds.sql",
        "R__account_balances_view.sql",
        "R__invoice_totals_view.sql",
    }
    assert all(isinstance(why, PlanReason) for _, why in plan.to_apply)
    assert {i.file for i in infos if i.state.is_pending} <= planned
    assert not any(i.state.is_settled for i in infos if i.file in planned)


def test_the_history_reaches_every_state() -> None:
    states = {i.file: i.state for i in _every_state()}
    assert set(states.values()) == set(MigrationState)
    assert (
        states["V9__add_refund_reason.sql"] is S.FUTURE and states["V5__drop_legacy_ledger.sql"] is S.MISSING
    )
    assert (
        states["R__invoice_totals_view.sql"] is S.PENDING
        and states["V7__create_refunds.sql"] is S.OUT_OF_ORDER
    )


def test_a_fleet_counts_its_targets_by_status() -> None:
    result = FleetResult(
        outcomes=[
            TargetOutcome(
                target="tenant-acme", status=TargetStatus.APPLIED, applied=["V7__create_refunds.sql"]
            ),
            TargetOutcome(target="tenant-globex", status=TargetStatus.UP_TO_DATE),
            TargetOutcome(target="tenant-initech", status=TargetStatus.FAILED, category="LOCK_TIMEOUT"),
        ]
    )
    assert result.summary() == "3 targets: 1 applied, 1 up to date, 1 failed (tenant-initech)"
    assert [o.target for o in result.failed] == ["tenant-initech"]
    assert json.loads(json.dumps(result.counts())) == {"applied": 1, "up to date": 1, "failed": 1}


# --------------------------------------------------------------------------------------------
# the job event, through Powertools' CodePipelineJobEvent


def _job() -> dict:
    return json.loads((EVENTS / "codepipeline_job.json").read_text(encoding="utf-8"))


def test_the_recorded_job_is_read_through_the_data_class() -> None:
    event = _job()
    job = parse_codepipeline_job(event)
    assert job.job_id == "5d6a2d3e-8b1f-4c2e-9a7d-0f1e2d3c4b5a" and job.account_id == "111111111111"
    assert (job.bundle.bucket, job.bundle.key) == (  # type: ignore[union-attr]
        "codepipeline-us-east-1-111111111111",
        "schemagate-pipeline/Bundle/Xa1b2C3.zip",
    )
    assert job.action is Action.APPLY and job.artifact_name == "Bundle"
    assert job.options.pipeline_execution_id == "7f3c1e2a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
    assert job.run_id == "7f3c1e2a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
    assert job.credentials is not None and job.credentials.access_key_id == "AKIAIOSFODNN7EXAMPLE"
    assert "wJalr" not in repr(job) and "FwoGZ" not in repr(job)
    assert job.encryption_key_id == "arn:aws:kms:us-east-1:111111111111:alias/aws/s3"
    assert set(job_secrets(event)) == set(job.credentials.secrets)
    assert job_id(event) == job.job_id and job_id({"action": "info"}) is None


def test_a_continued_job_carries_its_run() -> None:
    event = _job()
    token = Continuation(run_id="7f3c1e2a", bundle_sha256="c" * 64, invocation=2).to_token()
    event["CodePipeline.job"]["data"]["continuationToken"] = token
    job = parse_event(event)
    assert isinstance(job, CodePipelineJob)
    assert job.continuation == Continuation(run_id="7f3c1e2a", bundle_sha256="c" * 64, invocation=2)
    assert job.run_id == "7f3c1e2a"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["actionConfiguration"]["configuration"].update(UserParameters="{schema: public"),
            "not JSON",
        ),
        (
            lambda d: d["actionConfiguration"]["configuration"].update(UserParameters="[1]"),
            "not a JSON object",
        ),
        (lambda d: d.update(inputArtifacts=[]), "has no input artifact"),
        (lambda d: d.update(inputArtifacts=["Bundle"]), "is not an object"),
        (lambda d: d["inputArtifacts"][0]["location"].update(type="CodeCommit"), "not S3"),
        (lambda d: d["inputArtifacts"][0]["location"]["s3Location"].pop("objectKey"), "no objectKey"),
        (
            lambda d: d["actionConfiguration"]["configuration"].update(
                UserParameters='{"artifact": "Schema"}'
            ),
            "inputs are Bundle",
        ),
        (lambda d: d.update(continuationToken="not-ours"), "continuationToken was not written"),
    ],
)
def test_a_malformed_job_is_a_configuration_error_naming_the_part(change, message: str) -> None:
    event = copy.deepcopy(_job())
    change(event["CodePipeline.job"]["data"])
    with pytest.raises(ConfigurationError, match=message) as caught:
        parse_event(event)
    assert caught.value.remedy
    assert job_id(event) == "5d6a2d3e-8b1f-4c2e-9a7d-0f1e2d3c4b5a"  # still answered


def test_failure_types_follow_the_category() -> None:
    assert FailureType.of(Category.CONFIGURATION_ERROR) == "ConfigurationError"
    assert FailureType.of(Category.PERMISSION_DENIED) == "PermissionError"
    assert FailureType.of(Category.CHECKSUM_MISMATCH) == "JobFailed"
