"""An environment's Approve step: a person reads the plan made against that environment's database.

The Plan action before it (``executor.handler``: a Lambda job with ``{"action": "plan"}``, or a
fleet's plan report job) answers with output variables in its namespace; the approval's custom
data shows them resolved (``#{Plan-production.pending}`` ...) and its link opens the full plan
report it wrote to S3.  A plan that found drift or a refusal fails before this action, so nobody is
asked to approve what cannot run.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline.inlined_buildspec import BUNDLE_SHA_VARIABLE

CUSTOM_DATA_MAX = 500  # characters, before the variables are resolved


class ApprovalGate(Construct):
    """A manual approval that tells the approver what will run where.  Exposes ``action``,
    ``custom_data`` and ``link``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: str,
        plan_namespace: str,
        fleet: bool,
        topic: sns.ITopic,
        source_namespace: str,
        validate_namespace: str,
        validate_exports: tuple[str, ...],
        timeout: Duration,
        run_order: int,
    ) -> None:
        super().__init__(scope, construct_id)
        where = f"on #{{{plan_namespace}.targets}} databases" if fleet else "on its database"
        bundle = "Bundle"
        if BUNDLE_SHA_VARIABLE in validate_exports:
            bundle += f" #{{{validate_namespace}.{BUNDLE_SHA_VARIABLE}}}"
        self.custom_data = (
            f"{environment}: planned {where}: #{{{plan_namespace}.pending}} migration(s) pending, drift "
            f"#{{{plan_namespace}.drift}}. #{{{plan_namespace}.summary}} {bundle}, commit "
            f"#{{{source_namespace}.CommitId}}. The link opens the full plan. Approving applies exactly "
            f"this bundle to {environment}."
        )
        if len(self.custom_data) > CUSTOM_DATA_MAX:
            raise ValueError(
                f"approval custom data is {len(self.custom_data)} characters: {self.custom_data}"
            )
        self.link = f"#{{{plan_namespace}.plan_report_link}}"
        self.action = actions.ManualApprovalAction(
            action_name="Approve",
            notification_topic=topic,
            additional_information=self.custom_data,
            external_entity_link=self.link,
            timeout=timeout,
            run_order=run_order,
        )
