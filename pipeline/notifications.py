"""The one SNS topic people subscribe to: approvals, executor results and alarms."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

# Services that publish to the topic on our behalf and therefore need the topic's key.
_PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


class NotificationTopic(Construct):
    """An encrypted, TLS-only topic with email subscriptions.  Exposes ``topic`` and ``key``."""

    def __init__(self, scope: Construct, construct_id: str, *, emails: Sequence[str]) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="schemagate notifications topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for service in _PUBLISHING_SERVICES:
            self.key.grant(iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="schemagate",
            master_key=self.key,
            enforce_ssl=True,
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
