"""``render_segment``: one item of the render Map, one chunk's part of the annotated video
(docs/CLOUD.md, "Rendering").

In: a :class:`posepipe.cloud.video_work.RenderItem` (``{"job": {...}, "chunk": {...}}``). Draws the
chunk's final frames (``work/<job>/frames/<chunk>.json``, the aggregate's) over the chunk's range
of the source, read through ranged GETs of the pinned version (no download: FFmpeg seeks to the
keyframe before the range and reads on), into an H.264 MP4 (:func:`posepipe.annotation.render.render_frames`,
no B-frames, so that segments join by stream copy), uploaded to ``work/<job>/segments/<chunk>.mp4``
with its timings in the object's metadata. Out: ``{"chunk", "segment", "frames", "timings",
"source_bytes_read"}``. Segments are independent: the Map draws them all at once, each within
its own Lambda's 15 minutes (docs/PERFORMANCE.md, "Rendering").
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import BaseModel, Field, parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ConfigDict

from posepipe.annotation.drawing import DrawOptions
from posepipe.annotation.render import render_frames
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.keys import KeyLayout
from posepipe.cloud.pinning import superseded_is_input_error
from posepipe.cloud.s3_reader import S3RangeReader
from posepipe.cloud.storage import s3_client, s3_uri
from posepipe.cloud.video_work import (
    RENDER_TIMINGS_METADATA,
    RenderItem,
    read_final_frames,
    read_video_info,
)

CONFIG = PipelineConfig.from_env()
LAYOUT = KeyLayout(CONFIG)
S3 = s3_client()
DRAW = DrawOptions()
RENDER_THREADS = 2  # the encoder's and conversions' threads: 3,008 MB gives a Lambda about 2 vCPUs

logger = Logger(service="posepipe")
tracer = Tracer(service="posepipe")
metrics = Metrics(namespace="posepipe", service="posepipe")


class RenderJob(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    video: str = Field(min_length=1)
    etag: str = Field(min_length=1)
    version_id: str | None = None
    output_bucket: str = Field(min_length=1)


class RenderChunk(BaseModel):
    index: int = Field(ge=0)
    start: int = Field(ge=0)
    stop: int = Field(gt=0)
    warmup_start: int = Field(ge=0)


class RenderEvent(BaseModel):
    job: RenderJob
    chunk: RenderChunk


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=RenderEvent)
    item = RenderItem.from_dict({"job": request.job.model_dump(), "chunk": request.chunk.model_dump()})
    job = request.job
    logger.append_keys(correlation_id=job.id, input_key=job.key, chunk=item.chunk.index)
    info = read_video_info(S3, job.output_bucket, LAYOUT.video_info(job.id))
    frames = read_final_frames(S3, LAYOUT, job.output_bucket, job.id, item.chunk)
    segment_key = LAYOUT.render_segment(job.id, item.chunk.index)
    with (
        tempfile.TemporaryDirectory(prefix="posepipe-render-") as folder,
        superseded_is_input_error(item.pin),
    ):
        source = S3RangeReader.of(S3, item.pin, streaming=True)
        segment = Path(folder) / "segment.mp4"
        with contextlib.closing(source):
            timings = render_frames(source, info, frames, segment, DRAW, threads=RENDER_THREADS)
        S3.upload_file(
            str(segment), job.output_bucket, segment_key,
            ExtraArgs={"ContentType": "video/mp4",
                       "Metadata": {RENDER_TIMINGS_METADATA: json.dumps(_rounded(timings))}},
        )  # fmt: skip
        segment_bytes = segment.stat().st_size
    metrics.add_metric(name="RenderedFrames", unit=MetricUnit.Count, value=len(frames))
    logger.info(
        "segment rendered",
        extra={"frames": len(frames), "timings": timings, "segment_bytes": segment_bytes,
               "source_bytes_read": source.bytes_read, "source_requests": source.requests},
    )  # fmt: skip
    return {
        "chunk": item.chunk.index,
        "segment": s3_uri(job.output_bucket, segment_key),
        "frames": len(frames),
        "timings": _rounded(timings),
        "source_bytes_read": source.bytes_read,
    }


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 4) for name, value in timings.items()}
