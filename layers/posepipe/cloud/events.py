"""Which kind of event reached a function that several AWS sources invoke.

image_infer and video_jobs each take S3 notifications, EventBridge "Object Created" events and
API Gateway requests: :func:`dispatch_event` hands each to its handler by the event's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.typing import LambdaContext


def dispatch_event(
    event: Any,
    context: LambdaContext,
    *,
    app: APIGatewayRestResolver,
    on_s3_notification: Callable[[S3Event], dict[str, Any]],
    on_eventbridge: Callable[[S3EventBridgeNotificationEvent], dict[str, Any]],
    logger: Logger,
) -> dict[str, Any]:
    """An S3 notification, an EventBridge S3 event or an API Gateway request, each to its handler;
    S3's test event is ignored; anything else is a ``ValueError`` naming what arrived."""
    if not isinstance(event, dict):
        raise ValueError(f"unsupported event: a {type(event).__name__}, not an object")
    if _first_record(event).get("eventSource") == "aws:s3":
        return on_s3_notification(S3Event(event))
    if event.get("source") == "aws.s3" and "detail-type" in event:
        return on_eventbridge(S3EventBridgeNotificationEvent(event))
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
