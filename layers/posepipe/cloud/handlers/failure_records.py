"""``failure_records``: error records for the uploads a function gave up on (docs/CLOUD.md, "Failures").

In: an SQS event from the failures queue, the on-failure destination of ``image_infer`` and
``video_jobs``; each message is Lambda's record of an asynchronous invocation that kept failing
(:mod:`posepipe.cloud.failures`). Writes ``errors/<input key>.json`` for each upload it names, so
that ``GET /jobs/{id}`` and the output bucket say the upload failed instead of leaving it queued;
the whole record (the event, the stack trace) goes to this function's log, from which an operator
can send the event again. A message it cannot record is reported back as a batch item failure
(SQS tries it again, then moves it to the failures queue's own dead-letter queue).

It imports nothing heavy: a small zip function with the posepipe layer.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.failures import lost_uploads
from posepipe.cloud.storage import s3_client, write_error_record

STAGE = "failure_records"

config = PipelineConfig.from_env()
s3 = s3_client()
logger = Logger(service=STAGE)
tracer = Tracer(service=STAGE)
metrics = Metrics(namespace="posepipe", service=STAGE)
processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Each message of the batch: its uploads' error records; failures back to SQS."""
    answer = process_partial_response(
        event=event, record_handler=record_failure, processor=processor, context=context
    )
    return dict(answer)


def record_failure(record: SQSRecord) -> None:
    """The error records of one on-failure invocation record."""
    invocation = json.loads(record.body)
    logger.error("invocation failed after its retries", extra={"invocation": invocation})
    for lost in lost_uploads(invocation, config):
        key = write_error_record(s3, config, lost.key, stage=lost.stage, reason=lost.reason, code=lost.code)
        metrics.add_metric(name="LostUploads", unit=MetricUnit.Count, value=1)
        logger.info(
            "error record written", extra={"input_key": lost.key, "error_key": key, "code": lost.code}
        )
