"""Uploads a function gave up on: the error records of Lambda's on-failure destination.

``image_infer`` and ``video_jobs`` are invoked asynchronously (EventBridge "Object Created"
events). A function error there is retried by Lambda (2 retries) and then, without a
destination, dropped: the upload would stay "queued" for ever. Their on-failure destination is an
SQS queue that the ``failure_records`` function reads (docs/CLOUD.md, "Failures"); each message
is Lambda's invocation record::

    {"requestContext": {"functionArn", "condition": "RetriesExhausted" | "EventAgeExceeded",
                        "approximateInvokeCount"},
     "requestPayload": <the event>,
     "responseContext": {"functionError": "Unhandled", ...},
     "responsePayload": {"errorType", "errorMessage", "stackTrace"}}

:func:`lost_uploads` names the input objects of one such record and why they were not processed,
as error records hold it: the stage from the object's prefix (``images/``: ``image_infer``,
``videos/``: ``video_jobs``), the code ``internal_error`` (``timed_out`` when the event grew too
old to be tried again) and one readable line without the stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent

from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.events import ObjectEvent, object_events
from posepipe.cloud.rejections import INTERNAL_ERROR, readable_reason

_CODES = {"EventAgeExceeded": "timed_out"}


@dataclass(frozen=True)
class LostUpload:
    """One input object a function gave up on, and the error record to write for it."""

    key: str
    stage: str
    code: str
    reason: str


def lost_uploads(invocation: Mapping[str, Any], config: PipelineConfig) -> list[LostUpload]:
    """The uploads of one on-failure invocation record (module docstring); objects outside the
    input bucket's images and videos prefixes are nobody's uploads and give none."""
    context = invocation.get("requestContext")
    if not isinstance(context, Mapping) or "requestPayload" not in invocation:
        raise ValueError(f"not a Lambda invocation record: keys {sorted(invocation)}")
    condition = str(context.get("condition") or "RetriesExhausted")
    attempts = context.get("approximateInvokeCount")
    response = invocation.get("responsePayload")
    error = ""
    if isinstance(response, Mapping) and response.get("errorMessage") is not None:
        kind = response.get("errorType")
        error = f"{kind}: {response['errorMessage']}" if kind else str(response["errorMessage"])
    lost = []
    for obj in _objects(invocation["requestPayload"]):
        stage = _stage(obj, config)
        if stage is None:
            continue
        tried = f"{attempts} attempts" if attempts else "its retries"
        if condition == "EventAgeExceeded":
            what = f"{stage} could not process the upload in time (the event expired after {tried})"
        else:
            what = f"{stage} failed on the upload after {tried}"
        reason = what + (f" ({error})" if error else "") + "; the details are in its logs"
        lost.append(
            LostUpload(obj.key, stage, _CODES.get(condition, INTERNAL_ERROR), readable_reason(reason))
        )
    return lost


def _objects(event: Any) -> list[ObjectEvent]:
    if not isinstance(event, dict):
        return []
    records = event.get("Records")
    first = records[0] if isinstance(records, list) and records else None
    if isinstance(first, dict) and first.get("eventSource") == "aws:s3":
        return object_events(S3Event(event))
    if event.get("source") == "aws.s3" and "detail-type" in event:
        return object_events(S3EventBridgeNotificationEvent(event))
    return []  # an API request: its caller got the 500


def _stage(obj: ObjectEvent, config: PipelineConfig) -> str | None:
    if obj.bucket != config.input_bucket:
        return None
    if obj.key.startswith(config.images_prefix):
        return "image_infer"
    if obj.key.startswith(config.videos_prefix):
        return "video_jobs"
    return None
