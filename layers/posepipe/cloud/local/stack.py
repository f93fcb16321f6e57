"""``posepipe serve``: the whole cloud pipeline on one machine, with no AWS account, on loopback.

- moto (S3, SQS, Step Functions with real ASL execution) as a server at ``host:4566``; the same
  moto state is active in this process, so the Step Functions engine's Lambda and SageMaker
  calls honour ``AWS_ENDPOINT_URL_LAMBDA`` / ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` and reach
- the Lambda Invoke API over the real handlers of ``functions/`` (``host:9001``),
- the endpoint container's server (``host:8080``) behind a SageMaker Runtime front (``host:8081``),
- a dispatcher from the input bucket's notifications (S3 -> SQS) to the image function or to the
  state machine (executions named from the key and ETag), and
- the API (``host:3000``): ``POST /images``, ``POST /videos``, ``GET /jobs/{id}``.
The state machine is the repository's one ASL file; the handlers are the ones deployed to AWS.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from werkzeug.wrappers import Request, Response

from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.jobs_api import job_status, new_upload
from posepipe.cloud.keys import job_id
from posepipe.cloud.local import moto_shims
from posepipe.cloud.local.lambda_server import LambdaInvokeApp
from posepipe.cloud.local.sagemaker_runtime import SageMakerRuntimeApp
from posepipe.cloud.local.servers import BackgroundServer, serve_in_background
from posepipe.cloud.state_machine import render_definition
from posepipe.cloud.storage import event_key, s3_client
from posepipe.errors import PosepipeError

log = logging.getLogger("posepipe.serve")

REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTIONS = ("image_infer", "video_split", "aggregate")
QUEUE = "posepipe-input-events"
ENDPOINT_NAME = "posepipe-pose"
STATE_MACHINE = "posepipe-video"


def repository_root() -> Path:
    """The checkout this package runs from (``layers/posepipe`` -> root), or ``$POSEPIPE_REPO``."""
    env = os.environ.get("POSEPIPE_REPO")
    return Path(env) if env else Path(__file__).resolve().parents[4]


def load_function(name: str, repo: Path | None = None) -> ModuleType:
    """Import ``functions/<name>/app.py`` by file, as Lambda does."""
    path = (repo or repository_root()) / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"posepipe_function_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class StackPorts:
    s3: int = 4566
    api: int = 3000
    endpoint: int = 8080
    runtime: int = 8081
    lambdas: int = 9001


@dataclass
class LocalStack:
    host: str = "127.0.0.1"
    ports: StackPorts = field(default_factory=StackPorts)
    on_event: Callable[[str], None] = print
    config: PipelineConfig = field(default_factory=PipelineConfig)
    _servers: list[Any] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _mock: Any = None
    _pool: ThreadPoolExecutor | None = None

    @property
    def s3_url(self) -> str:
        return f"http://{self.host}:{self.ports.s3}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.ports.api}"

    def start(self) -> None:
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the local stack listens on loopback only")
        self._environment()
        from moto import mock_aws
        from moto.server import ThreadedMotoServer

        moto_shims.install()
        self._mock = mock_aws(
            config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        )
        self._mock.start()
        moto = ThreadedMotoServer(ip_address=self.host, port=self.ports.s3, verbose=False)
        moto.start()
        self._servers.append(moto)
        handlers = {name: load_function(name).handler for name in FUNCTIONS}
        self._serve(LambdaInvokeApp(handlers, region=REGION), self.ports.lambdas, "lambda")
        self._serve(_endpoint_app(), self.ports.endpoint, "endpoint")
        endpoint = f"http://{self.host}:{self.ports.endpoint}"
        self._serve(
            SageMakerRuntimeApp({ENDPOINT_NAME: endpoint}, timeout_s=600), self.ports.runtime, "runtime"
        )
        self._resources()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="posepipe-dispatch")
        threading.Thread(target=self._dispatch_forever, name="posepipe-dispatcher", daemon=True).start()
        self._serve(self._api, self.ports.api, "api")

    def stop(self) -> None:
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

    # --- set-up ---------------------------------------------------------------------------

    def _environment(self) -> None:
        defaults = {
            "AWS_ACCESS_KEY_ID": "posepipe-local",
            "AWS_SECRET_ACCESS_KEY": "posepipe-local",
            "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_NAMESPACE": "posepipe",
        }
        for name, value in defaults.items():
            os.environ.setdefault(name, value)
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"]
        os.environ["MOTO_PORT"] = str(self.ports.s3)
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = f"http://{self.host}:{self.ports.lambdas}"
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = f"http://{self.host}:{self.ports.runtime}"
        os.environ.pop("AWS_ENDPOINT_URL", None)
        state_machine_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE}"
        os.environ.setdefault("POSEPIPE_ENDPOINT_NAME", ENDPOINT_NAME)
        os.environ["POSEPIPE_STATE_MACHINE_ARN"] = state_machine_arn
        self.config = PipelineConfig.from_env()

    def _serve(self, app: Any, port: int, name: str) -> BackgroundServer:
        server = serve_in_background(app, self.host, port, name=name)
        self._servers.append(server)
        return server

    def _resources(self) -> None:
        import boto3

        config = self.config
        s3 = boto3.client("s3")
        for bucket in (config.input_bucket, config.output_bucket):
            s3.create_bucket(Bucket=bucket)
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        s3.put_bucket_notification_configuration(
            Bucket=config.input_bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": queue_arn,
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                    }
                    for prefix in (config.images_prefix, config.videos_prefix)
                ]
            },
        )
        self._queue_url = queue_url
        definition = render_definition(
            {
                "VideoSplitFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:video_split",
                "AggregateFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:aggregate",
                "EndpointName": config.endpoint_name,
                "InputBucket": config.input_bucket,
                "OutputBucket": config.output_bucket,
                "ErrorsPrefix": config.errors_prefix,
            }
        )
        boto3.client("stepfunctions").create_state_machine(
            name=STATE_MACHINE, definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/posepipe-local"
        )

    # --- the dispatcher: input bucket notifications -> image function or state machine --------

    def _dispatch_forever(self) -> None:
        import boto3

        sqs = boto3.client("sqs")
        while not self._stop.is_set():
            try:
                answer = sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
            except Exception as exc:  # the stack is stopping, or moto hiccuped: keep going
                if not self._stop.is_set():
                    log.warning("dispatcher: %s", exc)
                continue
            for message in answer.get("Messages", []):
                try:
                    self._dispatch(json.loads(message["Body"]))
                except Exception:
                    log.exception("dispatcher: could not dispatch %s", message["Body"][:200])
                sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _dispatch(self, body: dict[str, Any]) -> None:
        import boto3

        for record in body.get("Records", []):
            bucket = record["s3"]["bucket"]["name"]
            key = event_key(record["s3"]["object"]["key"])
            etag = str(record["s3"]["object"].get("eTag", ""))
            if key.startswith(self.config.images_prefix):
                self.on_event(f"image uploaded: s3://{bucket}/{key} -> image_infer")
                assert self._pool is not None
                self._pool.submit(self._invoke_image_function, {"Records": [record]})
            elif key.startswith(self.config.videos_prefix):
                name = job_id(key, etag)
                payload = json.dumps({"bucket": bucket, "key": key, "etag": etag})
                sfn = boto3.client("stepfunctions")
                sfn.start_execution(stateMachineArn=self.config.state_machine_arn, name=name, input=payload)
                self.on_event(f"video uploaded: s3://{bucket}/{key} -> execution {name}")

    def _invoke_image_function(self, event: dict[str, Any]) -> None:
        import boto3

        boto3.client("lambda").invoke(FunctionName="image_infer", Payload=json.dumps(event).encode())

    # --- the API ------------------------------------------------------------------------------

    def _api(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        return self._route(request)(environ, start_response)

    def _route(self, request: Request) -> Response:
        import boto3

        path = request.path.rstrip("/") or "/"
        try:
            if path == "/images" and request.method == "POST":
                return self._post_image(request)
            if path == "/videos" and request.method == "POST":
                body = request.get_json(silent=True) or {}
                filename = str(body.get("filename") or request.args.get("filename") or "")
                return _json(new_upload(s3_client(self.s3_url), self.config, filename), 201)
            if path.startswith("/jobs/") and request.method == "GET":
                sfn = boto3.client("stepfunctions")
                status = job_status(s3_client(self.s3_url), sfn, self.config, path[len("/jobs/") :])
                return _json(status, 200)
            if path == "/" and request.method == "GET":
                return _json({"routes": ["POST /images", "POST /videos", "GET /jobs/{id}"]}, 200)
        except PosepipeError as exc:
            return _json({"error": exc.code, "message": str(exc)}, 400)
        return _json({"error": "not_found", "message": f"no route for {request.method} {request.path}"}, 404)

    def _post_image(self, request: Request) -> Response:
        """API Gateway's REST proxy integration, as it would call the image function."""
        import boto3

        body = request.get_data()
        request_id = str(uuid.uuid4())
        event = {
            "resource": "/images",
            "path": "/images",
            "httpMethod": "POST",
            "headers": dict(request.headers.items()),
            "multiValueHeaders": {k: request.headers.getlist(k) for k in request.headers.keys()},  # noqa: SIM118
            "queryStringParameters": dict(request.args.items()) or None,
            "multiValueQueryStringParameters": {k: request.args.getlist(k) for k in request.args} or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/images",
                "httpMethod": "POST",
                "path": "/local/images",
                "stage": "local",
                "requestId": request_id,
                "accountId": ACCOUNT,
                "apiId": "local",
                "identity": {"sourceIp": request.remote_addr or "127.0.0.1"},
            },
            "body": base64.b64encode(body).decode() if body else None,
            "isBase64Encoded": bool(body),
        }
        answer = boto3.client("lambda").invoke(FunctionName="image_infer", Payload=json.dumps(event).encode())
        result = json.loads(answer["Payload"].read())
        if answer.get("FunctionError"):
            return _json(
                {"error": "internal", "message": result.get("errorMessage", "the function failed")}, 502
            )
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        return Response(data, status=int(result.get("statusCode", 200)), headers=result.get("headers") or {})


def _endpoint_app() -> Any:
    endpoint_dir = repository_root() / "sagemaker_endpoint"
    if str(endpoint_dir) not in sys.path:
        sys.path.insert(0, str(endpoint_dir))
    from posepipe_endpoint.app import create_app

    return create_app()


def _json(data: Any, status: int) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")
