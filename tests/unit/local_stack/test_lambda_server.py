"""The local Lambda Invoke API runs each function as one execution environment: one event at a
time per function (as a Lambda container does), while different functions run side by side.

Why it matters: handlers keep engines between events, and the top-down engine's LiteRT
interpreters fail when two threads use them at once (two concurrent ``POST /images`` through
``posepipe serve`` once answered 500)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from posepipe.local_stack.lambda_server import LambdaInvokeApp
from werkzeug.test import Client


class _Recorder:
    """A handler that notes how many of its events run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.2)
        with self.lock:
            self.running -= 1
        return {"echo": event}


def _invoke(app: LambdaInvokeApp, name: str, event: dict[str, Any]) -> dict[str, Any]:
    response = Client(app).post(f"/2015-03-31/functions/{name}/invocations", data=json.dumps(event))
    assert response.status_code == 200
    answer: dict[str, Any] = json.loads(response.get_data())
    return answer


def test_one_event_at_a_time_per_function() -> None:
    recorder = _Recorder()
    app = LambdaInvokeApp({})
    app.handlers["image_infer"] = recorder  # as the tests' local AWS adds handlers after start
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda n: _invoke(app, "image_infer", {"n": n}), range(4)))
    assert [a["echo"]["n"] for a in answers] == [0, 1, 2, 3]
    assert recorder.most == 1


def test_different_functions_run_side_by_side() -> None:
    """Each function's handler waits until the other's is running: only side by side can both see it."""
    running = {"image_infer": threading.Event(), "video_jobs": threading.Event()}

    def meets(name: str, other: str) -> Any:
        def handler(event: Any, context: Any) -> dict[str, bool]:
            running[name].set()
            return {"met": running[other].wait(timeout=30)}

        return handler

    app = LambdaInvokeApp(
        {"image_infer": meets("image_infer", "video_jobs"), "video_jobs": meets("video_jobs", "image_infer")}
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda name: _invoke(app, name, {}), ["image_infer", "video_jobs"]))
    assert answers == [{"met": True}, {"met": True}]
