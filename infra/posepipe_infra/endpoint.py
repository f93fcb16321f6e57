"""The SageMaker real-time endpoint that runs the chunks: model, endpoint config, endpoint and
autoscaling on the requests in flight per instance (the endpoint's backlog).

The image is ``sagemaker_endpoint/Dockerfile`` (built by ``cdk deploy``, never by ``cdk synth``).
The models are the ones built into the image, or ``modelUri``: a ``model.tar.gz`` that
``posepipe models pack`` (``make synth``) makes, the detector, the pose model and MoveNet with a
manifest of their sha256 sums, which SageMaker unpacks into ``/opt/ml/model`` and the endpoint
checks file by file before it answers ``/ping``. The execution role reads
``videos/`` in the input bucket and writes the work prefix of the output bucket, nothing more
(plus pulling its image and writing its logs and metrics, as every SageMaker container must).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Fn, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct
from posepipe.cloud import deployment

from posepipe_infra.paths import REPO, docker_ignore_patterns
from posepipe_infra.security import acknowledge, allow_objects, service_role
from posepipe_infra.settings import DeploymentSettings
from posepipe_infra.storage import VIDEOS_PREFIX, WORK_PREFIX, Storage

ENDPOINT_DOCKERFILE = "sagemaker_endpoint/Dockerfile"
VARIANT = "AllTraffic"
# Instance families whose storage is local NVMe: SageMaker refuses a KMS key for their volume
# (they have no EBS volume to encrypt; instance storage is encrypted by the hardware).
LOCAL_STORAGE_FAMILIES = frozenset(
    {
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "p3dn",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "m5d",
        "c5d",
        "r5d",
        "inf2",
        "trn1",
    }
)
# The instance's NVIDIA driver: 550, CUDA 12.4 (SageMaker's newest inference AMI). The image
# installs PyTorch's CUDA 12.8 build, which runs on it by CUDA's minor-version compatibility (any
# 12.x runtime on a driver of 525 or later); PyPI's default torch wheel is built for CUDA 13, which
# needs driver 580 (sagemaker_endpoint/Dockerfile, docs/DEPLOY.md).
INFERENCE_AMI_VERSION = "al2-ami-sagemaker-inference-gpu-3-1"


def instance_family(instance_type: str) -> str:
    return instance_type.split(".")[1]


class InferenceEndpoint(Construct):
    """``endpoint_name`` (a token), ``endpoint`` and ``role``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, storage: Storage
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        name = f"{settings.stack_name}-pose"
        image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(REPO),
            file=ENDPOINT_DOCKERFILE,
            exclude=docker_ignore_patterns(ENDPOINT_DOCKERFILE),
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        self.role = role = service_role(self, "Role", "sagemaker.amazonaws.com", "posepipe pose endpoint")
        image.repository.grant_pull(role)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken (pulling the endpoint image) and cloudwatch:PutMetricData support "
            "no resource-level permissions; the metrics are limited to SageMaker's namespace by condition",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}},
            )
        )
        log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"/aws/sagemaker/Endpoints/{name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[log_group_arn],
            )
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            f"/aws/sagemaker/Endpoints/{name}:*]",
            "the endpoint's own log group, whose streams SageMaker names per instance",
        )
        allow_objects(
            role, storage.input_bucket, VIDEOS_PREFIX, ["s3:GetObject"], "the videos the chunks come from"
        )
        allow_objects(
            role, storage.output_bucket, WORK_PREFIX, ["s3:PutObject", "s3:GetObject"],
            "each chunk's result; GetObject reads the earlier result a boundary repair agrees with",
        )  # fmt: skip

        container: dict[str, object] = {
            "image": image.image_uri,
            # posepipe.cloud.deployment: the same variables `posepipe serve` gives its endpoint
            "environment": deployment.endpoint_environment(deployment.DEPLOYED),
        }
        if settings.model_uri:
            container["model_data_url"] = settings.model_uri
            bucket_name, key = settings.model_uri[len("s3://") :].split("/", 1)
            model_bucket = s3.Bucket.from_bucket_name(self, "ModelBucket", bucket_name)
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[model_bucket.arn_for_objects(key)])
            )
        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(**container),  # type: ignore[arg-type]
        )
        # The endpoint pulls the image and reads the model as the model is created: policy first.
        policy = role.node.try_find_child("DefaultPolicy")
        assert policy is not None
        model.node.add_dependency(policy)
        acknowledge(
            model,
            "AwsSolutions-SM1",
            "the model reaches S3 and ECR over TLS with SigV4 through their public endpoints; this stack "
            "creates no VPC (attach one with VpcConfig where a network boundary is required)",
        )
        variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=VARIANT,
            model_name=model.attr_model_name,
            initial_instance_count=settings.min_endpoint_instances,
            instance_type=settings.instance_type,
            initial_variant_weight=1.0,
            inference_ami_version=INFERENCE_AMI_VERSION,
        )
        config = sagemaker.CfnEndpointConfig(self, "Config", production_variants=[variant])
        if instance_family(settings.instance_type) in LOCAL_STORAGE_FAMILIES:
            acknowledge(
                config,
                "AwsSolutions-SM2",
                f"{settings.instance_type} stores on local NVMe instance storage, which SageMaker refuses a "
                "KMS key for; instance storage is encrypted at rest by the hardware",
            )
        else:
            volume_key = kms.Key(self, "VolumeKey", enable_key_rotation=True, removal_policy=settings.removal)
            # SageMaker encrypts the volume through a grant made by the deployer's CreateEndpoint call;
            # the execution role needs no key permissions.
            config.kms_key_id = volume_key.key_arn
        self.endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint", endpoint_config_name=config.attr_endpoint_config_name, endpoint_name=name
        )
        self.endpoint_name = self.endpoint.attr_endpoint_name
        self.endpoint_arn = stack.format_arn(
            service="sagemaker", resource="endpoint", resource_name=name.lower()
        )

        target = autoscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=Fn.join("", ["endpoint/", self.endpoint_name, f"/variant/{VARIANT}"]),
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=settings.min_endpoint_instances,
            max_capacity=settings.max_endpoint_instances,
            # Application Auto Scaling's service-linked role for SageMaker (created on first use).
            role=iam.Role.from_role_arn(
                self,
                "ScalingRole",
                stack.format_arn(
                    service="iam",
                    region="",
                    resource="role",
                    resource_name="aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                ),
                mutable=False,
            ),
        )
        # The endpoint's real backlog: the requests in flight at each instance's model, measured
        # every 10 s (high resolution). An instance admits as many invocations as its server has
        # threads and refuses the rest at once (503 over_capacity, retried by the state machine),
        # so a concurrency held at the target means the Map is waiting: more instances. Invocations
        # per minute would not see it (a refused invocation is quick, a chunk takes 20 s).
        target.scale_to_track_metric(
            "ConcurrentRequestsPerModel",
            target_value=float(settings.concurrent_requests_per_instance),
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_CONCURRENT_REQUESTS_PER_MODEL_HIGH_RESOLUTION,
            scale_out_cooldown=Duration.minutes(2),
            scale_in_cooldown=Duration.minutes(10),
        )
