"""What the team looks at: alarms into the notification topic, and one dashboard."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

# The executor's embedded-metric-format metrics (coordinated with executor/handler.py).
NAMESPACE = "schemagate"
MIGRATIONS_APPLIED = "MigrationsApplied"
DURATION = "Duration"
FAILURES = "Failures"
FAILURE_DIMENSION = "Category"
_PERIOD = Duration.minutes(5)


def _search(metric_name: str, statistic: str, label: str) -> cloudwatch.MathExpression:
    """Every series of one executor metric, whatever extra dimensions (service) it carries."""
    return cloudwatch.MathExpression(
        expression=(
            f"SEARCH('Namespace=\"{NAMESPACE}\" MetricName=\"{metric_name}\"', '{statistic}', "
            f"{int(_PERIOD.to_seconds())})"
        ),
        label=label,
        period=_PERIOD,
        using_metrics={},
    )


class Monitoring(Construct):
    """Alarms on each environment's executor errors and on pipeline failures (to ``topic``), and a
    dashboard.

    ``functions``: environment name -> executor function.  Exposes ``executor_errors_alarms``,
    ``executor_throttles_alarms``, ``pipeline_failed_rule`` and ``dashboard``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        pipeline: codepipeline.IPipeline,
        topic: sns.ITopic,
        dashboard_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        alarm_action = cloudwatch_actions.SnsAction(topic)

        def alarm_on_any(alarm_id: str, description: str, metric: cloudwatch.IMetric) -> cloudwatch.Alarm:
            """An alarm to the topic as soon as the metric's sum over a period reaches 1."""
            alarm = cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_description=description,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(alarm_action)
            return alarm

        self.executor_errors_alarms: dict[str, cloudwatch.Alarm] = {}
        self.executor_throttles_alarms: dict[str, cloudwatch.Alarm] = {}
        for name, function in functions.items():
            suffix = "" if len(functions) == 1 else name
            self.executor_errors_alarms[name] = alarm_on_any(
                f"ExecutorErrors{suffix}",
                f"The schemagate executor Lambda of {name} failed (an exception, a timeout or a crash).",
                function.metric_errors(period=_PERIOD, statistic="Sum"),
            )
            self.executor_throttles_alarms[name] = alarm_on_any(
                f"ExecutorThrottled{suffix}",
                f"A schemagate execution in {name} was throttled (the account's concurrency limit).",
                function.metric_throttles(period=_PERIOD, statistic="Sum"),
            )
        # CodePipeline publishes no failure metric; its state-change event is the alarm.
        self.pipeline_failed_rule = pipeline.on_state_change(
            "PipelineFailed",
            description="schemagate: a pipeline execution failed",
            event_pattern=events.EventPattern(detail={"state": ["FAILED"]}),
            target=targets.SnsTopic(
                topic,
                message=events.RuleTargetInput.from_text(
                    f"schemagate pipeline {events.EventField.from_path('$.detail.pipeline')} execution "
                    f"{events.EventField.from_path('$.detail.execution-id')} FAILED. "
                    "Open the pipeline in the CodePipeline console for the failing action and its log."
                ),
            ),
        )
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=dashboard_name, default_interval=Duration.days(7)
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                left=[
                    metric
                    for name, function in functions.items()
                    for metric in (
                        function.metric_invocations(period=_PERIOD, statistic="Sum", label=f"{name} runs"),
                        function.metric_errors(period=_PERIOD, statistic="Sum", label=f"{name} errors"),
                        function.metric_throttles(period=_PERIOD, statistic="Sum", label=f"{name} throttled"),
                    )
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Migrations applied",
                left=[_search(MIGRATIONS_APPLIED, "Sum", "migrations applied")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Durations",
                left=[_search(DURATION, "Average", "apply duration (avg)")],
                right=[
                    function.metric_duration(period=_PERIOD, statistic="Maximum", label=f"{name} Lambda max")
                    for name, function in functions.items()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Failures by category",
                left=[_search(FAILURES, "Sum", "")],
                stacked=True,
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms",
                alarms=[*self.executor_errors_alarms.values(), *self.executor_throttles_alarms.values()],
                width=24,
            )
        )
