"""cdk-nag (v3: a CDK policy-validation plugin) and how we acknowledge its findings.

Every acknowledgment carries a reason.  Granular findings use the ``RuleId[FindingId]`` form,
e.g. ``AwsSolutions-IAM5[Resource::*]``, so acknowledging one wildcard never hides another.
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, App, CfnElement, CfnResource, Stack, Token, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def check_app(app: App) -> None:
    """Run the AwsSolutions pack on every synth; unacknowledged findings fail synthesis."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    if not reason.strip():
        raise ValueError(f"acknowledging {rule_id} needs a reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def cfn_resource(construct: IConstruct) -> CfnResource:
    """The CloudFormation resource an L2 construct wraps (its ``node.default_child``)."""
    child = construct.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{construct.node.path} wraps no CloudFormation resource of its own")
    return child


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id cdk-nag uses in finding ids, e.g. ``<Bucket83908E77.Arn>``."""
    element = construct if isinstance(construct, CfnElement) else cfn_resource(construct)
    return Stack.of(construct).get_logical_id(element)


# What CDK's grant helpers emit: prefix wildcards on actions, scoped to one bucket / one key.
_S3_GRANT_ACTIONS = ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")
_KMS_GRANT_ACTIONS = ("kms:GenerateDataKey*", "kms:ReEncrypt*")


def acknowledge_artifact_grants(scope: IConstruct, *, bucket: IConstruct, who: str) -> None:
    """CDK's read/write grants on the artifact bucket and its key, for ``who``."""
    for action in _S3_GRANT_ACTIONS:
        acknowledge(
            scope,
            f"AwsSolutions-IAM5[Action::{action}]",
            f"CDK's artifact-bucket grant for {who}: object actions on the one artifact bucket only.",
        )
    acknowledge(
        scope,
        f"AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/*]",
        f"{who} reads/writes pipeline artifacts, whose object keys CodePipeline generates per execution.",
    )
    acknowledge_key_grants(scope, who=who)


def acknowledge_key_grants(scope: IConstruct, *, who: str) -> None:
    for action in _KMS_GRANT_ACTIONS:
        acknowledge(
            scope,
            f"AwsSolutions-IAM5[Action::{action}]",
            f"CDK's KMS grant for {who}: data-key actions, scoped to the one key resource.",
        )


def _arn_prefix(scope: IConstruct, service: str) -> str:
    """``arn:<partition>:<service>:<region>:<account>`` as cdk-nag renders it for this stack.

    An environment-agnostic stack shows pseudo parameters (``<AWS::Region>``); a stack with a
    concrete region or account shows the value.
    """
    stack = Stack.of(scope)

    def shown(value: str, pseudo: str) -> str:
        return f"<{pseudo}>" if Token.is_unresolved(value) else value

    return ":".join(
        (
            "arn",
            shown(stack.partition, "AWS::Partition"),
            service,
            shown(stack.region, "AWS::Region"),
            shown(stack.account, "AWS::AccountId"),
        )
    )


def _shown(value: str, pseudo: str) -> str:
    return f"<{pseudo}>" if Token.is_unresolved(value) else value


def finding_partition(scope: IConstruct) -> str:
    return _shown(Stack.of(scope).partition, "AWS::Partition")


def token_arn_part(construct: IConstruct, index: int) -> str:
    """How cdk-nag shows part ``index`` of an ARN CDK split out of a ``Ref`` (a state machine's)."""
    ref = json.dumps({"Ref": logical_id(construct)}, separators=(",", ":"))
    return f'{{"Fn::Select":[{index},{{"Fn::Split":[":",{ref}]}}]}}'


def acknowledge_state_machine_grants(scope: IConstruct, state_machine: IConstruct, *, who: str) -> None:
    """CDK's grants on a state machine's executions (the pipeline's Step Functions action, the
    Distributed Map's own role), as cdk-nag renders them from the state machine's ARN."""
    name = token_arn_part(state_machine, 6)
    region_account = _arn_prefix(scope, "states")
    from_arn = ":".join(
        (
            "arn",
            token_arn_part(state_machine, 1),
            "states",
            token_arn_part(state_machine, 3),
            token_arn_part(state_machine, 4),
        )
    )
    for resource in (
        f"{from_arn}:execution:{name}:*",
        f"{region_account}:execution:{name}:*",
        f"{region_account}:execution:{name}/*:*",
    ):
        acknowledge(
            scope,
            f"AwsSolutions-IAM5[Resource::{resource}]",
            f"{who}: the executions of this one state machine (their ids are made at run time).",
        )


def acknowledge_asset_reads(scope: IConstruct, *, who: str) -> None:
    """Reading a CDK file asset: objects of the bootstrap assets bucket."""
    stack = Stack.of(scope)
    qualifier = stack.node.try_get_context("@aws-cdk/core:bootstrapQualifier") or "hnb659fds"
    account, region = _shown(stack.account, "AWS::AccountId"), _shown(stack.region, "AWS::Region")
    bucket = f"cdk-{qualifier}-assets-{account}-{region}"
    acknowledge(
        scope,
        f"AwsSolutions-IAM5[Resource::arn:{finding_partition(scope)}:s3:::{bucket}/*]",
        f"{who} reads a deploy-time asset (the schemagate wheel); CDK grants read on the assets bucket's "
        "objects (the key is the asset's hash).",
    )


def finding_arn(scope: IConstruct, service: str, resource: str) -> str:
    """An ARN the way a cdk-nag finding id shows it (``arn:<AWS::Partition>:ssm:<AWS::Region>:...``)."""
    return f"{_arn_prefix(scope, service)}:{resource}"


def acknowledge_codebuild_defaults(scope: IConstruct, *, project: IConstruct) -> None:
    """CodeBuild's default log-stream and report-group permissions, named after the project."""
    project_id = logical_id(project)
    log_streams = f"{_arn_prefix(scope, 'logs')}:log-group:/aws/codebuild/<{project_id}>:*"
    acknowledge(
        scope,
        f"AwsSolutions-IAM5[Resource::{log_streams}]",
        "CDK's default CodeBuild logging grant: streams of this project's own log group.",
    )
    acknowledge(
        scope,
        f"AwsSolutions-IAM5[Resource::{_arn_prefix(scope, 'codebuild')}:report-group/<{project_id}>-*]",
        "CDK's default CodeBuild report grant: report groups named after this project only.",
    )
