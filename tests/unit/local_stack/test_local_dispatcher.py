"""The local stack's notification dispatcher on moto's SQS: a failed delivery is retried, as the
EventBridge rules retry theirs, and a message leaves the queue only once delivered or given up on."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from posepipe.local_stack.dispatcher import ATTEMPTS, NotificationDispatcher

from tests.support.localaws import fake_credentials

Record = dict[str, Any]


def record(key: str) -> Record:
    return {"eventSource": "aws:s3", "s3": {"bucket": {"name": "posepipe-input"}, "object": {"key": key}}}


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    fake_credentials(monkeypatch)
    with mock_aws():
        sqs = boto3.client("sqs")
        yield sqs, sqs.create_queue(QueueName="posepipe-input-events")["QueueUrl"]


class Deliveries:
    """A function that fails its first ``failures`` calls for each key, and what it was given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[str] = []
        self.given_up: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def deliver(self, item: Record) -> None:
        key = item["s3"]["object"]["key"]
        with self.lock:
            self.calls.append(key)
            attempt = self.calls.count(key)
        if attempt <= self.failures:
            raise RuntimeError(f"the function failed ({key}, attempt {attempt})")

    def give_up(self, item: Record, reason: str) -> None:
        with self.lock:
            self.given_up.append((item["s3"]["object"]["key"], reason))


def drain(dispatcher: NotificationDispatcher, done: Callable[[], bool], timeout_s: float = 30) -> None:
    """Poll until ``done()`` and the queue is empty (visible or in flight)."""
    deadline = time.monotonic() + timeout_s
    while True:
        dispatcher.poll()
        attributes = dispatcher.sqs.get_queue_attributes(
            QueueUrl=dispatcher.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        queued = sum(int(value) for value in attributes.values())
        if done() and queued == 0:
            return
        assert time.monotonic() < deadline, f"still {queued} messages queued"
        time.sleep(0.05)


def dispatch(
    queue: tuple[Any, str], deliveries: Deliveries, bodies: list[str], done: Callable[[], bool]
) -> None:
    """Send ``bodies`` as messages, then dispatch them (no back-off) until ``done()`` and the queue
    is empty."""
    sqs, url = queue
    dispatcher = NotificationDispatcher(sqs, url, deliveries.deliver, deliveries.give_up, backoff_s=(0,))
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    try:
        drain(dispatcher, done)
    finally:
        dispatcher.close()


def notification(key: str) -> str:
    return json.dumps({"Records": [record(key)]})


def test_a_delivery_that_fails_is_retried_until_it_succeeds(queue: tuple[Any, str]) -> None:
    deliveries = Deliveries(failures=2)
    dispatch(queue, deliveries, [notification("videos/walk.mp4")], lambda: len(deliveries.calls) == 3)
    assert deliveries.calls == ["videos/walk.mp4"] * 3
    assert deliveries.given_up == []


def test_after_the_last_attempt_the_failure_is_given_up_on_once_and_the_message_leaves(
    queue: tuple[Any, str],
) -> None:
    deliveries = Deliveries(failures=100)
    dispatch(queue, deliveries, [notification("images/jump.jpg")], lambda: len(deliveries.given_up) == 1)
    assert ATTEMPTS == 5  # as the EventBridge rules: retry_attempts=4
    assert deliveries.calls == ["images/jump.jpg"] * ATTEMPTS
    [(key, reason)] = deliveries.given_up
    assert key == "images/jump.jpg"
    last = "RuntimeError: the function failed (images/jump.jpg, attempt 5)"
    assert reason == f"delivery failed 5 times; the last time: {last}"


def test_the_records_of_other_messages_are_not_held_up(queue: tuple[Any, str]) -> None:
    deliveries = Deliveries(failures=1)
    messages = [notification("videos/a.mp4"), notification("videos/b.mp4")]
    dispatch(queue, deliveries, messages, lambda: len(deliveries.calls) == 4)
    assert sorted(deliveries.calls) == ["videos/a.mp4"] * 2 + ["videos/b.mp4"] * 2
    assert deliveries.given_up == []


def test_a_message_that_is_no_notification_is_dropped_not_retried(queue: tuple[Any, str]) -> None:
    deliveries = Deliveries(failures=0)
    dispatch(queue, deliveries, ["not json"], lambda: True)
    assert deliveries.calls == []
