"""Nothing is dropped: an upload a function gave up on after its retries leaves an error record.

In AWS, Lambda sends its record of an asynchronous invocation that kept failing to the
functions' on-failure destination (an SQS queue), which ``failure_records`` reads; the local
stack's dispatcher hands the same record to the same function after its last attempt. Both are
run here on moto: the function on a recorded SQS event, and the local path end to end with an
``image_infer`` that fails every time.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.events import object_key
from posepipe.cloud.rejections import has_stack_trace
from posepipe.local_stack.dispatcher import NotificationDispatcher
from posepipe.local_stack.uploads import UploadRouting

from tests.support.lambdas import lambda_context, load_handler_module
from tests.support.localaws import LocalAws, local_aws
from tests.support.paths import EVENTS

INPUT, OUTPUT = "posepipe-input", "posepipe-output"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    monkeypatch.setenv("POSEPIPE_INPUT_BUCKET", INPUT)
    monkeypatch.setenv("POSEPIPE_OUTPUT_BUCKET", OUTPUT)
    # (a state machine that is never asked about: the job has no video, so no execution)
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:video"
    monkeypatch.setenv("POSEPIPE_STATE_MACHINE_ARN", machine)
    with local_aws(monkeypatch) as stack:
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=INPUT)
        s3.create_bucket(Bucket=OUTPUT)
        yield stack


def error_record(key: str) -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=OUTPUT, Key=f"errors/{key}.json")["Body"].read()
    record: dict[str, Any] = json.loads(body)
    return record


def test_a_lost_upload_s_record_names_the_function_the_error_and_no_stack_trace(aws: LocalAws) -> None:
    event = json.loads((EVENTS / "failure_records_sqs.json").read_text())
    module = load_handler_module("failure_records")
    answer = module.handler(copy.deepcopy(event), lambda_context("failure_records"))
    assert answer == {"batchItemFailures": []}
    record = error_record("videos/a1b2c3d4e5f6-Sunday jog.mp4")  # the event's key, decoded
    assert record["input"] == f"s3://{INPUT}/videos/a1b2c3d4e5f6-Sunday jog.mp4"
    assert (record["stage"], record["code"]) == ("video_jobs", "internal_error")
    assert record["reason"] == (
        "video_jobs failed on the upload after 3 attempts (ClientError: An error occurred "
        "(ThrottlingException) when calling the StartExecution operation (reached max retries: 4): "
        "Rate exceeded); the details are in its logs"
    )
    assert not has_stack_trace(json.dumps(record))
    # The job API now says failed, not queued for ever (no video object, an error record).
    jobs = load_handler_module("video_jobs")
    request = json.loads((EVENTS / "video_jobs_get_job.json").read_text())
    request["pathParameters"] = {"id": "a1b2c3d4e5f6-Sunday jog.mp4"}
    request["path"] = "/jobs/a1b2c3d4e5f6-Sunday jog.mp4"
    status = json.loads(jobs.handler(request, lambda_context("video_jobs"))["body"])
    assert (status["status"], status["error"]["code"]) == ("failed", "internal_error"), status


def test_a_message_that_is_not_an_invocation_record_is_a_batch_item_failure(aws: LocalAws) -> None:
    """The good message is recorded; the other goes back to SQS (then its dead-letter queue)."""
    event = json.loads((EVENTS / "failure_records_sqs.json").read_text())
    bad = {**event["Records"][0], "messageId": "bad-1", "body": json.dumps({"hello": "world"})}
    event["Records"].append(bad)
    module = load_handler_module("failure_records")
    answer = module.handler(event, lambda_context("failure_records"))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    assert error_record("videos/a1b2c3d4e5f6-Sunday jog.mp4")["code"] == "internal_error"
    with pytest.raises(BatchProcessingError, match="All records failed"):  # the whole batch again
        module.handler({"Records": [bad]}, lambda_context("failure_records"))


def test_an_injected_image_infer_failure_after_its_retries_leaves_an_error_record(aws: LocalAws) -> None:
    """The local stack's path: S3 -> SQS -> dispatcher -> image_infer (failing every time, the
    injected failure) x 5 -> failure_records -> errors/images/jump.png.json."""
    calls: list[str] = []

    def failing_image_infer(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(object_key(event["Records"][0]["s3"]["object"]["key"]))  # moto encodes "/" too
        raise MemoryError("injected: the image would not fit")

    aws.lambda_app.handlers["image_infer"] = failing_image_infer
    aws.lambda_app.handlers["failure_records"] = load_handler_module("failure_records").handler
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    url = sqs.create_queue(QueueName="uploads")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=INPUT,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    config = PipelineConfig.from_env()
    events: list[str] = []
    routing = UploadRouting(config, events.append)
    dispatcher = NotificationDispatcher(sqs, url, routing.deliver, routing.give_up, backoff_s=(0,))
    routing.attempts = dispatcher.attempts
    stop = threading.Event()
    worker = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    worker.start()
    try:
        s3.put_object(Bucket=INPUT, Key="images/jump.png", Body=b"\x89PNG not really")
        deadline = time.monotonic() + 60
        while not any(line.startswith("upload not processed") for line in events):
            assert time.monotonic() < deadline, events
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(10)
        dispatcher.close()
    assert calls == ["images/jump.png"] * dispatcher.attempts
    record = error_record("images/jump.png")
    assert (record["stage"], record["code"]) == ("image_infer", "internal_error")
    assert record["reason"] == (
        f"image_infer failed on the upload after {dispatcher.attempts} attempts (MemoryError: injected: "
        "the image would not fit); the details are in its logs"
    )
    assert not has_stack_trace(json.dumps(record))
    assert s3.get_object(Bucket=INPUT, Key="images/jump.png")["Body"].read() == b"\x89PNG not really"
