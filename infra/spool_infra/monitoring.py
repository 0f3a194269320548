"""Monitoring: alarms that mean "an operator should look" and one dashboard of the event flow.

Alarms go to an SNS topic (subscribe an address with context `alarmEmail`, or anything else by hand):
- DLQ depth > 0: accepted events stopped being retried; they wait for a redrive;
- age of the oldest ingest message: deliveries are stuck or retrying for long;
- sink or api errors: an invocation failed as a whole (not one endpoint's delivery, which is a metric);
- API 5xx: the SPEC allows none.
The dashboard shows the Powertools metrics (namespace Spool, dimension `service`) next to the queues,
the functions and the API.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from spool import names as shared
from spool_infra.api import Api
from spool_infra.ingest import IngestSink
from spool_infra.settings import Settings

PERIOD = Duration.minutes(5)


def _spool_metric(name: str, service: str, label: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=shared.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=cloudwatch.Stats.SUM,
        period=PERIOD,
        label=label,
    )


class Monitoring(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, api: Api, ingest: IngestSink
    ) -> None:
        super().__init__(scope, construct_id)

        # Alarm notifications carry alarm names and states only, so the topic is not KMS-encrypted (CloudWatch
        # cannot publish to a topic under the AWS managed SNS key); publishers must use TLS.
        self.topic = sns.Topic(self, "AlarmTopic", display_name=f"Spool {settings.stage} alarms", enforce_ssl=True)
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))

        self.alarms = [
            self._alarm(
                "DlqNotEmpty",
                ingest.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)),
                threshold=0,
                description="Events moved to the DLQ after maxReceiveCount failed deliveries. Fix the "
                "endpoint (lastError in its status), then redrive with the admin CLI.",
            ),
            self._alarm(
                "OldestMessageAge",
                ingest.queue.metric_approximate_age_of_oldest_message(
                    period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
                ),
                threshold=settings.oldest_message_alarm_seconds,
                evaluation_periods=5,
                description="The oldest ingest message is older than expected: a store keeps failing or "
                "the sink cannot keep up (check DeliveryFailures, sink errors and throttles).",
            ),
            self._function_errors_alarm("SinkErrors", ingest.sink.function),
            self._function_errors_alarm("ApiErrors", api.handler.function),
            self._alarm(
                "Api5xx",
                api.http_api.metric_server_error(period=PERIOD, statistic=cloudwatch.Stats.SUM),
                threshold=0,
                description="The API answered 5xx (the contract allows none: bad input is a 4xx). Look at "
                "the access log and the api function's log.",
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(self.topic))

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", default_interval=Duration.hours(3), period_override=cloudwatch.PeriodOverride.AUTO
        )
        self._build_dashboard(api, ingest)

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # No data means no traffic (or an empty queue), which is healthy.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )

    def _function_errors_alarm(self, construct_id: str, fn: lambda_.Function) -> cloudwatch.Alarm:
        return self._alarm(
            construct_id,
            fn.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM),
            threshold=0,
            description=f"{construct_id}: invocations failed as a whole (a crash or a timeout); failed "
            "endpoint deliveries do not count here. Look at the function's log.",
        )

    def _build_dashboard(self, api: Api, ingest: IngestSink) -> None:
        sink_fn, api_fn = ingest.sink.function, api.handler.function
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Events in and written",
                left=[
                    _spool_metric(shared.METRIC_EVENTS_ACCEPTED, shared.API_FUNCTION.service, "accepted (api)"),
                    _spool_metric(shared.METRIC_EVENTS_WRITTEN, shared.SINK_FUNCTION.service, "written (sink)"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Objects written, held back, failed deliveries",
                left=[_spool_metric(shared.METRIC_OBJECTS_WRITTEN, shared.SINK_FUNCTION.service, "objects written")],
                right=[
                    _spool_metric(shared.METRIC_HELD_BACK, shared.SINK_FUNCTION.service, "held back (events)"),
                    _spool_metric(shared.METRIC_DELIVERY_FAILURES, shared.SINK_FUNCTION.service, "failed (events)"),
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ingest queue and DLQ",
                left=[
                    ingest.queue.metric_approximate_number_of_messages_visible(label="ingest visible"),
                    ingest.queue.metric_approximate_number_of_messages_not_visible(label="ingest in flight/held"),
                    ingest.dlq.metric_approximate_number_of_messages_visible(label="DLQ"),
                ],
                right=[
                    ingest.queue.metric_approximate_age_of_oldest_message(
                        label="oldest ingest message (s)", statistic=cloudwatch.Stats.MAXIMUM
                    )
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    api.http_api.metric_count(label="requests", statistic=cloudwatch.Stats.SUM),
                    api.http_api.metric_client_error(label="4xx", statistic=cloudwatch.Stats.SUM),
                    api.http_api.metric_server_error(label="5xx", statistic=cloudwatch.Stats.SUM),
                ],
                right=[api.http_api.metric_latency(label="latency p99", statistic="p99")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Functions: errors and throttles",
                left=[
                    sink_fn.metric_errors(label="sink errors", statistic=cloudwatch.Stats.SUM),
                    api_fn.metric_errors(label="api errors", statistic=cloudwatch.Stats.SUM),
                    sink_fn.metric_throttles(label="sink throttles", statistic=cloudwatch.Stats.SUM),
                    api_fn.metric_throttles(label="api throttles", statistic=cloudwatch.Stats.SUM),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Functions: duration p99",
                left=[
                    sink_fn.metric_duration(label="sink", statistic="p99"),
                    api_fn.metric_duration(label="api", statistic="p99"),
                ],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24),
        )
