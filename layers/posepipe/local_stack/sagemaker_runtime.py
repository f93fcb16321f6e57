"""The SageMaker Runtime API in front of a local endpoint container.

boto3's ``invoke_endpoint`` (and Step Functions' aws-sdk task) calls
``POST /endpoints/{name}/invocations``; a container serves ``POST /invocations``. This front
forwards one to the other and answers errors as SageMaker does: a container answering anything
but 200 gives ``ModelError`` (HTTP 424, with the container's status and body), a container that
cannot be reached gives ``ServiceUnavailable`` (503).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

# InvokeEndpoint's CustomAttributes reach the container as this header (and so on for the others).
_FORWARDED = (
    "X-Amzn-SageMaker-Custom-Attributes",
    "X-Amzn-SageMaker-Target-Model",
    "X-Amzn-SageMaker-Inference-Id",
)


class SageMakerRuntimeApp:
    """A WSGI app mapping endpoint names to container base URLs."""

    def __init__(self, endpoints: Mapping[str, str], timeout_s: float = 60.0) -> None:
        self.endpoints = dict(endpoints)
        self.timeout_s = timeout_s

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.respond(Request(environ))(environ, start_response)

    def respond(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if (
            request.method != "POST"
            or len(parts) != 3
            or parts[0] != "endpoints"
            or parts[2] != "invocations"
        ):
            return _error("UnknownOperationException", f"unsupported: {request.method} {request.path}", 404)
        container = self.endpoints.get(parts[1])
        if container is None:
            return _error("ValidationError", f"Endpoint {parts[1]} not found.", 400)
        forward = urllib.request.Request(
            f"{container.rstrip('/')}/invocations",
            data=request.get_data(),
            method="POST",
            headers={
                "Content-Type": request.headers.get("Content-Type", "application/octet-stream"),
                "Accept": request.headers.get("Accept", "*/*"),
                **{name: request.headers[name] for name in _FORWARDED if name in request.headers},
            },
        )
        try:
            with urllib.request.urlopen(forward, timeout=self.timeout_s) as answer:
                body = answer.read()
                content_type = answer.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")
            message = f'Received server error ({exc.code}) from primary with message "{detail}".'
            return _error(
                "ModelError", message, 424, {"OriginalStatusCode": exc.code, "OriginalMessage": detail}
            )
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            return _error("ServiceUnavailable", f"the endpoint container did not answer: {exc}", 503)
        headers = {"x-Amzn-Invoked-Production-Variant": "AllTraffic", "x-amzn-RequestId": str(uuid.uuid4())}
        return Response(body, status=200, content_type=content_type, headers=headers)


def _error(code: str, message: str, status: int, extra: dict[str, Any] | None = None) -> Response:
    body = {"__type": code, "message": message, **(extra or {})}
    headers = {"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())}
    return Response(json.dumps(body), status=status, content_type="application/json", headers=headers)
