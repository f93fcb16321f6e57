"""Load a Lambda handler module from ``functions/<name>/app.py`` as Lambda would (by file)."""

from __future__ import annotations

import io
import json
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
