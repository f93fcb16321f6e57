"""The video-jobs Lambda (functions/video_jobs) on moto: S3 and a real state machine.

The state machine is the repository's ASL, created in moto without executing it (executions stay
``RUNNING``, which is all that starting one and reading its status need). The handler module is
loaded once, inside the mock; each test uses its own keys, so the shared state needs no reset.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import boto3
import pytest
import requests  # moto's mock answers its calls as well as boto3's
from botocore.exceptions import ClientError
from moto import mock_aws
from posepipe.cloud.keys import job_id
from posepipe.cloud.rejections import has_stack_trace

from tests.support.lambdas import (
    captured_logs,
    encoded_key,
    lambda_context,
    load_handler_module,
    with_request,
)
from tests.support.localaws import ACCOUNT, FAKE_AWS_ENV, create_video_state_machine
from tests.support.paths import EVENTS, REPO

REGION = "us-east-1"
INPUT, OUTPUT = "posepipe-input", "posepipe-output"
ENV = {
    **FAKE_AWS_ENV,
    "POWERTOOLS_SERVICE_NAME": "video_jobs",
    "POSEPIPE_INPUT_BUCKET": INPUT,
    "POSEPIPE_OUTPUT_BUCKET": OUTPUT,
}

# An invocation that measures nothing (a status request, a skipped object) makes powertools warn.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@dataclass
class Aws:
    s3: Any
    sfn: Any
    machine: str
    app: ModuleType

    def executions(self, name: str) -> list[dict[str, Any]]:
        listed = self.sfn.list_executions(stateMachineArn=self.machine)["executions"]
        return [e for e in listed if e["name"] == name]

    def json(self, bucket: str, key: str, data: Any) -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(data).encode())


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    """Fake credentials, moto S3 with both buckets and the pipeline's state machine, the function."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENV.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SFN"):
            patch.delenv(name, raising=False)
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=INPUT)
            s3.create_bucket(Bucket=OUTPUT)
            sfn = boto3.client("stepfunctions", region_name=REGION)
            machine = create_video_state_machine(sfn, INPUT, OUTPUT)
            patch.setenv("POSEPIPE_STATE_MACHINE_ARN", machine)
            yield Aws(s3, sfn, machine, load_handler_module("video_jobs"))


def _event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def invoke(aws: Aws, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = aws.app.handler(copy.deepcopy(event), lambda_context("video_jobs"))
    return response


def api_call(aws: Aws, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = invoke(aws, event)
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    body: dict[str, Any] = json.loads(response["body"])
    return response["statusCode"], body


def assert_api_error(response: tuple[int, dict[str, Any]], status: int, code: str) -> dict[str, Any]:
    assert response[0] == status, response
    assert set(response[1]) == {"error", "message"}
    assert response[1]["error"] == code
    assert response[1]["message"]
    return response[1]


def post_videos(
    body: str | bytes | None,
    content_type: str | None = "application/json",
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``video_jobs_post_videos.json`` with another body (bytes: base64-encoded, as for binary types)."""
    return with_request(_event("video_jobs_post_videos.json"), body, content_type, query)


def get_job(job: str) -> dict[str, Any]:
    """``video_jobs_get_job.json`` for another job id."""
    event = _event("video_jobs_get_job.json")
    event["path"] = f"/jobs/{job}"
    event["pathParameters"] = {"id": job}
    event["requestContext"]["path"] = f"/prod/jobs/{job}"
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


def eventbridge_event(raw_key: str, etag: str = "6b1f0c9e2d7a4e58b3c6a9d1f2e4b7c0") -> dict[str, Any]:
    event = _event("video_jobs_eventbridge_object_created.json")
    event["detail"]["object"]["key"] = raw_key
    event["detail"]["object"]["etag"] = etag
    return event


def s3_event(raw_key: str, etag: str, bucket: str = INPUT, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    event = _event("s3_put_video.json")
    record = event["Records"][0]
    record["eventName"] = name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"]["key"] = raw_key
    record["s3"]["object"]["eTag"] = etag
    return event


def unique(name: str) -> str:
    return f"{uuid.uuid4().hex[:8]}-{name}"


# --- the package -----------------------------------------------------------------------------


def test_importing_the_function_loads_nothing_heavy() -> None:
    """A small zip function with the layer: no numpy, OpenCV, MediaPipe or PyAV at import."""
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('app', 'functions/video_jobs/app.py')\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "heavy = {'numpy', 'cv2', 'mediapipe', 'av', 'PIL', 'matplotlib', 'jsonschema'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    env = {**os.environ, **FAKE_AWS_ENV, "POSEPIPE_STATE_MACHINE_ARN": ""}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


# --- POST /videos ----------------------------------------------------------------------------


def test_post_videos_answers_a_presigned_put_url_that_takes_the_upload(aws: Aws) -> None:
    status, slot = api_call(aws, post_videos('{"filename": "morning run.mp4"}'))
    assert status == 201
    job = slot["job"]
    assert job.endswith("-morning-run.mp4")
    assert slot["key"] == f"videos/{job}"
    assert slot["status"] == f"/jobs/{job}"
    assert slot["upload"]["method"] == "PUT"
    assert slot["upload"]["expires_in"] == 3600
    url = urlparse(slot["upload"]["url"])  # https://<bucket>.s3.amazonaws.com/<key>?X-Amz-...
    assert (url.netloc.split(".s3.", 1)[0], unquote(url.path[1:])) == (INPUT, slot["key"])
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["3600"]

    assert api_call(aws, get_job(job)) == (200, {"job": job, "status": "awaiting_upload"})
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
    put = requests.put(slot["upload"]["url"], data=data, timeout=30)
    assert put.status_code == 200, put.text
    assert aws.s3.get_object(Bucket=INPUT, Key=slot["key"])["Body"].read() == data
    # Uploaded, and no execution yet (its event has not arrived).
    assert api_call(aws, get_job(job)) == (200, {"job": job, "status": "queued"})


def upload_request(job: str, action: str) -> dict[str, Any]:
    """``GET /videos/{job}/upload`` or ``POST /videos/{job}/complete`` (from the get-job fixture)."""
    event = get_job(job)
    event["httpMethod"] = "GET" if action == "upload" else "POST"
    event["resource"] = f"/videos/{{id}}/{action}"
    event["path"] = f"/videos/{job}/{action}"
    event["requestContext"]["path"] = f"/prod/videos/{job}/{action}"
    return event


def test_a_video_over_100_mb_goes_up_in_parts_that_resume_and_complete_only_when_whole(aws: Aws) -> None:
    size = 150_000_000
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    status, slot = api_call(aws, post_videos(json.dumps({"filename": "marathon.mp4", "size_bytes": size})))
    assert status == 201, slot
    upload = slot["upload"]
    assert (upload["method"], upload["size_bytes"], upload["part_count"]) == ("multipart", size, 3)
    assert upload["part_bytes"] == 64 * 1024 * 1024
    assert upload["complete"] == f"/videos/{slot['job']}/complete"
    assert upload["resume"] == f"/videos/{slot['job']}/upload"
    parts = upload["parts"]
    assert [(p["part"], p["offset"], p["size"]) for p in parts] == [
        (1, 0, 67108864), (2, 67108864, 67108864), (3, 134217728, size - 134217728)
    ]  # fmt: skip
    job = slot["job"]
    assert api_call(aws, get_job(job)) == (200, {"job": job, "status": "awaiting_upload"})

    def put(part: dict[str, Any]) -> None:
        answer = requests.put(
            part["url"], data=data[part["offset"] : part["offset"] + part["size"]], timeout=60
        )
        assert answer.status_code == 200, answer.text

    put(parts[0])
    put(parts[2])  # part 2 is "interrupted"
    refused = assert_api_error(api_call(aws, upload_request(job, "complete")), 409, "upload_incomplete")
    assert "parts 2 of 3 are not uploaded" in refused["message"]
    status, state = api_call(aws, upload_request(job, "upload"))
    assert status == 200
    assert state["upload"]["done"] == [{"part": 1, "size": 67108864}, {"part": 3, "size": size - 134217728}]
    [again] = state["upload"]["parts"]
    assert (again["part"], again["offset"]) == (2, 67108864)
    put(again)
    status, done = api_call(aws, upload_request(job, "complete"))
    assert status == 200, done
    assert (done["job"], done["size_bytes"], done["status"]) == (job, size, f"/jobs/{job}")
    stored = aws.s3.get_object(Bucket=INPUT, Key=slot["key"])
    assert stored["ContentLength"] == size
    assert stored["Body"].read() == data
    assert done["etag"] == stored["ETag"]
    assert_api_error(api_call(aws, upload_request(job, "complete")), 409, "upload_complete")
    assert_api_error(api_call(aws, upload_request(job, "upload")), 409, "upload_complete")


@pytest.mark.parametrize(
    ("request_body", "status", "code"),
    [
        ({"filename": "huge.mp4", "size_bytes": 51 * 1000**3}, 413, "too_large"),
        ({"filename": "huge.mp4", "size_bytes": 0}, 400, "bad_input"),
        ({"filename": "huge.mp4", "size_bytes": "big"}, 400, "invalid_parameter"),
        ({"filename": "huge.mp4", "size_bytes": True}, 400, "invalid_parameter"),
    ],
)
def test_post_videos_refuses_a_size_over_the_limit_or_not_a_size(
    aws: Aws, request_body: dict[str, Any], status: int, code: str
) -> None:
    refused = assert_api_error(api_call(aws, post_videos(json.dumps(request_body))), status, code)
    if code == "too_large":
        assert "over the limit of 50000000000 bytes" in refused["message"]


def test_a_small_video_with_its_size_gets_one_put_and_a_single_put_has_no_parts(aws: Aws) -> None:
    status, slot = api_call(aws, post_videos(json.dumps({"filename": "short.mp4", "size_bytes": 1_000_000})))
    assert (status, slot["upload"]["method"]) == (201, "PUT")
    assert_api_error(api_call(aws, upload_request(slot["job"], "upload")), 409, "not_multipart")
    assert_api_error(api_call(aws, upload_request("0123-never.mp4", "complete")), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "content_type", "query"),
    [
        (None, None, {"filename": "walk.mov"}),
        ("", "application/json", {"filename": "walk.mov"}),
        ('{"other": 1}', "application/json", {"filename": "walk.mov"}),
        ('{"filename": "walk.mov"}', "application/json; charset=utf-8", None),
        (b'{"filename": "walk.mov"}', "application/json", None),  # base64, as binary media types come
    ],
    ids=["query", "empty-body-and-query", "body-without-filename-and-query", "charset", "base64-body"],
)
def test_post_videos_takes_the_filename_from_the_body_or_the_query(
    aws: Aws, body: str | bytes | None, content_type: str | None, query: dict[str, str] | None
) -> None:
    status, slot = api_call(aws, post_videos(body, content_type, query))
    assert status == 201, slot
    assert slot["job"].endswith("-walk.mov")


@pytest.mark.parametrize(
    "body",
    ['{"filename": "notes.txt"}', '{"filename": ""}', "{}", '{"filename": "../.mp4"}'],
    ids=["not-a-video-name", "empty-name", "no-name", "nothing-left"],
)
def test_post_videos_with_a_bad_filename_is_400(aws: Aws, body: str) -> None:
    error = assert_api_error(api_call(aws, post_videos(body)), 400, "bad_input")
    assert "not a video file name" in error["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [("{not json", "bad_body"), ('["walk.mp4"]', "bad_body"), ('{"filename": 42}', "invalid_parameter")],
    ids=["not-json", "not-an-object", "filename-not-a-string"],
)
def test_post_videos_with_a_bad_body_is_400(aws: Aws, body: str, code: str) -> None:
    assert_api_error(api_call(aws, post_videos(body)), 400, code)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_post_videos_with_a_body_that_is_not_json_is_415(aws: Aws, content_type: str | None) -> None:
    error = assert_api_error(
        api_call(aws, post_videos("filename=walk.mp4", content_type)), 415, "unsupported_media_type"
    )
    assert "application/json" in error["message"]


def test_unexpected_failure_is_500_without_details(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("credentials expired at 09:28")

    monkeypatch.setattr(aws.app.s3, "generate_presigned_url", broken)
    with captured_logs(aws.app) as logs:
        error = assert_api_error(api_call(aws, post_videos('{"filename": "walk.mp4"}')), 500, "internal")
    assert "credentials" not in error["message"]
    failed = [line for line in logs if line.get("message") == "request failed"]
    assert "credentials expired" in failed[0]["exception"]


# --- GET /jobs/{id} --------------------------------------------------------------------------


def test_job_status_follows_upload_and_execution(aws: Aws) -> None:
    job = api_call(aws, post_videos('{"filename": "stairs.mp4"}'))[1]["job"]
    key = f"videos/{job}"
    assert api_call(aws, get_job(job))[1]["status"] == "awaiting_upload"
    etag = aws.s3.put_object(Bucket=INPUT, Key=key, Body=b"video bytes")["ETag"]  # quoted: '"..."'
    assert api_call(aws, get_job(job))[1]["status"] == "queued"
    started = invoke(aws, s3_event(key, etag.strip('"')))["results"][0]
    assert started["status"] == "started"
    status, body = api_call(aws, get_job(job))
    assert status == 200
    assert body == {"job": job, "status": "running", "execution": started["execution_arn"]}
    assert started["execution_arn"].endswith(f":execution:posepipe-video:{job_id(key, etag)}")


def test_job_with_an_error_record_has_failed(aws: Aws) -> None:
    job = unique("broken.mp4")
    record = {"input": f"s3://{INPUT}/videos/{job}", "stage": "video_split", "code": "bad_input",
              "reason": "truncated or corrupt video", "time": "2025-03-14T09:30:00+00:00"}  # fmt: skip
    aws.json(OUTPUT, f"errors/videos/{job}.json", record)
    assert api_call(aws, get_job(job)) == (200, {"job": job, "status": "failed", "error": record})


def test_job_whose_execution_ended_without_an_error_record_says_why(aws: Aws) -> None:
    job = api_call(aws, post_videos('{"filename": "stopped.mp4"}'))[1]["job"]
    key = f"videos/{job}"
    etag = aws.s3.put_object(Bucket=INPUT, Key=key, Body=b"video bytes")["ETag"]
    started = invoke(aws, s3_event(key, etag.strip('"')))["results"][0]
    aws.sfn.stop_execution(executionArn=started["execution_arn"])  # moto keeps no error or cause
    status, body = api_call(aws, get_job(job))
    assert status == 200
    assert body["status"] == "aborted"
    assert body["error"] == {
        "input": f"s3://{INPUT}/{key}", "stage": "pipeline", "code": "aborted",
        "reason": "the execution ended aborted; the details are in its history and the functions' logs",
        "execution": started["execution_arn"],
    }  # fmt: skip


def test_no_answer_hands_out_a_stack_trace_or_an_exception_class(aws: Aws) -> None:
    """A record written before error records were sanitized (Lambda's error type as the code, its
    error JSON with the trace as the reason) is handed out as a code and one line."""
    job = unique("crashed.mp4")
    cause = json.dumps({
        "errorMessage": "videos/x.mp4: [Errno 28] No space left on device", "errorType": "OSError",
        "requestId": "r-1",
        "stackTrace": ['  File "/var/task/app.py", line 12, in handler\n    probe(video)\n'],
    })  # fmt: skip
    record = {"input": f"s3://{INPUT}/videos/{job}", "stage": "video_split", "code": "OSError",
              "reason": cause, "time": "2025-03-14T09:30:00+00:00", "trace": "Traceback (most"}  # fmt: skip
    aws.json(OUTPUT, f"errors/videos/{job}.json", record)
    status, body = api_call(aws, get_job(job))
    assert (status, body["status"]) == (200, "failed")
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["reason"] == "OSError: videos/x.mp4: [Errno 28] No space left on device"
    assert set(body["error"]) == {"input", "stage", "code", "reason", "time"}
    assert not has_stack_trace(json.dumps(body)), body


def test_job_with_a_summary_has_succeeded_with_urls_that_download_the_results(aws: Aws) -> None:
    job = unique("jump.mp4")
    results = {
        "keypoints": b'{"schema": "posepipe.pose/1"}',
        "annotated": b"\x00\x00\x00\x18ftypisom annotated",
        "summary": json.dumps({"frames": 120, "person_frames": 96}).encode(),
    }
    names = {"keypoints": "keypoints.json", "annotated": "annotated.mp4", "summary": "summary.json"}
    for kind, data in results.items():
        aws.s3.put_object(Bucket=OUTPUT, Key=f"videos/{job}/{names[kind]}", Body=data)
    status, body = api_call(aws, get_job(job))
    assert status == 200
    assert {k: v for k, v in body.items() if k != "results"} == {
        "job": job, "status": "succeeded", "frames": 120, "person_frames": 96
    }  # fmt: skip
    assert set(body["results"]) == set(results)
    for kind, url in body["results"].items():
        assert parse_qs(urlparse(url).query)["X-Amz-Expires"] == ["3600"]
        download = requests.get(url, timeout=30)
        assert download.status_code == 200
        assert download.content == results[kind]


def test_a_job_id_never_issued_is_404(aws: Aws) -> None:
    """Only an issued upload slot, an uploaded video or a job's records make a job."""
    job = unique("never-issued.mp4")
    error = assert_api_error(api_call(aws, get_job(job)), 404, "not_found")
    assert (
        error["message"] == f"{job}: no such job: no upload slot was issued for it and no video was uploaded"
    )
    # A video uploaded straight to the bucket (no slot) is a job all the same.
    aws.s3.put_object(Bucket=INPUT, Key=f"videos/{job}", Body=b"video bytes")
    assert api_call(aws, get_job(job)) == (200, {"job": job, "status": "queued"})


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        *[(operation, code) for operation in ("head_object", "get_object")
          for code in ("AccessDenied", "SlowDown", "InternalError")],
        ("get_object", "NoSuchBucket"),  # a bucket that is not there is a deployment to mend
    ],
)  # fmt: skip
def test_s3_errors_other_than_no_such_object_are_500_not_a_status(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, code: str, operation: str
) -> None:
    """Access denied, throttled or no bucket is a failure to report, never "awaiting upload",
    "queued" or "no such job"."""
    job = api_call(aws, post_videos('{"filename": "denied.mp4"}'))[1]["job"]

    def refused(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": "refused"}}, operation)

    monkeypatch.setattr(aws.app.s3, operation, refused)
    with captured_logs(aws.app) as logs:
        assert_api_error(api_call(aws, get_job(job)), 500, "internal")
    assert any(code in line.get("exception", "") for line in logs)


def test_an_error_record_while_the_execution_runs_is_not_yet_a_failure(aws: Aws) -> None:
    """The aggregate records failed chunks before it writes the summary; the state machine writes
    a record just before it fails: either way the execution, still running, decides."""
    job = api_call(aws, post_videos('{"filename": "partial.mp4"}'))[1]["job"]
    key = f"videos/{job}"
    etag = aws.s3.put_object(Bucket=INPUT, Key=key, Body=b"video bytes")["ETag"]
    started = invoke(aws, s3_event(key, etag.strip('"')))["results"][0]
    record = {"input": f"s3://{INPUT}/{key}", "stage": "aggregate", "code": "chunks_failed",
              "reason": "1 of 3 chunks failed: chunk 1: boom",
              "time": "2026-12-03T10:00:00+00:00"}  # fmt: skip
    aws.json(OUTPUT, f"errors/{key}.json", record)
    assert api_call(aws, get_job(job)) == (
        200, {"job": job, "status": "running", "execution": started["execution_arn"]}
    )  # fmt: skip
    aws.sfn.stop_execution(executionArn=started["execution_arn"])
    assert api_call(aws, get_job(job))[1] == {
        "job": job, "status": "aborted", "execution": started["execution_arn"], "error": record
    }  # fmt: skip


def test_a_job_whose_chunks_partly_failed_succeeded_with_warnings(aws: Aws) -> None:
    job = unique("partly.mp4")
    failed = {"index": 1, "start": 47, "stop": 83, "reason": "SageMakerRuntime.ModelErrorException: boom"}
    aws.json(
        OUTPUT, f"videos/{job}/summary.json", {"frames": 120, "person_frames": 60, "failed_chunks": [failed]}
    )
    aws.json(OUTPUT, f"errors/videos/{job}.json", {"stage": "aggregate", "code": "chunks_failed"})
    status, body = api_call(aws, get_job(job))
    assert (status, body["status"], body["frames"], body["person_frames"]) == (200, "succeeded", 120, 60)
    assert set(body["results"]) == {"keypoints", "annotated", "summary"}
    assert body["warnings"] == [
        {
            "code": "chunk_failed",
            "chunk": 1,
            "frames": [47, 83],
            "message": "chunk 1 (frames 47 to 83, the last not included) failed: "
            "SageMakerRuntime.ModelErrorException: boom; its frames are in the results, marked not processed",
        }
    ]


@pytest.mark.parametrize("job", [".hidden", ".."])
def test_bad_job_id_is_400(aws: Aws, job: str) -> None:
    error = assert_api_error(api_call(aws, get_job(job)), 400, "bad_input")
    assert "not a job id" in error["message"]


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/videos"), ("POST", "/jobs/x.mp4"), ("GET", "/jobs"), ("GET", "/images")]
)
def test_unknown_route_is_404(aws: Aws, method: str, path: str) -> None:
    event = get_job("x.mp4")
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = event["resource"] = path
    event["pathParameters"] = None
    error = assert_api_error(api_call(aws, event), 404, "not_found")
    assert error["message"] == f"no route for {method} {path}"


# --- S3 and EventBridge: starting the state machine ------------------------------------------


def test_eventbridge_object_created_starts_one_execution_named_from_key_and_etag(aws: Aws) -> None:
    event = _event("video_jobs_eventbridge_object_created.json")
    key, etag = "videos/morning run+1.mp4", event["detail"]["object"]["etag"]  # the fixture's, decoded
    response = invoke(aws, event)
    name = job_id(key, etag)
    (result,) = response["results"]
    assert result == {
        "bucket": INPUT,
        "key": key,
        "execution": name,
        "execution_arn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:posepipe-video:{name}",
        "status": "started",
    }
    (execution,) = aws.executions(name)
    described = aws.sfn.describe_execution(executionArn=execution["executionArn"])
    assert described["stateMachineArn"] == aws.machine
    assert json.loads(described["input"]) == {"bucket": INPUT, "key": key, "etag": etag}
    assert described["input"] == json.dumps({"bucket": INPUT, "key": key, "etag": etag})


def test_the_same_event_twice_is_one_execution_and_a_duplicate(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f"videos/{unique('twice.mp4')}"
    event = eventbridge_event(key, etag="0f9e8d7c6b5a49382716afbecd012345")
    assert invoke(aws, event)["results"][0]["status"] == "started"
    capsys.readouterr()
    with captured_logs(aws.app) as logs:
        again = invoke(aws, event)["results"][0]
    assert again["status"] == "duplicate"
    assert again["execution"] == job_id(key, "0f9e8d7c6b5a49382716afbecd012345")
    assert len(aws.executions(again["execution"])) == 1
    assert any(line["message"] == "duplicate event: the execution exists" for line in logs)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (emf,) = [line for line in printed if "_aws" in line]
    assert {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {"DuplicateVideoEvents"}
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "posepipe"
    assert emf["service"] == "video_jobs"


def test_a_duplicate_that_races_the_first_start_is_a_duplicate(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delivered between the first event's look and its start: ExecutionAlreadyExists, not an error."""
    key = f"videos/{unique('race.mp4')}"
    event = eventbridge_event(key)
    first = invoke(aws, event)["results"][0]
    aws.sfn.stop_execution(executionArn=first["execution_arn"])  # closed: a start now raises

    def not_yet(**kwargs: Any) -> dict[str, Any]:
        raise aws.app.sfn.exceptions.ExecutionDoesNotExist(
            {"Error": {"Code": "ExecutionDoesNotExist", "Message": "not yet"}}, "DescribeExecution"
        )

    monkeypatch.setattr(aws.app.sfn, "describe_execution", not_yet)
    again = invoke(aws, event)["results"][0]
    assert again["status"] == "duplicate"
    assert len(aws.executions(first["execution"])) == 1


@pytest.mark.parametrize(
    ("raw_key", "key"),
    [
        ("videos/Sunday+jog+%282%29.mp4", "videos/Sunday jog (2).mp4"),  # the fixture's, as AWS sends it
        ("videos%2Fwalk%2Bback.mp4", "videos/walk+back.mp4"),  # moto also encodes "/"
    ],
)
def test_s3_notification_with_an_encoded_key_starts_the_decoded_key(aws: Aws, raw_key: str, key: str) -> None:
    etag = uuid.uuid4().hex  # a new version of the object: a new job
    event = s3_event(raw_key, etag)
    (result,) = invoke(aws, event)["results"]
    assert (result["status"], result["key"]) == ("started", key)
    (execution,) = aws.executions(job_id(key, etag))
    described = aws.sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"bucket": INPUT, "key": key, "etag": etag}


ODD_NAMES = ["Léa's run 100% +1 (2).mp4", "a%2Bb c+d.mp4", "日本 ü.mov"]


@pytest.mark.parametrize("name", ODD_NAMES)
@pytest.mark.parametrize("source", ["notification", "notification-slash-encoded", "eventbridge"])
def test_keys_with_spaces_plus_percent_and_non_ascii_start_their_own_job(
    aws: Aws, name: str, source: str
) -> None:
    key = f"videos/{unique(name)}"
    etag = uuid.uuid4().hex
    if source == "eventbridge":
        event = eventbridge_event(encoded_key(key), etag=etag)
    else:
        event = s3_event(encoded_key(key, slash=source.endswith("slash-encoded")), etag)
    (result,) = invoke(aws, event)["results"]
    assert (result["status"], result["key"]) == ("started", key)
    (execution,) = aws.executions(job_id(key, etag))
    described = aws.sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"])["key"] == key


def test_the_fixture_s3_notification_starts_its_job(aws: Aws) -> None:
    event = _event("s3_put_video.json")
    etag = event["Records"][0]["s3"]["object"]["eTag"]
    (result,) = invoke(aws, event)["results"]
    assert result["status"] in ("started", "duplicate")  # the previous test may have started it
    assert result["execution"] == job_id("videos/Sunday jog (2).mp4", etag)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (s3_event("images/walk.mp4", "e1"), "not under 'videos/'"),
        (s3_event("walk.mp4", "e1"), "not under 'videos/'"),
        (s3_event("videos/", "e1"), "not under 'videos/'"),
        (s3_event("videos/walk.mp4", "e1", bucket="someone-elses"), "is not the input bucket"),
        (s3_event("videos/walk.mp4", "e1", name="ObjectRemoved:Delete"), "event ObjectRemoved:Delete"),
        (eventbridge_event("images/walk.mp4"), "not under 'videos/'"),
        ({**eventbridge_event("videos/walk.mp4"), "detail-type": "Object Deleted"}, "event Object Deleted"),
    ],
    ids=["images", "no-prefix", "folder", "other-bucket", "removed", "eb-images", "eb-deleted"],
)
def test_objects_outside_the_videos_prefix_or_input_bucket_are_skipped(
    aws: Aws, event: dict[str, Any], reason: str
) -> None:
    before = aws.sfn.list_executions(stateMachineArn=aws.machine)["executions"]
    (result,) = invoke(aws, event)["results"]
    assert result["status"] == "skipped"
    assert reason in result["reason"]
    assert aws.sfn.list_executions(stateMachineArn=aws.machine)["executions"] == before


@pytest.mark.parametrize(
    "event",
    [{"hello": "world"}, {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}, {"Records": []}],
    ids=["unknown", "sqs", "no-records"],
)
def test_unsupported_event_is_a_value_error(aws: Aws, event: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unsupported event: keys"):
        invoke(aws, event)
