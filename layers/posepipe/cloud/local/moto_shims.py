"""Work-arounds for moto 5.2.5's Step Functions engine, so it runs the pipeline's ASL as AWS does.

1. ``arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint`` fails with "Unknown service:
   'sagemakerruntime'": the engine passes the ASL service name to boto3, which calls it
   ``sagemaker-runtime``, and knows no Step Functions error prefix for it (AWS's is
   ``SageMakerRuntime``, as in ``SageMakerRuntime.ModelErrorException``).
2. The ``Body`` of InvokeEndpoint's response (a botocore ``StreamingBody``) reaches the state's
   output as the object's repr, not its content; AWS gives the content as a string.

:func:`install` patches both, once; nothing else in posepipe touches moto's internals.
"""

from __future__ import annotations

from typing import Any

_installed = False


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
    _installed = True


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
