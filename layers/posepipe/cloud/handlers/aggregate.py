"""``aggregate``: merges the chunk results of a video job (docs/CLOUD.md).

In: ``{"job": <video_split's job>, "chunk_results": [<Map item outputs>]}``. A Map item is the
endpoint's answer, or ``{"failed": true, "chunk": <index>, "error": <error name>, "cause":
<cause>}`` for a chunk that kept failing. Each chunk's result is read from the work prefix, in
order; a failed or missing chunk's frames are marked not processed. More than
``max_failed_chunk_ratio`` failed chunks refuse the job: ``{"rejected": {"key", "code":
"chunks_failed", "reason"}}`` (:mod:`posepipe.cloud.rejections`; the state machine writes the
error record); fewer are listed in ``summary.json`` and in ``errors/<input key>.json`` (by
``join_video``, when the job is done).

Aggregation is ``posepipe video``'s own (:func:`posepipe.video.runner.aggregate_video`), run
sequentially in this process: boundary repairs (on the endpoint, see below), stable ids and
smoothing, ``keypoints.json`` streamed to /tmp. The video itself is not read here: its probe is
video_split's (``work/<job>/video.json``). Each chunk's final frames go to S3 for its render
segment (:mod:`posepipe.cloud.video_work`), drawn in parallel by the render Map
(``render_segment``) and joined by ``join_video``, which writes the summary, the job's "done"
marker. Uploaded here: keypoints.json and the motion analysis' files beside it (``angles.csv``,
``keypoints.csv``, ``analysis.json``, ``persons_per_frame.png`` and, per person, OpenSim's
``.trc``/``.mot``, a C3D and a plot: :mod:`posepipe.export.motion_files`, default cleaning; a
failed analysis is reported in the summary, the keypoints whole either way).
Out: ``{"job": ..., "render": {"bucket", "key"}, "aggregated": <key>}``: the render Map's manifest,
and what the join puts in the summary.

Boundary repairs (a chunk whose warm-up did not settle its tracks, run again from earlier) are
invocations of the endpoint, with the chunks' engine, models and options: the earlier frames go
to ``work/<job>/repairs/<chunk>-agree.json``, the request names them as ``agree_with``, the
endpoint writes the repair's result to ``work/<job>/repairs/<chunk>.json`` and logs it
(``boundary repair``). Refusals that say "try again" are retried with back-off
(:mod:`posepipe.cloud.endpoint_client`).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import BaseModel, Field, parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import ConfigDict

from posepipe.analysis.motion import analyze_collected
from posepipe.analysis.tracks import TrackCollector
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.endpoint_client import invoke_endpoint, sagemaker_runtime_client
from posepipe.cloud.keys import KeyLayout
from posepipe.cloud.pinning import PinnedObject
from posepipe.cloud.rejections import rejection
from posepipe.cloud.storage import get_json, is_not_found, put_json, s3_client, s3_uri
from posepipe.cloud.video_job import (
    check_failures,
    failed_items,
    job_chunks,
    job_pin,
    request_options,
    video_version,
)
from posepipe.cloud.video_work import SplitJob, read_video_info, render_item, write_final_frames
from posepipe.errors import PosepipeError
from posepipe.export.motion_files import MOTION_FORMATS, content_type, outputs_of
from posepipe.result import Frame
from posepipe.video.runner import aggregate_video, rendered_now
from posepipe.video.stages import AggregateOptions, Chunk, ChunkResult

CONFIG = PipelineConfig.from_env()
LAYOUT = KeyLayout(CONFIG)
S3 = s3_client()
AGGREGATE = AggregateOptions()

logger = Logger(service="posepipe")
tracer = Tracer(service="posepipe")
metrics = Metrics(namespace="posepipe", service="posepipe")

RUNTIME = sagemaker_runtime_client()


class MapItem(BaseModel):
    """One Map item's output: the endpoint's answer, or a failure (``failed``, ``error``, ``cause``)."""

    model_config = ConfigDict(extra="allow")

    chunk: int | None = None
    failed: bool = False
    error: Any = None
    cause: Any = None


class AggregateEvent(BaseModel):
    job: SplitJob
    chunk_results: list[MapItem] = Field(default_factory=list)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=AggregateEvent)
    job = request.job
    logger.append_keys(correlation_id=job.id, input_key=job.key)
    failed: dict[int, str] = {}  # chunk index -> reason
    try:
        chunks = job_chunks(job.model_dump(), CONFIG)
        failed.update(failed_items([item.model_dump() for item in request.chunk_results], len(chunks)))
        for index in missing_results(job, chunks):
            uri = s3_uri(job.output_bucket, LAYOUT.chunk_result(job.id, index))
            failed.setdefault(index, f"no chunk result at {uri}")
        check_failures(job.key, failed, len(chunks), CONFIG)  # before any heavy work
        with tempfile.TemporaryDirectory(prefix="posepipe-aggregate-") as folder:
            handed = aggregate_job(job, chunks, failed, Path(folder))
    except PosepipeError as err:  # too many failed chunks, the video gone: refused, not raised
        logger.warning("job refused", extra={"code": err.code, "reason": str(err)})
        return rejection(job.key, err)
    finally:
        metrics.add_metric(name="FailedChunks", unit=MetricUnit.Count, value=len(failed))
    return {"job": event["job"], **handed}


def missing_results(job: SplitJob, chunks: list[Chunk]) -> list[int]:
    """Chunks whose result is not in the work prefix (one listing, not one request a chunk)."""
    prefix = LAYOUT.work_file(job.id, "chunks/")
    present: set[str] = set()
    for page in S3.get_paginator("list_objects_v2").paginate(Bucket=job.output_bucket, Prefix=prefix):
        present.update(item["Key"] for item in page.get("Contents", []))
    return [c.index for c in chunks if LAYOUT.chunk_result(job.id, c.index) not in present]


@tracer.capture_method
def aggregate_job(job: SplitJob, chunks: list[Chunk], failed: dict[int, str], folder: Path) -> dict[str, Any]:
    """Everything between reading the chunk results and handing the segments to the render Map;
    returns the render Map's manifest and the key of what the join needs."""
    started = time.perf_counter()
    pin = job_pin(job.model_dump()) if job.etag else None
    info = dataclasses.replace(
        read_video_info(S3, job.output_bucket, LAYOUT.video_info(job.id)), uri=job.video
    )
    if info.frame_count != job.frame_count:
        raise RuntimeError(f"{job.key}: {info.frame_count} frames in its probe, {job.frame_count} when split")
    items: list[dict[str, Any]] = []
    job_fields = job.model_dump()

    def hand_to_render(chunk: Chunk, frames: list[Frame]) -> dict[str, float]:
        write_final_frames(S3, LAYOUT, job.output_bucket, job.id, chunk, frames)
        items.append(render_item(job_fields, chunk).to_dict())
        return {}

    keypoints = folder / "keypoints.json"
    # The motion analysis' input, collected as the frames are made (never keypoints.json parsed).
    collected = TrackCollector()
    with keypoints.open("w", encoding="utf-8") as handle:
        aggregated = aggregate_video(
            info, chunks, read_chunk_results(job, chunks, failed), handle,
            options=AGGREGATE, segments_dir=folder, on_frame=collected.add_frame,
            rerun=lambda repair, agree_with: _repair(job, repair, agree_with),
            render=lambda chunk, frames, _, __: rendered_now(lambda: hand_to_render(chunk, frames)),
        )  # fmt: skip
    check_failures(job.key, failed, len(chunks), CONFIG)  # unreadable results count too
    aggregated_at = time.perf_counter()

    superseded = pin is not None and _superseded(pin)
    # A job of a version since uploaded again writes beside, under versions/<etag>/: the key's
    # own outputs are the newest upload's (docs/CLOUD.md, "Pinned inputs").
    keys = LAYOUT.video_outputs(job.key, pin.bare_etag if pin and superseded else None)
    S3.upload_file(
        str(keypoints), job.output_bucket, keys.keypoints, ExtraArgs={"ContentType": "application/json"}
    )
    uploaded = time.perf_counter()
    try:
        files, motion = outputs_of(analyze_collected(collected, aggregated.model), MOTION_FORMATS)
    except Exception as exc:  # the analysis is built on results already whole: reported, not fatal
        logger.exception("motion analysis failed")
        files, motion = {}, {"error": f"{type(exc).__name__}: {exc}"}
    for name, data in sorted(files.items()):
        S3.put_object(
            Bucket=job.output_bucket, Key=keys.analysis_file(name), Body=data, ContentType=content_type(name)
        )
    analysed = time.perf_counter()
    put_json(S3, job.output_bucket, LAYOUT.render_manifest(job.id), items)
    made = {
        "input": {"uri": job.video, **(pin.describe() if pin else {}), "superseded": superseded},
        "outputs": dataclasses.asdict(keys),
        "model": aggregated.model,
        "persons_per_frame": aggregated.persons_per_frame,
        "chunk_timings": aggregated.chunk_timings,
        "failed": {str(index): reason for index, reason in sorted(failed.items())},
        "smoothing": AGGREGATE.smoothing.enabled,
        "motion": motion,
        "stages_wall_s": {"aggregate": aggregated_at - started, "upload_keypoints": uploaded - aggregated_at,
                          "analysis": analysed - uploaded},
    }  # fmt: skip
    put_json(S3, job.output_bucket, LAYOUT.aggregated(job.id), made)
    person_frames = sum(n for n in aggregated.persons_per_frame if n is not None)
    metrics.add_metric(name="Frames", unit=MetricUnit.Count, value=len(aggregated.persons_per_frame))
    metrics.add_metric(name="PersonFrames", unit=MetricUnit.Count, value=person_frames)
    repairs = sum(1 for t in aggregated.chunk_timings if "repair_frames" in t)
    metrics.add_metric(name="BoundaryRepairs", unit=MetricUnit.Count, value=repairs)
    logger.info(
        "video aggregated",
        extra={"frames": len(aggregated.persons_per_frame), "person_frames": person_frames,
               "boundary_repairs": repairs, "failed_chunks": sorted(failed), "segments": len(items)},
    )  # fmt: skip
    return {
        "render": {"bucket": job.output_bucket, "key": LAYOUT.render_manifest(job.id)},
        "aggregated": LAYOUT.aggregated(job.id),
    }


def _superseded(pin: PinnedObject) -> bool:
    """Whether the key now holds another upload than the job's (or none)."""
    try:
        head = S3.head_object(Bucket=pin.bucket, Key=pin.key)
    except ClientError as err:
        if is_not_found(err):
            return True
        raise
    return not pin.is_held_by(head)


def read_chunk_results(
    job: SplitJob, chunks: list[Chunk], failed: dict[int, str]
) -> Iterator[ChunkResult | None]:
    """The chunk results from the work prefix, in order: None for a chunk that failed, was not
    written or cannot be read (and the chunk is listed in ``failed`` with the reason)."""
    for chunk in chunks:
        yield _read_chunk_result(job, chunk, failed)


def _read_chunk_result(job: SplitJob, chunk: Chunk, failed: dict[int, str]) -> ChunkResult | None:
    """The chunk's result from S3, or None (and the chunk listed as failed)."""
    if chunk.index in failed:
        return None
    key = LAYOUT.chunk_result(job.id, chunk.index)
    uri = s3_uri(job.output_bucket, key)
    try:
        result = ChunkResult.from_dict(get_json(S3, job.output_bucket, key))
    except ClientError as err:
        failed[chunk.index] = f"no chunk result at {uri}" if is_not_found(err) else str(err)
        return None
    except (ValueError, KeyError, TypeError) as err:  # not JSON, or not a ChunkResult
        failed[chunk.index] = f"unreadable chunk result at {uri}: {err!r}"[:300]
        return None
    if result.chunk != chunk or [f.index for f in result.frames] != list(range(chunk.start, chunk.stop)):
        failed[chunk.index] = (
            f"chunk result at {uri} holds frames {result.chunk.start}-{result.chunk.stop} "
            f"({len(result.frames)} of them), expected {chunk.start}-{chunk.stop}"
        )
        return None
    return result


def _repair(job: SplitJob, repair: Chunk, agree_with: list[Frame]) -> ChunkResult:
    """A boundary repair, run by the endpoint (see the module docstring)."""
    logger.info(
        "boundary repair",
        extra={"chunk": repair.index, "warmup_start": repair.warmup_start, "start": repair.start},
    )
    agreement = LAYOUT.repair_agreement(job.id, repair.index)
    output = LAYOUT.repair_result(job.id, repair.index)
    put_json(S3, job.output_bucket, agreement, {"frames": [frame.to_dict() for frame in agree_with]})
    body = {
        "video": job.video,
        **(video_version(job_pin(job.model_dump())) if job.etag else {}),
        **({"video_info": s3_uri(job.output_bucket, LAYOUT.video_info(job.id))} if job.etag else {}),
        "chunk": repair.to_dict(),
        "output": s3_uri(job.output_bucket, output),
        "options": request_options(CONFIG),
        "agree_with": s3_uri(job.output_bucket, agreement),
    }
    invoke_endpoint(RUNTIME, CONFIG.endpoint_name, body)
    return ChunkResult.from_dict(get_json(S3, job.output_bucket, output))
