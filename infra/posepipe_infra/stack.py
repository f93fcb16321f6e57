"""``PosepipeStack``: the whole system in one stack, one construct per part.

| construct | module | what |
|---|---|---|
| ``Storage`` | ``storage.py`` | input, output and access-log buckets |
| ``Endpoint`` | ``endpoint.py`` | the SageMaker model, endpoint and autoscaling |
| ``Images`` | ``pipelines.py`` | ``image_infer`` and the ``images/`` upload rule |
| ``Videos`` | ``pipelines.py`` | the video functions, the state machine, the ``videos/`` rule |
| ``Failures`` | ``pipelines.py`` | the functions' on-failure queue and ``failure_records`` |
| ``Api`` | ``api.py`` | the REST API, usage plan and WAF |
| ``Monitoring`` | ``monitoring.py`` | the dashboard, the alarms and their topic |
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from posepipe_infra.api import Api
from posepipe_infra.endpoint import InferenceEndpoint
from posepipe_infra.monitoring import Monitoring
from posepipe_infra.pipelines import FailureRecords, ImagePath, VideoPipeline
from posepipe_infra.settings import DeploymentSettings
from posepipe_infra.storage import Storage


class PosepipeStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="posepipe: human pose estimation of images and videos (docs/DEPLOY.md)",
            **kwargs,
        )
        self.settings = settings
        self.storage = Storage(self, "Storage", settings=settings)
        self.endpoint = InferenceEndpoint(self, "Endpoint", settings=settings, storage=self.storage)
        self.images = ImagePath(self, "Images", settings=settings, storage=self.storage)
        self.videos = VideoPipeline(
            self, "Videos", settings=settings, storage=self.storage, endpoint=self.endpoint
        )
        self.failures = FailureRecords(
            self, "Failures", settings=settings, storage=self.storage, layer=self.videos.layer,
            functions=[self.images.function, self.videos.jobs.function],
        )  # fmt: skip
        self.api = Api(
            self,
            "Api",
            settings=settings,
            image_function=self.images.function,
            video_jobs_function=self.videos.jobs.function,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            state_machine=self.videos.state_machine,
            endpoint=self.endpoint,
            functions=[
                ("image_infer", self.images.built),
                ("video_split", self.videos.split),
                ("aggregate", self.videos.aggregate),
                ("render_segment", self.videos.render),
                ("join_video", self.videos.join),
                ("video_jobs", self.videos.jobs),
                ("failure_records", self.failures.built),
            ],
            api=self.api.api,
            dead_letter_queues=[
                ("Images", self.images.dead_letters),
                ("Videos", self.videos.dead_letters),
                ("FailureRecords", self.failures.dead_letters),
            ],
        )
        outputs = {
            "InputBucket": self.storage.input_bucket.bucket_name,
            "OutputBucket": self.storage.output_bucket.bucket_name,
            "ApiUrl": self.api.api.url,
            "StateMachineArn": self.videos.state_machine.state_machine_arn,
            "EndpointName": self.endpoint.endpoint_name,
            "DashboardName": self.monitoring.dashboard.dashboard_name,
            "AlarmTopicArn": self.monitoring.topic.topic_arn,
        }
        if self.api.api_key is not None:
            outputs["ApiKeyId"] = self.api.api_key.key_id
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
