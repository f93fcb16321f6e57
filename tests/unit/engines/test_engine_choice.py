"""Choosing the pose engine: ``--engine`` on the CLI, ``open_pose_engine``, the local stack's endpoint.

The endpoint's own choice (``POSEPIPE_ENGINE``, ``/ping``) is tested in
tests/unit/cloud/endpoint/test_endpoint.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from posepipe.engines.base import InferenceOptions, PoseEngineOptions, RunningMode, resolve_engine
from posepipe.engines.choice import open_pose_engine
from posepipe.engines.mediapipe import MediaPipePoseEstimator
from posepipe.errors import EngineError
from posepipe.media.decode import read_frames
from posepipe.result import validate_result

from tests.support.cli import CliRun
from tests.support.clips import encode_frames


@pytest.fixture
def one_torch_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """torch on one CPU thread, here and in the commands run: the ported networks run ~120 small
    parallel regions a frame, and on a CPU other processes keep busy OpenMP's spinning threads
    can make them many times slower. The results do not depend on it."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _image_result(cli: Callable[..., CliRun], out: Path, photo: Path, *options: str) -> dict[str, Any]:
    run = cli("image", photo, "-o", out, "--no-annotate", *options)
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads((out / f"{photo.stem}.pose.json").read_text())
    validate_result(result)
    return result


@pytest.mark.usefixtures("one_torch_thread")
def test_image_with_the_torch_engine_gives_mediapipes_landmarks(
    tmp_path: Path, cli: Callable[..., CliRun], sample: Callable[[str], Path], model_path: Path
) -> None:
    photo = sample("messi5.jpg")
    torch_result = _image_result(
        cli, tmp_path / "torch", photo, "--engine", "torch", "--detector", "blazepose"
    )
    mediapipe_result = _image_result(
        cli, tmp_path / "mediapipe", photo, "--engine", "mediapipe", "--detector", "blazepose"
    )

    model = torch_result["model"]
    assert (model["engine"], model["device"], model["dtype"]) == ("torch", "cpu", "float32")
    assert model["name"] == mediapipe_result["model"]["name"] == "pose_landmarker_full"
    assert model["sha256"] == mediapipe_result["model"]["sha256"]
    assert mediapipe_result["model"]["engine"] == "mediapipe"
    (person,) = torch_result["frames"][0]["persons"]
    (reference,) = mediapipe_result["frames"][0]["persons"]
    ours = np.array(person["landmarks"])[:, :2]
    theirs = np.array(reference["landmarks"])[:, :2]
    assert float(np.median(np.linalg.norm(ours - theirs, axis=1))) <= 1.0
    with pytest.raises(jsonschema.ValidationError):  # the schema knows the engines
        validate_result({**torch_result, "model": {**model, "engine": "onnx"}})


@pytest.mark.usefixtures("one_torch_thread")
def test_image_with_the_torch_engine_runs_the_top_down_networks_in_pytorch(
    tmp_path: Path, cli: Callable[..., CliRun], sample: Callable[[str], Path], model_path: Path
) -> None:
    """The default detector with ``--engine torch``: the endpoint's GPU code path, on this CPU."""
    photo = sample("basketball1.png")
    torch_result = _image_result(cli, tmp_path / "torch", photo, "--engine", "torch")
    cpu_result = _image_result(cli, tmp_path / "cpu", photo)
    model = torch_result["model"]
    assert (model["engine"], model["device"]) == ("topdown", "cpu")
    assert model["runtime"] == {"detector": "torch", "finder": "torch", "second_opinion": "torch"}
    assert cpu_result["model"]["runtime"] == {
        "detector": "onnxruntime", "finder": "litert", "second_opinion": "onnxruntime"
    }  # fmt: skip
    ours = sorted(torch_result["frames"][0]["persons"], key=lambda p: p["bbox"])
    theirs = sorted(cpu_result["frames"][0]["persons"], key=lambda p: p["bbox"])
    assert len(ours) == len(theirs) == 2  # both players
    for p, q in zip(ours, theirs, strict=True):
        moved = np.linalg.norm(np.array(p["landmarks"])[:, :2] - np.array(q["landmarks"])[:, :2], axis=1)
        assert float(np.median(moved)) <= 1.0


@pytest.mark.usefixtures("one_torch_thread")
def test_video_with_the_torch_engine_records_it(
    tmp_path: Path, cli: Callable[..., CliRun], sample: Callable[[str], Path], model_path: Path
) -> None:
    """Needs the torch engine's VIDEO mode (posepipe.engines.torch.video_tracking)."""
    frames = [f.rgb.copy() for f in read_frames(sample("vtest.avi"), 540, 555)]
    clip = encode_frames(tmp_path / "walk.mp4", frames)
    out = tmp_path / "out"
    run = cli("video", clip, "-o", out, "--engine", "torch", "--workers", "1", "--no-annotate")
    assert run.returncode == 0, run.stderr
    keypoints = json.loads((out / "walk" / "keypoints.json").read_text())
    validate_result(keypoints)
    assert len(keypoints["frames"]) == 15
    assert sum(len(f["persons"]) for f in keypoints["frames"]) > 0
    summary = json.loads((out / "walk" / "summary.json").read_text())
    assert (summary["model"]["engine"], summary["model"]["device"]) == ("topdown", "cpu")
    assert summary["model"]["runtime"]["detector"] == "torch"


@pytest.mark.parametrize("command", ["image", "video"])
def test_an_unknown_engine_is_exit_2_with_one_readable_line(
    tmp_path: Path, cli: Callable[..., CliRun], sample: Callable[[str], Path], command: str
) -> None:
    run = cli(command, sample("messi5.jpg"), "-o", tmp_path, "--engine", "tensorrt")
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("posepipe: error: argument --engine: invalid choice: 'tensorrt'")
    assert "(choose from 'mediapipe', 'torch', 'auto')" in lines[0]
    assert not any(tmp_path.iterdir())


def test_auto_picks_mediapipe_on_a_machine_without_cuda(model_path: Path) -> None:
    import torch

    assert not torch.cuda.is_available()  # this test machine: CPU only
    assert resolve_engine("auto") == "mediapipe"
    with open_pose_engine(PoseEngineOptions(engine="auto")) as engine:
        assert isinstance(engine, MediaPipePoseEstimator)
        assert engine.model_dict()["engine"] == "mediapipe"


def test_auto_picks_torch_where_cuda_is_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("posepipe.engines.base.cuda_available", lambda: True)
    assert resolve_engine("auto") == "torch"
    assert resolve_engine("mediapipe") == "mediapipe"


def test_the_torch_engine_without_pytorch_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("posepipe.engines.base.torch_installed", lambda: False)
    assert resolve_engine("auto") == "mediapipe"
    with pytest.raises(EngineError, match="the torch engine needs PyTorch, which is not installed"):
        open_pose_engine(PoseEngineOptions(engine="torch"))


def test_a_video_with_the_torch_engine_but_no_pytorch_fails_before_any_worker_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from posepipe.video.local import VideoJobOptions, run_video

    monkeypatch.setattr("posepipe.engines.base.torch_installed", lambda: False)
    options = VideoJobOptions(inference=InferenceOptions(engine="torch"), workers=2)
    with pytest.raises(EngineError, match="needs PyTorch"):
        run_video(tmp_path / "never-opened.mp4", tmp_path / "out", options)
    assert not (tmp_path / "out").exists()


def test_video_workers_share_the_cores_between_their_torch_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from posepipe.video.workers import torch_threads

    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert torch_threads("torch", 4) == 4
    assert torch_threads("auto", 32) == 1
    assert torch_threads("mediapipe", 4) is None  # MediaPipe's own thread pool is left alone
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert torch_threads("torch", 4) is None  # the user's choice stands


def test_unknown_engines_are_refused_by_the_options() -> None:
    with pytest.raises(EngineError, match="engine 'onnx' is not one of mediapipe, torch, auto"):
        PoseEngineOptions(engine="onnx")  # type: ignore[arg-type]
    with pytest.raises(EngineError):
        InferenceOptions(engine="gpu")  # type: ignore[arg-type]
    assert InferenceOptions().engine == "mediapipe"
    assert InferenceOptions(engine="torch").engine_options(RunningMode.VIDEO).engine == "torch"


@pytest.mark.usefixtures("one_torch_thread")
def test_the_torch_estimator_has_the_engine_interface(
    model_path: Path, sample: Callable[[str], Path]
) -> None:
    from posepipe.engines.torch.estimator import TorchPoseEstimator
    from posepipe.media.images import load_image

    rgb = load_image(sample("messi5.jpg"), source="messi5.jpg").rgb
    with open_pose_engine(PoseEngineOptions(engine="torch", max_poses=2)) as engine:
        assert isinstance(engine, TorchPoseEstimator)
        assert len(engine.detect(rgb)) == 1
        assert len(engine.detect(rgb[:, ::-1])) == 1  # a strided view is fine
        model = engine.model_dict()
        assert {"name", "path", "sha256", "engine", "device", "dtype", "max_poses"} <= set(model)
        assert model["max_poses"] == 2
        with pytest.raises(RuntimeError, match="VIDEO mode"):
            engine.detect_for_video(rgb, 0)
    explicit = TorchPoseEstimator(PoseEngineOptions(model_path=model_path), device="cpu", dtype="float32")
    assert (explicit.model_dict()["device"], explicit.model_dict()["dtype"]) == ("cpu", "float32")
    explicit.close()


def test_the_mediapipe_path_does_not_import_torch(sample: Callable[[str], Path], model_path: Path) -> None:
    script = (
        "import sys\n"
        "from posepipe.image_job import ImageJob, ImageJobOptions\n"
        "from posepipe.video.stages import InferenceOptions\n"
        f"job = ImageJob(ImageJobOptions(inference=InferenceOptions(engine='mediapipe')))\n"
        f"result, _, _ = job.run({str(sample('messi5.jpg'))!r}, 'messi5.jpg')\n"
        "assert len(result.frames[0].persons) == 1\n"
        "job.close()\n"
        "print('torch' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


@pytest.mark.usefixtures("one_torch_thread")
def test_posepipe_engine_reaches_the_local_stacks_endpoint(
    monkeypatch: pytest.MonkeyPatch, model_path: Path, tmp_path: Path
) -> None:
    """``POSEPIPE_ENGINE=torch posepipe serve``: the endpoint server the stack starts serves torch.

    Needs the torch engine's VIDEO mode (posepipe.engines.torch.video_tracking): loading checks it.
    """
    from posepipe.local_stack.stack import LocalStack, _endpoint_app

    monkeypatch.setenv("POSEPIPE_ENGINE", "torch")
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path))  # no bundle there: the built model
    monkeypatch.delenv("POSEPIPE_MODEL", raising=False)
    variables = LocalStack().component_environments()["endpoint"]
    assert variables["POSEPIPE_ENGINE"] == "torch"  # the variable set before `posepipe serve` wins
    app = _endpoint_app(variables)
    from posepipe.cloud.endpoint.app import endpoint_state

    assert endpoint_state(app).wait_until_loaded(120), endpoint_state(app).failure
    ping = app.test_client().get("/ping")
    assert ping.status_code == 200, ping.get_json()
    assert (ping.get_json()["engine"], ping.get_json()["device"]) == ("torch", "cpu")
