"""The image Lambda: pose estimation of single images, a thin adapter around
:class:`posepipe.image_job.ImageJob`.

One handler for three event kinds (see ``docs/CLOUD.md`` for the key layout):

- S3 ``ObjectCreated`` notifications and EventBridge ``Object Created`` events for
  ``images/<name>`` in the input bucket: writes ``images/<name>/annotated.<jpg|png>`` and then
  ``images/<name>/pose.json`` to the output bucket. A bad image gets ``errors/<input key>.json``
  and no retry; objects elsewhere are skipped.
- API Gateway (REST, payload v1) ``POST /images`` with the image as the body: answers the
  ``posepipe.pose/2`` result; ``?annotate=1`` also stores the annotated image (and its
  ``pose.json``) under ``images/api/<request id>/`` and adds a presigned ``annotated_url``;
  ``?max_poses=N`` (1..10); ``?model=NAME`` (a pose model of the catalogue: ``blazepose-lite``,
  ``-full``, ``-heavy``, ``movenet-lightning``, ``-thunder``) and ``?detector=NAME``
  (``blazepose``, ``centernet``, ``nanodet``), among those this deployment has built (400
  ``model_unavailable`` otherwise: the container images and ``posepipe serve`` build them all);
  the ``Server-Timing`` header's ``inference`` metric is the
  server's time for the image in milliseconds. Errors are ``{"error": code, "message": ...}``
  with a 4xx status.

The model is loaded once per container, when the module is imported: ``POSEPIPE_MODEL_URI``'s
(an S3 ``.task`` bundle or ``model.tar.gz``, the SageMaker endpoint's), fetched to /tmp and
verified, else ``POSEPIPE_MODEL``'s or the one built into the image
(``posepipe.cloud.model_source.function_model``).
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from posepipe.assets.catalogue import CATALOGUE, pose_model_names
from posepipe.cloud.api_errors import ApiError, register_error_handlers
from posepipe.cloud.api_requests import media_type, request_body
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.events import ObjectEvent, dispatch_event
from posepipe.cloud.keys import KeyLayout, name_after_prefix
from posepipe.cloud.model_source import function_model
from posepipe.cloud.storage import is_not_found, put_json, s3_client, s3_uri, write_error_record
from posepipe.engines.base import DEFAULT_DETECTOR, MULTIPOSE, InferenceOptions, pair_detector, parse_detector
from posepipe.engines.topdown.models import MOVENET_MODELS, required_models
from posepipe.errors import EngineError, InputError
from posepipe.image_job import ImageJob, ImageJobOptions
from posepipe.result import PoseResult

STAGE = "image_infer"
API_MAX_POSES = 10
IMAGE_MEDIA_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "application/octet-stream"}
)
# posepipe.media.images' InputError codes -> the API's status and error code; anything else is 422 bad_image.
_API_INPUT_ERRORS = {
    "empty": (400, "empty_body"),
    "too_many_pixels": (413, "too_many_pixels"),
    "out_of_memory": (413, "too_many_pixels"),
}
_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

config = PipelineConfig.from_env()
layout = KeyLayout(config)
s3 = s3_client()  # SigV4 presigning: valid in every region and for SSE-KMS objects
logger = Logger(service=STAGE)
tracer = Tracer(service=STAGE)
metrics = Metrics(namespace="posepipe", service=STAGE)
app = APIGatewayRestResolver()
model_path = function_model(config, s3, logger)  # POSEPIPE_MODEL_URI fetched and verified, or local

parse_detector(config.detector)  # a bad POSEPIPE_DETECTOR fails the cold start, naming the known ones

_jobs: dict[tuple[int, str | None, str], ImageJob] = {}


def image_job(max_poses: int, model: str | None = None, detector: str | None = None) -> ImageJob:
    """The job for ``max_poses``, pose model ``model`` (a catalogue name; None: this container's
    model) and ``detector`` (None: the configured one): built once per container and values."""
    key = (max_poses, model, detector or config.detector)
    job = _jobs.get(key)
    if job is None:
        options = ImageJobOptions(
            inference=InferenceOptions(
                max_poses=max_poses, model_path=model or str(model_path), detector=key[2]
            ),
            max_pixels=config.max_image_pixels,
        )
        job = _jobs[key] = ImageJob(options)
    return job


image_job(config.max_poses)  # the model loads during the cold start, not in the first request


# --- the handler ----------------------------------------------------------------------------


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Dispatch on the event's shape: S3 notification, EventBridge event or API Gateway request."""
    return dispatch_event(event, context, app=app, on_object=handle_object, logger=logger)


# --- S3 and EventBridge ---------------------------------------------------------------------


def handle_object(obj: ObjectEvent) -> dict[str, Any]:
    """One object event: a created image is run, anything else skipped."""
    if not obj.created:
        return _skipped(obj.key, f"event {obj.name}")
    return process_object(obj.bucket, obj.key, obj.etag)


def process_object(bucket: str, key: str, etag: str) -> dict[str, Any]:
    """Run one input object; a bad image is recorded under ``errors/`` and not raised."""
    logger.append_keys(s3_bucket=bucket, s3_key=key, etag=etag)
    try:
        if bucket != config.input_bucket:
            return _skipped(key, f"bucket {bucket} is not the input bucket")
        if not _is_image_input(key):
            return _skipped(key, f"not under {config.images_prefix!r}")
        found = _get_object(bucket, key)
        if found is None:
            return _skipped(key, "object no longer exists")
        body, size = found
        try:
            if size > config.max_image_bytes:
                body.close()
                raise InputError(key, _too_large_reason(size), code="too_large")
            result, annotated, suffix = infer(body.read(), s3_uri(bucket, key), config.max_poses)
        except InputError as exc:
            return _reject(key, exc)
        outputs = layout.image_outputs(key, suffix)
        if annotated is not None:
            _put_image(outputs.annotated, annotated, suffix)
        put_json(s3, config.output_bucket, outputs.pose, result.to_dict())  # last: marks completion
        persons = len(result.frames[0].persons)
        logger.info("image processed", extra={"persons": persons, "pose_key": outputs.pose})
        return {"key": key, "status": "done", "persons": persons, "pose": outputs.pose}
    finally:
        logger.remove_keys(["s3_bucket", "s3_key", "etag"])


def _is_image_input(key: str) -> bool:
    try:
        name_after_prefix(key, config.images_prefix)
    except InputError:
        return False
    return True


def _get_object(bucket: str, key: str) -> tuple[Any, int] | None:
    """The object's unread body and size (``None`` if it does not exist)."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    return response["Body"], int(response["ContentLength"])


def _reject(key: str, exc: InputError) -> dict[str, Any]:
    error_key = write_error_record(s3, config, key, stage=STAGE, reason=exc.reason, code=exc.code)
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
    logger.warning("image rejected", extra={"code": exc.code, "reason": exc.reason, "error_key": error_key})
    return {"key": key, "status": "rejected", "code": exc.code, "error": error_key}


def _skipped(key: str, reason: str) -> dict[str, Any]:
    logger.info("object skipped", extra={"object_key": key, "reason": reason})
    return {"key": key, "status": "skipped", "reason": reason}


def _put_image(key: str, data: bytes, suffix: str) -> None:
    content_type = "image/png" if suffix == ".png" else "image/jpeg"
    s3.put_object(Bucket=config.output_bucket, Key=key, Body=data, ContentType=content_type)


def _too_large_reason(size: int) -> str:
    return f"image is {size} bytes, over the limit of {config.max_image_bytes} bytes"


@tracer.capture_method(capture_response=False)
def infer(
    data: bytes, uri: str, max_poses: int, model: str | None = None, detector: str | None = None
) -> tuple[PoseResult, bytes | None, str]:
    """``ImageJob.run`` with its metrics."""
    started = time.perf_counter()
    result, annotated, suffix = image_job(max_poses, model, detector).run(data, uri)
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    metrics.add_metric(name="InferenceMs", unit=MetricUnit.Milliseconds, value=round(elapsed_ms, 1))
    metrics.add_metric(name="Persons", unit=MetricUnit.Count, value=len(result.frames[0].persons))
    return result, annotated, suffix


# --- API Gateway ----------------------------------------------------------------------------


@app.post("/images")
def post_image() -> Response[dict[str, Any]]:
    event = app.current_event
    request_id = event.request_context.request_id
    annotate = _annotate_param(event.get_query_string_value("annotate"))
    max_poses = _max_poses_param(event.get_query_string_value("max_poses"))
    model, detector = _model_params(
        event.get_query_string_value("model"), event.get_query_string_value("detector")
    )
    data = _request_image(event)
    started = time.perf_counter()
    result, annotated, suffix = infer(data, f"api://{request_id}", max_poses, model, detector)
    inference_ms = (time.perf_counter() - started) * 1000.0
    body = result.to_dict()
    if annotate and annotated is not None:
        outputs = layout.api_image_outputs(request_id, suffix)
        _put_image(outputs.annotated, annotated, suffix)
        put_json(s3, config.output_bucket, outputs.pose, body)
        body["annotated_url"] = s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": config.output_bucket, "Key": outputs.annotated},
            ExpiresIn=config.presign_seconds,
        )
    logger.info("image processed", extra={"persons": len(result.frames[0].persons), "annotate": annotate})
    # The server's own time for the image (decode, pose, drawing), so that clients can tell it
    # from the network and the API front: the standard Server-Timing header, in milliseconds.
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Server-Timing": f"inference;dur={inference_ms:.1f}"},
    )


def _request_image(event: APIGatewayProxyEvent) -> bytes:
    kind = media_type(event)
    if kind not in IMAGE_MEDIA_TYPES:
        accepted = ", ".join(sorted(IMAGE_MEDIA_TYPES))
        raise ApiError(
            415, "unsupported_media_type", f"Content-Type {kind or 'none'} is not one of: {accepted}"
        )
    data = request_body(event)
    if not data:
        raise ApiError(400, "empty_body", "the request has no body: send the image as the body")
    if len(data) > config.max_image_bytes:
        raise ApiError(413, "too_large", _too_large_reason(len(data)))
    return data


def _annotate_param(value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ApiError(400, "invalid_parameter", f"annotate must be 1, true, 0 or false, not {value!r}")


def _max_poses_param(value: str | None) -> int:
    if value is None:
        return config.max_poses
    try:
        max_poses = int(value)
    except ValueError:
        max_poses = 0
    if not 1 <= max_poses <= API_MAX_POSES:
        raise ApiError(
            400, "invalid_parameter", f"max_poses must be an integer from 1 to {API_MAX_POSES}, not {value!r}"
        )
    return max_poses


def _model_params(model: str | None, detector: str | None) -> tuple[str | None, str | None]:
    """``?model`` and ``?detector``, checked: known, able to run together, and built here."""
    if model is not None and model not in pose_model_names():
        raise ApiError(
            400,
            "invalid_parameter",
            f"unknown model {model!r}: known models are {', '.join(pose_model_names())}",
        )
    if detector is not None:
        try:
            parse_detector(detector)
        except EngineError as exc:
            raise ApiError(400, "invalid_parameter", str(exc)) from None
    if model in MOVENET_MODELS:
        if detector == "blazepose":
            raise ApiError(
                400,
                "invalid_parameter",
                f"model {model} runs with a general detector ({DEFAULT_DETECTOR}), not blazepose",
            )
        detector = detector or DEFAULT_DETECTOR
    if MULTIPOSE in (model, detector):  # its own detector, and no other
        try:
            detector = pair_detector(model, detector)
        except EngineError as exc:
            raise ApiError(400, "invalid_parameter", str(exc)) from None
    chosen = detector or config.detector
    if chosen != "blazepose" or model is not None:
        if chosen == MULTIPOSE:
            needed = [MULTIPOSE]
        elif chosen != "blazepose":
            needed = required_models(model or "blazepose-full", chosen)
        else:
            needed = [str(model)]
        missing = [name for name in needed if not _built(name)]
        if missing:
            built = [name for name in CATALOGUE if _built(name)]
            raise ApiError(
                400, "model_unavailable",
                f"this deployment has not built {', '.join(missing)} (it has {', '.join(built) or 'none'})",
            )  # fmt: skip
    return model, detector


@cache
def _built(name: str) -> bool:
    """Whether this container's cache holds the catalogue's model ``name``, checked (once)."""
    return CATALOGUE[name].is_built()


register_error_handlers(
    app,
    logger,
    metrics,
    input_error=lambda exc: ApiError(*_API_INPUT_ERRORS.get(exc.code, (422, "bad_image")), exc.reason),
    internal=ApiError(500, "internal_error", "the image could not be processed; try again later"),
)
