"""The zip functions as Lambda runs them: the layer and the function folders exactly as the synth
stages them (``make synth``), loaded by the runtime's Python (CPython 3.13, the functions'
``Runtime``) with nothing else on its path, against moto's server.

The layer's binary wheels (PyAV, NumPy, pydantic-core) are built for that interpreter, not for the
one running the tests: this is the only test that loads them. The runtime's own packages (boto3 and
its dependencies, which Lambda provides in ``/var/runtime``) are installed for CPython 3.13 from the
versions pinned in ``requirements.lock``. If CPython 3.13 is missing the test fails and says how to
get it: a layer that nobody loaded is not tested.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from posepipe.cloud.keys import job_id
from posepipe.media.probe import probe
from posepipe_infra.layer import LAYER_PYTHON, install_wheels, pinned

from tests.support.cdkapp import Synthesized
from tests.support.localaws import FAKE_AWS_ENV, REGION, create_video_state_machine
from tests.support.paths import EVENTS, TESTS

pytestmark = pytest.mark.slow  # synthesizes the CDK app, builds the runtime's boto3, runs CPython 3.13

BOOTSTRAP = TESTS / "support" / "lambda_bootstrap.py"
INPUT, OUTPUT = "posepipe-layer-input", "posepipe-layer-output"
# What the Lambda Python runtime provides besides the standard library (/var/runtime).
RUNTIME_PACKAGES = ["boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"]
HOW_TO_GET_PYTHON = (
    f"CPython {LAYER_PYTHON} (the Lambda runtime of the zip functions) was not found: install it "
    f"(`pyenv install {LAYER_PYTHON}`, or Debian/Ubuntu's python{LAYER_PYTHON} package) or point "
    f"POSEPIPE_LAMBDA_PYTHON at its interpreter"
)


def _is_lambda_python(candidate: str) -> bool:
    try:
        completed = subprocess.run(
            [candidate, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return False
    return completed.returncode == 0 and completed.stdout.strip() == LAYER_PYTHON


def find_lambda_python() -> str | None:
    """``$POSEPIPE_LAMBDA_PYTHON``, else pyenv's CPython of that version, else ``python3.13`` on PATH."""
    candidates = [os.environ.get("POSEPIPE_LAMBDA_PYTHON", "")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(map(str, pyenv_root.glob(f"versions/{LAYER_PYTHON}*/bin/python{LAYER_PYTHON}")))
    candidates.append(shutil.which(f"python{LAYER_PYTHON}") or "")
    return next((c for c in candidates if c and _is_lambda_python(c)), None)


@pytest.fixture(scope="module")
def lambda_python() -> str:
    found = find_lambda_python()
    if found is None:
        pytest.fail(HOW_TO_GET_PYTHON)
    return found


@pytest.fixture(scope="module")
def runtime_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runtime's boto3 and its dependencies, for CPython 3.13 (Lambda's ``/var/runtime``)."""
    folder = tmp_path_factory.mktemp("var-runtime")
    install_wheels(pinned(RUNTIME_PACKAGES, "the Lambda runtime's packages"), folder)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server in its own process (S3, Step Functions), as a deployed function reaches AWS."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"{url}/moto-api/", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None, f"moto's server exited: {Path(log.name).read_text()}"
                assert time.monotonic() < deadline, "moto's server did not answer within 120 s"
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _clients(url: str) -> tuple[Any, Any]:
    credentials = {
        "aws_access_key_id": FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": REGION,
        "endpoint_url": url,
    }
    return boto3.client("s3", **credentials), boto3.client("stepfunctions", **credentials)


def _event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def test_the_staged_layer_runs_video_jobs_and_video_split_under_the_lambda_python(
    default_app: Synthesized,
    lambda_python: str,
    runtime_packages: Path,
    moto_server: str,
    sample: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    stack = default_app.stack
    (layer,) = default_app.of_type("AWS::Lambda::LayerVersion").values()
    layer_python = default_app.outdir / layer["Metadata"]["aws:asset:path"] / "python"
    # The layer ships what the zip functions import: not the local stack, the web app, the endpoint
    # server or the torch engine (whose dependencies, moto, Streamlit, Flask and PyTorch, it lacks).
    package = layer_python / "posepipe"
    assert (package / "cloud" / "handlers" / "video_jobs.py").is_file()
    assert (package / "media" / "probe.py").is_file()
    for left_out in ("local_stack", "ui", "cloud/endpoint", "engines/torch"):
        assert not (package / left_out).exists(), left_out
    function_dirs = {
        "video_jobs": default_app.asset_folder(stack.videos.jobs.function),
        "video_split": default_app.asset_folder(stack.videos.split.function),
    }
    for name, function in (("video_jobs", stack.videos.jobs), ("video_split", stack.videos.split)):
        resource = default_app.resources[default_app.logical_id(function.function)]
        assert resource["Properties"]["Runtime"] == f"python{LAYER_PYTHON}", name
        assert resource["Properties"]["Handler"] == "app.handler", name

    s3, sfn = _clients(moto_server)
    s3.create_bucket(Bucket=INPUT)
    s3.create_bucket(Bucket=OUTPUT)
    machine = create_video_state_machine(sfn, INPUT, OUTPUT)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),  # no ~/.aws of the user's
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        **FAKE_AWS_ENV,
        "AWS_ENDPOINT_URL": moto_server,
        "POSEPIPE_INPUT_BUCKET": INPUT,
        "POSEPIPE_OUTPUT_BUCKET": OUTPUT,
        "POSEPIPE_STATE_MACHINE_ARN": machine,
    }
    calls = iter(range(100))

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        output = tmp_path / f"{function}-{next(calls)}.json"
        # As Lambda's /var/task, /opt/python and /var/runtime.
        folders = (function_dirs[function], layer_python, runtime_packages)
        completed = subprocess.run(
            [lambda_python, "-I", "-S", str(BOOTSTRAP), *map(str, folders), str(output)],
            input=json.dumps(event),
            capture_output=True,
            text=True,
            env={**environment, "POWERTOOLS_SERVICE_NAME": function},
            cwd=tmp_path,
            timeout=300,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr[-4000:]
        answer: dict[str, Any] = json.loads(output.read_text())
        assert answer["version"] == [int(part) for part in LAYER_PYTHON.split(".")]
        modules = answer["modules"]
        assert Path(modules["app"]).parent == function_dirs[function]
        for package in ("posepipe", "aws_lambda_powertools"):
            assert Path(modules[package]).is_relative_to(layer_python), (package, modules[package])
        assert Path(modules["boto3"]).is_relative_to(runtime_packages)
        if function == "video_split":  # compiled modules (PyAV, NumPy, pydantic-core), from the layer
            for package in ("av", "numpy", "pydantic_core"):
                assert Path(modules[package]).is_relative_to(layer_python), (package, modules[package])
        result: dict[str, Any] = answer["result"]
        return result

    # POST /videos: a job id and a presigned PUT (the client uploads to it).
    post = _event("video_jobs_post_videos.json")
    post["body"], post["isBase64Encoded"] = json.dumps({"filename": "vtest.avi"}), False
    response = invoke("video_jobs", post)
    assert response["statusCode"] == 201, response
    created = json.loads(response["body"])
    video = sample("vtest.avi")
    put = requests.put(created["upload"]["url"], data=video.read_bytes(), timeout=120)
    assert put.status_code == 200, put.text
    key = created["key"]
    etag = s3.head_object(Bucket=INPUT, Key=key)["ETag"]

    # The upload's EventBridge "Object Created" event starts one execution for this version.
    uploaded = copy.deepcopy(_event("video_jobs_eventbridge_object_created.json"))
    uploaded["resources"] = [f"arn:aws:s3:::{INPUT}"]
    uploaded["detail"]["bucket"]["name"] = INPUT
    uploaded["detail"]["object"].update(key=key, etag=etag.strip('"'), size=video.stat().st_size)
    invoke("video_jobs", uploaded)
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert [e["name"] for e in executions] == [job_id(key, etag.strip('"'))]
    started = json.loads(sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"])
    assert started == {"bucket": INPUT, "key": key, "etag": etag.strip('"')}

    # GET /jobs/{id}: running (the execution exists, no summary yet).
    status_request = _event("video_jobs_get_job.json")
    status_request["path"] = f"/jobs/{created['job']}"
    status_request["pathParameters"] = {"id": created["job"]}
    response = invoke("video_jobs", status_request)
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["status"] == "running"

    # The execution's first state: video_split downloads, probes (PyAV) and plans the chunks.
    plan = invoke("video_split", started)
    info = probe(video)
    assert plan["job"]["id"] == job_id(key, etag.strip('"'))
    assert (plan["job"]["frame_count"], plan["job"]["width"], plan["job"]["height"]) == (
        info.frame_count,
        info.width,
        info.height,
    )
    assert plan["job"]["fps"] == pytest.approx(info.fps)
    chunks = plan["chunks"]
    assert len(chunks) == plan["job"]["chunk_count"] > 1
    frames = [chunk["request"]["chunk"] for chunk in chunks]
    assert frames[0]["start"] == 0
    assert frames[-1]["stop"] == info.frame_count
