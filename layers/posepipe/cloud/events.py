"""Which kind of event reached a function that several AWS sources invoke.

image_infer and video_jobs each take S3 notifications, EventBridge "Object Created" events and
API Gateway requests: :func:`dispatch_event` hands each S3 object event (:class:`ObjectEvent`,
whichever source it came through) to one callback and each request to the API resolver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.typing import LambdaContext


@dataclass(frozen=True)
class ObjectEvent:
    """One S3 object event, from a notification record or an EventBridge event alike.

    ``key`` is decoded (:func:`object_key`); ``name`` is the event's own (``ObjectCreated:Put``,
    ``Object Created``, ``ObjectRemoved:Delete``...); ``created`` says whether it is a creation.
    """

    bucket: str
    key: str
    etag: str
    name: str
    created: bool
    version_id: str = ""  # in a bucket that keeps versions


def object_events(event: S3Event | S3EventBridgeNotificationEvent) -> list[ObjectEvent]:
    """The object events an S3 notification (one per record) or an EventBridge event holds."""
    if isinstance(event, S3EventBridgeNotificationEvent):
        detail = event.detail
        etag = detail.object.get("etag") or detail.object.get("eTag") or ""
        # The raw key: powertools' ``.key`` decodes it already.
        key = object_key(detail.object["key"])
        created = event.detail_type == "Object Created"
        version = str(detail.object.get("version-id") or "")
        return [ObjectEvent(detail.bucket.name, key, etag, event.detail_type, created, version)]
    return [
        ObjectEvent(
            bucket=record.s3.bucket.name,
            key=object_key(record.s3.get_object.key),
            etag=record.s3.get_object.etag or "",
            name=record.event_name,
            created=record.event_name.startswith("ObjectCreated:"),
            version_id=record.s3.get_object.version_id or "",
        )
        for record in event.records
    ]


def dispatch_event(
    event: Any,
    context: LambdaContext,
    *,
    app: APIGatewayRestResolver,
    on_object: Callable[[ObjectEvent], dict[str, Any]],
    logger: Logger,
) -> dict[str, Any]:
    """Each object event of an S3 notification or an EventBridge S3 event to ``on_object`` (the
    answer is ``{"results": [...]}``, one a record), an API Gateway request to ``app``; S3's test
    event is ignored; anything else is a ``ValueError`` naming what arrived."""
    if not isinstance(event, dict):
        raise ValueError(f"unsupported event: a {type(event).__name__}, not an object")
    if _first_record(event).get("eventSource") == "aws:s3":
        return {"results": [on_object(obj) for obj in object_events(S3Event(event))]}
    if event.get("source") == "aws.s3" and "detail-type" in event:
        return {"results": [on_object(obj) for obj in object_events(S3EventBridgeNotificationEvent(event))]}
    if "httpMethod" in event and "requestContext" in event:
        answer: dict[str, Any] = app.resolve(event, context)
        return answer
    if event.get("Event") == "s3:TestEvent":  # sent once when a bucket notification is configured
        logger.info("S3 test event ignored", extra={"bucket": event.get("Bucket")})
        return {"results": []}
    raise ValueError(f"unsupported event: keys {sorted(event)}")


def _first_record(event: dict[str, Any]) -> dict[str, Any]:
    records = event.get("Records")
    first = records[0] if isinstance(records, list) and records else None
    return first if isinstance(first, dict) else {}


def object_key(raw: str) -> str:
    """The object key of an S3 event, from the URL-encoded form both S3 sources deliver it in.

    S3 event notifications (to SQS, SNS and Lambda) carry the key URL-encoded as HTML forms
    encode it: a space as ``+``, a ``+`` as ``%2B``, ``%`` as ``%25`` and every non-ASCII
    character as its UTF-8 bytes (AWS's "Event message structure": "The object key name value
    is URL encoded. For example, 'red flower.jpg' becomes 'red+flower.jpg'"). The EventBridge
    "Object Created" event's ``detail.object.key`` is encoded the same way; AWS's page on the
    EventBridge message structure shows only plain keys, and Powertools for AWS Lambda, whose
    typed events posepipe uses, decodes that key with ``unquote_plus`` as well
    (``S3EventBridgeNotificationObject.key``). So every event key goes through this one
    function, once, and a key is never tried in two forms. moto's notifications to SQS (the
    local stack's) encode keys the same way, ``/`` included.
    """
    return unquote_plus(raw)
