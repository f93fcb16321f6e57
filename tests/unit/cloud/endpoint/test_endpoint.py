"""The SageMaker endpoint server (sagemaker_endpoint/): the real model, a real S3 API (moto's server).

The invocation contract is docs/CLOUD.md's "Endpoint invocation". Results are checked against
``posepipe.video.stages.infer_chunk`` run directly on the same file and frames.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from posepipe.cloud.deployment import DEFAULT_DETECTOR
from posepipe.cloud.endpoint.app import create_app, endpoint_state
from posepipe.cloud.endpoint.engine import resolve_endpoint_model
from posepipe.cloud.endpoint.serve import start_background_server
from posepipe.cloud.endpoint.video_cache import VideoCache
from posepipe.cloud.storage import get_json
from posepipe.engines.base import InferenceOptions
from posepipe.errors import ModelError
from posepipe.media.probe import VideoInfo, probe
from posepipe.media.sources import MediaSource
from posepipe.result import Source, result_header, validate_result
from posepipe.video.stages import Chunk, ChunkResult, infer_chunk

from tests.support.clips import make_clip
from tests.support.endpoint import GARBAGE_URI, INPUT_BUCKET, OUTPUT_BUCKET, VIDEO_URI, S3Stack, free_port
from tests.support.paths import REPO

# Frames 540-600 of vtest.avi hold a few persons each (four are asked for); the warm-up starts
# 20 frames earlier.
CHUNK = {"index": 3, "start": 540, "stop": 600, "warmup_start": 520}
OPTIONS = {"max_poses": 4, "min_detection_confidence": 0.5, "min_presence_confidence": 0.5,
           "min_tracking_confidence": 0.5}  # fmt: skip
ERROR_KEYS = {"error", "message"}


def invocation(output_name: str, **changes: Any) -> dict[str, Any]:
    """A valid invocation body (vtest.avi, frames 540-600), with ``changes`` applied."""
    body = {
        "video": VIDEO_URI,
        "chunk": dict(CHUNK),
        "output": f"s3://{OUTPUT_BUCKET}/work/test-job/chunks/{output_name}.json",
        "options": dict(OPTIONS),
    }
    return {**body, **changes}


@pytest.fixture(scope="module")
def app(s3: S3Stack) -> Flask:
    """The endpoint app with the real MediaPipe engine, model loaded."""
    application = create_app()
    assert endpoint_state(application).wait_until_loaded(60), endpoint_state(application).failure
    return application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def post(client: FlaskClient, body: Any, content_type: str = "application/json") -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/invocations", data=data, content_type=content_type)
    assert response.mimetype == "application/json"
    return response.status_code, response.get_json()


# --- /ping -----------------------------------------------------------------------------------


def test_ping_answers_200_once_the_model_is_loaded(client: FlaskClient) -> None:
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"
    assert response.get_json()["model"] == "pose_landmarker_full"
    assert response.get_json()["engine"] == "mediapipe"  # "auto" without a CUDA GPU


def test_an_unknown_posepipe_engine_fails_the_start_up_saying_why(
    s3: S3Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSEPIPE_ENGINE", "bogus")
    response = create_app(load_in_background=False).test_client().get("/ping")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "failed",
        "message": "EngineError: POSEPIPE_ENGINE: 'bogus' is not one of mediapipe, torch, auto",
    }


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch on one CPU thread (see tests/unit/engines/test_engine_choice.py): robust on a busy shared CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_torch_thread")
def test_posepipe_engine_torch_serves_the_chunk_with_the_torch_engine(
    client: FlaskClient, s3: S3Stack, monkeypatch: pytest.MonkeyPatch, sample: Callable[[str], Path]
) -> None:
    """Same request, same contract, the same persons: only the stored result's ``model`` says
    which engine ran (the top-down engine, the endpoint's default detector, in PyTorch)."""
    monkeypatch.setenv("POSEPIPE_ENGINE", "torch")
    torch_app = create_app(load_in_background=False)
    ping = torch_app.test_client().get("/ping")
    assert ping.status_code == 200, ping.get_json()
    described = ping.get_json()
    assert {k: described[k] for k in ("status", "engine", "detector", "model", "device", "dtype")} == {
        "status": "ready", "engine": "torch", "detector": "centernet", "model": "pose_landmarker_full",
        "device": "cpu", "dtype": "float32",
    }  # fmt: skip
    assert described["runtime"] == {"detector": "torch", "finder": "torch", "second_opinion": "torch"}

    chunk = {"index": 3, "start": 540, "stop": 560, "warmup_start": 530}
    answers = {}
    for engine, app_client in (("torch", torch_app.test_client()), ("mediapipe", client)):
        status, answer = post(app_client, invocation(f"engine-{engine}", chunk=chunk))
        assert status == 200, answer
        assert set(answer) == {"output", "chunk", "frames", "person_frames", "timings"}
        answers[engine] = get_json(s3.client, OUTPUT_BUCKET, answer["output"].split("/", 3)[3])
    stored, reference = answers["torch"], answers["mediapipe"]
    assert (stored["model"]["engine"], reference["model"]["engine"]) == ("topdown", "topdown")
    assert (stored["model"]["device"], stored["model"]["runtime"]["detector"]) == ("cpu", "torch")
    assert reference["model"]["runtime"] == {
        "detector": "onnxruntime", "finder": "litert", "second_opinion": "onnxruntime"
    }  # fmt: skip
    assert len(stored["frames"]) == len(reference["frames"]) == 20
    assert [f["index"] for f in stored["frames"]] == [f["index"] for f in reference["frames"]]
    # vtest.avi's frames 540-559 hold several people: the same ones, at the same places
    counts = [len(f["persons"]) for f in stored["frames"]]
    assert sum(counts) >= 60
    assert counts == [len(f["persons"]) for f in reference["frames"]]
    moved = [
        np.abs(np.array(p["landmarks"])[:, :2] - np.array(q["landmarks"])[:, :2])
        for f, g in zip(stored["frames"], reference["frames"], strict=True)
        for p, q in zip(
            sorted(f["persons"], key=lambda p: p["bbox"]),
            sorted(g["persons"], key=lambda p: p["bbox"]),
            strict=True,
        )
    ]
    assert float(np.median(np.concatenate(moved))) <= 1.0
    info = probe(sample("vtest.avi"))
    source = Source(uri=VIDEO_URI, width=info.width, height=info.height, fps=info.fps,
                    frame_count=info.frame_count, duration_s=info.duration_s)  # fmt: skip
    numbered = [
        {**frame, "persons": [{**person, "id": i} for i, person in enumerate(frame["persons"])]}
        for frame in stored["frames"]
    ]
    validate_result({**result_header(source, stored["model"]), "frames": numbered})


class GatedEngine:
    """An engine whose loading waits for a test to open the gate (or fails)."""

    detector = "blazepose"

    def __init__(self, gate: threading.Event, failure: str | None = None) -> None:
        self.gate = gate
        self.failure = failure

    def load(self) -> None:
        assert self.gate.wait(10)
        if self.failure:
            raise RuntimeError(self.failure)

    def describe(self) -> dict[str, Any]:
        return {"engine": "gated", "model": "none"}

    def infer(
        self,
        video: MediaSource,
        chunk: Chunk,
        options: InferenceOptions,
        info: VideoInfo,
        agree_with: Any = None,
    ) -> ChunkResult:
        raise RuntimeError("engine exploded")


def test_ping_is_503_until_the_model_is_loaded(s3: S3Stack) -> None:
    gate = threading.Event()
    loading = create_app(lambda: GatedEngine(gate), load_wait_s=0.1).test_client()
    # Answered while the model is still loading (its loader waits on the gate): "loading", not
    # an answer that waited for the model (that would say "failed" after the loader's 10 s).
    response = loading.get("/ping")
    assert (response.status_code, response.get_json()["status"]) == (503, "loading")
    status, answer = post(loading, invocation("never"))
    assert (status, answer["error"]) == (503, "not_ready")
    gate.set()
    assert endpoint_state(loading.application).wait_until_loaded(10)
    assert loading.get("/ping").status_code == 200


def test_an_invocation_that_comes_while_the_model_loads_waits_for_it(s3: S3Stack) -> None:
    gate = threading.Event()
    loading = create_app(lambda: GatedEngine(gate), load_wait_s=10).test_client()
    threading.Timer(0.3, gate.set).start()
    status, answer = post(
        loading, invocation("early", chunk={"index": 0, "start": 0, "stop": 2, "warmup_start": 0})
    )
    assert (status, answer["message"]) == (500, "RuntimeError: engine exploded")  # it reached the engine


def test_ping_stays_503_when_the_model_fails_to_load(s3: S3Stack) -> None:
    gate = threading.Event()
    gate.set()
    failing = create_app(lambda: GatedEngine(gate, failure="no such model"), load_in_background=False)
    response = failing.test_client().get("/ping")
    assert response.status_code == 503
    assert response.get_json() == {"status": "failed", "message": "RuntimeError: no such model"}


# --- /invocations: a valid chunk -------------------------------------------------------------


def assert_same_frames(got: ChunkResult, expected: ChunkResult) -> None:
    assert [f.index for f in got.frames] == [f.index for f in expected.frames]
    assert [len(f.persons) for f in got.frames] == [len(f.persons) for f in expected.frames]
    for frame, reference in zip(got.frames, expected.frames, strict=True):
        assert frame.t == pytest.approx(reference.t, abs=1e-6)
        for person, other in zip(frame.persons, reference.persons, strict=True):
            assert np.abs(person.xy - other.xy).max() <= 0.01 + 1e-4
            assert np.abs(person.world_landmarks - other.world_landmarks).max() <= 1e-4 + 1e-6


@pytest.mark.slow
def test_invocation_writes_the_chunk_result_infer_chunk_gives(
    client: FlaskClient, s3: S3Stack, sample: Callable[[str], Path], model_path: Path
) -> None:
    body = invocation("00003")
    status, answer = post(client, body)
    assert status == 200, answer
    assert set(answer) == {"output", "chunk", "frames", "person_frames", "timings"}
    assert (answer["output"], answer["chunk"], answer["frames"]) == (body["output"], 3, 60)
    assert {"inference_s", "decode_s", "download_s", "probe_s", "write_s", "request_s"} <= set(
        answer["timings"]
    )

    stored = get_json(s3.client, OUTPUT_BUCKET, body["output"].split("/", 3)[3])
    result = ChunkResult.from_dict(stored)
    assert result.chunk == Chunk.from_dict(CHUNK)
    assert result.person_frames == answer["person_frames"] > 30
    assert stored["model"]["name"] == "pose_landmarker_full"
    # A chunk result's frames are posepipe.pose/2 frames whose persons have no ids yet (aggregate
    # gives those): validate them as a whole result would hold them, numbered in order.
    info = probe(sample("vtest.avi"))
    source = Source(uri=VIDEO_URI, width=info.width, height=info.height, fps=info.fps,
                    frame_count=info.frame_count, duration_s=info.duration_s)  # fmt: skip
    assert all(person["id"] == -1 for frame in stored["frames"] for person in frame["persons"])
    numbered = [
        {**frame, "persons": [{**person, "id": i} for i, person in enumerate(frame["persons"])]}
        for frame in stored["frames"]
    ]
    validate_result({**result_header(source, stored["model"]), "frames": numbered})

    direct = infer_chunk(
        sample("vtest.avi"),
        Chunk.from_dict(CHUNK),
        # The endpoint runs its POSEPIPE_DETECTOR (the deployment's default, CenterNet) on the CPU.
        InferenceOptions.from_dict({**OPTIONS, "model_path": str(model_path), "detector": DEFAULT_DETECTOR}),
    )
    assert_same_frames(result, direct)


def test_consecutive_chunks_of_one_video_reuse_its_local_copy(client: FlaskClient) -> None:
    chunk = {"index": 0, "start": 0, "stop": 5, "warmup_start": 0}
    post(client, invocation("cache-a", chunk=chunk))
    status, answer = post(client, invocation("cache-b", chunk=chunk))
    assert status == 200, answer
    assert answer["timings"]["video_cached"] == 1.0
    assert answer["timings"]["download_s"] == 0.0


@pytest.mark.slow
def test_a_request_naming_the_probe_reads_only_its_chunk_s_range_by_ranged_gets(
    client: FlaskClient, s3: S3Stack, sample: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """video_split's requests pin the video and name its probe: the endpoint then reads the
    chunk's range of the object (the container's index, the keyframe before the warm-up, on to the
    chunk's end) instead of downloading it, and gives the very frames the whole copy gives."""
    from posepipe.cloud import s3_reader

    # Small blocks, so that an 8 MB video shows what the endpoint reads (8 MiB blocks, 6 ahead).
    monkeypatch.setattr(s3_reader, "STREAM_BLOCK_BYTES", 256 * 1024)
    monkeypatch.setattr(s3_reader, "STREAM_READ_AHEAD", 2)
    info = probe(sample("vtest.avi"))
    s3.client.put_object(
        Bucket=OUTPUT_BUCKET,
        Key="work/test-job/video.json",
        Body=json.dumps({**info.to_dict(), "uri": VIDEO_URI}),
    )
    etag = s3.client.head_object(Bucket=INPUT_BUCKET, Key="videos/vtest.avi")["ETag"]
    chunk = {"index": 7, "start": 540, "stop": 560, "warmup_start": 530}
    ranged = invocation("ranged", chunk=chunk, video_etag=etag.strip('"'),
                        video_info=f"s3://{OUTPUT_BUCKET}/work/test-job/video.json")  # fmt: skip
    status, answer = post(client, ranged)
    assert status == 200, answer
    size = sample("vtest.avi").stat().st_size
    read = answer["timings"]["source_bytes_read"]
    assert 0 < read < size / 3, (read, size)
    assert answer["timings"]["video_cached"] == 0.0
    assert "download_s" not in answer["timings"]
    status, whole = post(client, invocation("whole", chunk=chunk))
    assert status == 200, whole
    by_range = ChunkResult.from_dict(get_json(s3.client, OUTPUT_BUCKET, "work/test-job/chunks/ranged.json"))
    by_copy = ChunkResult.from_dict(get_json(s3.client, OUTPUT_BUCKET, "work/test-job/chunks/whole.json"))
    assert_same_frames(by_range, by_copy)


def test_options_may_be_left_out(client: FlaskClient) -> None:
    body = invocation("defaults", chunk={"index": 0, "start": 100, "stop": 103, "warmup_start": 100})
    del body["options"]
    status, answer = post(client, body)
    assert (status, answer["frames"]) == (200, 3)


# --- /invocations: refused requests ----------------------------------------------------------


def _without(key: str) -> dict[str, Any]:
    body = invocation("bad")
    del body[key]
    return body


def _chunk(**changes: Any) -> dict[str, Any]:
    return invocation("bad", chunk={**CHUNK, **changes})


def _options(**changes: Any) -> dict[str, Any]:
    return invocation("bad", options={**OPTIONS, **changes})


MALFORMED: list[tuple[str, Any, str, str]] = [
    ("not JSON", b'{"video": ', "application/json", "invalid_json"),
    ("not UTF-8", b"\xff\xfe\xfa", "application/json", "invalid_json"),
    ("a JSON array", [1, 2], "application/json", "invalid_json"),
    ("wrong content type", invocation("bad"), "text/csv", "unsupported_content_type"),
    ("no content type", invocation("bad"), "", "unsupported_content_type"),
    ("no video", _without("video"), "application/json", "missing_field"),
    ("no chunk", _without("chunk"), "application/json", "missing_field"),
    ("no output", _without("output"), "application/json", "missing_field"),
    ("unknown field", {**invocation("bad"), "priority": 1}, "application/json", "invalid_field"),
    ("video not a string", invocation("bad", video=7), "application/json", "invalid_field"),
    (
        "video over https",
        invocation("bad", video="https://example.com/a.mp4"),
        "application/json",
        "invalid_uri",
    ),
    (
        "video without key",
        invocation("bad", video=f"s3://{INPUT_BUCKET}/"),
        "application/json",
        "invalid_uri",
    ),
    (
        "output a folder",
        invocation("bad", output=f"s3://{OUTPUT_BUCKET}/work/"),
        "application/json",
        "invalid_uri",
    ),
    ("output over the input", invocation("bad", output=VIDEO_URI), "application/json", "invalid_uri"),
    ("chunk not an object", invocation("bad", chunk=[0, 0, 10, 0]), "application/json", "invalid_chunk"),
    (
        "chunk missing stop",
        invocation("bad", chunk={"index": 0, "start": 0, "warmup_start": 0}),
        "application/json",
        "invalid_chunk",
    ),
    ("empty chunk", _chunk(stop=540), "application/json", "invalid_chunk"),
    ("warm-up after start", _chunk(warmup_start=541), "application/json", "invalid_chunk"),
    ("negative index", _chunk(index=-1), "application/json", "invalid_chunk"),
    ("fractional frame", _chunk(stop=599.5), "application/json", "invalid_chunk"),
    ("frame as a string", _chunk(start="540"), "application/json", "invalid_chunk"),
    ("boolean frame", _chunk(warmup_start=True), "application/json", "invalid_chunk"),
    ("unknown chunk field", _chunk(job="x"), "application/json", "invalid_chunk"),
    ("options not an object", invocation("bad", options="fast"), "application/json", "invalid_options"),
    ("model chosen by the caller", _options(model_path="/etc/passwd"), "application/json", "invalid_options"),
    ("engine chosen by the caller", _options(engine="torch"), "application/json", "invalid_options"),
    ("misspelt option", _options(max_pose=2), "application/json", "invalid_options"),
    ("no poses", _options(max_poses=0), "application/json", "invalid_options"),
    ("confidence above 1", _options(min_detection_confidence=1.5), "application/json", "invalid_options"),
    ("confidence as text", _options(min_tracking_confidence="high"), "application/json", "invalid_options"),
    ("unknown detector", _options(detector="yolo"), "application/json", "invalid_options"),
    ("detector every 0th frame", _options(detect_every=0), "application/json", "invalid_options"),
]


@pytest.mark.parametrize(
    ("body", "content_type", "code"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_malformed_requests_get_400_naming_the_problem(
    client: FlaskClient, s3: S3Stack, body: Any, content_type: str, code: str
) -> None:
    status, answer = post(client, body, content_type)
    assert status == 400
    assert set(answer) == ERROR_KEYS
    assert answer["error"] == code
    assert isinstance(answer["message"], str)
    assert answer["message"]
    assert not s3.exists(invocation("bad")["output"])


def test_a_chunk_past_the_last_frame_is_400(client: FlaskClient) -> None:
    status, answer = post(
        client, invocation("bad", chunk={"index": 9, "start": 790, "stop": 800, "warmup_start": 780})
    )
    assert status == 400
    assert answer == {
        "error": "chunk_out_of_range",
        "message": f"chunk 9 ends at frame 800 but {VIDEO_URI} has 795 frames",
    }


def test_a_body_over_6_mib_is_413(client: FlaskClient) -> None:
    status, answer = post(client, b" " * (6 * 1024 * 1024 + 1))
    assert status == 413
    assert answer["error"] == "payload_too_large"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/invocations", 405, "method_not_allowed"), ("POST", "/predict", 404, "unknown_route")],
)
def test_other_routes_and_methods_get_json_errors(
    client: FlaskClient, method: str, path: str, status: int, code: str
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.get_json()["error"] == code


# --- /invocations: unusable inputs and failures ----------------------------------------------


def test_a_file_that_is_not_a_video_is_422_saying_why(client: FlaskClient, s3: S3Stack) -> None:
    body = invocation("garbage", video=GARBAGE_URI)
    status, answer = post(client, body)
    assert status == 422
    assert answer["error"] == "bad_input"
    assert answer["message"].startswith(f"{GARBAGE_URI}: not a video file")
    assert not s3.exists(body["output"])


@pytest.mark.parametrize(
    "uri", [f"s3://{INPUT_BUCKET}/videos/missing.mp4", "s3://posepipe-no-such-bucket/videos/vtest.avi"]
)
def test_a_missing_object_is_422_not_found(client: FlaskClient, uri: str) -> None:
    status, answer = post(client, invocation("missing", video=uri))
    assert status == 422
    assert answer == {"error": "not_found", "message": f"{uri}: no such object in S3"}


@pytest.mark.parametrize("attributes", ["posepipe-refusals=in-body", "trace=on; posepipe-refusals = in-body"])
def test_a_caller_asking_for_refusals_in_the_body_gets_a_4xx_as_a_200_saying_refused(
    client: FlaskClient, s3: S3Stack, attributes: str
) -> None:
    """What the state machine asks (InvokeEndpoint's CustomAttributes): SageMaker would turn a 422
    into ModelError, which Step Functions would retry as if it could pass."""
    body = invocation("garbage", video=GARBAGE_URI)
    response = client.post(
        "/invocations", json=body, headers={"X-Amzn-SageMaker-Custom-Attributes": attributes}
    )
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["chunk"] == CHUNK["index"]
    assert (answer["refused"]["status"], answer["refused"]["code"]) == (422, "bad_input")
    assert answer["refused"]["reason"].startswith(f"{GARBAGE_URI}: not a video file")
    assert not s3.exists(body["output"])
    # Other attributes, or none: the status as it is.
    other = client.post("/invocations", json=body, headers={"X-Amzn-SageMaker-Custom-Attributes": "x=y"})
    assert (other.status_code, other.get_json()["error"]) == (422, "bad_input")


def test_an_engine_failure_is_500_with_json(s3: S3Stack) -> None:
    gate = threading.Event()
    gate.set()
    broken = create_app(lambda: GatedEngine(gate), load_in_background=False).test_client()
    status, answer = post(broken, invocation("broken"))
    assert status == 500
    assert answer == {"error": "internal", "message": "RuntimeError: engine exploded"}


def test_a_failed_write_is_500(client: FlaskClient) -> None:
    chunk = {"index": 0, "start": 0, "stop": 2, "warmup_start": 0}
    status, answer = post(client, invocation("x", chunk=chunk, output="s3://posepipe-no-such-bucket/x.json"))
    assert status == 500
    assert answer["error"] == "internal"
    assert "NoSuchBucket" in answer["message"]


# --- the video cache -------------------------------------------------------------------------


def test_the_video_cache_keeps_the_most_recent_videos_and_deletes_the_others(
    s3: S3Stack, tmp_path: Path
) -> None:
    for name in ("a", "b", "c"):
        s3.client.upload_file(
            str(make_clip(tmp_path / f"{name}.mp4", frames=3)), INPUT_BUCKET, f"cache/{name}.mp4"
        )
    cache = VideoCache(tmp_path / "cache", capacity=2)

    with cache.open(s3.client, INPUT_BUCKET, "cache/a.mp4") as a:
        assert (a.cache_hit, a.info.frame_count) == (False, 3)
        with (
            cache.open(s3.client, INPUT_BUCKET, "cache/b.mp4"),
            cache.open(s3.client, INPUT_BUCKET, "cache/c.mp4"),
        ):
            assert a.path.is_file()  # evicted, but still being read
    assert not a.path.exists()  # deleted once read
    assert [uri for uri, _ in cache.cached()] == [
        f"s3://{INPUT_BUCKET}/cache/b.mp4",
        f"s3://{INPUT_BUCKET}/cache/c.mp4",
    ]
    assert len(list((tmp_path / "cache").iterdir())) == 2

    with cache.open(s3.client, INPUT_BUCKET, "cache/b.mp4") as b:
        assert b.cache_hit
    s3.client.upload_file(str(make_clip(tmp_path / "b2.mp4", frames=4)), INPUT_BUCKET, "cache/b.mp4")
    with cache.open(s3.client, INPUT_BUCKET, "cache/b.mp4") as b2:  # a new version: a new ETag
        assert (b2.cache_hit, b2.info.frame_count) == (False, 4)
    cache.clear()
    assert list((tmp_path / "cache").iterdir()) == []


# --- the model the endpoint serves -----------------------------------------------------------


def test_the_model_comes_from_sm_model_dir_then_posepipe_model_then_the_cache(
    s3: S3Stack, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = tmp_path / "opt-ml-model"
    model_dir.mkdir()
    monkeypatch.setenv("SM_MODEL_DIR", str(model_dir))
    assert resolve_endpoint_model() == model_path
    other = tmp_path / "other.task"
    other.symlink_to(model_path)
    monkeypatch.setenv("POSEPIPE_MODEL", str(other))
    assert resolve_endpoint_model() == other
    (model_dir / "deployed.task").symlink_to(model_path)
    assert resolve_endpoint_model() == model_dir / "deployed.task"
    (model_dir / "second.task").symlink_to(model_path)
    with pytest.raises(ModelError, match=r"several \.task bundles"):
        resolve_endpoint_model()


# --- over HTTP -------------------------------------------------------------------------------


def http(url: str, body: dict[str, Any] | None = None, timeout: float = 60) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_background_server_answers_over_http(s3: S3Stack) -> None:
    server = start_background_server("127.0.0.1", 0)
    try:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert http(f"{server.url}/ping", timeout=30)[0] == 200
        body = invocation("http", chunk={"index": 1, "start": 200, "stop": 210, "warmup_start": 195})
        status, answer = http(f"{server.url}/invocations", body)
        assert (status, answer["frames"]) == (200, 10), answer
        assert s3.exists(body["output"])
        assert http(f"{server.url}/invocations", invocation("http", video=7))[0] == 400
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):
        http(f"{server.url}/ping", timeout=2)


@pytest.mark.slow
def test_serve_runs_gunicorn_and_stops_gracefully_on_sigterm(s3: S3Stack) -> None:
    port = free_port()
    env = {**os.environ, "PYTHON": sys.executable, "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    process = subprocess.Popen(
        [str(REPO / "sagemaker_endpoint" / "serve"), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if http(f"http://127.0.0.1:{port}/ping", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.2)
        body = invocation("gunicorn", chunk={"index": 0, "start": 0, "stop": 5, "warmup_start": 0})
        status, answer = http(f"http://127.0.0.1:{port}/invocations", body)
        assert (status, answer["frames"]) == (200, 5), answer
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "Handling signal: term" in output
    logs = [json.loads(line) for line in output.splitlines() if line.startswith('{"level"')]
    assert any(log["message"] == "invocation" and log["service"] == "posepipe-endpoint" for log in logs)
