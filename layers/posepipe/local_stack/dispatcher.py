"""The local stack's delivery of input-bucket notifications to the functions, at least once.

In AWS the input bucket's events reach ``image_infer`` and ``video_jobs`` through EventBridge
rules whose targets retry a failed invocation (4 retries, 5 attempts in all) and then put the
event in the rule's dead-letter queue. Locally, S3 notifies an SQS queue and a
:class:`NotificationDispatcher` polls it: a message whose delivery fails stays in the queue and
comes back after a back-off (SQS's own redelivery, counted by ``ApproximateReceiveCount``); after
the last attempt ``give_up`` is called for it (the stack writes the input's error record, where
AWS would leave the event in the dead-letter queue for an operator) and only then is the message
deleted. A message is never deleted before its records were delivered or given up on.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("posepipe.serve")

ATTEMPTS = 5  # the EventBridge rules' retry_attempts=4 (infra/posepipe_infra/pipelines.py), plus one
BACKOFF_S = (1, 2, 4, 8)  # seconds before the 2nd, 3rd, ... attempt
IN_FLIGHT_S = 900  # a message being delivered stays invisible this long (a Lambda's longest run)

Record = dict[str, Any]


class NotificationDispatcher:
    """``deliver(record)`` for every S3 record of the queue's messages, on ``workers`` threads.

    ``give_up(record, reason)`` is called once for a record whose delivery failed ``attempts``
    times; ``backoff_s[n]`` is the wait before attempt ``n + 2`` (the last value repeats).
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        deliver: Callable[[Record], None],
        give_up: Callable[[Record, str], None],
        *,
        attempts: int = ATTEMPTS,
        backoff_s: Sequence[float] = BACKOFF_S,
        workers: int = 2,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        self.sqs = sqs
        self.queue_url = queue_url
        self.deliver = deliver
        self.give_up = give_up
        self.attempts = attempts
        self.backoff_s = tuple(backoff_s) or (0.0,)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="posepipe-dispatch")

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.poll(wait_s=1)
            except Exception as exc:  # the stack is stopping, or moto hiccuped: keep going
                if not stop.is_set():
                    log.warning("dispatcher: %s", exc)

    def poll(self, wait_s: int = 0) -> int:
        """Receive what is visible now (waiting up to ``wait_s``) and hand each message to a worker;
        returns how many messages were received."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_s,
            VisibilityTimeout=IN_FLIGHT_S,
            AttributeNames=["ApproximateReceiveCount"],
        )
        messages = answer.get("Messages", [])
        for message in messages:
            self._pool.submit(self.handle, message)
        return len(messages)

    def handle(self, message: dict[str, Any]) -> None:
        """Deliver one message's records; delete it, or leave it for a later attempt."""
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            records = _records(message["Body"])
        except ValueError as exc:  # nothing any retry could deliver
            log.warning("dispatcher: dropped a message that is not an S3 notification: %s", exc)
            self._delete(message)
            return
        failed: list[tuple[Record, str]] = []
        for record in records:
            try:
                self.deliver(record)
            except Exception as exc:
                log.warning("dispatcher: attempt %d of %d failed: %s", attempt, self.attempts, exc)
                failed.append((record, f"{type(exc).__name__}: {exc}"))
        if failed and attempt < self.attempts:
            delay = self.backoff_s[min(attempt - 1, len(self.backoff_s) - 1)]
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=int(delay)
            )
            return
        for record, reason in failed:
            try:
                self.give_up(record, f"delivery failed {attempt} times; the last time: {reason}")
            except Exception:
                log.exception("dispatcher: could not record the failed delivery")
        self._delete(message)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _delete(self, message: dict[str, Any]) -> None:
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def _records(body: str) -> list[Record]:
    """The S3 records of a notification message (none for S3's test event)."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {body[:200]!r}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"not an object: {body[:200]!r}")
    records = data.get("Records", [])
    if not isinstance(records, list):
        raise ValueError(f"Records is not a list: {body[:200]!r}")
    return [r for r in records if isinstance(r, dict)]
