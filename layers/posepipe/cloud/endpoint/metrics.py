"""The endpoint's CloudWatch metrics, in the embedded metric format (EMF) on stdout.

One record per answered invocation, namespace ``posepipe``, dimensions ``Device`` (where the
networks ran: ``cuda:0``, ``cpu``) and ``Detector``: ``Frames`` (frames answered), ``PersonFrames``
(frames with at least one person) and ``InferenceSeconds`` (the engine's time for the chunk).
Written with aws-lambda-powertools' ``EphemeralMetrics``, which prints the EMF JSON object
(with its ``service`` dimension, ``posepipe-endpoint``); the endpoint's stdout is its CloudWatch
log stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from posepipe.cloud.endpoint.log import SERVICE

NAMESPACE = "posepipe"


def record_invocation(description: Mapping[str, Any], answer: Mapping[str, Any]) -> None:
    """The metrics of one invocation (``answer`` as ``/invocations`` returns it); a fresh
    metrics set per call, so concurrent invocations never share one."""
    timings = answer.get("timings", {})
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    metrics.add_dimension(name="Device", value=str(description.get("device", "unknown")))
    metrics.add_dimension(name="Detector", value=str(description.get("detector", "unknown")))
    metrics.add_metric(name="Frames", unit=MetricUnit.Count, value=int(answer["frames"]))
    metrics.add_metric(name="PersonFrames", unit=MetricUnit.Count, value=int(answer["person_frames"]))
    seconds = float(timings.get("inference_s", timings.get("request_s", 0.0)))
    metrics.add_metric(name="InferenceSeconds", unit=MetricUnit.Seconds, value=seconds)
    metrics.flush_metrics()
