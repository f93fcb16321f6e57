"""Work-arounds for moto 5.2.5's Step Functions engine, so it runs the pipeline's ASL as AWS does.

1. ``arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint`` fails with "Unknown service:
   'sagemakerruntime'": the engine passes the ASL service name to boto3, which calls it
   ``sagemaker-runtime``, and knows no Step Functions error prefix for it (AWS's is
   ``SageMakerRuntime``, as in ``SageMakerRuntime.ModelErrorException``).
2. The ``Body`` of InvokeEndpoint's response (a botocore ``StreamingBody``) reaches the state's
   output as the object's repr, not its content; AWS gives the content as a string.
3. Every service task makes its client with ``boto3.client(...)`` on boto3's default session, from
   the engine's worker threads (one per execution, one per Map iteration). boto3 documents that
   the default session is not safe to share between threads: two executions at once (one video's
   Map and another's WriteErrorRecord) can fail a task with a ``KeyError`` out of botocore, and a
   task with no Catch then fails its execution. Clients are made under one lock here.

:func:`install` patches both, once; nothing else in posepipe touches moto's internals.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

_installed = False
_client_lock = threading.Lock()


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
        state_task_service_aws_sdk,
    )

    service = state_task_service.StateTaskService
    service._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES["sagemakerruntime"] = "sagemaker-runtime"
    state_task_service_aws_sdk._SERVICE_ERROR_NAMES["sagemakerruntime"] = "SageMakerRuntime"

    aws_sdk = state_task_service_aws_sdk.StateTaskServiceAwsSdk
    evaluate = aws_sdk._eval_service_task

    def eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        evaluate(self, env, *args, **kwargs)
        response = env.stack[-1] if env.stack else None
        if isinstance(response, dict) and hasattr(response.get("Body"), "read"):
            response["Body"] = response["Body"].read().decode("utf-8", errors="replace")

    aws_sdk._eval_service_task = eval_service_task  # type: ignore[method-assign]
    _make_clients_one_at_a_time()
    _installed = True


def _make_clients_one_at_a_time() -> None:
    import importlib

    from moto.stepfunctions.parser.asl.utils import boto_client

    unlocked = boto_client.boto_client_for

    def boto_client_for(*args: Any, **kwargs: Any) -> Any:
        with _client_lock:
            return unlocked(*args, **kwargs)

    # The modules that import it by name hold their own reference: patch each of them.
    for name in (
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
        "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
        "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    ):
        importlib.import_module(name)
    boto_client.boto_client_for = boto_client_for
    for module in list(sys.modules.values()):
        if getattr(module, "boto_client_for", None) is unlocked:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


def mock_with_engine() -> Any:
    """moto's in-process mock with Step Functions executing ASL for real (and no Lambda Docker).

    Active in a process that also runs moto's server, the two share one state, and the engine's
    service calls honour ``AWS_ENDPOINT_URL_<SERVICE>`` instead of going to moto's own port.
    """
    from moto import mock_aws

    install()
    return mock_aws(
        config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    )
