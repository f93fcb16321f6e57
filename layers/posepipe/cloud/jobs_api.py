"""The video-job API: an upload slot (``POST /videos``: a presigned PUT, or a multipart upload
for a video over 100 MB, resumed with ``GET /videos/{job}/upload`` and finished with ``POST
/videos/{job}/complete``) and a status (``GET /jobs/{id}``).

A job's id is the video's name under the videos prefix (unique per upload: a short random part
and the file name), so its status needs no database: it is read from the buckets (the summary,
the error record, the input object, the upload slot's record) and from the execution, whose
name comes from the key and the ETag.

The statuses, in the order they are decided:

- ``succeeded``: the summary of the upload the key holds now exists (join_video writes it
  last, as its "done" marker; a summary of an earlier upload of the key is not this job's), with
  presigned URLs of the results (``analysis``: the motion analysis' ``analysis.json``, beside
  which its other files lie); when some chunks failed (fewer than the job can stand) it carries
  ``warnings`` naming them: their frames are in the results, marked not processed; one when
  the motion analysis failed, which leaves the other results whole; and one (``render_failed``)
  when segments of the annotated video could not be rendered: then there is no ``annotated``.
- ``running``, ``failed``, ``timed_out``, ``aborted``: the video is uploaded and its execution
  says so (a failed one with its error record, or the execution's own error when it left none).
  An error record while the execution still runs is not yet a failure: it is either a partial
  failure the aggregate recorded on its way to a summary, or the record the state machine
  writes just before it fails.
- ``queued``: uploaded, no execution yet (the upload's event has not arrived), and no error.
- ``failed``: no video (or no execution) and an error record (one written for an upload whose
  event could not be delivered, say).
- ``awaiting_upload``: nothing uploaded yet, and an upload slot was issued for this id.
- Anything else is no job: :class:`~posepipe.errors.InputError` with code ``not_found``.

S3 errors other than "no such object" (access denied, throttling, a bucket that is not there)
are raised, never read as a missing object.
"""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
import re
import uuid
from typing import Any

from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.keys import KeyLayout, execution_arn, job_id
from posepipe.cloud.multipart import (
    MULTIPART_THRESHOLD_BYTES,
    PartPlan,
    complete_upload,
    plan_parts,
    resume_upload,
    start_upload,
)
from posepipe.cloud.rejections import INTERNAL_ERROR, readable_reason
from posepipe.cloud.storage import is_missing_object, put_json, s3_object_exists
from posepipe.errors import InputError

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")  # too_long, chunks_failed: not an exception's class
_VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts")


def new_upload(
    s3: Any, config: PipelineConfig, filename: str, size_bytes: int | None = None
) -> dict[str, Any]:
    """A job id and how to upload one video under the videos prefix: a presigned PUT URL, or,
    for ``size_bytes`` over 100 MB, a multipart upload (:mod:`posepipe.cloud.multipart`); the
    slot is recorded (``KeyLayout.upload_slot``) so that its status is known before the upload.
    A declared size over ``max_video_bytes`` is refused here, before a byte is sent."""
    name = _SAFE_NAME.sub("-", filename.rsplit("/", 1)[-1]).strip("-.")
    if not name or not name.lower().endswith(_VIDEO_SUFFIXES):
        raise InputError(
            filename or "(no name)", f"not a video file name (expected one of {', '.join(_VIDEO_SUFFIXES)})"
        )
    if size_bytes is not None:
        if size_bytes < 1:
            raise InputError(filename, f"size_bytes must be a positive number of bytes, not {size_bytes}")
        if size_bytes > config.max_video_bytes:
            raise InputError(
                filename,
                f"the video is {size_bytes} bytes, over the limit of {config.max_video_bytes} bytes",
                code="too_large",
            )
    job = f"{uuid.uuid4().hex[:12]}-{name}"
    key = f"{config.videos_prefix}{job}"
    record: dict[str, Any] = {"job": job, "key": key}
    if size_bytes is not None and size_bytes > MULTIPART_THRESHOLD_BYTES:
        plan = plan_parts(size_bytes)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        upload = start_upload(s3, config.input_bucket, key, plan, config.presign_seconds, content_type)
        upload.update(_multipart_routes(job))
        record.update(upload_id=upload["upload_id"], size_bytes=size_bytes, part_bytes=plan.part_bytes)
    else:
        url = s3.generate_presigned_url(
            "put_object", Params={"Bucket": config.input_bucket, "Key": key}, ExpiresIn=config.presign_seconds
        )
        upload = {"method": "PUT", "url": url, "expires_in": config.presign_seconds}
        if size_bytes is not None:
            record["size_bytes"] = size_bytes
    issued = dt.datetime.now(dt.UTC)
    expires = issued + dt.timedelta(seconds=config.presign_seconds)
    record.update(issued=_iso(issued), upload_expires=_iso(expires))
    put_json(s3, config.output_bucket, KeyLayout(config).upload_slot(job), record)
    return {"job": job, "key": key, "upload": upload, "status": f"/jobs/{job}"}


def upload_state(s3: Any, config: PipelineConfig, job: str) -> dict[str, Any]:
    """``GET /videos/{job}/upload``: the parts S3 holds of a multipart upload and fresh URLs for
    the rest (how an interrupted upload resumes)."""
    key, slot, plan = _multipart_slot(s3, config, job)
    upload = resume_upload(s3, config.input_bucket, key, slot["upload_id"], plan, config.presign_seconds)
    upload.update(_multipart_routes(job))
    return {"job": job, "key": key, "upload": upload, "status": f"/jobs/{job}"}


def complete_video_upload(s3: Any, config: PipelineConfig, job: str) -> dict[str, Any]:
    """``POST /videos/{job}/complete``: the multipart upload assembled into the video (which
    starts the job, as any upload does)."""
    key, slot, plan = _multipart_slot(s3, config, job)
    etag = complete_upload(s3, config.input_bucket, key, slot["upload_id"], plan)
    return {"job": job, "key": key, "etag": etag, "size_bytes": plan.size_bytes, "status": f"/jobs/{job}"}


def _multipart_slot(s3: Any, config: PipelineConfig, job: str) -> tuple[str, dict[str, Any], PartPlan]:
    """The video key, the slot record and the part plan of ``job``'s multipart upload."""
    _check_job_id(job)
    slot = _get_json(s3, config.output_bucket, KeyLayout(config).upload_slot(job))
    if slot is None:
        raise InputError(
            job, "no such upload: POST /videos issued no upload slot with this id", code="not_found"
        )
    if "upload_id" not in slot:
        raise InputError(job, "this upload is a single PUT, not a multipart upload", code="not_multipart")
    key = str(slot["key"])
    if s3_object_exists(s3, config.input_bucket, key):
        raise InputError(job, "the upload is already complete", code="upload_complete")
    return key, slot, PartPlan(int(slot["size_bytes"]), int(slot["part_bytes"]))


def _multipart_routes(job: str) -> dict[str, str]:
    return {"complete": f"/videos/{job}/complete", "resume": f"/videos/{job}/upload"}


def _check_job_id(job: str) -> None:
    if not job or "/" in job or job.startswith("."):
        raise InputError(job or "(no id)", "not a job id")


def job_status(s3: Any, stepfunctions: Any, config: PipelineConfig, job: str) -> dict[str, Any]:
    """The job's status, as the module docstring decides it."""
    _check_job_id(job)
    layout = KeyLayout(config)
    key = f"{config.videos_prefix}{job}"
    outputs = layout.video_outputs(key)
    try:
        head = s3.head_object(Bucket=config.input_bucket, Key=key)
    except Exception as err:
        if not is_missing_object(err):
            raise
        head = None
    summary = _get_json(s3, config.output_bucket, outputs.summary)
    if summary is not None and _of_the_upload(summary, head):
        return _succeeded(s3, config, job, outputs, summary)
    error = _get_json(s3, config.output_bucket, layout.error(key))
    if head is None:
        if error is not None:
            return {"job": job, "status": "failed", "error": public_error(error)}
        if _get_json(s3, config.output_bucket, layout.upload_slot(job)) is not None:
            return {"job": job, "status": "awaiting_upload"}
        raise InputError(
            job, "no such job: no upload slot was issued for it and no video was uploaded", code="not_found"
        )
    execution = execution_arn(config.state_machine_arn, job_id(key, head["ETag"]))
    try:
        described = stepfunctions.describe_execution(executionArn=execution)
    except stepfunctions.exceptions.ExecutionDoesNotExist:
        if error is not None:
            return {"job": job, "status": "failed", "error": public_error(error)}
        return {"job": job, "status": "queued"}
    status = str(described["status"]).lower()
    if status == "succeeded":
        # Ended after our first look at the summary: look again.
        summary = _get_json(s3, config.output_bucket, outputs.summary)
        if summary is not None and _of_the_upload(summary, head):
            return _succeeded(s3, config, job, outputs, summary)
    answer: dict[str, Any] = {"job": job, "status": status, "execution": execution}
    if status not in ("running", "succeeded"):
        # Failed, timed out or aborted before (or while) writing its error record: read it once
        # more, then fall back on what the execution itself says.
        error = _get_json(s3, config.output_bucket, layout.error(key))
        if error is None:
            error = _execution_error(described, f"s3://{config.input_bucket}/{key}")
        answer["error"] = public_error(error)
    return answer


def _of_the_upload(summary: dict[str, Any], head: dict[str, Any] | None) -> bool:
    """Whether ``summary`` is of the upload the key holds now (a re-upload's job may still run:
    the earlier job's summary is not its result). Summaries that name no ETag, and those of a
    key since deleted, stand."""
    etag = (summary.get("input") or {}).get("etag")
    if head is None or not etag:
        return True
    return str(head["ETag"]).strip('"') == str(etag).strip('"')


def _succeeded(
    s3: Any, config: PipelineConfig, job: str, outputs: Any, summary: dict[str, Any]
) -> dict[str, Any]:
    def url(object_key: str) -> str:
        params = {"Bucket": config.output_bucket, "Key": object_key}
        presigned: str = s3.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=config.presign_seconds
        )
        return presigned

    answer: dict[str, Any] = {
        "job": job,
        "status": "succeeded",
        "results": {
            "keypoints": url(outputs.keypoints),
            "annotated": url(outputs.annotated),
            "summary": url(outputs.summary),
        },
        "frames": summary.get("frames"),
        "person_frames": summary.get("person_frames"),
    }
    warnings = [_chunk_warning(chunk) for chunk in summary.get("failed_chunks") or []]
    if summary.get("render_failed"):  # the annotated video was not made; the rest is whole
        del answer["results"]["annotated"]
        failed = summary["render_failed"]
        warnings.append(
            {
                "code": "render_failed",
                "segments": failed,
                "message": f"{len(failed)} of {summary.get('render_segments')} segments of the annotated "
                "video could not be rendered, so there is no annotated video; the keypoints, the motion "
                "analysis and the summary are whole",
            }
        )
    motion = summary.get("motion") or {}
    if "error" in motion:
        warnings.append(
            {
                "code": "analysis_failed",
                "message": f"the motion analysis failed ({motion['error']}); the keypoints, the "
                "annotated video and the summary are whole",
            }
        )
    elif motion:
        answer["results"]["analysis"] = url(outputs.analysis_file("analysis.json"))
    if warnings:
        answer["warnings"] = warnings
    return answer


def _chunk_warning(chunk: dict[str, Any]) -> dict[str, Any]:
    """One failed chunk of a job that succeeded: which frames were not processed, and why."""
    start, stop = chunk.get("start"), chunk.get("stop")
    return {
        "code": "chunk_failed",
        "chunk": chunk.get("index"),
        "frames": [start, stop],
        "message": (
            f"chunk {chunk.get('index')} (frames {start} to {stop}, the last not included) failed: "
            f"{chunk.get('reason')}; "
            "its frames are in the results, marked not processed"
        ),
    }


_EXECUTION_CODES = {"TIMED_OUT": "timed_out", "ABORTED": "aborted"}
_RECORD_FIELDS = ("input", "stage", "code", "reason", "time", "execution")


def _execution_error(described: dict[str, Any], input_uri: str) -> dict[str, Any]:
    """The error of an execution that left no error record (one that timed out, say): its status
    and its error's name; never its cause, which may hold a function's stack trace."""
    status = str(described["status"])
    name = described.get("error")
    return {
        "input": input_uri,
        "stage": "pipeline",
        "code": _EXECUTION_CODES.get(status, INTERNAL_ERROR),
        "reason": f"the execution ended {status.lower()}"
        + (f" with {name}" if name else "")
        + "; the details are in its history and the functions' logs",
        "execution": described.get("executionArn"),
    }


def public_error(record: dict[str, Any]) -> dict[str, Any]:
    """An error record as ``GET /jobs`` hands it out: its known fields, the code a word, the
    reason one line without a stack trace (:mod:`posepipe.cloud.rejections`)."""
    public = {name: record[name] for name in _RECORD_FIELDS if record.get(name) is not None}
    code = str(public.get("code") or INTERNAL_ERROR)
    public["code"] = code if _CODE.fullmatch(code) else INTERNAL_ERROR
    public["reason"] = readable_reason(str(public.get("reason") or "failed"))
    return public


def _get_json(s3: Any, bucket: str, key: str) -> Any:
    """The object's JSON, or None when it does not exist (any other S3 error is raised)."""
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as err:
        if is_missing_object(err):
            return None
        raise


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")
