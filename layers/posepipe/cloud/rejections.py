"""Refusals a pipeline function answers instead of raising, so that their error records say
what people need and nothing else (docs/CLOUD.md, "Failures").

A Lambda function that raises hands Step Functions its exception's class as the error name and
a JSON cause holding the stack trace; an error record built from those would pass the trace on
to ``GET /jobs``. So a function that refuses its input for a known reason (a
:class:`~posepipe.errors.PosepipeError`: the video is too long, the chunks failed) answers
``{"rejected": {"key", "code", "reason"}}`` instead, which the state machine's ``...Rejected?``
choices turn into the record as it stands: a stable code and one readable reason. Anything else
still raises; the state machine records it as ``internal_error`` naming only the error's name,
and the trace stays in the function's log.
"""

from __future__ import annotations

import json
import re
from typing import Any

from posepipe.errors import PosepipeError

MAX_REASON_CHARS = 1000
INTERNAL_ERROR = "internal_error"

# Python's and the Lambda runtime's ways of writing a stack trace.
_TRACE_MARKERS = re.compile(r"Traceback \(most recent call last\)|\"stackTrace\"|\n\s+File \"")


def rejection(key: str, error: PosepipeError) -> dict[str, Any]:
    """The answer refusing ``key`` for ``error``: ``{"rejected": {"key", "code", "reason"}}``."""
    reason = getattr(error, "reason", None) or str(error)
    return {"rejected": {"key": key, "code": error.code, "reason": readable_reason(reason)}}


def readable_reason(text: str) -> str:
    """``text`` as one line of at most :data:`MAX_REASON_CHARS`, cut before any stack trace; a
    Lambda error JSON (``errorMessage``, ``errorType``, ``stackTrace``) becomes its type and message."""
    lambda_error = _lambda_error(text)
    if lambda_error is not None:
        text = lambda_error
    found = _TRACE_MARKERS.search(text)
    if found is not None:
        text = text[: found.start()].rstrip(' :{[,"') or "failed (the details are in the log)"
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 3] + "..."


def has_stack_trace(text: str) -> bool:
    """Whether ``text`` holds a stack trace (what no error record or API answer may carry)."""
    return _TRACE_MARKERS.search(text) is not None


def _lambda_error(text: str) -> str | None:
    """``"<errorType>: <errorMessage>"`` of a Lambda function error's JSON, else None."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        error = json.loads(text)
    except ValueError:
        return None
    if not isinstance(error, dict) or "errorMessage" not in error:
        return None
    kind = error.get("errorType")
    return f"{kind}: {error['errorMessage']}" if kind else str(error["errorMessage"])
