"""A local AWS for tests: moto (S3, Step Functions with real ASL execution) in this process, plus
the local stack's Lambda Invoke API and SageMaker Runtime fronts, on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from posepipe.cloud.http_servers import BackgroundServer, serve_in_background
from posepipe.cloud.state_machine import render_definition
from posepipe.local_stack import moto_shims
from posepipe.local_stack.lambda_server import LambdaInvokeApp
from posepipe.local_stack.sagemaker_runtime import SageMakerRuntimeApp

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/posepipe-state-machine"
ENDPOINT = "posepipe-pose"


FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "posepipe",
}


def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@contextmanager
def mocked_s3(monkeypatch: pytest.MonkeyPatch, *buckets: str) -> Iterator[Any]:
    """moto's S3 in this process (fake credentials, no endpoint override) with ``buckets`` made:
    yields its boto3 client."""
    import boto3
    from moto import mock_aws

    fake_credentials(monkeypatch)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield client


@dataclass
class LocalAws:
    lambda_server: BackgroundServer
    runtime_server: BackgroundServer
    lambda_app: LambdaInvokeApp
    runtime_app: SageMakerRuntimeApp

    def function_arn(self, name: str) -> str:
        return function_arn(name)

    def create_pipeline(self, input_bucket: str, output_bucket: str, errors_prefix: str = "errors/") -> str:
        import boto3

        return create_video_state_machine(
            boto3.client("stepfunctions"), input_bucket, output_bucket, errors_prefix
        )


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def create_video_state_machine(
    sfn: Any,
    input_bucket: str,
    output_bucket: str,
    errors_prefix: str = "errors/",
    name: str = "posepipe-video",
) -> str:
    """The repository's ASL with this account's functions and endpoint, created in (moto's) Step
    Functions through ``sfn``: its ARN."""
    definition = render_definition(
        {
            "VideoSplitFunctionArn": function_arn("video_split"),
            "AggregateFunctionArn": function_arn("aggregate"),
            "RenderSegmentFunctionArn": function_arn("render_segment"),
            "JoinVideoFunctionArn": function_arn("join_video"),
            "EndpointName": ENDPOINT,
            "InputBucket": input_bucket,
            "OutputBucket": output_bucket,
            "ErrorsPrefix": errors_prefix,
        }
    )
    arn: str = sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE)["stateMachineArn"]
    return arn


@contextmanager
def local_aws(
    monkeypatch: pytest.MonkeyPatch,
    handlers: Mapping[str, Callable[[Any, Any], Any]] | None = None,
    container_url: str | None = None,
) -> Iterator[LocalAws]:
    """moto with real ASL execution, Lambda calls to ``handlers``, the endpoint at ``container_url``.

    Code that makes boto3 clients when it loads (the functions, the endpoint) must load inside
    this context, for moto to see its calls: add such handlers to ``lambda_app.handlers`` and the
    container to ``runtime_app.endpoints`` then.
    """
    fake_credentials(monkeypatch)
    lambda_app = LambdaInvokeApp(handlers or {}, region=REGION)
    runtime_app = SageMakerRuntimeApp({ENDPOINT: container_url} if container_url else {})
    lambdas = serve_in_background(lambda_app, name="lambda")
    runtime = serve_in_background(runtime_app, name="sagemaker-runtime")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambdas.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", runtime.url)
    try:
        with moto_shims.mock_with_engine():
            yield LocalAws(lambdas, runtime, lambda_app, runtime_app)
    finally:
        lambdas.stop()
        runtime.stop()


def run_execution(
    state_machine_arn: str, name: str, payload: dict[str, Any], timeout_s: float = 300
) -> dict[str, Any]:
    """Start an execution and wait for it to end; returns describe_execution's answer."""
    import boto3

    sfn = boto3.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))[
        "executionArn"
    ]
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {name} still running after {timeout_s} s")
        time.sleep(0.2)


def history(execution_arn: str) -> list[dict[str, Any]]:
    import boto3

    events: list[dict[str, Any]] = boto3.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return events
