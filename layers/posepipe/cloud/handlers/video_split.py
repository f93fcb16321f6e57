"""``video_split``: the first state of the video pipeline (docs/CLOUD.md).

In: ``{"bucket", "key", "etag"}`` (the state machine input). Checks the object's size and its
header (duration, pixels, codec) against the limits, reading only the header by ranged GETs,
then probes and validates it whole, read by ranged GETs (never copied to /tmp), plans its chunks
and returns the job and the endpoint invocation of each chunk, inline or, for many chunks, in a
manifest written to S3. The probe itself goes to ``work/<job>/video.json`` (every frame's
timestamp): the functions after it read that instead of probing the video again.
A bad input is refused with ``{"rejected": {"key", "code", "reason"}}``
(:mod:`posepipe.cloud.rejections`: ``too_long``, ``too_large``, ``bad_input``, ...), from which
the state machine writes the error record; anything unexpected raises (``internal_error``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import BaseModel, Field, parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.keys import KeyLayout, job_id
from posepipe.cloud.pinning import PinnedObject, superseded_is_input_error
from posepipe.cloud.rejections import rejection
from posepipe.cloud.s3_reader import S3RangeReader, streaming_sizes
from posepipe.cloud.storage import is_not_found, put_json, s3_client, s3_uri
from posepipe.cloud.video_job import build_split_output, check_video_limits, check_video_size
from posepipe.errors import InputError
from posepipe.media.probe import VideoInfo, probe, probe_header

CONFIG = PipelineConfig.from_env()
S3 = s3_client()
LAYOUT = KeyLayout(CONFIG)

logger = Logger(service="posepipe")
tracer = Tracer(service="posepipe")
metrics = Metrics(namespace="posepipe", service="posepipe")


class SplitEvent(BaseModel):
    """The state machine input: one version of one uploaded video (``version_id`` where the
    bucket keeps versions)."""

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    etag: str = Field(min_length=1)
    version_id: str | None = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # up to 200 KiB: over X-Ray's 64 KiB segments
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=SplitEvent)
    logger.append_keys(correlation_id=job_id(request.key, request.etag), input_key=request.key)
    pin = PinnedObject(request.bucket, request.key, request.etag, request.version_id)
    try:
        info = probe_video(pin)
        check_video_limits(request.key, info, CONFIG)
        plan = build_split_output(CONFIG, pin=pin, info=info)
    except InputError as err:
        metrics.add_metric(name="RejectedVideos", unit=MetricUnit.Count, value=1)
        logger.warning("video rejected", extra={"reason": err.reason, "code": err.code})
        return rejection(request.key, err)
    job = plan.output["job"]
    # The probe, exact, once: the aggregate, the render segments and the join read it, not the video.
    put_json(S3, CONFIG.output_bucket, LAYOUT.video_info(job["id"]), {**info.to_dict(), "uri": job["video"]})
    if plan.manifest_key is not None:
        put_json(S3, CONFIG.output_bucket, plan.manifest_key, plan.manifest_items)
    metrics.add_metric(name="VideoSeconds", unit=MetricUnit.Seconds, value=info.duration_s)
    metrics.add_metric(name="VideoFrames", unit=MetricUnit.Count, value=info.frame_count)
    metrics.add_metric(name="Chunks", unit=MetricUnit.Count, value=job["chunk_count"])
    logger.info(
        "video split",
        extra={"frames": info.frame_count, "fps": info.fps, "duration_s": info.duration_s,
               "codec": info.codec, "chunks": job["chunk_count"], "manifest": plan.manifest_key},
    )  # fmt: skip
    return plan.output


@tracer.capture_method(capture_response=False)
def probe_video(pin: PinnedObject) -> VideoInfo:
    """Check the video's size and header against the limits, reading only its header through
    ranged GETs, so that a video over a limit is refused in seconds; then probe it whole, read
    once from start to end by ranged GETs fetched ahead (nothing goes to /tmp). Every read is of
    the pinned version (:mod:`posepipe.cloud.pinning`). Errors name the key."""
    bucket, key = pin.bucket, pin.key
    with _missing_object_is_input_error(bucket, key), superseded_is_input_error(pin):
        head = S3.head_object(Bucket=bucket, Key=key, **pin.get_args())
    size = int(head["ContentLength"])
    check_video_size(key, size, CONFIG)
    reader = S3RangeReader(
        S3, bucket, key, size=size, etag=str(head["ETag"]), version_id=pin.get_args().get("VersionId")
    )
    with superseded_is_input_error(pin):
        header = probe_header(reader, s3_uri(bucket, key))
    logger.info(
        "header probed",
        extra={
            "bytes": size,
            "header_bytes_read": reader.bytes_read,
            "header": asdict(header) if header else None,
        },
    )
    if header is not None:
        check_video_limits(key, header, CONFIG)
    whole = S3RangeReader(
        S3, bucket, key, size=size, etag=str(head["ETag"]), version_id=pin.get_args().get("VersionId"),
        **streaming_sizes(),
    )  # fmt: skip
    started = time.perf_counter()
    # deleted or replaced since the HEAD
    with _missing_object_is_input_error(bucket, key), superseded_is_input_error(pin), closing(whole):
        try:
            info = probe(whole)
        except InputError as err:
            raise InputError(key, err.reason, err.code) from err
    logger.info(
        "video probed",
        extra={"bytes_read": whole.bytes_read, "requests": whole.requests,
               "probe_s": round(time.perf_counter() - started, 3)},
    )  # fmt: skip
    return info


@contextmanager
def _missing_object_is_input_error(bucket: str, key: str) -> Iterator[None]:
    """S3's "no such object" (or bucket) inside the block as an :class:`InputError` naming ``key``."""
    try:
        yield
    except ClientError as err:
        if is_not_found(err):
            raise InputError(key, f"no such object in bucket {bucket}") from err
        raise
