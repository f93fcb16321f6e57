"""``video_jobs``: the front of the video pipeline, a thin adapter around ``posepipe.cloud.jobs_api``.

One handler for three event kinds (see ``docs/CLOUD.md`` for the key layout):

- API Gateway (REST, payload v1): ``POST /videos`` (``{"filename": "...", "size_bytes": N}`` as
  JSON, or ``?filename=``) answers ``201`` with a job id and a presigned PUT URL under
  ``videos/``, or for ``size_bytes`` over 100 MB a multipart upload (presigned part URLs,
  :mod:`posepipe.cloud.multipart`), resumed by ``GET /videos/{job}/upload`` and finished by
  ``POST /videos/{job}/complete``; a declared size over the limit is ``413 too_large``;
  ``GET /jobs/{id}`` answers ``200`` with the job's status. Errors are
  ``{"error": code, "message": ...}`` with a 4xx status, or ``500`` ``internal``.
- S3 ``ObjectCreated`` notifications and EventBridge ``Object Created`` events for
  ``videos/<name>`` in the input bucket: start the state machine, one execution per version of
  one object (named ``job_id(key, etag)``, input ``{"bucket", "key", "etag"}``). An event
  delivered twice is a duplicate, not an error; objects elsewhere are skipped.

It imports nothing heavy (no numpy, OpenCV, MediaPipe or PyAV): a small zip function with the
posepipe layer.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from posepipe.cloud.api_errors import ApiError, register_error_handlers
from posepipe.cloud.api_requests import media_type, request_body
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.events import ObjectEvent, dispatch_event
from posepipe.cloud.jobs_api import complete_video_upload, job_status, new_upload, upload_state
from posepipe.cloud.keys import execution_arn, job_id, name_after_prefix
from posepipe.cloud.storage import s3_client
from posepipe.errors import InputError

STAGE = "video_jobs"
_INPUT_ERROR_STATUS = {
    "not_found": 404,
    "too_large": 413,
    "upload_incomplete": 409,
    "upload_complete": 409,
    "not_multipart": 409,
}

config = PipelineConfig.from_env()
s3 = s3_client()  # SigV4 presigning: valid in every region and for SSE-KMS objects
sfn = boto3.client("stepfunctions")
logger = Logger(service=STAGE)
tracer = Tracer(service=STAGE)
metrics = Metrics(namespace="posepipe", service=STAGE)
app = APIGatewayRestResolver()


# --- the handler ----------------------------------------------------------------------------


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Dispatch on the event's shape: S3 notification, EventBridge event or API Gateway request."""
    return dispatch_event(event, context, app=app, on_object=handle_object, logger=logger)


# --- S3 and EventBridge: start one execution per uploaded video -----------------------------


def handle_object(obj: ObjectEvent) -> dict[str, Any]:
    """One object event: a created video starts its job, anything else is skipped."""
    if not obj.created:
        return _skipped(obj.bucket, obj.key, f"event {obj.name}")
    return start_job(obj.bucket, obj.key, obj.etag, obj.version_id)


@tracer.capture_method(capture_response=False)
def start_job(bucket: str, key: str, etag: str, version_id: str = "") -> dict[str, Any]:
    """Start the execution of one version of one video (``job_id(key, etag)``), at most once; the
    input names the version (``etag``, and ``version_id`` in a bucket that keeps versions), which
    every read of the job is pinned to (:mod:`posepipe.cloud.pinning`)."""
    if bucket != config.input_bucket:
        return _skipped(bucket, key, f"bucket {bucket} is not the input bucket")
    try:
        name_after_prefix(key, config.videos_prefix)
    except InputError:
        return _skipped(bucket, key, f"not under {config.videos_prefix!r}")
    if not etag:
        return _skipped(bucket, key, "the event carries no ETag")
    name = job_id(key, etag)
    arn = execution_arn(_state_machine_arn(), name)
    result = {"bucket": bucket, "key": key, "execution": name, "execution_arn": arn}
    logger.append_keys(s3_bucket=bucket, s3_key=key, etag=etag, execution=name)
    try:
        # A running execution started again with the same input is answered as if new (Step
        # Functions' idempotency), so a repeated event is found by looking first; the start's
        # ExecutionAlreadyExists covers a duplicate delivered between the look and the start.
        if _execution_exists(arn):
            return _duplicate(result)
        request = {"bucket": bucket, "key": key, "etag": etag}
        if version_id and version_id != "null":
            request["version_id"] = version_id
        payload = json.dumps(request)
        try:
            sfn.start_execution(stateMachineArn=config.state_machine_arn, name=name, input=payload)
        except sfn.exceptions.ExecutionAlreadyExists:
            return _duplicate(result)
        metrics.add_metric(name="VideoJobsStarted", unit=MetricUnit.Count, value=1)
        logger.info("video job started")
        return {**result, "status": "started"}
    finally:
        logger.remove_keys(["s3_bucket", "s3_key", "etag", "execution"])


def _execution_exists(arn: str) -> bool:
    try:
        sfn.describe_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        return False
    return True


def _state_machine_arn() -> str:
    if not config.state_machine_arn:
        raise RuntimeError("POSEPIPE_STATE_MACHINE_ARN is not set")
    return config.state_machine_arn


def _duplicate(result: dict[str, Any]) -> dict[str, Any]:
    metrics.add_metric(name="DuplicateVideoEvents", unit=MetricUnit.Count, value=1)
    logger.info("duplicate event: the execution exists")
    return {**result, "status": "duplicate"}


def _skipped(bucket: str, key: str, reason: str) -> dict[str, Any]:
    logger.info("object skipped", extra={"s3_bucket": bucket, "object_key": key, "reason": reason})
    return {"bucket": bucket, "key": key, "status": "skipped", "reason": reason}


# --- API Gateway ----------------------------------------------------------------------------


@app.post("/videos")
def post_videos() -> Response[dict[str, Any]]:
    request = _request_object(app.current_event)
    filename = _filename(app.current_event, request)
    upload = new_upload(s3, config, filename, _size_bytes(request))
    metrics.add_metric(name="UploadSlots", unit=MetricUnit.Count, value=1)
    logger.info(
        "upload slot issued",
        extra={"job": upload["job"], "object_key": upload["key"], "method": upload["upload"]["method"]},
    )
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=upload)


@app.get("/videos/<job>/upload")
def get_video_upload(job: str) -> dict[str, Any]:
    return upload_state(s3, config, job)


@app.post("/videos/<job>/complete")
def post_video_complete(job: str) -> dict[str, Any]:
    done = complete_video_upload(s3, config, job)
    metrics.add_metric(name="MultipartUploadsCompleted", unit=MetricUnit.Count, value=1)
    logger.info("multipart upload completed", extra={"job": job, "size_bytes": done["size_bytes"]})
    return done


@app.get("/jobs/<job>")
def get_job(job: str) -> dict[str, Any]:
    _state_machine_arn()
    return job_status(s3, sfn, config, job)


def _request_object(event: APIGatewayProxyEvent) -> dict[str, Any]:
    """The body's JSON object (``{}`` for no body)."""
    body = _body_text(event)
    if not body.strip():
        return {}
    kind = media_type(event)
    if kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(
            415, "unsupported_media_type", f"Content-Type {kind or 'none'} is not application/json"
        )
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, "bad_body", f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_body", 'the body must be a JSON object: {"filename": "..."}')
    return data


def _filename(event: APIGatewayProxyEvent, request: dict[str, Any]) -> str:
    """The body's ``filename``, else the ``filename`` query parameter."""
    filename = request.get("filename")
    if filename is None:
        return event.query_string_parameters.get("filename") or ""
    if not isinstance(filename, str):
        raise ApiError(400, "invalid_parameter", f"filename must be a string, not {filename!r}")
    return filename


def _size_bytes(request: dict[str, Any]) -> int | None:
    """The body's ``size_bytes`` (None when it is left out)."""
    size = request.get("size_bytes")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int):
        raise ApiError(400, "invalid_parameter", f"size_bytes must be a whole number of bytes, not {size!r}")
    return size


def _body_text(event: APIGatewayProxyEvent) -> str:
    try:
        return request_body(event).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_body", "the body is not UTF-8 text") from None


register_error_handlers(
    app,
    logger,
    metrics,
    input_error=lambda exc: ApiError(_INPUT_ERROR_STATUS.get(exc.code, 400), exc.code, str(exc)),
    internal=ApiError(500, "internal", "the request could not be handled; try again later"),
)
