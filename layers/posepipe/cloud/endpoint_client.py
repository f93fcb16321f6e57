"""Invoking the SageMaker endpoint from a function (the ``aggregate``'s boundary repairs), as the
state machine's Map invokes it for the chunks: the same body (docs/CLOUD.md, "Endpoint
invocation"), the same retries.

An error that can pass (the container's 429 and 5xx: ``over_capacity`` and ``not_ready`` are
503s, which SageMaker returns as ``ModelError`` with that ``OriginalStatusCode``; SageMaker's own
throttling and 5xx) is retried with full-jitter exponential back-off, as the state machine's
``Retry`` does; a 4xx, which no retry changes, is raised at once, as :class:`EndpointError`
naming the endpoint and its message.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

RETRYABLE_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure",
     "InternalDependencyException", "ModelNotReadyException"}
)  # fmt: skip
DEFAULT_ATTEMPTS = 8
BASE_DELAY_S = 2.0
MAX_DELAY_S = 30.0


class EndpointError(RuntimeError):
    """The endpoint refused an invocation for good, or kept refusing it."""


def sagemaker_runtime_client() -> Any:
    """A boto3 SageMaker Runtime client (``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` points it at a
    local stack); the invocation itself may take the endpoint's whole 60 s."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker-runtime", config=Config(read_timeout=70, retries={"max_attempts": 1, "mode": "standard"})
    )


def _retryable(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    if code in RETRYABLE_CODES:
        return True
    original = error.response.get("OriginalStatusCode")
    return code in ("ModelError", "ModelErrorException") and (original == 429 or int(original or 0) >= 500)


def invoke_endpoint(
    client: Any, endpoint_name: str, body: dict[str, Any], *, attempts: int = DEFAULT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:  # fmt: skip
    """The endpoint's JSON answer to ``body``, retrying what says "try again" (module docstring)."""
    payload = json.dumps(body).encode()
    for attempt in range(1, attempts + 1):
        try:
            response = client.invoke_endpoint(
                EndpointName=endpoint_name, ContentType="application/json", Accept="application/json",
                Body=payload,
            )  # fmt: skip
            raw = response["Body"].read()
            try:
                answer: dict[str, Any] = json.loads(raw)
            except ValueError as exc:
                raise EndpointError(
                    f"endpoint {endpoint_name}: the answer is not JSON: {raw[:200]!r}"
                ) from exc
            return answer
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", str(error))
            if not _retryable(error):
                raise EndpointError(f"endpoint {endpoint_name}: {message}") from error
            if attempt == attempts:
                raise EndpointError(
                    f"endpoint {endpoint_name}: still refused after {attempts} attempts: {message}"
                ) from error
            sleep(random.uniform(0.0, min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (attempt - 1))))
    raise AssertionError("unreachable")
