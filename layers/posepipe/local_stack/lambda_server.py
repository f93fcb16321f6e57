"""The Lambda Invoke API (``POST /2015-03-31/functions/{name}/invocations``) over real handlers.

moto has no Lambda runtime without Docker (its functions only echo), so the local stack points
``AWS_ENDPOINT_URL_LAMBDA`` here: Step Functions' ``lambda:invoke`` tasks and boto3 alike reach
the very handlers that run in AWS, in this process.

Each function is one execution environment, as a Lambda container is: it handles one event at a
time, and concurrent invocations of one function wait their turn (AWS would start more
containers instead). Handlers keep state between events (engines loaded at cold start), which
is not made to be used by two events at once: the top-down engine's LiteRT interpreters and ONNX
Runtime sessions, for one, answered two concurrent ``POST /images`` with a 500.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

Handler = Callable[[Any, Any], Any]
_INVOKE_PATH = "/2015-03-31/functions/"


@dataclass
class LocalContext:
    """The parts of Lambda's context object that handlers and powertools read."""

    function_name: str
    memory_limit_in_mb: int = 10240
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "local"
    log_stream_name: str = "local"
    timeout_s: float = 900.0
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


def function_name(name_or_arn: str) -> str:
    """``arn:aws:lambda:region:acct:function:name[:alias]`` or ``name`` -> ``name``."""
    parts = name_or_arn.split(":")
    return parts[6] if len(parts) >= 7 and parts[5] == "function" else name_or_arn


class LambdaInvokeApp:
    """A WSGI app answering Lambda Invoke calls with the given handlers."""

    def __init__(self, handlers: Mapping[str, Handler], region: str = "us-east-1") -> None:
        self.handlers = dict(handlers)
        self.region = region
        self._environments: dict[str, threading.Lock] = {}  # per function: one event at a time
        self._environments_lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        return self.respond(request)(environ, start_response)

    def _environment(self, name: str) -> threading.Lock:
        """Function ``name``'s one execution environment (handlers may be added after start)."""
        with self._environments_lock:
            return self._environments.setdefault(name, threading.Lock())

    def respond(self, request: Request) -> Response:
        path = request.path
        if request.method != "POST" or not path.startswith(_INVOKE_PATH) or not path.endswith("/invocations"):
            return _json({"Type": "User", "message": f"unsupported: {request.method} {path}"}, 404)
        name = function_name(unquote(path[len(_INVOKE_PATH) : -len("/invocations")]))
        handler = self.handlers.get(name)
        if handler is None:
            body = {"Type": "User", "message": f"Function not found: {name}"}
            return _json(body, 404, {"x-amzn-ErrorType": "ResourceNotFoundException"})
        raw = request.get_data()
        try:
            event = json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            return _json({"Type": "User", "message": f"payload is not JSON: {exc}"}, 400,
                         {"x-amzn-ErrorType": "InvalidRequestContentException"})  # fmt: skip
        arn = f"arn:aws:lambda:{self.region}:000000000000:function:{name}"
        context = LocalContext(function_name=name, invoked_function_arn=arn)
        try:
            with self._environment(name):
                context.started = time.monotonic()  # the timeout counts from when the event runs
                result = handler(event, context)
        except Exception as exc:  # the Lambda runtime reports any handler failure this way
            error = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            return _json(error, 200, {"X-Amz-Function-Error": "Unhandled"})
        return _json(result, 200, {"X-Amz-Executed-Version": "$LATEST"})


def _json(data: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4()), **(headers or {})}
    return Response(json.dumps(data), status=status, headers=headers, content_type="application/json")
