"""The Lambda functions' common shape: own role, own log group, X-Ray, powertools settings.

Memory, timeout and ephemeral storage come from measurement (docs/PERFORMANCE.md, "Lambda
sizing"). Two kinds of code:
- zip functions (``video_split``, ``video_jobs``): ``functions/<name>/`` plus the posepipe layer;
- the container image (``image_infer``, ``aggregate``, ``render_segment``, ``join_video``):
  MediaPipe, OpenCV and PyAV are over the 250 MB a zip may unpack to, so one image
  (``functions/Dockerfile``) serves them all, by ``CMD``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, IgnoreMode, Size
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from posepipe_infra.layer import LAYER_RUNTIME, layer_code
from posepipe_infra.paths import FUNCTIONS, REPO, docker_ignore_patterns
from posepipe_infra.security import acknowledge, allow_logging, allow_tracing, service_role
from posepipe_infra.settings import DeploymentSettings

FUNCTIONS_DOCKERFILE = "functions/Dockerfile"


@dataclass(frozen=True)
class Sizing:
    memory_mb: int
    timeout_s: int
    ephemeral_mb: int = 512


@dataclass(frozen=True)
class BuiltFunction:
    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup


def posepipe_layer(scope: Construct) -> lambda_.LayerVersion:
    return lambda_.LayerVersion(
        scope,
        "PosepipeLayer",
        code=layer_code(),
        compatible_runtimes=[LAYER_RUNTIME],
        compatible_architectures=[lambda_.Architecture.X86_64],
        description="posepipe (layers/posepipe) with PyAV, NumPy and aws-lambda-powertools",
    )


def functions_image_code(handler: str) -> lambda_.DockerImageCode:
    """The container image of ``functions/Dockerfile`` running ``handler`` (``<function>.app.handler``)."""
    return lambda_.DockerImageCode.from_image_asset(
        str(REPO),
        file=FUNCTIONS_DOCKERFILE,
        exclude=docker_ignore_patterns(FUNCTIONS_DOCKERFILE),
        ignore_mode=IgnoreMode.DOCKER,
        platform=ecr_assets.Platform.LINUX_AMD64,
        cmd=[handler],
    )


def build_function(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    settings: DeploymentSettings,
    sizing: Sizing,
    environment: Mapping[str, str],
    description: str,
    layer: lambda_.ILayerVersion | None = None,
) -> BuiltFunction:
    """``functions/<name>``: a zip with ``layer``, or (no layer) the functions' container image."""
    log_group = logs.LogGroup(
        scope, f"{construct_id}Logs", retention=settings.log_retention, removal_policy=settings.removal
    )
    role = service_role(scope, f"{construct_id}Role", "lambda.amazonaws.com", f"posepipe {name} function")
    allow_logging(role, log_group)
    allow_tracing(role)
    common = {
        "description": description,
        "role": role,
        "log_group": log_group,
        "memory_size": sizing.memory_mb,
        "timeout": Duration.seconds(sizing.timeout_s),
        "ephemeral_storage_size": Size.mebibytes(sizing.ephemeral_mb),
        "tracing": lambda_.Tracing.ACTIVE,
        "architecture": lambda_.Architecture.X86_64,
        "environment": {
            **environment,
        },
    }
    function: lambda_.Function
    if layer is not None:
        function = lambda_.Function(
            scope,
            construct_id,
            runtime=LAYER_RUNTIME,
            handler="app.handler",
            code=lambda_.Code.from_asset(
                str(FUNCTIONS / name), exclude=["__pycache__", "*.pyc", "README.md"]
            ),
            layers=[layer],
            **common,  # type: ignore[arg-type]
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            f"{LAYER_RUNTIME.name}, not the newest runtime: the layer's binary wheels (PyAV, NumPy,"
            " pydantic-core) are built and tested for it (tests/integration/test_layer_runtime.py runs these"
            " functions from the staged assets under that CPython); same Amazon Linux 2023 and glibc",
        )
    else:
        function = lambda_.DockerImageFunction(
            scope,
            construct_id,
            code=functions_image_code(f"{name}.app.handler"),
            **common,  # type: ignore[arg-type]
        )
    return BuiltFunction(function=function, role=role, log_group=log_group)
