"""The deployment's one configuration: what every function and the endpoint run with.

Read by the CDK app (``infra/``: each Lambda's and the SageMaker model's environment) and by
``posepipe serve`` (:mod:`posepipe.local_stack`: the same variables, for the same handlers and the
same endpoint server), so that the local stack is the deployed system on one machine with only
AWS's services replaced. ``tests/integration/test_deployment_config.py`` compares the two key by key.

What differs between them, and only that:

- the names of resources (:class:`Resources`: buckets, the endpoint, the state machine, the
  model archive), which CloudFormation makes;
- what belongs to the machine that serves (:data:`MACHINE_KEYS`): the deployed endpoint requires
  its GPU (``POSEPIPE_DEVICE=cuda``); the local one runs where it is; and each one's cost per
  frame (``POSEPIPE_FRAME_COST_MS``), from which chunks are planned so that one invocation takes
  at most ``POSEPIPE_INVOCATION_SECONDS`` (a third of SageMaker's 60 s).

Everything else (detector, pose model, max poses, chunk length, warm-up, limits) is one value
here. CDK context (``maxVideoMinutes``, ``maxImageMegapixels``) changes a limit for both, as
``POSEPIPE_*`` variables set before ``posepipe serve`` do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The top-down engine's default detector (posepipe.engines.base.DEFAULT_DETECTOR, which imports
# NumPy: video_jobs and video_split import this module and must stay light).
DEFAULT_DETECTOR = "centernet"
FUNCTIONS = (
    "image_infer",
    "video_split",
    "aggregate",
    "render_segment",
    "join_video",
    "video_jobs",
    "failure_records",
)
ENDPOINT = "endpoint"
COMPONENTS = (*FUNCTIONS, ENDPOINT)

# The buckets' layout (the functions' IAM policies are scoped to these prefixes).
IMAGES_PREFIX = "images/"
VIDEOS_PREFIX = "videos/"
ERRORS_PREFIX = "errors/"
WORK_PREFIX = "work/"
UPLOADS_PREFIX = f"{WORK_PREFIX}uploads/"  # the upload slots POST /videos issues (KeyLayout.upload_slot)
# The pose model: the catalogue's blazepose-full, the bundle the container images build (and
# ``posepipe models pack`` puts in the endpoint's archive beside the detector and MoveNet).
POSE_MODEL = "blazepose-full"
MAX_POSES = 20
# Frames of video per invocation are planned from the endpoint's cost per frame so that one takes
# at most INVOCATION_SECONDS; CHUNK_SECONDS caps a chunk where frames are cheap.
INVOCATION_SECONDS = 20.0
CHUNK_SECONDS = 60.0
# Tracking warm-up before each chunk: the top-down engine runs its detector every 4th frame, so a
# second of video (6 or more detections) rebuilds its tracks; the aggregate joins the ids.
WARMUP_SECONDS = 1.0
# What Google's Video Intelligence API takes: 3 hours, 50 GB. The annotated video is drawn one
# segment (a chunk) a Lambda, in parallel (the render Map: about 30 s a segment of 1080p30,
# docs/PERFORMANCE.md, "Rendering"), so its length no longer bounds a job; no function copies the
# whole video (video_split probes it by ranged GETs, the endpoint and each segment read their
# ranges), so its size bounds none's /tmp. join_video holds the annotated video in its 10 GiB of /tmp.
MAX_VIDEO_SECONDS = 3 * 3600
# 4K (3840x2160, or 2160x3840 upright: a count of pixels), at any frame rate; 10-bit and HDR are
# decoded to 8-bit RGB for the models and the annotated video, which keeps the source's resolution.
MAX_VIDEO_PIXELS = 3840 * 2160
MAX_VIDEO_BYTES = 50 * 1000**3
MAX_IMAGE_PIXELS = 40_000_000
# API Gateway base64-encodes a binary body into a Lambda request of at most 6 MB.
MAX_IMAGE_BYTES = 4 * 1024 * 1024
# Seconds SageMaker gives an invocation: the local SageMaker front holds the container to it too.
SAGEMAKER_INVOCATION_LIMIT_S = 60
ENDPOINT_SERVER_TIMEOUT_S = 90  # gunicorn's worker timeout, above SageMaker's limit

# The endpoint's cost per frame of the top-down engine, in milliseconds, at the concurrency it
# serves (docs/PERFORMANCE.md). GPU: an estimate, not measured (no GPU was lent to the session that
# wrote it): the 2,000 frames/s target of one H100 shared by 6 concurrent invocations is 3 ms a
# frame; 6 ms leaves a factor of 2. CPU: measured, `posepipe video` on vtest.avi on a 2-core AMD
# EPYC (Milan), about 5 frames/s for the 2 cores: 200 ms a frame with 2 invocations at once.
GPU_FRAME_COST_MS = 6.0
CPU_FRAME_COST_MS = 200.0
# Decoding a frame (and converting it to RGB) costs CPU time by its pixels, on top of the model's
# cost above (measured for 1080p and less): a 4K frame of 10-bit HEVC took 55 ms of one core
# (6.6 ms a megapixel; 4K H.264 3.4 ms) here, a 2-core AMD EPYC Milan (docs/PERFORMANCE.md).
DECODE_COST_MS_PER_MEGAPIXEL = 7.0

MACHINE_KEYS = frozenset({"POSEPIPE_DEVICE", "POSEPIPE_FRAME_COST_MS", "POSEPIPE_MAX_CONCURRENT"})
"""Variables whose values belong to the serving machine (see the module docstring)."""


@dataclass(frozen=True)
class Resources:
    """Names CloudFormation (or the local stack) gives: these values differ, the keys do not."""

    input_bucket: str
    output_bucket: str
    endpoint_name: str
    state_machine_arn: str
    model_uri: str = ""


RESOURCE_KEYS = frozenset(
    {
        "POSEPIPE_INPUT_BUCKET",
        "POSEPIPE_OUTPUT_BUCKET",
        "POSEPIPE_ENDPOINT_NAME",
        "POSEPIPE_STATE_MACHINE_ARN",
        "POSEPIPE_MODEL_URI",
    }
)


@dataclass(frozen=True)
class Serving:
    """Where the endpoint runs: ``gpu`` (the deployed instance) or the CPU of this machine."""

    gpu: bool
    max_concurrent: int | None = None

    @property
    def frame_cost_ms(self) -> float:
        return GPU_FRAME_COST_MS if self.gpu else CPU_FRAME_COST_MS


DEPLOYED = Serving(gpu=True)


@dataclass(frozen=True)
class Limits:
    """The limits a deployment may change (CDK context, or variables before ``posepipe serve``)."""

    max_video_seconds: int = MAX_VIDEO_SECONDS
    max_image_pixels: int = MAX_IMAGE_PIXELS


def pipeline_environment(resources: Resources, limits: Limits, serving: Serving) -> dict[str, str]:
    """The variables every function reads (:class:`posepipe.cloud.config.PipelineConfig`)."""
    environment = {
        "POSEPIPE_INPUT_BUCKET": resources.input_bucket,
        "POSEPIPE_OUTPUT_BUCKET": resources.output_bucket,
        "POSEPIPE_IMAGES_PREFIX": IMAGES_PREFIX,
        "POSEPIPE_VIDEOS_PREFIX": VIDEOS_PREFIX,
        "POSEPIPE_ERRORS_PREFIX": ERRORS_PREFIX,
        "POSEPIPE_WORK_PREFIX": WORK_PREFIX,
        "POSEPIPE_MAX_VIDEO_SECONDS": str(limits.max_video_seconds),
        "POSEPIPE_MAX_IMAGE_PIXELS": str(limits.max_image_pixels),
        "POSEPIPE_MAX_VIDEO_PIXELS": str(MAX_VIDEO_PIXELS),
        "POSEPIPE_MAX_VIDEO_BYTES": str(MAX_VIDEO_BYTES),
        "POSEPIPE_DETECTOR": DEFAULT_DETECTOR,
        "POSEPIPE_MAX_POSES": str(MAX_POSES),
        # video_split and aggregate plan the same chunks: one value for both
        "POSEPIPE_CHUNK_SECONDS": f"{CHUNK_SECONDS:g}",
        "POSEPIPE_WARMUP_SECONDS": f"{WARMUP_SECONDS:g}",
        "POSEPIPE_INVOCATION_SECONDS": f"{INVOCATION_SECONDS:g}",
        "POSEPIPE_FRAME_COST_MS": f"{serving.frame_cost_ms:g}",
        "POWERTOOLS_METRICS_NAMESPACE": "posepipe",
    }
    return environment


def function_environment(
    name: str, resources: Resources, limits: Limits | None = None, serving: Serving = DEPLOYED
) -> dict[str, str]:
    """What function ``name`` runs with (see :data:`FUNCTIONS`)."""
    if name not in FUNCTIONS:
        raise ValueError(f"no function {name!r}; the functions are {', '.join(FUNCTIONS)}")
    environment = pipeline_environment(resources, limits or Limits(), serving)
    environment["POWERTOOLS_SERVICE_NAME"] = name
    environment["POWERTOOLS_LOG_LEVEL"] = "INFO"
    if name == "image_infer":
        environment["POSEPIPE_MAX_IMAGE_BYTES"] = str(MAX_IMAGE_BYTES)
        if resources.model_uri:  # the endpoint's archive: images get the videos' pose model
            environment["POSEPIPE_MODEL_URI"] = resources.model_uri
    if name in ("video_split", "aggregate"):
        environment["POSEPIPE_ENDPOINT_NAME"] = resources.endpoint_name  # chunks, boundary repairs
    if name == "video_jobs":
        environment["POSEPIPE_STATE_MACHINE_ARN"] = resources.state_machine_arn
    return environment


def endpoint_environment(serving: Serving = DEPLOYED) -> dict[str, str]:
    """What the endpoint's container runs with (:mod:`posepipe.cloud.endpoint.engine`)."""
    environment = {
        "POSEPIPE_DETECTOR": DEFAULT_DETECTOR,
        # torch, batched, on the GPU; on a machine with none, the CPU runtimes
        "POSEPIPE_ENGINE": "auto",
        "POSEPIPE_DEVICE": "cuda" if serving.gpu else "",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": str(ENDPOINT_SERVER_TIMEOUT_S),
    }
    # invocations one server process runs at once (more: 503 over_capacity, retried); empty: as
    # many as it has threads (posepipe.cloud.endpoint.serve)
    environment["POSEPIPE_MAX_CONCURRENT"] = (
        "" if serving.max_concurrent is None else str(serving.max_concurrent)
    )
    return environment


def environments(
    resources: Resources, limits: Limits | None = None, serving: Serving = DEPLOYED
) -> dict[str, dict[str, str]]:
    """Every component's variables: :data:`FUNCTIONS` and the endpoint."""
    out = {name: function_environment(name, resources, limits, serving) for name in FUNCTIONS}
    out[ENDPOINT] = endpoint_environment(serving)
    return out


def differences(deployed: Mapping[str, str], local: Mapping[str, str]) -> list[str]:
    """What keeps two components' variables from being the same configuration: a key only one
    has, or a value that differs and is neither a resource name nor the machine's own."""
    problems = [f"{key}: only deployed" for key in sorted(set(deployed) - set(local))]
    problems += [f"{key}: only local" for key in sorted(set(local) - set(deployed))]
    for key in sorted(set(deployed) & set(local)):
        if key in RESOURCE_KEYS or key in MACHINE_KEYS:
            continue
        if deployed[key] != local[key]:
            problems.append(f"{key}: deployed {deployed[key]!r}, local {local[key]!r}")
    return problems
