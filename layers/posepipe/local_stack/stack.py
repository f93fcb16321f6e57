"""``posepipe serve``: the whole cloud pipeline on one machine, with no AWS account, on loopback.

- moto (S3, SQS, Step Functions with real ASL execution) as a server at ``host:4566``; the same
  moto state is active in this process, so the Step Functions engine's Lambda and SageMaker
  calls honour ``AWS_ENDPOINT_URL_LAMBDA`` / ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` and reach
- the Lambda Invoke API over the real handlers of ``functions/`` (``host:9001``),
- the endpoint container's server (``host:8080``) behind a SageMaker Runtime front (``host:8081``),
  holding each invocation to SageMaker's 60 s,
- a dispatcher from the input bucket's notifications (S3 -> SQS) to the image function or to the
  video-jobs function, which starts the state machine (executions named from the key and ETag),
  retrying a failed delivery and then handing Lambda's record of the failed invocation to
  ``failure_records``, as the functions' on-failure destination does in AWS, which writes the
  input's error record (:mod:`posepipe.local_stack.dispatcher`), and
- the API (``host:3000``), calling the functions as API Gateway's REST proxy integration does:
  ``POST /images`` (image_infer), ``POST /videos`` and ``GET /jobs/{id}`` (video_jobs).
The state machine is the repository's one ASL file; the handlers are the ones deployed to AWS.
Every function and the endpoint run with the variables the deployed stack gives them
(:mod:`posepipe.cloud.deployment`, the one configuration both read: the top-down detector,
the pose model, max poses, chunk planning, limits), with this stack's resource names and this
machine's serving (:meth:`LocalStack.component_environments`); a ``POSEPIPE_*`` variable set
before ``posepipe serve`` changes its value, as CDK context changes a deployment's.
"""

from __future__ import annotations

import base64
import importlib.util
import ipaddress
import json
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from werkzeug.wrappers import Request, Response

from posepipe.cloud import deployment
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.http_servers import BackgroundServer, serve_in_background
from posepipe.cloud.state_machine import render_definition
from posepipe.local_stack import moto_shims
from posepipe.local_stack.dispatcher import NotificationDispatcher
from posepipe.local_stack.lambda_server import Handler, LambdaInvokeApp
from posepipe.local_stack.s3_meter import metered_moto_server
from posepipe.local_stack.sagemaker_runtime import SageMakerRuntimeApp
from posepipe.local_stack.uploads import ACCOUNT, REGION, FunctionError, UploadRouting, invoke_function

log = logging.getLogger("posepipe.serve")

FUNCTIONS = (
    "image_infer",
    "video_jobs",
    "video_split",
    "aggregate",
    "render_segment",
    "join_video",
    "failure_records",
)
# The REST API's resources and the function behind each (API Gateway's proxy integrations).
API_ROUTES = (
    ("POST", "/images", "image_infer"),
    ("POST", "/videos", "video_jobs"),
    ("GET", "/videos/{id}/upload", "video_jobs"),
    ("POST", "/videos/{id}/complete", "video_jobs"),
    ("GET", "/jobs/{id}", "video_jobs"),
)
# Bodies of these media types reach the functions base64-encoded (the REST API's binary media
# types); others as text.
BINARY_MEDIA_TYPES = ("image/*", "application/octet-stream")
QUEUE = "posepipe-input-events"
ENDPOINT_NAME = "posepipe-pose"
STATE_MACHINE = "posepipe-video"
HANDLERS = "posepipe.cloud.handlers"


def load_function(name: str) -> ModuleType:
    """A fresh instance of the handler module ``posepipe.cloud.handlers.<name>`` (what
    ``functions/<name>/app.py`` re-exports), as a Lambda cold start gives: it reads the
    environment as it is now. Imported by module name, so it works from an installed package."""
    found = importlib.util.find_spec(f"{HANDLERS}.{name}")
    if found is None or found.origin is None:
        raise ImportError(f"no handler module {HANDLERS}.{name}")
    # Its own name, so that what resolves names through sys.modules (pydantic's models) finds it.
    spec = importlib.util.spec_from_file_location(f"posepipe_function_{name}", found.origin)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {found.origin}")
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
    _dispatcher: NotificationDispatcher | None = None
    _components: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def s3_url(self) -> str:
        return f"http://{self.host}:{self.ports.s3}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.ports.api}"

    def start(self) -> None:
        if not is_loopback(self.host):
            raise ValueError(f"the local stack listens on loopback only, not on {self.host}")
        self._environment()
        from moto import mock_aws

        moto_shims.install()
        self._mock = mock_aws(
            config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        )
        self._mock.start()
        moto = metered_moto_server(self.host, self.ports.s3)
        moto.start()
        self._servers.append(moto)
        self._serve(LambdaInvokeApp(self._load_functions(), region=REGION), self.ports.lambdas, "lambda")
        self._serve(_endpoint_app(self._components[deployment.ENDPOINT]), self.ports.endpoint, "endpoint")
        endpoint = f"http://{self.host}:{self.ports.endpoint}"
        self._serve(
            SageMakerRuntimeApp(
                {self.config.endpoint_name: endpoint}, timeout_s=deployment.SAGEMAKER_INVOCATION_LIMIT_S
            ),
            self.ports.runtime,
            "runtime",
        )
        self._resources()
        import boto3

        routing = UploadRouting(self.config, self.on_event)
        self._dispatcher = NotificationDispatcher(
            boto3.client("sqs"), self._queue_url, routing.deliver, routing.give_up
        )
        routing.attempts = self._dispatcher.attempts
        threading.Thread(
            target=self._dispatcher.run, args=(self._stop,), name="posepipe-dispatcher", daemon=True
        ).start()
        self._serve(self._api, self.ports.api, "api")

    def stop(self) -> None:
        self._stop.set()
        if self._dispatcher is not None:
            self._dispatcher.close()
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
            "POWERTOOLS_TRACE_DISABLED": "1",  # no X-Ray here
        }
        for name, value in defaults.items():
            os.environ.setdefault(name, value)
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"]
        os.environ["MOTO_PORT"] = str(self.ports.s3)
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = f"http://{self.host}:{self.ports.lambdas}"
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = f"http://{self.host}:{self.ports.runtime}"
        os.environ.pop("AWS_ENDPOINT_URL", None)
        self._components = self.component_environments()
        # The functions share this process: what they all read is set for all (the values agree,
        # see posepipe.cloud.deployment); each one's own (its service name) while it loads.
        for name in deployment.FUNCTIONS:
            for key, value in self._components[name].items():
                if key != "POWERTOOLS_SERVICE_NAME":
                    os.environ[key] = value
        self.config = PipelineConfig.from_env()

    def component_environments(self) -> dict[str, dict[str, str]]:
        """What each function and the endpoint run with here (see the module docstring): the
        deployed stack's variables, this stack's names, this machine's serving, and any
        ``POSEPIPE_*`` variable already set in the environment over them."""
        base = PipelineConfig()
        env = os.environ

        def number(key: str, default: int) -> int:
            return int(float(env.get(key, default)))

        resources = deployment.Resources(
            input_bucket=env.get("POSEPIPE_INPUT_BUCKET", base.input_bucket),
            output_bucket=env.get("POSEPIPE_OUTPUT_BUCKET", base.output_bucket),
            endpoint_name=env.get("POSEPIPE_ENDPOINT_NAME", ENDPOINT_NAME),
            state_machine_arn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE}",
            model_uri=env.get("POSEPIPE_MODEL_URI", ""),
        )
        limits = deployment.Limits(
            max_video_seconds=number("POSEPIPE_MAX_VIDEO_SECONDS", deployment.MAX_VIDEO_SECONDS),
            max_image_pixels=number("POSEPIPE_MAX_IMAGE_PIXELS", deployment.MAX_IMAGE_PIXELS),
        )
        components = deployment.environments(resources, limits, local_serving())
        for variables in components.values():
            for key in variables:
                if key in env and key.startswith("POSEPIPE_") and key not in deployment.RESOURCE_KEYS:
                    variables[key] = env[key]
        return components

    def _load_functions(self) -> dict[str, Handler]:
        """Each function's handler, loaded as Lambda does, with its own variables over the stack's."""
        handlers = {}
        for name in FUNCTIONS:
            with _environment(self._function_environment(name)):
                handlers[name] = load_function(name).handler
        return handlers

    def _function_environment(self, name: str) -> dict[str, str]:
        variables = dict(self._components[name])
        if name in ("video_jobs", "image_infer", "video_split"):
            # Their presigned URLs (uploads, results, the annotated image) are for the user's client:
            # they must name the S3 that users reach here (moto's server), as on AWS they name the
            # regional endpoint. video_split reads through it too, so that the server's meter
            # counts what it reads of a video (posepipe.local_stack.s3_meter).
            variables["AWS_ENDPOINT_URL_S3"] = self.s3_url
        return variables

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
        # As deployed (infra/posepipe_infra/storage.py): the input bucket keeps versions, which
        # jobs read by version id (posepipe.cloud.pinning).
        s3.put_bucket_versioning(Bucket=config.input_bucket, VersioningConfiguration={"Status": "Enabled"})
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
                "RenderSegmentFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:render_segment",
                "JoinVideoFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:join_video",
                "EndpointName": config.endpoint_name,
                "InputBucket": config.input_bucket,
                "OutputBucket": config.output_bucket,
                "ErrorsPrefix": config.errors_prefix,
            }
        )
        boto3.client("stepfunctions").create_state_machine(
            name=STATE_MACHINE, definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/posepipe-local"
        )

    # --- the API ------------------------------------------------------------------------------

    def _api(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        return self._route(request)(environ, start_response)

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        for method, resource, function in API_ROUTES:
            parameters = _match(resource, path)
            if parameters is not None and request.method == method:
                return _invoke_api(function, _proxy_event(request, resource, path, parameters))
        if path == "/" and request.method == "GET":
            return _json({"routes": [f"{method} {resource}" for method, resource, _ in API_ROUTES]}, 200)
        return _json({"error": "not_found", "message": f"no route for {request.method} {request.path}"}, 404)


def _match(resource: str, path: str) -> dict[str, str] | None:
    """The path parameters if ``path`` is an instance of ``resource`` (``/jobs/{id}``), else None."""
    expected, actual = resource.split("/"), path.split("/")
    if len(expected) != len(actual):
        return None
    parameters = {}
    for part, value in zip(expected, actual, strict=True):
        if part.startswith("{") and part.endswith("}") and value:
            parameters[part[1:-1]] = value
        elif part != value:
            return None
    return parameters


def _proxy_event(request: Request, resource: str, path: str, parameters: dict[str, str]) -> dict[str, Any]:
    """The event API Gateway's REST proxy integration (payload v1) sends for ``request``."""
    body = request.get_data()
    media_type = request.mimetype or ""
    binary = any(
        media_type == kind or (kind.endswith("/*") and media_type.startswith(kind[:-1]))
        for kind in BINARY_MEDIA_TYPES
    )
    text: str | None = None
    if body and not binary:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            binary = True
    return {
        "resource": resource,
        "path": path,
        "httpMethod": request.method,
        "headers": dict(request.headers.items()),
        "multiValueHeaders": {k: request.headers.getlist(k) for k in request.headers.keys()},  # noqa: SIM118
        "queryStringParameters": dict(request.args.items()) or None,
        "multiValueQueryStringParameters": {k: request.args.getlist(k) for k in request.args} or None,
        "pathParameters": parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": request.method,
            "path": f"/local{path}",
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "accountId": ACCOUNT,
            "apiId": "local",
            "identity": {"sourceIp": request.remote_addr or "127.0.0.1"},
        },
        "body": (base64.b64encode(body).decode() if binary else text) if body else None,
        "isBase64Encoded": bool(body) and binary,
    }


def _invoke_api(function: str, event: dict[str, Any]) -> Response:
    """The HTTP answer API Gateway makes of ``function``'s proxy response (502 if it failed)."""
    try:
        result = invoke_function(function, event)
    except FunctionError as exc:
        return _json({"error": "internal", "message": str(exc)}, 502)
    payload = result.get("body") or ""
    data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
    headers = [(k, v) for k, values in (result.get("multiValueHeaders") or {}).items() for v in values]
    single = result.get("headers") or {}
    headers += [(k, v) for k, v in single.items() if k.lower() not in {h.lower() for h, _ in headers}]
    return Response(data, status=int(result.get("statusCode", 200)), headers=headers)


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` set in ``os.environ`` for the duration (a function's own configuration)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (any of 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_serving() -> deployment.Serving:
    """How the endpoint serves on this machine: on its CUDA GPU when PyTorch sees one (as the
    deployed endpoint, batched), else on the CPU, one invocation per core at a time."""
    from posepipe.engines.base import cuda_available

    gpu = cuda_available()
    return deployment.Serving(gpu=gpu, max_concurrent=None if gpu else max(1, os.cpu_count() or 1))


def _endpoint_app(variables: Mapping[str, str]) -> Any:
    """The endpoint's server with its own variables (the deployed container's, see
    posepipe.cloud.deployment), whatever this process's environment holds for the functions."""
    from posepipe.cloud.endpoint.app import create_app
    from posepipe.cloud.endpoint.engine import EndpointSettings, engine_for

    settings = EndpointSettings.from_environment(variables)
    concurrent = variables.get("POSEPIPE_MAX_CONCURRENT", "")
    return create_app(lambda: engine_for(settings), max_concurrent=int(concurrent) if concurrent else 0)


def _json(data: Any, status: int) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")
