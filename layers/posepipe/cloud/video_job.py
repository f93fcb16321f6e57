"""The video pipeline's decisions, with no I/O: what ``video_split`` returns and what
``aggregate`` expects (docs/CLOUD.md).

* Chunks: ``chunk_seconds`` bounds the work of one endpoint invocation, warm-up included (the
  endpoint must answer within 60 s), and chunks are balanced so that all do the same work:
  :func:`plan_video_chunks`. ``aggregate`` plans again from the job's frame count and fps with
  the same configuration instead of carrying the plan through the state machine.
* Split output: inline chunks while few and small; otherwise a manifest in S3. Either way the
  state output stays under Step Functions' 256 KiB: :func:`build_split_output`.
* Failed chunks: a Map item ``{"failed": true, "chunk": <index>, "error": <error name>,
  "cause": <cause>}`` or a chunk result missing from S3 makes a chunk failed; more than
  ``max_failed_chunk_ratio`` of them fail the job: :func:`failed_items`, :func:`check_failures`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.keys import KeyLayout, job_id
from posepipe.cloud.pinning import PinnedObject
from posepipe.cloud.rejections import readable_reason
from posepipe.cloud.storage import s3_uri
from posepipe.engines.base import InferenceOptions
from posepipe.errors import InputError, PosepipeError
from posepipe.media.probe import VideoInfo
from posepipe.video.stages import Chunk, SplitOptions, plan_chunks

STATE_PAYLOAD_LIMIT = 256 * 1024
"""Step Functions' limit on a state's input or output, in bytes of JSON."""

SPLIT_OUTPUT_BUDGET = 200 * 1024
"""The most bytes the split output may take with its chunks inline: the rest of the 256 KiB is
left to what the state machine adds beside it (its own input, the Map's results)."""

_MAX_REASONS = 5  # failure reasons quoted in one error message
_MAX_REASON_CHARS = 300


class ChunksFailedError(PosepipeError):
    """More chunks failed than the job can stand (``max_failed_chunk_ratio``)."""

    code = "chunks_failed"


# --- split -----------------------------------------------------------------------------------


def frame_cost_ms(config: PipelineConfig, pixels: int) -> float:
    """The endpoint's milliseconds for one frame of ``pixels`` pixels: the model's
    ``frame_cost_ms`` and decoding's ``decode_cost_ms_per_megapixel`` (a 4K frame costs about
    58 ms more to decode than to infer on the GPU)."""
    return config.frame_cost_ms + config.decode_cost_ms_per_megapixel * pixels / 1e6


def chunk_work_seconds(config: PipelineConfig, fps: float, pixels: int) -> float:
    """Seconds of video one chunk may hold, warm-up included: ``chunk_seconds``, and no more than
    the endpoint does in ``invocation_seconds`` at :func:`frame_cost_ms` a frame of ``pixels``
    (a third of SageMaker's 60 s by default), at least two seconds' worth."""
    seconds = config.chunk_seconds
    if config.frame_cost_ms > 0 and fps > 0:
        frames = config.invocation_seconds * 1000.0 / frame_cost_ms(config, pixels)
        seconds = min(seconds, max(frames / fps, 2.0 * config.warmup_seconds, 1.0 / fps))
    return seconds


def split_options(config: PipelineConfig, fps: float, pixels: int) -> SplitOptions:
    """Chunks of at most :func:`chunk_work_seconds` of work (emitted frames plus warm-up), balanced."""
    return SplitOptions(
        parallelism=1, max_chunk_s=chunk_work_seconds(config, fps, pixels), warmup_s=config.warmup_seconds
    )


def plan_video_chunks(frame_count: int, fps: float, config: PipelineConfig, *, pixels: int) -> list[Chunk]:
    """The chunks of a video of ``frame_count`` frames at ``fps``, ``pixels`` pixels a frame."""
    return plan_chunks(frame_count, fps, split_options(config, fps, pixels))


def inference_options(config: PipelineConfig) -> InferenceOptions:
    """What the endpoint runs (and ``aggregate``'s boundary repairs, which must agree with it)."""
    return InferenceOptions(max_poses=config.max_poses, detector=config.detector)


def request_options(config: PipelineConfig) -> dict[str, Any]:
    """The ``options`` of an endpoint invocation: the model's settings, not the server's."""
    options = inference_options(config)
    return {
        "max_poses": options.max_poses,
        "min_detection_confidence": options.min_detection_confidence,
        "min_presence_confidence": options.min_presence_confidence,
        "min_tracking_confidence": options.min_tracking_confidence,
        "detector": options.detector,
        "detect_every": options.detect_every,
    }


class VideoLimitSubject(Protocol):
    """What :func:`check_video_limits` reads: a probed video, or only its header."""

    @property
    def codec(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def duration_s(self) -> float | None: ...


def check_video_size(key: str, size_bytes: int, config: PipelineConfig) -> None:
    """Raise :class:`InputError` ``too_large`` (naming ``key``) for an object over the byte limit."""
    if size_bytes > config.max_video_bytes:
        raise InputError(
            key,
            f"video is {size_bytes} bytes, over the limit of {config.max_video_bytes} bytes",
            code="too_large",
        )


def check_video_limits(key: str, info: VideoLimitSubject, config: PipelineConfig) -> None:
    """Raise :class:`InputError` (naming ``key``) for a video over the configured limits: a probed
    video, or its header (:class:`posepipe.media.probe.VideoHeader`, whose duration may be unknown)."""
    if info.duration_s is not None and info.duration_s > config.max_video_seconds:
        raise InputError(
            key,
            f"video is {info.duration_s:.1f} s long, over the limit of {config.max_video_seconds:g} s",
            code="too_long",
        )
    pixels = info.width * info.height
    if pixels > config.max_video_pixels:
        raise InputError(
            key,
            f"video is {info.width}x{info.height} ({pixels} pixels a frame), "
            f"over the limit of {config.max_video_pixels} pixels",
            code="too_large",
        )
    if info.codec not in config.allowed_codecs:
        raise InputError(
            key,
            f"video codec {info.codec!r} is not accepted (accepted: {', '.join(config.allowed_codecs)})",
            code="codec_not_allowed",
        )


@dataclass(frozen=True)
class SplitPlan:
    """What ``video_split`` returns, and the manifest to write first when there is one."""

    output: dict[str, Any]
    manifest_key: str | None
    manifest_items: list[dict[str, Any]] | None


def build_split_output(config: PipelineConfig, *, pin: PinnedObject, info: VideoInfo) -> SplitPlan:
    """The split output of docs/CLOUD.md for ``info`` (a probed video, the version ``pin``
    names), chunks inline or in a manifest: a manifest when there are more than
    ``manifest_threshold`` chunks, or when inline chunks would take the output over
    :data:`SPLIT_OUTPUT_BUDGET` (long keys). Every request names the pinned version."""
    bucket, key = pin.bucket, pin.key
    layout = KeyLayout(config)
    layout.video_outputs(key)  # an input outside the videos prefix is an InputError
    job = job_id(key, pin.etag)
    video = s3_uri(bucket, key)
    chunks = plan_video_chunks(info.frame_count, info.fps, config, pixels=info.width * info.height)
    options = request_options(config)
    # the pinned version, and its probe: the endpoint reads the chunk's range by ranged GETs
    version = {**video_version(pin), "video_info": s3_uri(config.output_bucket, layout.video_info(job))}
    items = [
        {
            "request": {
                "video": video,
                **version,
                "chunk": chunk.to_dict(),
                "output": s3_uri(config.output_bucket, layout.chunk_result(job, chunk.index)),
                "options": options,
            }
        }
        for chunk in chunks
    ]
    header = {
        "id": job,
        "bucket": bucket,
        "key": key,
        "etag": pin.bare_etag,
        "version_id": pin.version_id,
        "video": video,
        "frame_count": info.frame_count,
        "fps": info.fps,
        "width": info.width,
        "height": info.height,
        "duration_s": info.duration_s,
        "chunk_count": len(chunks),
        "output_bucket": config.output_bucket,
    }
    inline = {"job": header, "chunks": items, "manifest": None}
    if len(items) <= config.manifest_threshold and payload_bytes(inline) <= SPLIT_OUTPUT_BUDGET:
        return SplitPlan(output=inline, manifest_key=None, manifest_items=None)
    manifest_key = layout.chunk_manifest(job)
    output = {"job": header, "chunks": [], "manifest": {"bucket": config.output_bucket, "key": manifest_key}}
    size = payload_bytes(output)
    if size > SPLIT_OUTPUT_BUDGET:  # only the job's header is left: keys are at most 1 KiB
        raise RuntimeError(f"split output of {size} bytes is over the budget of {SPLIT_OUTPUT_BUDGET}")
    return SplitPlan(output=output, manifest_key=manifest_key, manifest_items=items)


def video_version(pin: PinnedObject) -> dict[str, str]:
    """The request fields naming the version to read: ``video_etag``, and ``video_version_id``
    where the bucket keeps versions."""
    fields = {"video_etag": pin.bare_etag}
    if pin.version_id and pin.version_id != "null":
        fields["video_version_id"] = pin.version_id
    return fields


def job_pin(job: Mapping[str, Any]) -> PinnedObject:
    """The version a job (video_split's ``job``) was started for."""
    return PinnedObject(str(job["bucket"]), str(job["key"]), str(job["etag"]), job.get("version_id"))


def payload_bytes(data: Any) -> int:
    """Bytes of ``data`` as the Lambda runtime serialises it (``json.dumps`` defaults)."""
    return len(json.dumps(data).encode("utf-8"))


# --- aggregate -------------------------------------------------------------------------------


def job_chunks(job: Mapping[str, Any], config: PipelineConfig) -> list[Chunk]:
    """The chunks ``video_split`` planned for ``job``, planned again (same configuration)."""
    pixels = int(job["width"]) * int(job["height"])
    chunks = plan_video_chunks(int(job["frame_count"]), float(job["fps"]), config, pixels=pixels)
    if len(chunks) != int(job["chunk_count"]):
        raise RuntimeError(
            f"{job['key']}: the chunk plan gives {len(chunks)} chunks where video_split planned "
            f"{job['chunk_count']} (POSEPIPE_CHUNK_SECONDS or POSEPIPE_WARMUP_SECONDS differ between the two)"
        )
    return chunks


def failed_items(chunk_results: Sequence[Mapping[str, Any]], chunk_count: int) -> dict[int, str]:
    """Chunk index -> reason, for the Map items that say their chunk failed.

    An item's chunk is its ``chunk`` field, else its position in the list. Items that did not
    fail (the endpoint's answers) are not needed: the chunk results are read from S3.
    """
    failed: dict[int, str] = {}
    for position, item in enumerate(chunk_results):
        refused = item.get("refused")
        if not item.get("failed") and not refused:
            continue
        index = item.get("chunk")
        index = position if index is None else int(index)
        if not 0 <= index < chunk_count:
            raise ValueError(f"a failed Map item names chunk {index}, the job has {chunk_count} chunks")
        if isinstance(refused, Mapping):
            failed[index] = _reason(f"the endpoint refused it ({refused.get('code')})", refused.get("reason"))
        else:
            failed[index] = _reason(item.get("error"), item.get("cause"))
    return failed


def _reason(error: Any, cause: Any) -> str:
    if isinstance(error, Mapping):  # a Catch's whole {"Error", "Cause"} object
        error, cause = error.get("Error"), cause or error.get("Cause")
    parts = [str(part) for part in (error, cause) if part]
    reason = readable_reason(": ".join(parts) or "failed")
    return reason if len(reason) <= _MAX_REASON_CHARS else reason[: _MAX_REASON_CHARS - 3] + "..."


def failure_reason(failed: Mapping[int, str], total: int) -> str:
    """``2 of 8 chunks failed: chunk 3 (frames ...): reason; ...`` (the first few reasons)."""
    indices = sorted(failed)
    quoted = "; ".join(f"chunk {i}: {failed[i]}" for i in indices[:_MAX_REASONS])
    more = f"; and {len(indices) - _MAX_REASONS} more" if len(indices) > _MAX_REASONS else ""
    return f"{len(indices)} of {total} chunks failed: {quoted}{more}"


def check_failures(key: str, failed: Mapping[int, str], total: int, config: PipelineConfig) -> None:
    """Raise :class:`ChunksFailedError` when more than ``max_failed_chunk_ratio`` of the chunks
    failed (or all of them: nothing to aggregate)."""
    if failed and (len(failed) / total > config.max_failed_chunk_ratio or len(failed) == total):
        raise ChunksFailedError(
            f"{key}: {failure_reason(failed, total)} (over the limit of "
            f"{config.max_failed_chunk_ratio:.0%} of the chunks)"
        )
