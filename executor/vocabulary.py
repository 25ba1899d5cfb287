"""The words the executor and its callers share, one ``StrEnum`` per vocabulary.

Each value is the string the executor has always used (in events, logs, JSON answers, reports),
and a ``StrEnum`` member compares equal to it, so a caller that still writes the string keeps
working; code inside the executor names the member.  The migration states are
``executor.state.MigrationState`` (with flags such as ``is_applied``), a fleet target's statuses
``executor.fleet.TargetStatus``, CodePipeline's failure types ``executor.pipeline_job.FailureType``,
the failure categories ``executor.errors.Category``.

A leaf: imports nothing of the executor.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What an invocation asks for: a direct invocation's ``action``, or a CodePipeline job's
    ``UserParameters.action``."""

    INFO = "info"
    PLAN = "plan"
    APPLY = "apply"
    IMPORT = "import"  # take the database over from another tool's history table
    SNAPSHOT = "snapshot"  # a fleet state machine's step: one target's snapshot
    FLEET_SUMMARY = "fleet_summary"  # a fleet state machine's step: the Map's results summarised
    FLEET_INPUT = "fleet_input"  # a CodePipeline job: freeze a fleet's targets
    FLEET_REPORT = "fleet_report"  # a CodePipeline job: report a fleet state machine's summary

    @property
    def needs_bundle(self) -> bool:
        """A direct invocation of it must name a bundle (``info`` describes the history alone)."""
        return self in (Action.PLAN, Action.APPLY, Action.IMPORT)

    @property
    def is_fleet_step(self) -> bool:
        """One of the fleet state machine's own steps (no bundle run against the database)."""
        return self in (Action.SNAPSHOT, Action.FLEET_SUMMARY)

    @property
    def is_fleet_job(self) -> bool:
        """A fleet environment's CodePipeline job around its state machines."""
        return self in (Action.FLEET_INPUT, Action.FLEET_REPORT)


DIRECT_ACTIONS = (
    Action.INFO,
    Action.PLAN,
    Action.APPLY,
    Action.IMPORT,
    Action.SNAPSHOT,
    Action.FLEET_SUMMARY,
)
JOB_ACTIONS = (Action.APPLY, Action.PLAN, Action.FLEET_INPUT, Action.FLEET_REPORT)
FLEET_ACTIONS = (Action.PLAN, Action.APPLY)  # what a fleet's state machine does on every target


class EventKind(StrEnum):
    """The progress events of a run (``executor.progress.Event.kind``), logged as ``event``."""

    WAITING_FOR_LOCK = "waiting_for_lock"
    LOCK_ACQUIRED = "lock_acquired"
    START = "start"
    NOTICE = "notice"  # a server notice the migration raised
    RETRY = "retry"  # a lock timeout, retried
    INVALID_INDEX_DROPPED = "invalid_index_dropped"  # left by a failed concurrent build, built again
    APPLIED = "applied"
    FAILED = "failed"
    STOPPED = "stopped"  # the Lambda's time ran short: the rest continues in the next invocation


class PlanReason(StrEnum):
    """Why the plan applies a migration (``executor.planning.Plan.to_apply``'s second element)."""

    PENDING = "pending"
    OUT_OF_ORDER = "out of order"  # allowed by allow_out_of_order
    REPEATABLE_CHANGED = "repeatable changed"
    REPEATABLE_NEW = "repeatable new"


class RunStatus(StrEnum):
    """How a run ended, in the handler's answers and the notifications (``notify.RunReport``)."""

    SUCCEEDED = "SUCCEEDED"
    NOTHING_TO_DO = "NOTHING_TO_DO"
    IN_PROGRESS = "IN_PROGRESS"  # continued in the next invocation (CodePipeline's continuationToken)
    PLANNED = "PLANNED"  # a Plan job
    FAILED = "FAILED"


class InvocationKind(StrEnum):
    """How the executor was invoked (the ``invocation`` log key, ``notify.RunReport.invocation``)."""

    CODEPIPELINE = "codepipeline"
    DIRECT = "direct"
    CUSTOM_RESOURCE = "custom-resource"
