"""The video-job API: an upload slot (``POST /videos``) and a status (``GET /jobs/{id}``).

A job's id is the video's name under the videos prefix (unique per upload: a short random part
and the file name), so its status needs no database: it is read from the buckets (the error
record, the summary) and from the execution, whose name comes from the key and the ETag.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.keys import KeyLayout, execution_arn, job_id
from posepipe.errors import InputError

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts")


def new_upload(s3: Any, config: PipelineConfig, filename: str) -> dict[str, Any]:
    """A job id and a presigned PUT URL for uploading one video under the videos prefix."""
    name = _SAFE_NAME.sub("-", filename.rsplit("/", 1)[-1]).strip("-.")
    if not name or not name.lower().endswith(_VIDEO_SUFFIXES):
        raise InputError(
            filename or "(no name)", f"not a video file name (expected one of {', '.join(_VIDEO_SUFFIXES)})"
        )
    job = f"{uuid.uuid4().hex[:12]}-{name}"
    key = f"{config.videos_prefix}{job}"
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": config.input_bucket, "Key": key}, ExpiresIn=config.presign_seconds
    )
    return {
        "job": job,
        "key": key,
        "upload": {"method": "PUT", "url": url, "expires_in": config.presign_seconds},
        "status": f"/jobs/{job}",
    }


def job_status(s3: Any, stepfunctions: Any, config: PipelineConfig, job: str) -> dict[str, Any]:
    """``awaiting_upload``, ``queued``, ``running``, ``succeeded`` (with presigned result URLs) or
    ``failed`` (with the error record)."""
    if not job or "/" in job or job.startswith("."):
        raise InputError(job or "(no id)", "not a job id")
    layout = KeyLayout(config)
    key = f"{config.videos_prefix}{job}"
    error = _get_json(s3, config.output_bucket, layout.error(key))
    if error is not None:
        return {"job": job, "status": "failed", "error": error}
    outputs = layout.video_outputs(key)
    summary = _get_json(s3, config.output_bucket, outputs.summary)
    if summary is not None:

        def url(object_key: str) -> str:
            params = {"Bucket": config.output_bucket, "Key": object_key}
            presigned: str = s3.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=config.presign_seconds
            )
            return presigned

        return {
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
    try:
        head = s3.head_object(Bucket=config.input_bucket, Key=key)
    except s3.exceptions.ClientError:
        return {"job": job, "status": "awaiting_upload"}
    execution = execution_arn(config.state_machine_arn, job_id(key, head["ETag"]))
    try:
        described = stepfunctions.describe_execution(executionArn=execution)
    except stepfunctions.exceptions.ExecutionDoesNotExist:
        return {"job": job, "status": "queued"}
    status = str(described["status"]).lower()
    answer: dict[str, Any] = {"job": job, "status": status, "execution": execution}
    if status not in ("running", "succeeded"):
        # Failed, timed out or aborted before (or while) writing its error record: read it once
        # more, then fall back on what the execution itself says.
        error = _get_json(s3, config.output_bucket, layout.error(key))
        if error is None:
            error = _execution_error(described, f"s3://{config.input_bucket}/{key}")
        answer["error"] = error
    return answer


def _execution_error(described: dict[str, Any], input_uri: str) -> dict[str, Any]:
    """The error of an execution that left no error record (one that timed out, say)."""
    return {
        "input": input_uri,
        "stage": "pipeline",
        "code": described.get("error") or str(described["status"]),
        "reason": described.get("cause") or f"the execution ended {str(described['status']).lower()}",
        "execution": described.get("executionArn"),
    }


def _get_json(s3: Any, bucket: str, key: str) -> Any:
    import json

    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None
