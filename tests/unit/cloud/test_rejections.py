"""Reasons for people: one line, no stack trace, whatever the error looked like."""

from __future__ import annotations

import json
import traceback

from posepipe.cloud.rejections import has_stack_trace, readable_reason, rejection
from posepipe.cloud.video_job import ChunksFailedError
from posepipe.errors import InputError


def _trace() -> str:
    empty: dict[str, int] = {}
    try:
        empty["missing"]
    except KeyError:
        return traceback.format_exc()
    raise AssertionError("unreachable")


def test_a_refusal_carries_the_error_s_code_and_reason_without_the_key() -> None:
    refused = rejection("videos/a.mp4", InputError("videos/a.mp4", "video is 3.5 h long", code="too_long"))
    assert refused == {
        "rejected": {"key": "videos/a.mp4", "code": "too_long", "reason": "video is 3.5 h long"}
    }
    chunks = rejection("videos/a.mp4", ChunksFailedError("videos/a.mp4: 3 of 4 chunks failed"))
    assert chunks["rejected"]["code"] == "chunks_failed"
    assert chunks["rejected"]["reason"] == "videos/a.mp4: 3 of 4 chunks failed"


def test_a_python_traceback_is_cut_off() -> None:
    text = "the aggregate failed\n" + _trace()
    assert has_stack_trace(text)
    assert readable_reason(text) == "the aggregate failed"
    assert readable_reason(_trace()) == "failed (the details are in the log)"


def test_a_lambda_error_json_becomes_its_type_and_message() -> None:
    cause = json.dumps(
        {"errorMessage": "boom", "errorType": "RuntimeError", "stackTrace": ['  File "x.py", line 1\n']}
    )
    assert has_stack_trace(cause)
    assert readable_reason(cause) == "RuntimeError: boom"
    assert not has_stack_trace(readable_reason(cause))


def test_a_long_reason_is_one_line_of_at_most_1000_characters() -> None:
    reason = readable_reason("a\n  b\t" + "c" * 5000)
    assert reason.startswith("a b ccc")
    assert reason.endswith("...")
    assert len(reason) == 1000
    assert "\n" not in reason
    assert readable_reason('{"not": "lambda"}') == '{"not": "lambda"}'
