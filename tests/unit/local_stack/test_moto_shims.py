"""posepipe's patches to moto's Step Functions engine (posepipe.local_stack.moto_shims)."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from posepipe.local_stack import moto_shims


def test_engine_makes_its_service_clients_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3's default session is not thread-safe; the engine makes a client per task from its
    # worker threads (one per execution and per Map iteration).
    moto_shims.install()
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk,
    )

    active = 0
    most_at_once = 0
    count_lock = threading.Lock()

    def slow_client(*args: Any, **kwargs: Any) -> str:
        nonlocal active, most_at_once
        with count_lock:
            active += 1
            most_at_once = max(most_at_once, active)
        time.sleep(0.02)
        with count_lock:
            active -= 1
        return f"client for {kwargs.get('service_name')}"

    monkeypatch.setattr(boto3, "client", slow_client)
    modules: list[Any] = [lambda_eval_utils, state_task_service_aws_sdk]
    makers = [module.boto_client_for for module in modules] * 4
    threads = [
        threading.Thread(target=make, kwargs={"region": "us-east-1", "service": "s3"}) for make in makers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most_at_once == 1
