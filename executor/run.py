"""The core of one invocation: verify the bundle, resolve the database, run one action on it.

``execute`` is what every kind of invocation (``executor.handler``'s CodePipeline job, direct
invocation, custom resource) calls once: it fetches and verifies the bundle before any database
access (a signature is required unless ``SCHEMAGATE_ALLOW_UNSIGNED_BUNDLES=true``), resolves the
target (the function's secret, or a fleet target's), connects (reading a rotated password once
more), and runs info, plan, import or apply, returning a typed ``Outcome``.
``as_schemagate_error`` gives any failure its category.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from botocore.config import Config

from executor import aws_clients
from executor import credentials as db_credentials
from executor import observability as obs
from executor.apply import ApplyResult, apply
from executor.artifact import S3Location, fetch_bundle
from executor.bundle import Bundle
from executor.connection import connect
from executor.credentials import DatabaseTarget
from executor.errors import (
    ConfigurationError,
    ConnectionFailure,
    PermissionDenied,
    SchemagateError,
    SecurityViolation,
    SqlError,
    aws_error_code,
)
from executor.history import read_history
from executor.options import RunOptions
from executor.plan_report import PlanReport, build_plan_report
from executor.planning import info, plan
from executor.progress import Event
from executor.settings import ExecutorSettings
from executor.signing import KmsSignatureVerifier
from executor.state import MigrationInfo
from executor.vocabulary import Action

if TYPE_CHECKING:
    from psycopg2.extensions import connection

    from executor.adopt import TakeOver

logger = obs.logger
AWS_CONFIG = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"})

# --------------------------------------------------------------------------------------------
# the core: one run against one bundle


class AppliedScript(TypedDict):
    """One applied migration in a run's answer and report (``notify.RunReport.applied``)."""

    script: str
    version: str | None
    duration_ms: int


@dataclass
class Outcome:
    action: Action
    run_id: str
    bundle: Bundle | None
    target: DatabaseTarget
    duration_ms: float
    dry_run: bool = False
    result: ApplyResult | None = None  # apply / plan (dry run)
    infos: list[MigrationInfo] | None = None  # info
    takeover: TakeOver | None = None  # import
    run_applied: list[AppliedScript] | None = None  # a continued run: all its invocations, from history
    plan_report: PlanReport | None = None  # plan: what the approver reads

    @property
    def stopped_early(self) -> bool:
        return bool(self.result and self.result.stopped_early)

    def applied(self) -> list[AppliedScript]:
        """What this run applied: every invocation of a continued run (the history knows)."""
        if self.run_applied is not None:
            return self.run_applied
        if self.result is None:
            return []
        return [
            {"script": a.entry.file, "version": a.entry.version, "duration_ms": a.duration_ms}
            for a in self.result.applied
        ]

    def remaining(self) -> list[str]:
        """Left for the next invocation (apply), or what would be applied (plan, dry run)."""
        if self.result is None:
            return []
        if self.action == Action.APPLY and not self.dry_run:
            return [e.file for e in self.result.remaining]
        return [e.file for e, _ in self.result.plan.to_apply]


def base_settings(options: RunOptions, run_id: str, deadline: float | None = None) -> ExecutorSettings:
    schema = os.environ.get("SCHEMAGATE_SCHEMA") or "public"
    return ExecutorSettings(schema=schema).with_overrides(
        run_id=run_id, statement_deadline=deadline, **options.settings_overrides()
    )


ALLOW_UNSIGNED_ENV = "SCHEMAGATE_ALLOW_UNSIGNED_BUNDLES"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def allow_unsigned_bundles() -> bool:
    value = os.environ.get(ALLOW_UNSIGNED_ENV, "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ConfigurationError(
            f"{ALLOW_UNSIGNED_ENV}={value!r} is neither true nor false",
            remedy=f"leave {ALLOW_UNSIGNED_ENV} unset (signed bundles only), or set it to true for a "
            "development setup without a signing key",
        )
    return value in _TRUE


def signature_verifier() -> KmsSignatureVerifier | None:
    """The verifier of the configured key; None only when unsigned bundles are explicitly allowed
    (logged as a warning each time).  Raises SecurityViolation when no key is configured."""
    key_id = os.environ.get("SCHEMAGATE_SIGNING_KEY_ID", "").strip()
    if key_id:
        return KmsSignatureVerifier(key_id, aws_clients.client("kms", config=AWS_CONFIG))
    if not allow_unsigned_bundles():
        raise SecurityViolation(
            "refusing the bundle: the executor has no signing key (SCHEMAGATE_SIGNING_KEY_ID is not set), "
            "so it cannot tell the approved bundle from one whose SQL and hashes were rewritten in S3",
            remedy=(
                "set SCHEMAGATE_SIGNING_KEY_ID to the KMS key the Validate stage signs with (`schemagate "
                f"validate --bundle DIR --sign-with-kms KEY`); only for a development setup, set "
                f"{ALLOW_UNSIGNED_ENV}=true"
            ),
            rule="unsigned-bundle",
        )
    logger.warning(
        f"accepting a bundle WITHOUT verifying its signature: {ALLOW_UNSIGNED_ENV}=true and no "
        "SCHEMAGATE_SIGNING_KEY_ID; whoever can write the artifact can change what runs",
        extra={"allow_unsigned_bundles": True},
    )
    return None


def _on_event(event: Event) -> None:
    fields = {"event": event.kind, "file": event.file, "duration_ms": event.duration_ms}
    logger.info(event.message or event.kind, extra={k: v for k, v in fields.items() if v is not None})


def _connect(
    target: DatabaseTarget, environ: Mapping[str, str] | None = None, *, refreshed: bool = False
) -> tuple[connection, DatabaseTarget]:
    try:
        return connect(target.dsn(), connect_timeout=target.connect_timeout), target
    except ConnectionFailure as exc:
        # a rotated password makes the cached secret stale: read it again, once
        if not refreshed and not target.iam_auth and "password authentication failed" in exc.message:
            fresh = db_credentials.resolve_target(environ, refresh=True)
            obs.register_secret(*fresh.secrets)
            return _connect(fresh, environ, refreshed=True)
        raise


def target_environ(target_secret_arn: str | None) -> Mapping[str, str] | None:
    """The environment the target is resolved from: a fleet target's secret instead of the function's."""
    if not target_secret_arn:
        return None
    return {**os.environ, "SCHEMAGATE_DB_SECRET_ARN": target_secret_arn}


def execute(
    action: Action,
    location: S3Location | None,
    s3_client: Any,
    options: RunOptions,
    run_id: str,
    *,
    should_continue: Callable[[], bool] | None = None,
    expected_bundle_sha256: str | None = None,
    deadline: float | None = None,
    target_secret_arn: str | None = None,
    environment: str | None = None,
    tool: str | None = None,
    table: str | None = None,
) -> Outcome:
    """Verify the bundle (before any database access), then info / plan / apply it."""
    started = time.monotonic()
    settings = base_settings(options, run_id, deadline)
    bundle = None
    if location is not None:
        verifier = signature_verifier()  # refuses before anything is downloaded
        bundle = fetch_bundle(location, s3_client, signature_verifier=verifier)
        obs.bind_run(bundle_sha256=bundle.bundle_sha256)
        logger.info(
            f"verified bundle {location.url}: {len(bundle.manifest.migrations)} file(s)",
            extra={"signed": bundle.manifest.signature is not None},
        )
        if expected_bundle_sha256 and bundle.bundle_sha256 != expected_bundle_sha256:
            raise SecurityViolation(
                f"the bundle changed between invocations of run {run_id} "
                f"(was {expected_bundle_sha256}, now {bundle.bundle_sha256})",
                remedy="re-run the pipeline from the Validate stage; never replace an approved artifact",
            )
    environ = target_environ(target_secret_arn)
    target = db_credentials.resolve_target(environ)
    obs.register_secret(*target.secrets)
    obs.bind_run(database=target.describe())
    conn, target = _connect(target, environ)
    try:
        outcome = Outcome(
            action=action,
            run_id=run_id,
            bundle=bundle,
            target=target,
            duration_ms=0.0,
            dry_run=settings.dry_run,
        )
        if action == Action.INFO:
            outcome.infos = info(conn, bundle, settings)
        elif action == Action.IMPORT:
            from executor.adopt import take_over

            assert bundle is not None and tool is not None
            outcome.takeover = take_over(conn, bundle, tool, settings, table=table, dry_run=settings.dry_run)
        elif action == Action.PLAN or settings.dry_run:
            assert bundle is not None
            p = plan(conn, bundle, settings)
            if action == Action.APPLY and p.refusals:  # a dry run fails where the real run would
                raise p.refusals[0]
            outcome.result = ApplyResult(
                plan=p, applied=[], stopped_early=False, remaining=[e for e, _ in p.to_apply]
            )
            if action == Action.PLAN:
                outcome.plan_report = build_plan_report(
                    conn,
                    bundle,
                    p,
                    database=target.describe(),
                    environment=environment or os.environ.get("SCHEMAGATE_ENVIRONMENT") or None,
                )
        else:
            assert bundle is not None
            outcome.result = apply(
                conn, bundle, settings, on_event=_on_event, should_continue=should_continue
            )
            if expected_bundle_sha256:  # continued: report the whole run, not this invocation
                outcome.run_applied = [
                    {"script": r.script, "version": r.version, "duration_ms": r.execution_time_ms}
                    for r in read_history(conn, settings)
                    if r.run_id == run_id and r.success
                ]
    finally:
        conn.close()
    outcome.duration_ms = (time.monotonic() - started) * 1000
    return outcome


# --------------------------------------------------------------------------------------------
# failures: every one has a category


def as_schemagate_error(exc: BaseException) -> SchemagateError:
    """Every failure has a category; unexpected exceptions are mapped, and logged with their trace."""
    if isinstance(exc, SchemagateError):
        return exc
    code = aws_error_code(exc)
    logger.exception(f"unexpected {type(exc).__name__}")
    if "AccessDenied" in code or code in ("UnrecognizedClientException", "ExpiredTokenException"):
        return PermissionDenied(
            f"AWS refused a call ({code})", remedy="check the executor role's permissions"
        )
    import psycopg2

    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return ConnectionFailure(
            f"the database connection failed: {type(exc).__name__}", remedy="retry the stage"
        )
    if isinstance(exc, psycopg2.Error):
        return SqlError(
            f"the database refused a statement: {type(exc).__name__}", remedy="see the executor's log"
        )
    return ConfigurationError(
        f"the executor failed unexpectedly ({type(exc).__name__})",
        remedy="see the executor's log for the stack trace and report it",
    )
