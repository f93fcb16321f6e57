"""The image Lambda (functions/image_infer) on moto S3, with the real model and real photos.

The handler module is loaded once per configuration (the model loads at import): ``handler``
with the default limits, ``limited`` with a 100 kB / 0.1 MP limit. Each test uses its own keys
and request ids, so the shared moto state needs no reset between tests.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import boto3
import pytest
from moto import mock_aws
from posepipe.errors import ModelError
from posepipe.result import validate_result

from tests.support.lambdas import (
    REQUEST_ID,
    captured_logs,
    encoded_key,
    lambda_context,
    load_handler_module,
    with_request,
)
from tests.support.localaws import FAKE_AWS_ENV
from tests.support.paths import EVENTS

REGION = "us-east-1"
INPUT = "posepipe-input"
OUTPUT = "posepipe-output"
MODELS = "posepipe-models"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
ENV = {
    **FAKE_AWS_ENV,
    "POWERTOOLS_SERVICE_NAME": "image_infer",
    "POSEPIPE_INPUT_BUCKET": INPUT,
    "POSEPIPE_OUTPUT_BUCKET": OUTPUT,
}
LIMITS = {"POSEPIPE_MAX_IMAGE_BYTES": "100000", "POSEPIPE_MAX_IMAGE_PIXELS": "100000"}

# An invocation that measures nothing (a skipped object, a 404) makes powertools warn, as designed.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@dataclass
class Aws:
    s3: Any

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=INPUT, Key=key, Body=data)

    def read(self, bucket: str, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def json(self, key: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.read(OUTPUT, key))
        return data

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    """Fake credentials and configuration in the environment, moto S3 with both buckets."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENV.items():
            patch.setenv(name, value)
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=INPUT)
            s3.create_bucket(Bucket=OUTPUT)
            s3.create_bucket(Bucket=MODELS)
            yield Aws(s3)


def _load(aws: Aws, env: dict[str, str]) -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        module = load_handler_module("image_infer")  # reads the configuration, loads the model
    yield module
    for job in module._jobs.values():
        job.close()


@pytest.fixture(scope="module")
def handler(aws: Aws, model_path: Path) -> Iterator[ModuleType]:
    yield from _load(aws, {})


@pytest.fixture(scope="module")
def limited(aws: Aws, model_path: Path) -> Iterator[ModuleType]:
    yield from _load(aws, LIMITS)


@pytest.fixture(scope="module")
def from_uri(aws: Aws, model_path: Path) -> Iterator[ModuleType]:
    """The handler serving a model.tar.gz from S3 (``POSEPIPE_MODEL_URI``), as the endpoint would."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(model_path, arcname="pose_landmarker_full.task")
    aws.s3.put_object(Bucket=MODELS, Key="endpoint/model.tar.gz", Body=archive.getvalue())
    yield from _load(aws, {"POSEPIPE_MODEL_URI": f"s3://{MODELS}/endpoint/model.tar.gz"})


@pytest.fixture(scope="module")
def photo(sample: Callable[[str], Path]) -> Callable[[str], bytes]:
    return lambda name: sample(name).read_bytes()


def _event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def s3_event(raw_key: str, bucket: str = INPUT) -> dict[str, Any]:
    event = _event("s3_put_image.json")
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    event["Records"][0]["s3"]["object"]["key"] = raw_key
    return event


def eventbridge_event(key: str) -> dict[str, Any]:
    event = _event("eventbridge_object_created.json")
    event["detail"]["object"]["key"] = key
    return event


def api_event(
    body: bytes | str | None,
    content_type: str | None = "image/png",
    query: dict[str, str] | None = None,
    *,
    method: str = "POST",
    path: str = "/images",
) -> dict[str, Any]:
    """``apigw_post_images.json`` with a body (bytes: base64 as API Gateway sends binary; str: as is)."""
    event = _event("apigw_post_images.json")
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = path
    return with_request(event, body, content_type, query)


def invoke(module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = module.handler(copy.deepcopy(event), lambda_context())
    return response


def api_call(module: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = invoke(module, event)
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    body: dict[str, Any] = json.loads(response["body"])
    return response["statusCode"], body


def assert_api_error(response: tuple[int, dict[str, Any]], status: int, code: str) -> None:
    assert response[0] == status, response
    assert set(response[1]) == {"error", "message"}
    assert response[1]["error"] == code
    assert response[1]["message"]


def persons(result: dict[str, Any]) -> int:
    return len(result["frames"][0]["persons"])


# --- S3 notifications and EventBridge -------------------------------------------------------


def test_s3_notification_writes_pose_and_annotated_image(
    handler: ModuleType, aws: Aws, photo: Callable[[str], bytes]
) -> None:
    key = "images/Lionel Messi (5).jpg"  # the fixture's key, URL-encoded as S3 sends it
    data = photo("messi5.jpg")
    aws.put(key, data)
    before = aws.s3.head_object(Bucket=INPUT, Key=key)

    response = invoke(handler, _event("s3_put_image.json"))

    assert response["results"][0]["status"] == "done"
    result = aws.json(f"{key}/pose.json")
    validate_result(result)
    assert persons(result) == 1
    assert result["source"]["uri"] == f"s3://{INPUT}/{key}"
    assert (result["source"]["width"], result["source"]["height"]) == (548, 342)
    annotated = aws.s3.get_object(Bucket=OUTPUT, Key=f"{key}/annotated.jpg")
    assert annotated["ContentType"] == "image/jpeg"
    assert annotated["Body"].read().startswith(JPEG_MAGIC)
    assert aws.keys(OUTPUT, f"{key}/") == [f"{key}/annotated.jpg", f"{key}/pose.json"]
    # the input is untouched
    assert aws.read(INPUT, key) == data
    assert aws.s3.head_object(Bucket=INPUT, Key=key)["LastModified"] == before["LastModified"]
    assert not aws.keys(OUTPUT, f"errors/{key}")


def test_eventbridge_object_created_writes_png_outputs(
    handler: ModuleType, aws: Aws, photo: Callable[[str], bytes]
) -> None:
    aws.put("images/basketball1.png", photo("basketball1.png"))

    response = invoke(handler, _event("eventbridge_object_created.json"))

    assert response["results"][0]["status"] == "done"
    result = aws.json("images/basketball1.png/pose.json")
    validate_result(result)
    assert persons(result) == 2
    annotated = aws.s3.get_object(Bucket=OUTPUT, Key="images/basketball1.png/annotated.png")
    assert annotated["ContentType"] == "image/png"
    assert annotated["Body"].read().startswith(PNG_MAGIC)


ODD_NAMES = ["Léa's jump 100% +1 (2).png", "a%2Bb c+d.png", "日本 ü.png"]


@pytest.mark.parametrize("name", ODD_NAMES)
@pytest.mark.parametrize("source", ["notification", "notification-slash-encoded", "eventbridge"])
def test_keys_with_spaces_plus_percent_and_non_ascii_give_their_own_outputs(
    handler: ModuleType, aws: Aws, photo: Callable[[str], bytes], name: str, source: str
) -> None:
    key = f"images/{uuid.uuid4().hex[:8]}-{name}"
    aws.put(key, photo("basketball1.png"))
    if source == "eventbridge":
        event = eventbridge_event(encoded_key(key))
    else:
        event = s3_event(encoded_key(key, slash=source.endswith("slash-encoded")))
    response = invoke(handler, event)
    assert response["results"][0] == {"key": key, "status": "done", "persons": 2, "pose": f"{key}/pose.json"}
    assert aws.json(f"{key}/pose.json")["source"]["uri"] == f"s3://{INPUT}/{key}"


@pytest.mark.parametrize("source", ["notification", "eventbridge"])
def test_an_event_whose_object_is_gone_never_runs_another_one(
    handler: ModuleType, aws: Aws, photo: Callable[[str], bytes], source: str
) -> None:
    """The key is decoded once, never tried in a second form: here "a%2Bb.png" was deleted and
    "a+b.png" (its name decoded twice) exists; the event is for the first only."""
    folder = f"images/{uuid.uuid4().hex[:8]}"
    gone, other = f"{folder}/a%2Bb.png", f"{folder}/a+b.png"
    aws.put(other, photo("basketball1.png"))
    event = eventbridge_event(encoded_key(gone)) if source == "eventbridge" else s3_event(encoded_key(gone))
    response = invoke(handler, event)
    assert response["results"][0] == {"key": gone, "status": "skipped", "reason": "object no longer exists"}
    assert not aws.keys(OUTPUT, f"{folder}/")


def test_s3_corrupt_image_writes_error_record_and_no_outputs(handler: ModuleType, aws: Aws) -> None:
    key = "images/broken photo.jpg"
    aws.put(key, b"\xff\xd8\xff\xe0 this JPEG stops here")

    response = invoke(handler, s3_event("images/broken+photo.jpg"))  # does not raise: no retry

    assert response["results"][0]["status"] == "rejected"
    record = aws.json(f"errors/{key}.json")
    assert record["input"] == f"s3://{INPUT}/{key}"
    assert record["stage"] == "image_infer"
    assert record["code"] == "corrupt"
    assert "corrupt or truncated" in record["reason"]
    assert record["time"].endswith("+00:00")
    assert not aws.keys(OUTPUT, f"{key}/")
    assert aws.keys(INPUT, key) == [key]


def test_s3_object_over_the_byte_limit_is_rejected(
    limited: ModuleType, aws: Aws, photo: Callable[[str], bytes]
) -> None:
    aws.put("images/large.png", photo("basketball1.png"))  # 132,826 bytes > 100,000
    response = invoke(limited, s3_event("images/large.png"))
    assert response["results"][0]["code"] == "too_large"
    assert aws.json("errors/images/large.png.json")["code"] == "too_large"
    assert not aws.keys(OUTPUT, "images/large.png/")


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        (INPUT, "videos/clip.mp4"),
        (INPUT, "uploads/photo.jpg"),
        (INPUT, "images/"),
        ("elsewhere", "images/a.jpg"),
    ],
)
def test_objects_outside_the_images_prefix_or_input_bucket_are_skipped(
    handler: ModuleType, aws: Aws, photo: Callable[[str], bytes], bucket: str, key: str
) -> None:
    if bucket == INPUT:
        aws.put(key, photo("messi5.jpg"))
    before = aws.keys(OUTPUT)
    response = invoke(handler, s3_event(key, bucket=bucket))
    assert response["results"][0]["status"] == "skipped"
    assert aws.keys(OUTPUT) == before


def test_metrics_and_logs_are_emitted(
    handler: ModuleType, aws: Aws, photo: Callable[[str], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    aws.put("images/metrics.jpg", photo("messi5.jpg"))
    with captured_logs(handler) as logs:
        invoke(handler, s3_event("images/metrics.jpg"))
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [line for line in printed if "_aws" in line and "InferenceMs" in line]
    assert len(emf) == 1
    directive = emf[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "posepipe"
    assert {m["Name"] for m in directive["Metrics"]} == {"InferenceMs", "Persons"}
    assert emf[0]["service"] == "image_infer"
    assert emf[0]["Persons"] in (1.0, [1.0])
    processed = [line for line in logs if line.get("message") == "image processed"]
    assert processed[0]["s3_key"] == "images/metrics.jpg"
    assert processed[0]["function_request_id"] == REQUEST_ID


def test_api_logs_carry_the_request_id_as_correlation_id(
    handler: ModuleType, photo: Callable[[str], bytes]
) -> None:
    event = api_event(photo("messi5.jpg"), "image/jpeg")
    with captured_logs(handler) as logs:
        assert api_call(handler, event)[0] == 200
    processed = [line for line in logs if line.get("message") == "image processed"]
    assert processed[0]["correlation_id"] == event["requestContext"]["requestId"]


# --- the model from S3 (POSEPIPE_MODEL_URI) --------------------------------------------------


def test_model_uri_is_fetched_at_load_and_serves_the_api(
    from_uri: ModuleType, model_path: Path, photo: Callable[[str], bytes]
) -> None:
    fetched = from_uri.model_path
    assert fetched != model_path
    assert fetched.parent.name.startswith("posepipe-model-")
    assert fetched.read_bytes() == model_path.read_bytes()
    status, body = api_call(from_uri, api_event(photo("messi5.jpg"), "image/jpeg"))
    assert status == 200
    validate_result(body)
    assert persons(body) == 1
    assert body["model"]["path"] == str(fetched)
    assert body["model"]["name"] == "pose_landmarker_full"


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("posepipe-models/endpoint/model.tar.gz", "not an s3://bucket/key URI"),
        (f"s3://{MODELS}/endpoint/gone.tar.gz", f"no such object (or no bucket {MODELS})"),
    ],
)
def test_a_bad_model_uri_fails_the_cold_start_naming_it(aws: Aws, uri: str, reason: str) -> None:
    with pytest.raises(ModelError) as caught:
        next(_load(aws, {"POSEPIPE_MODEL_URI": uri}))
    assert str(caught.value) == f"POSEPIPE_MODEL_URI: {uri}: {reason}"


# --- API Gateway ----------------------------------------------------------------------------


def test_api_post_image_returns_the_result(
    handler: ModuleType, aws: Aws, photo: Callable[[str], bytes]
) -> None:
    event = api_event(photo("basketball1.png"))
    status, body = api_call(handler, event)
    assert status == 200
    validate_result(body)
    assert persons(body) == 2
    assert body["source"]["uri"] == f"api://{event['requestContext']['requestId']}"
    assert not aws.keys(OUTPUT, f"images/api/{event['requestContext']['requestId']}/")


@pytest.mark.parametrize("flag", ["1", "true"])
def test_api_annotate_stores_the_image_and_answers_a_presigned_url(
    handler: ModuleType, aws: Aws, photo: Callable[[str], bytes], flag: str
) -> None:
    event = api_event(photo("basketball1.png"), query={"annotate": flag})
    request_id = event["requestContext"]["requestId"]
    status, body = api_call(handler, event)
    assert status == 200
    url = body.pop("annotated_url")
    validate_result(body)
    assert persons(body) == 2

    parsed = urlparse(url)  # https://<bucket>.s3.amazonaws.com/<key>?X-Amz-...
    bucket, key = parsed.netloc.split(".s3.", 1)[0], unquote(parsed.path[1:])
    assert (bucket, key) == (OUTPUT, f"images/api/{request_id}/annotated.png")
    query = parse_qs(parsed.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["3600"]
    assert aws.read(bucket, key).startswith(PNG_MAGIC)
    assert aws.json(f"images/api/{request_id}/pose.json") == body


def test_api_answer_reports_the_server_time_for_the_image(
    handler: ModuleType, photo: Callable[[str], bytes]
) -> None:
    response = invoke(handler, api_event(photo("messi5.jpg"), "image/jpeg"))
    assert response["statusCode"] == 200
    (timing,) = response["multiValueHeaders"]["Server-Timing"]
    name, duration = timing.split(";")
    assert name == "inference"
    assert duration.startswith("dur=")
    assert 1.0 < float(duration.removeprefix("dur=")) < 30_000.0  # milliseconds: a real model ran
    validate_result(json.loads(response["body"]))  # the body is the result, as before


def test_api_max_poses_is_passed_to_the_model(handler: ModuleType, photo: Callable[[str], bytes]) -> None:
    status, body = api_call(handler, api_event(photo("basketball1.png"), query={"max_poses": "1"}))
    assert status == 200
    assert persons(body) == 1
    assert body["model"]["max_poses"] == 1


@pytest.mark.parametrize(
    "query", [{"max_poses": "0"}, {"max_poses": "11"}, {"max_poses": "two"}, {"annotate": "maybe"}]
)
def test_api_invalid_parameters_are_400(
    handler: ModuleType, photo: Callable[[str], bytes], query: dict[str, str]
) -> None:
    response = api_call(handler, api_event(photo("messi5.jpg"), "image/jpeg", query))
    assert_api_error(response, 400, "invalid_parameter")


def test_api_model_parameter_runs_movenet_on_everyone(
    handler: ModuleType, photo: Callable[[str], bytes], catalogue_models: dict[str, Path]
) -> None:
    status, body = api_call(
        handler, api_event(photo("basketball1.png"), query={"model": "movenet-lightning"})
    )
    assert status == 200
    validate_result(body)
    assert (body["model"]["name"], body["model"]["engine"], body["model"]["skeleton"]) == (
        "movenet-lightning",
        "topdown",
        "coco-17",
    )
    assert len(body["landmark_names"]) == 17
    assert persons(body) == 2


def test_api_detector_parameter_finds_both_players_with_blazepose(
    handler: ModuleType, photo: Callable[[str], bytes], catalogue_models: dict[str, Path]
) -> None:
    status, body = api_call(handler, api_event(photo("basketball2.png"), query={"detector": "centernet"}))
    assert status == 200
    assert (body["model"]["name"], body["model"]["detector"]["name"]) == ("pose_landmarker_full", "centernet")
    assert persons(body) == 2  # BlazePose's own detector finds one of them


def test_api_multipose_finds_both_players_by_itself(
    handler: ModuleType, photo: Callable[[str], bytes], catalogue_models: dict[str, Path]
) -> None:
    query = {"model": "movenet-multipose"}
    status, body = api_call(handler, api_event(photo("basketball2.png"), query=query))
    assert status == 200
    validate_result(body)
    model = body["model"]
    assert (model["name"], model["engine"], model["skeleton"]) == ("movenet-multipose", "bottomup", "coco-17")
    assert model["detector"]["name"] == "movenet-multipose"
    assert persons(body) == 2


@pytest.mark.parametrize(
    ("query", "names"),
    [
        (
            {"model": "yolo"},
            "blazepose-lite, blazepose-full, blazepose-heavy, movenet-lightning, movenet-thunder, "
            "movenet-multipose",
        ),
        ({"model": "centernet"}, "movenet-lightning"),
        ({"detector": "yolo"}, "blazepose, centernet, nanodet"),
        ({"model": "movenet-lightning", "detector": "blazepose"}, "general detector"),
        ({"model": "movenet-multipose", "detector": "centernet"}, "finds persons itself"),
        ({"detector": "movenet-multipose"}, "is the model movenet-multipose's own"),
    ],
)
def test_api_unknown_or_incompatible_models_are_400_naming_the_known_ones(
    handler: ModuleType, photo: Callable[[str], bytes], query: dict[str, str], names: str
) -> None:
    response = api_call(handler, api_event(photo("messi5.jpg"), "image/jpeg", query))
    assert_api_error(response, 400, "invalid_parameter")
    assert names in response[1]["message"]


def test_api_a_model_this_deployment_has_not_built_is_400(
    handler: ModuleType, photo: Callable[[str], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a container whose cache holds BlazePose Full only (a custom image, or a failed build)."""
    monkeypatch.setattr(handler, "_built", lambda name: name == "blazepose-full")
    response = api_call(handler, api_event(photo("messi5.jpg"), "image/jpeg", {"model": "movenet-thunder"}))
    assert_api_error(response, 400, "model_unavailable")
    assert response[1]["message"] == (
        "this deployment has not built centernet, movenet-lightning, movenet-thunder (it has blazepose-full)"
    )


@pytest.mark.parametrize("body", [b"", "", None])
def test_api_empty_body_is_400(handler: ModuleType, body: bytes | str | None) -> None:
    assert_api_error(api_call(handler, api_event(body, "image/jpeg")), 400, "empty_body")


def test_api_body_marked_base64_but_not_base64_is_400(handler: ModuleType) -> None:
    event = api_event("not base64 at all!", "image/png")
    event["isBase64Encoded"] = True
    assert_api_error(api_call(handler, event), 400, "bad_body")


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", None])
def test_api_non_image_content_type_is_415(
    handler: ModuleType, photo: Callable[[str], bytes], content_type: str | None
) -> None:
    response = api_call(handler, api_event(photo("messi5.jpg"), content_type))
    assert_api_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("body", [b"%PDF-1.7 not a picture at all", "plain text, not base64"])
def test_api_undecodable_image_is_422(handler: ModuleType, body: bytes | str) -> None:
    assert_api_error(api_call(handler, api_event(body, "image/jpeg")), 422, "bad_image")


def test_api_octet_stream_with_charset_is_accepted(
    handler: ModuleType, photo: Callable[[str], bytes]
) -> None:
    event = api_event(photo("messi5.jpg"), "application/octet-stream; charset=binary")
    status, body = api_call(handler, event)
    assert (status, persons(body)) == (200, 1)


def test_api_body_over_the_byte_limit_is_413(limited: ModuleType, photo: Callable[[str], bytes]) -> None:
    response = api_call(limited, api_event(photo("basketball1.png")))  # 132,826 bytes > 100,000
    assert_api_error(response, 413, "too_large")


def test_api_image_over_the_pixel_limit_is_413(limited: ModuleType, photo: Callable[[str], bytes]) -> None:
    response = api_call(limited, api_event(photo("messi5.jpg"), "image/jpeg"))  # 548x342 > 0.1 MP
    assert_api_error(response, 413, "too_many_pixels")
    assert "548x342" in response[1]["message"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/nothing"), ("POST", "/videos"), ("GET", "/images")])
def test_api_unknown_routes_are_404_json(handler: ModuleType, method: str, path: str) -> None:
    assert_api_error(api_call(handler, api_event(None, None, method=method, path=path)), 404, "not_found")


def test_api_unexpected_failure_is_500_json(
    handler: ModuleType, photo: Callable[[str], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_infer(data: bytes, uri: str, max_poses: int) -> None:
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(handler, "infer", failing_infer)
    response = api_call(handler, api_event(photo("messi5.jpg"), "image/jpeg"))
    assert_api_error(response, 500, "internal_error")
    assert "engine" not in response[1]["message"]  # internals stay in the logs


def test_unsupported_events_raise(handler: ModuleType) -> None:
    with pytest.raises(ValueError, match="unsupported event"):
        invoke(handler, {"hello": "world"})
