"""What the endpoint refuses to do: run without the GPU it was configured for, run another
detector than its own, queue invocations past its capacity, serve models that fail their
archive's sums; and the metrics it writes for each invocation it answers."""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
from posepipe.assets.model_archive import pack_models
from posepipe.cloud.endpoint.app import create_app, endpoint_state
from posepipe.cloud.endpoint.engine import EndpointSettings, TopDownChunkEngine
from posepipe.engines.base import InferenceOptions, cuda_available
from posepipe.media.probe import VideoInfo
from posepipe.media.sources import MediaSource
from posepipe.video.stages import Chunk, ChunkResult

from tests.support.endpoint import OUTPUT_BUCKET, VIDEO_URI, S3Stack

CHUNK = {"index": 0, "start": 10, "stop": 14, "warmup_start": 8}


def body(name: str, **options: Any) -> dict[str, Any]:
    return {
        "video": VIDEO_URI,
        "chunk": CHUNK,
        "output": f"s3://{OUTPUT_BUCKET}/work/rules/{name}.json",
        "options": {"max_poses": 20, **options},
    }


@pytest.mark.skipif(cuda_available(), reason="this machine has the GPU the configuration asks for")
def test_an_endpoint_configured_for_the_gpu_does_not_start_without_one(
    s3: S3Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("POSEPIPE_DEVICE", "cuda")
    with caplog.at_level(logging.ERROR):
        app = create_app(load_in_background=False)
    ping = app.test_client().get("/ping")
    assert ping.status_code == 503
    message = ping.get_json()["message"]
    assert ping.get_json()["status"] == "failed"
    assert "POSEPIPE_DEVICE=cuda" in message
    assert "sees none" in message
    assert "does not fall back" in message
    assert any(r.getMessage() == "model failed to load" for r in caplog.records)
    answer = app.test_client().post("/invocations", json=body("no-gpu"))
    assert answer.status_code == 503
    assert answer.get_json()["error"] == "not_ready"


def test_the_deployed_engine_choice_with_the_gpu_named_conflicts_with_mediapipe() -> None:
    settings = EndpointSettings.from_environment(
        {"POSEPIPE_DEVICE": "cuda", "POSEPIPE_ENGINE": "mediapipe", "POSEPIPE_DETECTOR": "centernet"}
    )
    with pytest.raises(Exception, match="POSEPIPE_DEVICE=cuda"):
        settings.resolved_engine()
    with pytest.raises(Exception, match="POSEPIPE_DEVICE"):
        EndpointSettings.from_environment({"POSEPIPE_DEVICE": "tpu"})
    with pytest.raises(Exception, match="POSEPIPE_DETECTOR"):
        EndpointSettings.from_environment({"POSEPIPE_DETECTOR": "yolo"})


@pytest.fixture(scope="module")
def topdown_app(s3: S3Stack) -> Any:
    app = create_app(load_in_background=False)
    assert endpoint_state(app).ready, endpoint_state(app).failure
    return app


def test_a_request_for_another_detector_is_refused(topdown_app: Any) -> None:
    ping = topdown_app.test_client().get("/ping").get_json()
    assert (ping["detector"], ping["device"]) == ("centernet", "cpu")
    response = topdown_app.test_client().post("/invocations", json=body("other", detector="blazepose"))
    assert response.status_code == 400
    assert response.get_json()["error"] == "detector_mismatch"
    assert "centernet" in response.get_json()["message"]
    assert "blazepose" in response.get_json()["message"]


def test_each_answer_writes_its_frames_per_device_as_an_embedded_metric(
    topdown_app: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    response = topdown_app.test_client().post("/invocations", json=body("metric", detector="centernet"))
    assert response.status_code == 200, response.get_json()
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(records) == 1
    record = records[0]
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "posepipe"
    assert {"Device", "Detector"} <= set(directive["Dimensions"][0])
    assert {m["Name"] for m in directive["Metrics"]} == {"Frames", "PersonFrames", "InferenceSeconds"}
    assert (record["Device"], record["Detector"]) == ("cpu", "centernet")
    assert record["Frames"] == [4.0]  # frames 10-13
    assert record["PersonFrames"] == [float(response.get_json()["person_frames"])]
    assert record["PersonFrames"][0] >= 1


class BlockingEngine:
    """Holds every invocation until the test lets it go."""

    detector = "centernet"

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.go = threading.Event()

    def load(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"engine": "test", "model": "none", "device": "cpu", "detector": self.detector}

    def infer(
        self,
        video: MediaSource,
        chunk: Chunk,
        options: InferenceOptions,
        info: VideoInfo,
        agree_with: Any = None,
    ) -> ChunkResult:
        self.entered.release()
        assert self.go.wait(30)
        return ChunkResult(chunk=chunk, frames=[], model={"engine": "test"}, timings={})


def test_invocations_over_capacity_are_refused_at_once_and_retryable(s3: S3Stack) -> None:
    engine = BlockingEngine()
    app = create_app(lambda: engine, load_in_background=False, max_concurrent=2)
    answers: list[Any] = []

    def invoke(k: int) -> None:
        response = app.test_client().post("/invocations", json=body(f"held-{k}"))
        answers.append(response.status_code)

    held = [threading.Thread(target=invoke, args=(k,)) for k in range(2)]
    for thread in held:
        thread.start()
    assert engine.entered.acquire(timeout=30)
    assert engine.entered.acquire(timeout=30)
    refused = app.test_client().post("/invocations", json=body("over"))
    assert refused.status_code == 503
    assert refused.get_json()["error"] == "over_capacity"
    assert refused.headers["Retry-After"] == "1"
    assert "2 invocations" in refused.get_json()["message"]
    engine.go.set()
    for thread in held:
        thread.join(30)
    assert answers == [200, 200]
    again = app.test_client().post("/invocations", json=body("after"))
    assert again.status_code == 200  # capacity is given back as invocations end


@pytest.fixture(scope="module")
def unpacked_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The endpoint's model archive (``posepipe models pack``), unpacked as SageMaker does."""
    work = tmp_path_factory.mktemp("archive")
    archive = work / "model.tar.gz"
    pack_models(["centernet", "movenet-lightning", "blazepose-full"], archive)
    model_dir = work / "model"
    model_dir.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(model_dir, filter="data")
    return model_dir


def test_the_endpoint_serves_the_networks_of_its_model_archive(
    s3: S3Stack, unpacked_archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_MODEL_DIR", str(unpacked_archive))
    engine = TopDownChunkEngine(EndpointSettings.from_environment())
    app = create_app(lambda: engine, load_in_background=False)
    ping = app.test_client().get("/ping").get_json()
    assert ping["status"] == "ready"
    assert ping["archive"] is True
    assert ping["model_path"] == str(unpacked_archive / "pose_landmarker_full.task")
    assert engine.models.files["centernet"] == unpacked_archive / "centernet.onnx"


def test_a_model_archive_whose_file_fails_its_sum_does_not_start(
    s3: S3Stack, unpacked_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tampered = tmp_path / "model"
    shutil.copytree(unpacked_archive, tampered)
    data = bytearray((tampered / "centernet.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / "centernet.onnx").write_bytes(bytes(data))
    monkeypatch.setenv("SM_MODEL_DIR", str(tampered))
    ping = create_app(load_in_background=False).test_client().get("/ping")
    assert ping.status_code == 503
    assert "centernet.onnx" in ping.get_json()["message"]
