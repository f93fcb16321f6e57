"""A video job's work files, between the functions of its pipeline (docs/CLOUD.md, "Rendering").

``video_split`` writes the probe (``work/<job>/video.json``: every frame's timestamp, so that no
later function probes the video again). The aggregate writes each chunk's final frames
(``frames/<chunk>.json``: ids set, landmarks smoothed), the render Map's items
(``segments.json``: one :class:`RenderItem` a chunk) and what it made for the summary
(``aggregated.json``). Each ``render_segment`` invocation draws one chunk's frames over its range
of the source, read by ranged GETs, into ``segments/<chunk>.mp4``, with its timings in the
object's metadata; ``join_video`` joins the segments by stream copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from posepipe.cloud.keys import KeyLayout
from posepipe.cloud.pinning import PinnedObject
from posepipe.cloud.storage import get_json, put_json
from posepipe.cloud.video_job import job_pin
from posepipe.media.probe import VideoInfo
from posepipe.result import Frame
from posepipe.video.stages import Chunk

RENDER_TIMINGS_METADATA = "posepipe-render-timings"
"""The S3 user metadata key of a segment's render timings (JSON: decode, draw, encode seconds)."""

_info_cache: dict[tuple[str, str], VideoInfo] = {}


class SplitJob(BaseModel):
    """video_split's ``job``, as the aggregate and join_video get it (more fields are kept and
    passed on)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    video: str = Field(min_length=1)
    etag: str | None = None  # the version the job was started for (posepipe.cloud.pinning)
    version_id: str | None = None
    frame_count: int = Field(gt=0)
    fps: float = Field(gt=0)
    width: int
    height: int
    duration_s: float
    chunk_count: int = Field(gt=0)
    output_bucket: str = Field(min_length=1)


def read_video_info(s3: Any, bucket: str, key: str) -> VideoInfo:
    """The probe video_split wrote (kept for the warm environment's next invocation of the job)."""
    cached = _info_cache.get((bucket, key))
    if cached is None:
        cached = VideoInfo.from_dict(get_json(s3, bucket, key))
        _info_cache.clear()  # one job's at a time: up to a few MB for hours of video
        _info_cache[(bucket, key)] = cached
    return cached


@dataclass(frozen=True)
class RenderItem:
    """One item of the render Map: the segment of ``chunk`` of the job. ``job`` carries what
    finding the work files and reading the pinned source take (``id``, ``bucket``, ``key``,
    ``etag``, ``version_id``, ``output_bucket``)."""

    job: dict[str, Any]
    chunk: Chunk

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "chunk": self.chunk.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderItem:
        return cls(job=dict(data["job"]), chunk=Chunk.from_dict(data["chunk"]))

    @property
    def pin(self) -> PinnedObject:
        return job_pin(self.job)


RENDER_JOB_FIELDS = ("id", "bucket", "key", "video", "etag", "version_id", "output_bucket")


def render_item(job: dict[str, Any], chunk: Chunk) -> RenderItem:
    return RenderItem(job={name: job.get(name) for name in RENDER_JOB_FIELDS}, chunk=chunk)


def write_final_frames(
    s3: Any, layout: KeyLayout, bucket: str, job: str, chunk: Chunk, frames: list[Frame]
) -> None:
    put_json(
        s3, bucket, layout.final_frames(job, chunk.index),
        {"chunk": chunk.to_dict(), "frames": [frame.to_dict() for frame in frames]},
    )  # fmt: skip


def read_final_frames(s3: Any, layout: KeyLayout, bucket: str, job: str, chunk: Chunk) -> list[Frame]:
    data = get_json(s3, bucket, layout.final_frames(job, chunk.index))
    if Chunk.from_dict(data["chunk"]) != chunk:
        raise RuntimeError(f"the final frames of chunk {chunk.index} of job {job} are of another chunk")
    return [Frame.from_dict(frame) for frame in data["frames"]]


def render_timings(metadata: dict[str, str]) -> dict[str, float]:
    """A segment's timings from its object's user metadata (empty when it has none)."""
    raw = metadata.get(RENDER_TIMINGS_METADATA)
    if not raw:
        return {}
    return {str(name): float(value) for name, value in json.loads(raw).items()}
