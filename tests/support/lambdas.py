"""Load a Lambda handler module from ``functions/<name>/app.py`` as Lambda would (by file)."""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

from posepipe.local_stack.lambda_server import LocalContext
from posepipe.local_stack.stack import load_function


def load_handler_module(function: str) -> ModuleType:
    """A fresh instance of ``posepipe.cloud.handlers.<function>`` (re-reads the environment),
    the module whose ``handler`` ``functions/<function>/app.py`` re-exports."""
    return load_function(function)


REQUEST_ID = "5c1b7e0e-2f7a-4b8e-9d38-0c1f3a6e2b41"


def lambda_context(function: str = "posepipe-test") -> LocalContext:
    """A Lambda context object as the runtime passes it (what powertools reads)."""
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function}"
    return LocalContext(
        function_name=function, memory_limit_in_mb=3008, invoked_function_arn=arn, aws_request_id=REQUEST_ID
    )


@contextmanager
def captured_logs(module: ModuleType) -> Iterator[list[dict[str, Any]]]:
    """The handler module's structured log lines while the block runs (available after it)."""
    stream = io.StringIO()
    log_handler = module.logger.registered_handler
    previous = log_handler.setStream(stream)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        log_handler.setStream(previous)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def encoded_key(key: str, slash: bool = False) -> str:
    """``key`` as S3 puts it in an event: URL-encoded as forms are (space ``+``, ``+`` ``%2B``,
    UTF-8 bytes); AWS leaves ``/`` as it is, moto encodes it too (``slash``)."""
    return quote_plus(key, safe="" if slash else "/")


def with_request(
    event: dict[str, Any],
    body: bytes | str | None,
    content_type: str | None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway (REST, payload v1) event fixture given another request: a fresh request id;
    ``body`` as API Gateway sends it (bytes base64-encoded, as for binary media types; str as is);
    its Content-Type (None: none); query parameters."""
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if isinstance(body, bytes):
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = body, False
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Content-Type")
    if content_type is not None:
        event["headers"]["Content-Type"] = content_type
        event["multiValueHeaders"]["Content-Type"] = [content_type]
    if query:
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    return event
