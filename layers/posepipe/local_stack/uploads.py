"""The local stack's routing of input-bucket uploads to the functions, and of the uploads they
gave up on to ``failure_records``, as AWS routes them (EventBridge rules; the functions'
on-failure destination).

:class:`UploadRouting` gives :class:`~posepipe.local_stack.dispatcher.NotificationDispatcher` its
``deliver`` (one S3 record to ``image_infer`` or ``video_jobs``) and ``give_up`` (after the last
attempt: Lambda's record of the failed invocation, in an SQS event, to ``failure_records``, which
writes the input's error record). Functions are called through the Lambda Invoke API
(``AWS_ENDPOINT_URL_LAMBDA``), as AWS's services call them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.events import object_key

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class UploadRouting:
    """Where each upload goes (module docstring); ``attempts``: how many times the dispatcher tries."""

    config: PipelineConfig
    on_event: Callable[[str], None] = print
    attempts: int | None = None
    last_errors: dict[str, dict[str, str]] = field(default_factory=dict)  # input key -> function error

    def deliver(self, record: dict[str, Any]) -> None:
        """One S3 record to its function, as the EventBridge rules route them; raises if it failed."""
        bucket = record["s3"]["bucket"]["name"]
        key = object_key(record["s3"]["object"]["key"])
        record = with_version_id(record, key)
        try:
            if key.startswith(self.config.images_prefix):
                self.on_event(f"image uploaded: s3://{bucket}/{key} -> image_infer")
                invoke_function("image_infer", {"Records": [record]})
            elif key.startswith(self.config.videos_prefix):
                answer = invoke_function("video_jobs", {"Records": [record]})
                for job in answer.get("results", []):
                    self.on_event(video_event_line(job))
        except FunctionError as exc:  # what Lambda's record of the invocation will say
            self.last_errors[key] = {"errorType": exc.error_type, "errorMessage": exc.error_message}
            raise

    def give_up(self, record: dict[str, Any], reason: str) -> None:
        """After the last attempt: Lambda's record of the failed invocation to ``failure_records``
        (AWS: the functions' on-failure destination, an SQS queue that function reads)."""
        bucket = record["s3"]["bucket"]["name"]
        key = object_key(record["s3"]["object"]["key"])
        function = "image_infer" if key.startswith(self.config.images_prefix) else "video_jobs"
        invocation = {
            "version": "1.0",
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": self.attempts,
            },
            "requestPayload": {"Records": [record]},
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": self.last_errors.pop(
                key, {"errorType": "FunctionError", "errorMessage": reason}
            ),
        }
        message = {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "local",
            "body": json.dumps(invocation),
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:posepipe-failures",
            "awsRegion": REGION,
        }
        answer = invoke_function("failure_records", {"Records": [message]})
        if answer.get("batchItemFailures"):
            raise FunctionError(f"failure_records could not record s3://{bucket}/{key}")
        record_key = f"{self.config.errors_prefix}{key}.json"
        self.on_event(f"upload not processed: s3://{bucket}/{key} ({reason}) -> {record_key}")


class FunctionError(RuntimeError):
    """A function invocation that failed (Lambda's ``FunctionError``), with the error's type and message."""

    def __init__(self, message: str, error_type: str = "", error_message: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.error_message = error_message or message


def invoke_function(function: str, event: dict[str, Any]) -> Any:
    """Invoke ``function`` through the local Lambda Invoke API, as AWS's services do: its answer."""
    import boto3

    answer = boto3.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
    result = json.loads(answer["Payload"].read())
    if answer.get("FunctionError"):
        error = result if isinstance(result, dict) else {}
        message = str(error.get("errorMessage") or "the function failed")
        raise FunctionError(f"{function}: {message}", str(error.get("errorType") or ""), message)
    return result


def video_event_line(job: dict[str, Any]) -> str:
    """The line ``posepipe serve`` prints for one of video_jobs' results."""
    where = f"s3://{job.get('bucket')}/{job.get('key')}"
    status = job.get("status")
    if status == "started":
        return f"video uploaded: {where} -> execution {job['execution']}"
    if status == "duplicate":
        return f"video uploaded again: {where} -> execution {job['execution']} exists (duplicate event)"
    return f"video upload skipped: {where} ({job.get('reason', status)})"


def with_version_id(record: dict[str, Any], key: str) -> dict[str, Any]:
    """``record`` with the ``versionId`` AWS puts in the notifications of a versioned bucket.

    moto 5.2.5's S3 notifications to SQS leave it out (its EventBridge events carry it); the
    version is found again as the newest one of the key with the record's ETag (two versions
    with one ETag hold the same bytes).
    """
    obj = record["s3"]["object"]
    if obj.get("versionId") or not obj.get("eTag"):
        return record
    import boto3

    bucket = record["s3"]["bucket"]["name"]
    listed = boto3.client("s3").list_object_versions(Bucket=bucket, Prefix=key)
    etag = str(obj["eTag"]).strip('"')
    versions = [
        v for v in listed.get("Versions", []) if v["Key"] == key and str(v["ETag"]).strip('"') == etag
    ]
    if not versions or versions[0].get("VersionId") in (None, "null"):
        return record
    newest = max(versions, key=lambda v: v["LastModified"])
    return {**record, "s3": {**record["s3"], "object": {**obj, "versionId": newest["VersionId"]}}}
