"""Configuration of the cloud pipeline, read from environment variables (AWS and local alike).

Every bucket name, prefix and limit comes from here; no handler hard-codes one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from posepipe.cloud import deployment

DEFAULT_ALLOWED_CODECS = (
    "h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "msmpeg4v2", "msmpeg4v3", "mjpeg", "prores", "mpeg2video",
)  # fmt: skip


def _prefix(value: str) -> str:
    value = value.strip("/")
    return f"{value}/" if value else ""


@dataclass(frozen=True)
class PipelineConfig:
    """Names and limits of the pipeline; see :meth:`from_env` for the variables."""

    input_bucket: str = "posepipe-input"
    output_bucket: str = "posepipe-output"
    images_prefix: str = "images/"
    videos_prefix: str = "videos/"
    errors_prefix: str = "errors/"
    work_prefix: str = "work/"
    endpoint_name: str = "posepipe-pose"
    state_machine_arn: str = ""
    max_video_seconds: float = float(deployment.MAX_VIDEO_SECONDS)
    max_video_pixels: int = deployment.MAX_VIDEO_PIXELS
    max_video_bytes: int = deployment.MAX_VIDEO_BYTES
    allowed_codecs: tuple[str, ...] = field(default=DEFAULT_ALLOWED_CODECS)
    max_image_pixels: int = deployment.MAX_IMAGE_PIXELS
    max_image_bytes: int = deployment.MAX_IMAGE_BYTES
    max_poses: int = deployment.MAX_POSES
    detector: str = deployment.DEFAULT_DETECTOR
    chunk_seconds: float = deployment.CHUNK_SECONDS
    warmup_seconds: float = deployment.WARMUP_SECONDS
    invocation_seconds: float = deployment.INVOCATION_SECONDS
    frame_cost_ms: float = 0.0
    decode_cost_ms_per_megapixel: float = deployment.DECODE_COST_MS_PER_MEGAPIXEL
    manifest_threshold: int = 200
    max_failed_chunk_ratio: float = 0.1
    presign_seconds: int = 3600
    model_uri: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipelineConfig:
        """``POSEPIPE_INPUT_BUCKET``, ``POSEPIPE_OUTPUT_BUCKET``, ``POSEPIPE_IMAGES_PREFIX``,
        ``POSEPIPE_VIDEOS_PREFIX``, ``POSEPIPE_ERRORS_PREFIX``, ``POSEPIPE_WORK_PREFIX``,
        ``POSEPIPE_ENDPOINT_NAME``, ``POSEPIPE_STATE_MACHINE_ARN``, ``POSEPIPE_MAX_VIDEO_SECONDS``,
        ``POSEPIPE_MAX_VIDEO_PIXELS``, ``POSEPIPE_MAX_VIDEO_BYTES``, ``POSEPIPE_ALLOWED_CODECS``
        (comma-separated),
        ``POSEPIPE_MAX_IMAGE_PIXELS``, ``POSEPIPE_MAX_IMAGE_BYTES``, ``POSEPIPE_MAX_POSES``,
        ``POSEPIPE_DETECTOR`` (``centernet`` by default, the top-down engine that finds everyone,
        as ``posepipe video`` does; ``nanodet`` likewise; ``blazepose`` BlazePose's own, for one
        near subject; ``movenet-multipose`` runs that model alone, whatever the model),
        ``POSEPIPE_CHUNK_SECONDS``, ``POSEPIPE_WARMUP_SECONDS``, ``POSEPIPE_INVOCATION_SECONDS``
        and ``POSEPIPE_FRAME_COST_MS`` (chunks of at most ``invocation_seconds`` of endpoint work
        at ``frame_cost_ms`` a frame; 0: no such bound), ``POSEPIPE_MANIFEST_THRESHOLD``,
        ``POSEPIPE_MAX_FAILED_CHUNK_RATIO``, ``POSEPIPE_PRESIGN_SECONDS``, ``POSEPIPE_MODEL_URI``.
        The defaults are the deployment's (:mod:`posepipe.cloud.deployment`).

        ``POSEPIPE_MODEL_URI`` (``model_uri``): the model the Lambdas that run MediaPipe
        (``image_infer``, and ``aggregate`` for its boundary repairs) serve, as
        ``s3://bucket/key`` of a ``.task`` bundle or of a ``.tar.gz`` holding exactly one (the
        SageMaker endpoint's ``ModelDataUrl``, so that both serve the same model). Fetched once
        per container at cold start into a temporary folder and verified
        (:func:`posepipe.cloud.model_source.function_model`). Empty (the default): the model of
        ``POSEPIPE_MODEL``, else the one built into posepipe's cache (the container image's)."""
        env = os.environ if env is None else env
        base = cls()

        def text(name: str, default: str) -> str:
            return env.get(f"POSEPIPE_{name}", default)

        codecs = text("ALLOWED_CODECS", ",".join(base.allowed_codecs))
        return cls(
            input_bucket=text("INPUT_BUCKET", base.input_bucket),
            output_bucket=text("OUTPUT_BUCKET", base.output_bucket),
            images_prefix=_prefix(text("IMAGES_PREFIX", base.images_prefix)),
            videos_prefix=_prefix(text("VIDEOS_PREFIX", base.videos_prefix)),
            errors_prefix=_prefix(text("ERRORS_PREFIX", base.errors_prefix)),
            work_prefix=_prefix(text("WORK_PREFIX", base.work_prefix)),
            endpoint_name=text("ENDPOINT_NAME", base.endpoint_name),
            state_machine_arn=text("STATE_MACHINE_ARN", base.state_machine_arn),
            max_video_seconds=float(text("MAX_VIDEO_SECONDS", str(base.max_video_seconds))),
            max_video_pixels=int(text("MAX_VIDEO_PIXELS", str(base.max_video_pixels))),
            max_video_bytes=int(text("MAX_VIDEO_BYTES", str(base.max_video_bytes))),
            allowed_codecs=tuple(c.strip() for c in codecs.split(",") if c.strip()),
            max_image_pixels=int(text("MAX_IMAGE_PIXELS", str(base.max_image_pixels))),
            max_image_bytes=int(text("MAX_IMAGE_BYTES", str(base.max_image_bytes))),
            max_poses=int(text("MAX_POSES", str(base.max_poses))),
            detector=text("DETECTOR", base.detector),
            chunk_seconds=float(text("CHUNK_SECONDS", str(base.chunk_seconds))),
            warmup_seconds=float(text("WARMUP_SECONDS", str(base.warmup_seconds))),
            invocation_seconds=float(text("INVOCATION_SECONDS", str(base.invocation_seconds))),
            frame_cost_ms=float(text("FRAME_COST_MS", str(base.frame_cost_ms))),
            manifest_threshold=int(text("MANIFEST_THRESHOLD", str(base.manifest_threshold))),
            max_failed_chunk_ratio=float(text("MAX_FAILED_CHUNK_RATIO", str(base.max_failed_chunk_ratio))),
            presign_seconds=int(text("PRESIGN_SECONDS", str(base.presign_seconds))),
            model_uri=text("MODEL_URI", base.model_uri).strip(),
        )
