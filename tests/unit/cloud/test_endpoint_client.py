"""The aggregate's endpoint calls retry what can pass (throttling, 5xx) and never a 4xx."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from posepipe.cloud.endpoint_client import EndpointError, invoke_endpoint


def runtime_with(errors: list[tuple[str, int, int | None]]) -> tuple[object, Stubber]:
    """A real SageMaker Runtime client whose answers are ``errors`` (code, HTTP status, the
    container's status), then one success."""
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    stubber = Stubber(client)
    for code, status, original in errors:
        extra = {"OriginalStatusCode": original} if original is not None else {}
        stubber.add_client_error(
            "invoke_endpoint", service_error_code=code, service_message=f"{code} ({original})",
            http_status_code=status, response_meta={}, modeled_fields=extra,
        )  # fmt: skip
    answer = json.dumps({"chunk": 0}).encode()
    stubber.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(answer), len(answer))})
    stubber.activate()
    return client, stubber


@pytest.mark.parametrize(
    "error",
    [("ModelError", 424, 503), ("ModelError", 424, 500), ("ModelError", 424, 429),
     ("ThrottlingException", 400, None), ("ServiceUnavailable", 503, None)],
)  # fmt: skip
def test_errors_that_can_pass_are_retried(error: tuple[str, int, int | None]) -> None:
    client, stubber = runtime_with([error, error])
    waits: list[float] = []
    assert invoke_endpoint(client, "pose", {"chunk": 0}, sleep=waits.append) == {"chunk": 0}
    assert len(waits) == 2
    assert all(0 <= w <= 30 for w in waits)
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("original", [400, 422])
def test_a_refusal_for_good_is_raised_at_once(original: int) -> None:
    client, _ = runtime_with([("ModelError", 424, original)])
    waits: list[float] = []
    with pytest.raises(EndpointError, match=rf"endpoint pose: ModelError \({original}\)"):
        invoke_endpoint(client, "pose", {"chunk": 0}, sleep=waits.append)
    assert waits == []


def test_an_error_that_keeps_coming_is_raised_after_the_last_attempt() -> None:
    client, _ = runtime_with([("ModelError", 424, 503)] * 3)
    waits: list[float] = []
    with pytest.raises(EndpointError, match="still refused after 3 attempts"):
        invoke_endpoint(client, "pose", {"chunk": 0}, attempts=3, sleep=waits.append)
    assert len(waits) == 2
