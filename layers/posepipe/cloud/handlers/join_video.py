"""``join_video``: the last state of the video pipeline (docs/CLOUD.md, "Rendering").

In: ``{"job": <video_split's job>, "render": {"bucket", "key"}, "aggregated": <key>}``, the
aggregate's output. Joins the render segments (``work/<job>/segments/<chunk>.mp4``, read by ranged
GETs, one at a time) by stream copy into one faststart MP4 with the source's audio
(:func:`posepipe.annotation.render.join_segments`: no second encode), uploads it as
``annotated.mp4``, then writes the summary, the job's "done" marker, with every segment's render
timings (their objects' metadata).

A segment the render Map could not make (its Lambda failed after its retries) is a partial
failure, never a lost job: keypoints.json and the motion analysis are whole (the aggregate wrote
them), the summary lists the segments in ``render_failed`` and says ``annotated: null``, and the
error record (``render_failed``) says which. Failed chunks the aggregate tolerated get their error
record (``chunks_failed``) here, once the job is done.
Out: ``{"job": ..., "outputs": {"keypoints", "annotated", "summary"}}`` (s3:// URIs;
``annotated`` null when not made).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import BaseModel, Field, parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ConfigDict

from posepipe.annotation.render import join_segments
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.keys import KeyLayout, VideoKeys
from posepipe.cloud.pinning import superseded_is_input_error
from posepipe.cloud.s3_reader import S3RangeReader, streaming_sizes
from posepipe.cloud.storage import get_json, s3_client, s3_uri, write_error_record
from posepipe.cloud.video_job import failure_reason, job_chunks, job_pin
from posepipe.cloud.video_work import RenderItem, SplitJob, read_video_info, render_timings
from posepipe.video.runner import video_summary

CONFIG = PipelineConfig.from_env()
LAYOUT = KeyLayout(CONFIG)
S3 = s3_client()

logger = Logger(service="posepipe")
tracer = Tracer(service="posepipe")
metrics = Metrics(namespace="posepipe", service="posepipe")


class Manifest(BaseModel):
    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)


class JoinEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    job: SplitJob
    render: Manifest
    aggregated: str = Field(min_length=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=JoinEvent)
    job = request.job
    logger.append_keys(correlation_id=job.id, input_key=job.key)
    started = time.perf_counter()
    made: dict[str, Any] = get_json(S3, job.output_bucket, request.aggregated)
    items = [RenderItem.from_dict(item) for item in get_json(S3, request.render.bucket, request.render.key)]
    keys = VideoKeys(**made["outputs"])
    info = read_video_info(S3, job.output_bucket, LAYOUT.video_info(job.id))
    segments = _segments(job)  # chunk index -> (size, etag, metadata)
    render_failed = [item.chunk.index for item in items if item.chunk.index not in segments]
    joined_at = started
    annotated: str | None = None
    if not render_failed and items:
        with tempfile.TemporaryDirectory(prefix="posepipe-join-") as folder:
            destination = Path(folder) / "annotated.mp4"
            pin = job_pin(job.model_dump()) if job.etag else None
            with superseded_is_input_error(pin) if pin else contextlib.nullcontext():
                audio = S3RangeReader.of(S3, pin, streaming=True) if pin and info.has_audio else None
                with contextlib.closing(audio) if audio is not None else contextlib.nullcontext():
                    join_segments(_segment_readers(job, items, segments), destination, audio_from=audio)
            joined_at = time.perf_counter()
            S3.upload_file(
                str(destination), job.output_bucket, keys.annotated, ExtraArgs={"ContentType": "video/mp4"}
            )
        annotated = s3_uri(job.output_bucket, keys.annotated)
    uploaded = time.perf_counter()

    chunks = job_chunks(job.model_dump(), CONFIG)
    failed = {int(index): reason for index, reason in made["failed"].items()}
    superseded = bool(made["input"].get("superseded"))
    if not superseded:  # the key's error record is the newest upload's
        _write_error_record(job.key, failed, len(chunks), render_failed, len(items))
    timings = [render_timings(segments[i.chunk.index][2]) if i.chunk.index in segments else {} for i in items]
    summary = {
        "job": job.id,
        "input": made["input"],
        **video_summary(
            info, model=made["model"], persons_per_frame=made["persons_per_frame"], chunks=chunks,
            chunk_timings=made["chunk_timings"], render_timings=timings, smoothing=made["smoothing"],
            stages_wall_s={**made["stages_wall_s"], "join": joined_at - started,
                           "upload_annotated": uploaded - joined_at},
        ),
        "motion": made["motion"],
        "failed_chunks": [{"index": i, "start": chunks[i].start, "stop": chunks[i].stop,
                           "reason": failed[i]} for i in sorted(failed)],
        "render_segments": len(items),
        "render_failed": render_failed,
        "annotated": annotated,
    }  # fmt: skip
    S3.put_object(
        Bucket=job.output_bucket,
        Key=keys.summary,
        Body=(json.dumps(summary, indent=2) + "\n").encode(),
        ContentType="application/json",
    )
    metrics.add_metric(name="RenderFailedSegments", unit=MetricUnit.Count, value=len(render_failed))
    logger.info(
        "video joined",
        extra={"segments": len(items), "render_failed": render_failed, "frames": summary["frames"]},
    )
    return {
        "job": event["job"],
        "outputs": {
            "keypoints": s3_uri(job.output_bucket, keys.keypoints),
            "annotated": annotated,
            "summary": s3_uri(job.output_bucket, keys.summary),
        },
    }


def _segments(job: SplitJob) -> dict[int, tuple[int, str, dict[str, str]]]:
    """The segments the render Map made: chunk index -> (size, ETag, user metadata)."""
    found: dict[int, tuple[int, str, dict[str, str]]] = {}
    prefix = LAYOUT.segments_prefix(job.id)
    for page in S3.get_paginator("list_objects_v2").paginate(Bucket=job.output_bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            name = str(entry["Key"])[len(prefix) :]
            if not name.endswith(".mp4") or not name[:-4].isdigit():
                continue
            head = S3.head_object(Bucket=job.output_bucket, Key=entry["Key"])
            found[int(name[:-4])] = (int(head["ContentLength"]), str(head["ETag"]), head.get("Metadata", {}))
    return found


def _segment_readers(
    job: SplitJob, items: list[RenderItem], segments: dict[int, tuple[int, str, dict[str, str]]]
) -> Iterator[S3RangeReader]:
    """Each segment in chunk order as a ranged reader, made when the join gets to it and closed
    when it moves on."""
    for item in items:
        size, etag, _ = segments[item.chunk.index]
        key = LAYOUT.render_segment(job.id, item.chunk.index)
        reader = S3RangeReader(
            S3, job.output_bucket, key, size=size, etag=etag, **streaming_sizes(),
        )  # fmt: skip
        with contextlib.closing(reader):
            yield reader


def _write_error_record(
    key: str, failed: dict[int, str], chunk_count: int, render_failed: list[int], segment_count: int
) -> None:
    """The job's partial failures, in one record: failed chunks, then segments not rendered."""
    reasons: list[str] = []
    code = ""
    if failed:
        code = "chunks_failed"
        reasons.append(failure_reason(failed, chunk_count) + "; their frames are marked not processed")
    if render_failed:
        code = code or "render_failed"
        shown = ", ".join(str(i) for i in render_failed[:10]) + (
            " and more" if len(render_failed) > 10 else ""
        )
        reasons.append(
            f"{len(render_failed)} of {segment_count} segments of the annotated video could not be rendered "
            f"(chunks {shown}), so it was not made; keypoints.json and the motion analysis are whole"
        )
    if reasons:
        stage = "aggregate" if failed else "render"
        write_error_record(S3, CONFIG, key, stage=stage, reason="; ".join(reasons), code=code)
