"""A snapshot of the target's RDS instance or Aurora cluster, taken before migrations are applied.

The pipeline's Snapshot step (a Step Functions state machine) asks the executor to ``take`` one
and then asks again until it is available: each call is idempotent.  The snapshot's name is the
prefix the pipeline passes (``schemagate-<environment>-<pipeline execution id>``) plus the
instance or cluster identifier, so the tenants of a fleet that share an instance share its one
snapshot, and re-running the step after a failure finds the snapshot it already started.

Which instance or cluster: ``SCHEMAGATE_DB_CLUSTER_IDENTIFIER`` / ``SCHEMAGATE_DB_INSTANCE_IDENTIFIER``
(set by the CDK app from the environment's configuration), else the ``dbClusterIdentifier`` /
``dbInstanceIdentifier`` keys that RDS-managed secrets carry (a fleet's tenants each have their own).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from executor.errors import ConfigurationError, PermissionDenied, aws_error_code

TAG_ENVIRONMENT = "schemagate-environment"
TAG_RUN = "schemagate-run"
_NAME_MAX = 255


@dataclass(frozen=True)
class SnapshotSource:
    kind: str  # "instance" | "cluster"
    identifier: str


@dataclass(frozen=True)
class SnapshotState:
    snapshot: str
    kind: str
    source: str  # the instance or cluster identifier
    status: str  # RDS's status: creating, available, ...

    @property
    def available(self) -> bool:
        return self.status == "available"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "available": self.available}


def snapshot_source(secret: Mapping[str, Any], environ: Mapping[str, str]) -> SnapshotSource:
    cluster = environ.get("SCHEMAGATE_DB_CLUSTER_IDENTIFIER") or secret.get("dbClusterIdentifier")
    if cluster:
        return SnapshotSource("cluster", str(cluster))
    instance = environ.get("SCHEMAGATE_DB_INSTANCE_IDENTIFIER") or secret.get("dbInstanceIdentifier")
    if instance:
        return SnapshotSource("instance", str(instance))
    raise ConfigurationError(
        "snapshotBeforeApply is set, but neither the environment nor the database secret names the RDS "
        "instance or Aurora cluster to snapshot",
        remedy='set "databaseInstanceIdentifier" or "databaseClusterIdentifier" for the environment in '
        "cdk.json, or store dbInstanceIdentifier / dbClusterIdentifier in the secret (RDS-managed "
        "secrets have them)",
    )


def snapshot_name(prefix: str, identifier: str) -> str:
    """An RDS snapshot identifier: letters, digits and single hyphens, starting with a letter."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{identifier}".lower())
    name = re.sub(r"-{2,}", "-", name).strip("-")
    if not name or not name[0].isalpha():
        name = f"schemagate-{name}"
    return name[:_NAME_MAX].rstrip("-")


def take_snapshot(
    prefix: str, source: SnapshotSource, rds: Any, *, environment: str | None, run_id: str
) -> SnapshotState:
    """Start the snapshot unless it exists; return its state (call again until ``available``)."""
    name = snapshot_name(prefix, source.identifier)
    cluster = source.kind == "cluster"
    state = _describe(rds, name, cluster=cluster)
    if state is None:
        tags = [{"Key": TAG_RUN, "Value": run_id[:256]}]
        if environment:
            tags.append({"Key": TAG_ENVIRONMENT, "Value": environment})
        try:
            if cluster:
                rds.create_db_cluster_snapshot(
                    DBClusterSnapshotIdentifier=name, DBClusterIdentifier=source.identifier, Tags=tags
                )
            else:
                rds.create_db_snapshot(
                    DBSnapshotIdentifier=name, DBInstanceIdentifier=source.identifier, Tags=tags
                )
        except Exception as exc:
            code = aws_error_code(exc)
            if "AlreadyExists" not in code:  # another target of the same instance started it
                raise _rds_error(exc, code, source) from None
        state = _describe(rds, name, cluster=cluster)
    if state is None:
        raise ConfigurationError(
            f"RDS accepted snapshot {name} of {source.kind} {source.identifier} but does not describe it",
            remedy="retry the Snapshot step",
        )
    if state.status in ("failed", "incompatible-restore", "deleting"):
        raise ConfigurationError(
            f"snapshot {name} of {source.kind} {source.identifier} is {state.status}",
            remedy="look at the instance's events in the RDS console, then retry the stage",
        )
    return state


def _describe(rds: Any, name: str, *, cluster: bool) -> SnapshotState | None:
    try:
        if cluster:
            found = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"]
            source = found[0]["DBClusterIdentifier"] if found else ""
        else:
            found = rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"]
            source = found[0]["DBInstanceIdentifier"] if found else ""
    except Exception as exc:
        code = aws_error_code(exc)
        if "NotFound" in code:
            return None
        raise _rds_error(exc, code, None) from None
    if not found:
        return None
    return SnapshotState(
        snapshot=name, kind="cluster" if cluster else "instance", source=source, status=found[0]["Status"]
    )


def _rds_error(exc: Exception, code: str, source: SnapshotSource | None) -> Exception:
    what = f"{source.kind} {source.identifier}" if source else "the snapshot"
    if "AccessDenied" in code or code == "UnauthorizedOperation":
        return PermissionDenied(
            f"not allowed to snapshot {what} ({code})",
            remedy="the executor's role needs rds:CreateDBSnapshot / rds:CreateDBClusterSnapshot on it "
            "(the CDK app grants it for the environment's instance, or for instances tagged "
            f"{TAG_ENVIRONMENT}=<environment>)",
        )
    if "NotFound" in code:
        return ConfigurationError(
            f"cannot snapshot {what}: RDS does not know it ({code})",
            remedy="check databaseInstanceIdentifier / databaseClusterIdentifier, or the secret's "
            "dbInstanceIdentifier",
        )
    return ConfigurationError(
        f"RDS refused to snapshot {what} ({code or type(exc).__name__})",
        remedy="see the executor's log; an instance that is not 'available' (stopped, modifying) cannot be "
        "snapshotted",
    )
