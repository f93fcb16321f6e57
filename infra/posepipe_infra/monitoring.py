"""The dashboard and the alarms.

Dashboard: pipeline executions and failures, chunk latency (the endpoint's model latency per
invocation: one invocation is one chunk) and invocations, the Lambdas' errors and durations, the
API, and posepipe's own metrics (powertools EMF, namespace ``posepipe``). Alarms, to an SNS topic
(``alarmEmail`` subscribes an address): failed or timed-out executions, endpoint errors, Lambda
errors, and events in the dead-letter queues.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from posepipe_infra.endpoint import VARIANT, InferenceEndpoint
from posepipe_infra.functions import BuiltFunction
from posepipe_infra.security import acknowledge
from posepipe_infra.settings import DeploymentSettings

NAMESPACE = "posepipe"
PERIOD = Duration.minutes(5)
WIDTH = 8


def posepipe_metric(name: str, service: str, statistic: str = "Sum") -> cloudwatch.Metric:
    """A powertools metric (EMF): namespace ``posepipe``, dimension ``service``."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=PERIOD,
    )


class Monitoring(Construct):
    """``dashboard``, ``topic`` and ``alarms``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploymentSettings,
        state_machine: sfn.StateMachine,
        endpoint: InferenceEndpoint,
        functions: Sequence[tuple[str, BuiltFunction]],
        api: apigw.RestApi,
        dead_letter_queues: Sequence[tuple[str, sqs.IQueue]],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Alarms", display_name="posepipe alarms", enforce_ssl=True)
        acknowledge(
            self.topic,
            "AwsSolutions-SNS2",
            "alarm notifications carry alarm names and thresholds only; CloudWatch cannot publish to a topic "
            "encrypted with the AWS-managed SNS key",
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))

        def endpoint_metric(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name=name,
                dimensions_map={"EndpointName": endpoint.endpoint_name, "VariantName": VARIANT},
                statistic=statistic,
                period=PERIOD,
            )

        failed = state_machine.metric_failed(period=PERIOD, statistic="Sum")
        timed_out = state_machine.metric_timed_out(period=PERIOD, statistic="Sum")
        endpoint_errors = cloudwatch.MathExpression(
            expression="e4 + e5",
            using_metrics={
                "e4": endpoint_metric("Invocation4XXErrors"),
                "e5": endpoint_metric("Invocation5XXErrors"),
            },
            label="endpoint errors",
            period=PERIOD,
        )
        self.alarms: list[cloudwatch.Alarm] = [
            self._alarm("ExecutionsFailed", failed, "a video job failed (see errors/ in the output bucket)"),
            self._alarm("ExecutionsTimedOut", timed_out, "a video job timed out"),
            self._alarm("EndpointErrors", endpoint_errors, "the pose endpoint answered errors"),
        ]
        for name, built in functions:
            self.alarms.append(
                self._alarm(
                    f"{_title(name)}Errors", built.function.metric_errors(period=PERIOD), f"{name} failed"
                )
            )
        for name, queue in dead_letter_queues:
            self.alarms.append(
                self._alarm(
                    f"{name}DeadLetters",
                    queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                    f"the {name} dead-letter queue holds messages: upload events not delivered, "
                    "or failures not recorded",
                )
            )

        dashboard = self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{settings.stack_name}-pipeline"
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Video jobs (executions)",
                left=[
                    state_machine.metric_started(period=PERIOD, statistic="Sum"),
                    state_machine.metric_succeeded(period=PERIOD, statistic="Sum"),
                    failed,
                    timed_out,
                ],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Video job duration (ms)",
                left=[
                    state_machine.metric_time(period=PERIOD, statistic="p50"),
                    state_machine.metric_time(period=PERIOD, statistic="p90"),
                ],
                width=WIDTH,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=WIDTH),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Chunk latency on the endpoint (µs)",
                left=[
                    endpoint_metric("ModelLatency", "p50"),
                    endpoint_metric("ModelLatency", "p90"),
                    endpoint_metric("OverheadLatency", "p90"),
                ],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Endpoint invocations",
                left=[
                    endpoint_metric("Invocations"),
                    endpoint_metric("ConcurrentRequestsPerModel", "Maximum"),
                ],
                right=[endpoint_metric("Invocation4XXErrors"), endpoint_metric("Invocation5XXErrors")],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Endpoint instances (GPU and CPU %)",
                left=[
                    cloudwatch.Metric(
                        namespace="/aws/sagemaker/Endpoints",
                        metric_name=metric,
                        dimensions_map={"EndpointName": endpoint.endpoint_name, "VariantName": VARIANT},
                        statistic="Average",
                        period=PERIOD,
                    )
                    for metric in ("GPUUtilization", "CPUUtilization", "GPUMemoryUtilization")
                ],
                width=WIDTH,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors",
                left=[built.function.metric_errors(period=PERIOD, label=name) for name, built in functions],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration p90 (ms)",
                left=[
                    built.function.metric_duration(period=PERIOD, statistic="p90", label=name)
                    for name, built in functions
                ],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="API",
                left=[
                    api.metric_count(period=PERIOD),
                    api.metric_client_error(period=PERIOD),
                    api.metric_server_error(period=PERIOD),
                ],
                right=[api.metric_latency(period=PERIOD, statistic="p90")],
                width=WIDTH,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Images (posepipe metrics)",
                left=[
                    posepipe_metric("InferenceMs", "image_infer", "p90"),
                    posepipe_metric("Persons", "image_infer"),
                ],
                right=[posepipe_metric("Errors", "image_infer")],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Videos (posepipe metrics)",
                left=[
                    posepipe_metric("VideoSeconds", "posepipe"),
                    posepipe_metric("Chunks", "posepipe"),
                    posepipe_metric("Frames", "posepipe"),
                ],
                right=[
                    posepipe_metric("RejectedVideos", "posepipe"),
                    posepipe_metric("FailedChunks", "posepipe"),
                    posepipe_metric("BoundaryRepairs", "posepipe"),
                ],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Video jobs started (posepipe metrics)",
                left=[
                    posepipe_metric("VideoJobsStarted", "video_jobs"),
                    posepipe_metric("DuplicateVideoEvents", "video_jobs"),
                ],
                width=WIDTH,
            ),
        )

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        return alarm


def _title(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))
