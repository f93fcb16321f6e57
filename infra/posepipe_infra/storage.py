"""The buckets: inputs (``images/``, ``videos/``), outputs (results, ``errors/``, ``work/``) and
their server access logs. Encrypted, TLS only, public access blocked; removal per settings."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

# The buckets' layout, from the one configuration (re-exported for the other constructs).
from posepipe.cloud.deployment import ERRORS_PREFIX as ERRORS_PREFIX
from posepipe.cloud.deployment import IMAGES_PREFIX as IMAGES_PREFIX
from posepipe.cloud.deployment import UPLOADS_PREFIX as UPLOADS_PREFIX
from posepipe.cloud.deployment import VIDEOS_PREFIX as VIDEOS_PREFIX
from posepipe.cloud.deployment import WORK_PREFIX as WORK_PREFIX

from posepipe_infra.security import acknowledge
from posepipe_infra.settings import DeploymentSettings

ACCESS_LOG_DAYS = 365


class Storage(Construct):
    """``input_bucket``, ``output_bucket`` and ``access_logs``."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings) -> None:
        super().__init__(scope, construct_id)
        removal = settings.removal
        destroy = removal == RemovalPolicy.DESTROY
        common = {
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "enforce_ssl": True,
            "minimum_tls_version": 1.2,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            "removal_policy": removal,
            "auto_delete_objects": destroy,
        }
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(ACCESS_LOG_DAYS))
            ],
            **common,  # type: ignore[arg-type]
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "the server access log bucket of the input and output buckets; logging it would log itself",
        )
        abort_uploads = s3.LifecycleRule(
            id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
        )
        self.input_bucket = s3.Bucket(
            self,
            "Input",
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="input/",
            lifecycle_rules=[
                abort_uploads,
                s3.LifecycleRule(
                    id="expire-replaced-inputs", noncurrent_version_expiration=Duration.days(30)
                ),
            ],
            **common,  # type: ignore[arg-type]
        )
        # S3 -> EventBridge, set on the bucket itself (CloudFormation supports it): the L2's
        # event_bridge_enabled would add a custom-resource Lambda with a managed policy.
        input_resource = self.input_bucket.node.default_child
        assert isinstance(input_resource, s3.CfnBucket)
        input_resource.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )
        self.output_bucket = s3.Bucket(
            self,
            "Output",
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="output/",
            lifecycle_rules=[
                abort_uploads,
                s3.LifecycleRule(
                    id="expire-work", prefix=WORK_PREFIX, expiration=Duration.days(settings.work_expiry_days)
                ),
            ],
            **common,  # type: ignore[arg-type]
        )
