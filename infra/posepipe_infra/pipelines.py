"""The two paths through the system.

- :class:`ImagePath`: ``image_infer`` (container image) on EventBridge "Object Created" events for
  ``images/`` in the input bucket (and behind ``POST /images``, see :mod:`posepipe_infra.api`).
- :class:`VideoPipeline`: ``video_split`` and ``video_jobs`` (zip + the posepipe layer),
  ``aggregate`` (container image), the state machine from the repository's one ASL file, and the
  EventBridge rule for ``videos/``, whose target ``video_jobs`` starts one execution per upload,
  named from the key and the ETag (EventBridge delivers at least once: a duplicate event finds the
  execution already there).
- :class:`FailureRecords`: the on-failure destination of both paths' asynchronous functions and
  ``failure_records``, which turns what lands there into error records.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as lambda_destinations
from aws_cdk import aws_lambda_event_sources as lambda_event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from posepipe.cloud import deployment

from posepipe_infra.endpoint import InferenceEndpoint
from posepipe_infra.functions import BuiltFunction, Sizing, build_function, posepipe_layer
from posepipe_infra.paths import STATE_MACHINE_DEFINITION
from posepipe_infra.security import acknowledge, allow_listing, allow_objects
from posepipe_infra.settings import DeploymentSettings
from posepipe_infra.storage import (
    ERRORS_PREFIX,
    IMAGES_PREFIX,
    UPLOADS_PREFIX,
    VIDEOS_PREFIX,
    WORK_PREFIX,
    Storage,
)

# From measurement: docs/PERFORMANCE.md, "Lambda sizing".
# One vCPU (1,769 MB) is all most use; render_segment encodes with 2 threads (3,008 MB: about
# 2 vCPUs). /tmp holds the input (split), keypoints.json (aggregate), one segment (render) or the
# annotated video (join).
IMAGE_INFER = Sizing(memory_mb=2048, timeout_s=30)
VIDEO_SPLIT = Sizing(memory_mb=1024, timeout_s=900)  # reads the whole video once, by ranged GETs
AGGREGATE = Sizing(memory_mb=2048, timeout_s=900, ephemeral_mb=10240)
RENDER_SEGMENT = Sizing(memory_mb=3008, timeout_s=900, ephemeral_mb=2048)
JOIN_VIDEO = Sizing(memory_mb=1024, timeout_s=900, ephemeral_mb=10240)
VIDEO_JOBS = Sizing(memory_mb=512, timeout_s=10)
# Detector, pose model, max poses, chunk planning and limits: posepipe.cloud.deployment, the one
# configuration this app and `posepipe serve` both read.
MAX_VIDEO_PIXELS = deployment.MAX_VIDEO_PIXELS
API_MAX_IMAGE_BYTES = deployment.MAX_IMAGE_BYTES


def deployed_resources(
    settings: DeploymentSettings, storage: Storage, endpoint_name: str = "", state_machine_arn: str = ""
) -> deployment.Resources:
    return deployment.Resources(
        input_bucket=storage.input_bucket.bucket_name,
        output_bucket=storage.output_bucket.bucket_name,
        endpoint_name=endpoint_name,
        state_machine_arn=state_machine_arn,
        model_uri=settings.model_uri,
    )


def function_environment(
    name: str, settings: DeploymentSettings, storage: Storage, endpoint_name: str = "",
    state_machine_arn: str = "",
) -> dict[str, str]:  # fmt: skip
    """Function ``name``'s variables (posepipe.cloud.deployment), with this stack's names and limits."""
    limits = deployment.Limits(
        max_video_seconds=settings.max_video_seconds, max_image_pixels=settings.max_image_pixels
    )
    resources = deployed_resources(settings, storage, endpoint_name, state_machine_arn)
    return deployment.function_environment(name, resources, limits, deployment.DEPLOYED)


def allow_model(built: BuiltFunction, settings: DeploymentSettings) -> None:
    """Read ``modelUri``, where one is set."""
    if settings.model_uri:
        bucket_name, key = settings.model_uri[len("s3://") :].split("/", 1)
        bucket = s3.Bucket.from_bucket_name(built.function, "ModelBucket", bucket_name)
        built.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(key)])
        )


def dead_letter_queue(scope: Construct, construct_id: str, settings: DeploymentSettings) -> sqs.Queue:
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
        removal_policy=settings.removal,
    )
    acknowledge(
        queue, "AwsSolutions-SQS3", "this queue is itself the dead-letter queue of an EventBridge rule"
    )
    return queue


def upload_rule(
    scope: Construct,
    construct_id: str,
    *,
    bucket: s3.IBucket,
    prefix: str,
    function: lambda_.IFunction,
    dead_letters: sqs.IQueue,
) -> events.Rule:
    """EventBridge: "Object Created" under ``prefix`` of ``bucket`` -> ``function`` (retried, then DLQ)."""
    return events.Rule(
        scope,
        construct_id,
        description=f"uploads to {prefix} in the input bucket",
        event_pattern=events.EventPattern(
            source=["aws.s3"],
            detail_type=["Object Created"],
            detail={"bucket": {"name": [bucket.bucket_name]}, "object": {"key": [{"prefix": prefix}]}},
        ),
        targets=[
            targets.LambdaFunction(
                function,
                dead_letter_queue=dead_letters,
                retry_attempts=4,
                max_event_age=Duration.hours(6),
            )
        ],
    )


class ImagePath(Construct):
    """``image_infer``: ``function`` (and its ``built`` role and logs), ``rule``, ``dead_letters``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, storage: Storage
    ) -> None:
        super().__init__(scope, construct_id)
        self.built = built = build_function(
            self,
            "ImageInfer",
            name="image_infer",
            settings=settings,
            sizing=IMAGE_INFER,
            environment=function_environment("image_infer", settings, storage),
            description="posepipe: pose estimation of images (S3 uploads to images/ and POST /images)",
        )
        self.function = built.function
        role = built.role
        allow_objects(role, storage.input_bucket, IMAGES_PREFIX, ["s3:GetObject"], "the uploaded images")
        allow_listing(role, storage.input_bucket, [IMAGES_PREFIX])
        allow_objects(
            role, storage.output_bucket, IMAGES_PREFIX, ["s3:PutObject", "s3:GetObject"],
            "pose.json and the annotated image of each image; GetObject signs the annotated image's URL",
        )  # fmt: skip
        allow_objects(
            role, storage.output_bucket, ERRORS_PREFIX, ["s3:PutObject"], "error records of bad images"
        )
        allow_model(built, settings)
        self.dead_letters = dead_letter_queue(self, "DeadLetters", settings)
        self.rule = upload_rule(
            self,
            "Uploads",
            bucket=storage.input_bucket,
            prefix=IMAGES_PREFIX,
            function=self.function,
            dead_letters=self.dead_letters,
        )


class VideoPipeline(Construct):
    """``split``, ``aggregate``, ``render``, ``join``, ``jobs`` (each a BuiltFunction),
    ``state_machine``, ``rule``, ``dead_letters``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploymentSettings,
        storage: Storage,
        endpoint: InferenceEndpoint,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.layer = layer = posepipe_layer(self)
        inputs, outputs = storage.input_bucket, storage.output_bucket

        self.split = split = build_function(
            self,
            "VideoSplit",
            name="video_split",
            settings=settings,
            sizing=VIDEO_SPLIT,
            environment=function_environment("video_split", settings, storage, endpoint.endpoint_name),
            description="posepipe: probes an uploaded video and plans its chunks",
            layer=layer,
        )
        allow_objects(split.role, inputs, VIDEOS_PREFIX, ["s3:GetObject"], "the uploaded videos")
        allow_listing(split.role, inputs, [VIDEOS_PREFIX])
        allow_objects(split.role, outputs, WORK_PREFIX, ["s3:PutObject"], "the chunk manifest of long videos")

        self.aggregate = aggregate = build_function(
            self,
            "Aggregate",
            name="aggregate",
            settings=settings,
            sizing=AGGREGATE,
            environment=function_environment("aggregate", settings, storage, endpoint.endpoint_name),
            description="posepipe: merges chunk results, hands each chunk's final frames to the render Map",
        )
        allow_objects(
            aggregate.role, outputs, WORK_PREFIX, ["s3:GetObject", "s3:PutObject"],
            "the probe and the chunk results; PutObject writes the frames a boundary repair agrees "
            "with, each chunk's final frames and the render Map's items",
        )  # fmt: skip
        aggregate.role.add_to_principal_policy(  # boundary repairs run on the endpoint
            iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"], resources=[endpoint.endpoint_arn])
        )
        allow_listing(aggregate.role, outputs, [WORK_PREFIX])
        allow_objects(
            aggregate.role,
            outputs,
            VIDEOS_PREFIX,
            ["s3:PutObject"],
            "keypoints.json and the motion analysis' files",
        )

        self.render = render = build_function(
            self,
            "RenderSegment",
            name="render_segment",
            settings=settings,
            sizing=RENDER_SEGMENT,
            environment=function_environment("render_segment", settings, storage),
            description="posepipe: draws one segment of the annotated video (the render Map's item)",
        )
        allow_objects(
            render.role, inputs, VIDEOS_PREFIX, ["s3:GetObject"], "the segment's range of the video, ranged"
        )
        allow_objects(
            render.role, outputs, WORK_PREFIX, ["s3:GetObject", "s3:PutObject"],
            "the probe and the chunk's final frames; PutObject writes the segment",
        )  # fmt: skip

        self.join = join = build_function(
            self,
            "JoinVideo",
            name="join_video",
            settings=settings,
            sizing=JOIN_VIDEO,
            environment=function_environment("join_video", settings, storage),
            description="posepipe: joins the segments into annotated.mp4, writes summary.json",
        )
        allow_objects(join.role, inputs, VIDEOS_PREFIX, ["s3:GetObject"], "the video's audio (ranged GETs)")
        allow_objects(
            join.role,
            outputs,
            WORK_PREFIX,
            ["s3:GetObject"],
            "the probe, the aggregate's output, the segments",
        )
        allow_listing(join.role, outputs, [WORK_PREFIX])
        allow_objects(join.role, outputs, VIDEOS_PREFIX, ["s3:PutObject"], "annotated.mp4, summary.json")
        allow_objects(
            join.role, outputs, ERRORS_PREFIX, ["s3:PutObject"], "the record of a job's partial failures"
        )

        self.state_machine = self._state_machine(settings, storage, endpoint)

        self.jobs = jobs = build_function(
            self,
            "VideoJobs",
            name="video_jobs",
            settings=settings,
            sizing=VIDEO_JOBS,
            environment=function_environment(
                "video_jobs", settings, storage, state_machine_arn=self.state_machine.state_machine_arn
            ),
            description="posepipe: starts video jobs on upload; POST /videos and GET /jobs/{id}",
            layer=layer,
        )
        allow_objects(
            jobs.role, inputs, VIDEOS_PREFIX,
            ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts"],
            "PutObject signs the upload URLs of POST /videos (a PUT, or a multipart upload's parts) and "
            "starts and completes multipart uploads; GetObject reads an upload's ETag; "
            "ListMultipartUploadParts tells which parts an upload holds",
        )  # fmt: skip
        allow_listing(jobs.role, inputs, [VIDEOS_PREFIX])
        allow_objects(
            jobs.role, outputs, VIDEOS_PREFIX, ["s3:GetObject"], "a job's results (and their signed URLs)"
        )
        allow_objects(jobs.role, outputs, ERRORS_PREFIX, ["s3:GetObject"], "a failed job's error record")
        allow_objects(
            jobs.role, outputs, UPLOADS_PREFIX, ["s3:PutObject", "s3:GetObject"],
            "POST /videos records the upload slot it issues; GET /jobs/{id} reads it",
        )  # fmt: skip
        # Listing lets a missing object be NoSuchKey rather than AccessDenied (a job not there yet).
        allow_listing(jobs.role, outputs, [VIDEOS_PREFIX, ERRORS_PREFIX, UPLOADS_PREFIX])
        self.state_machine.grant_start_execution(jobs.role)
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        jobs.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions])
        )
        acknowledge(
            jobs.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"{self.state_machine_name}:*]",
            "the executions of the video state machine, one per upload, named at run time (GET /jobs/{id})",
        )

        self.dead_letters = dead_letter_queue(self, "DeadLetters", settings)
        self.rule = upload_rule(
            self,
            "Uploads",
            bucket=inputs,
            prefix=VIDEOS_PREFIX,
            function=jobs.function,
            dead_letters=self.dead_letters,
        )

    def _state_machine(
        self, settings: DeploymentSettings, storage: Storage, endpoint: InferenceEndpoint
    ) -> sfn.StateMachine:
        stack = Stack.of(self)
        self.state_machine_name = name = f"{settings.stack_name}-video"
        role = iam.Role(self, "StateMachineRole", assumed_by=iam.ServicePrincipal("states.amazonaws.com"))
        for built in (self.split, self.aggregate, self.render, self.join):
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"], resources=[built.function.function_arn]
                )
            )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"], resources=[endpoint.endpoint_arn])
        )
        allow_objects(
            role, storage.output_bucket, WORK_PREFIX, ["s3:GetObject"], "the Distributed Maps' manifests"
        )
        allow_objects(
            role, storage.output_bucket, ERRORS_PREFIX, ["s3:PutObject"], "the error record of a failed job"
        )
        own_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        own_executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # The Distributed Map runs its items as child executions of this state machine.
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[own_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"], resources=[own_executions]
            )
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"{name}/*]",
            "the Distributed Map's child executions of this state machine, named by Step Functions",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs vended-log delivery (logs:*LogDelivery, logs:PutResourcePolicy, "
            "logs:Describe*) and X-Ray segments support no resource-level permissions",
        )
        log_group = logs.LogGroup(
            self, "StateMachineLogs", retention=settings.log_retention, removal_policy=settings.removal
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(STATE_MACHINE_DEFINITION)),
            definition_substitutions={
                "VideoSplitFunctionArn": self.split.function.function_arn,
                "AggregateFunctionArn": self.aggregate.function.function_arn,
                "RenderSegmentFunctionArn": self.render.function.function_arn,
                "JoinVideoFunctionArn": self.join.function.function_arn,
                "EndpointName": endpoint.endpoint_name,
                "InputBucket": storage.input_bucket.bucket_name,
                "OutputBucket": storage.output_bucket.bucket_name,
                "ErrorsPrefix": ERRORS_PREFIX,
            },
            role=role,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        return machine


FAILURE_RECORDS = Sizing(memory_mb=256, timeout_s=30)
ASYNC_RETRIES = 2  # Lambda's own retries of a function error, before the on-failure destination


class FailureRecords(Construct):
    """What is left of an upload a function gave up on: ``image_infer``'s and ``video_jobs``'
    asynchronous invocations (EventBridge) retry twice, then go to ``queue`` (their on-failure
    destination), which ``failure_records`` (``built``) reads and turns into error records;
    a message it cannot record goes, after 5 receives, to ``dead_letters``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploymentSettings,
        storage: Storage,
        layer: lambda_.ILayerVersion,
        functions: list[lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = dead_letter_queue(self, "DeadLetters", settings)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            visibility_timeout=Duration.seconds(6 * FAILURE_RECORDS.timeout_s),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=5),
            removal_policy=settings.removal,
        )
        self.built = built = build_function(
            self,
            "FailureRecords",
            name="failure_records",
            settings=settings,
            sizing=FAILURE_RECORDS,
            environment=function_environment("failure_records", settings, storage),
            description="posepipe: error records of the uploads a function gave up on",
            layer=layer,
        )
        allow_objects(
            built.role,
            storage.output_bucket,
            ERRORS_PREFIX,
            ["s3:PutObject"],
            "the lost uploads' error records",
        )
        built.function.add_event_source(
            lambda_event_sources.SqsEventSource(self.queue, batch_size=10, report_batch_item_failures=True)
        )
        for function in functions:
            function.configure_async_invoke(
                on_failure=lambda_destinations.SqsDestination(self.queue),
                retry_attempts=ASYNC_RETRIES,
                max_event_age=Duration.hours(6),
            )
