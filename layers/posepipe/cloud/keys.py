"""Where things live in the buckets (AWS and local alike).

Inputs: ``images/<name>`` and ``videos/<name>`` in the input bucket. Outputs, in the output
bucket, under the input's name after its prefix, extension included (``clip.mp4`` and
``clip.mov`` never collide): ``images/<name>/pose.json``, ``images/<name>/annotated.<ext>``,
``videos/<name>/{keypoints.json, annotated.mp4, summary.json}``; failures in
``errors/<input key>.json``; chunk results and upload slots under the work prefix, which a lifecycle
rule expires.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from posepipe.cloud.config import PipelineConfig
from posepipe.errors import InputError

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def name_after_prefix(key: str, prefix: str) -> str:
    """``videos/a/clip.mp4`` -> ``a/clip.mp4``; an input outside ``prefix`` is an error."""
    if not key.startswith(prefix) or len(key) == len(prefix) or key.endswith("/"):
        raise InputError(key, f"not an input object under {prefix!r}")
    return key[len(prefix) :]


def job_id(key: str, etag: str) -> str:
    """A Step Functions execution name for one version of one input: the same key and ETag give
    the same id, so a duplicated event cannot start a second job (names: 1-80 of [A-Za-z0-9-_])."""
    digest = hashlib.sha256(f"{key}\n{etag.strip(chr(34))}".encode()).hexdigest()[:20]
    readable = _UNSAFE.sub("-", key.rsplit("/", 1)[-1]).strip("-")[:50] or "input"
    return f"{readable}-{digest}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the execution ``name`` of a state machine (``job_id`` names them)."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


@dataclass(frozen=True)
class ImageKeys:
    pose: str
    annotated: str


@dataclass(frozen=True)
class VideoKeys:
    keypoints: str
    annotated: str
    summary: str
    folder: str  # the motion analysis' files go under it, next to keypoints.json

    def analysis_file(self, name: str) -> str:
        """The key of a motion analysis file (``angles.csv``, ``person_3/markers.trc``, ...)."""
        return f"{self.folder}/{name}"


class KeyLayout:
    """The key layout of one configuration."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config

    def image_outputs(self, input_key: str, annotated_suffix: str) -> ImageKeys:
        base = self.config.images_prefix + name_after_prefix(input_key, self.config.images_prefix)
        return ImageKeys(pose=f"{base}/pose.json", annotated=f"{base}/annotated{annotated_suffix}")

    def api_image_outputs(self, request_id: str, annotated_suffix: str) -> ImageKeys:
        """Outputs of an image posted to the API (no input object): under ``images/api/<id>``."""
        return self.image_outputs(f"{self.config.images_prefix}api/{request_id}", annotated_suffix)

    def video_outputs(self, input_key: str, superseded_etag: str | None = None) -> VideoKeys:
        """The outputs of a video: ``videos/<name>/...``, the newest upload's; a job of an
        upload since replaced writes under ``videos/<name>/versions/<its etag>/...``."""
        base = self.config.videos_prefix + name_after_prefix(input_key, self.config.videos_prefix)
        if superseded_etag:
            base = f"{base}/versions/{superseded_etag.strip(chr(34))}"
        return VideoKeys(
            keypoints=f"{base}/keypoints.json",
            annotated=f"{base}/annotated.mp4",
            summary=f"{base}/summary.json",
            folder=base,
        )

    def error(self, input_key: str) -> str:
        return f"{self.config.errors_prefix}{input_key}.json"

    def chunk_result(self, job: str, index: int) -> str:
        return f"{self.config.work_prefix}{job}/chunks/{index:05d}.json"

    def chunk_manifest(self, job: str) -> str:
        return f"{self.config.work_prefix}{job}/chunks.json"

    def repair_result(self, job: str, index: int) -> str:
        """A boundary repair's result (the endpoint writes it; the aggregate reads it)."""
        return f"{self.config.work_prefix}{job}/repairs/{index:05d}.json"

    def repair_agreement(self, job: str, index: int) -> str:
        """The earlier frames a boundary repair may stop agreeing with (the aggregate writes them)."""
        return f"{self.config.work_prefix}{job}/repairs/{index:05d}-agree.json"

    def video_info(self, job: str) -> str:
        """The probed video (``VideoInfo.to_dict``): video_split writes it, the functions after it read it."""
        return f"{self.config.work_prefix}{job}/video.json"

    def final_frames(self, job: str, index: int) -> str:
        """A chunk's final frames (ids set, landmarks smoothed): the aggregate writes them, the
        chunk's render segment draws them."""
        return f"{self.config.work_prefix}{job}/frames/{index:05d}.json"

    def render_segment(self, job: str, index: int) -> str:
        """A chunk's annotated segment (H.264 MP4), joined by stream copy into annotated.mp4."""
        return f"{self.config.work_prefix}{job}/segments/{index:05d}.mp4"

    def segments_prefix(self, job: str) -> str:
        return f"{self.config.work_prefix}{job}/segments/"

    def render_manifest(self, job: str) -> str:
        """The render Map's items, one a segment (the aggregate writes it)."""
        return f"{self.config.work_prefix}{job}/segments.json"

    def aggregated(self, job: str) -> str:
        """What the aggregate made that the join puts in the summary (persons per frame, timings)."""
        return f"{self.config.work_prefix}{job}/aggregated.json"

    def work_file(self, job: str, name: str) -> str:
        return f"{self.config.work_prefix}{job}/{name}"

    def upload_slot(self, job: str) -> str:
        """The record of an upload slot issued by ``POST /videos`` (expires with the work prefix)."""
        return f"{self.config.work_prefix}uploads/{job}.json"
