"""The engine behind ``/invocations``: which model the endpoint serves, and how a chunk is run.

The endpoint loads and verifies its model once at start-up (``/ping`` answers 200 only then) and
runs every chunk with it. ``posepipe.stages.infer_chunk`` opens a fresh engine per chunk,
because VIDEO mode carries tracking state from frame to frame and each chunk must start clean
(its warm-up frames rebuild that state).

The engine (:func:`endpoint_engine`): ``$POSEPIPE_ENGINE`` (``mediapipe``, ``torch`` or
``auto``; default ``auto``): ``auto`` serves the torch engine (BlazePose ported to PyTorch,
float16) when PyTorch sees a CUDA GPU, else MediaPipe on the CPU. Any other value fails the
start-up (``/ping`` says why). Requests cannot choose the engine.

The model, first found first used:

1. the one ``*.task`` bundle in ``$SM_MODEL_DIR`` (SageMaker's ``/opt/ml/model``, where it
   unpacks the model's ``ModelDataUrl``);
2. ``$POSEPIPE_MODEL``;
3. the model ``posepipe models build`` cached (the container image builds it).

A :class:`ChunkEngine` is the seam for other engines: ``create_app(engine_factory=...)`` takes
any callable that returns one (default :func:`default_engine_factory`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from posepipe.engine import (
    EngineName,
    PoseEngineOptions,
    RunningMode,
    open_pose_engine,
    parse_engine,
    resolve_engine,
)
from posepipe.errors import ModelError, PosepipeError
from posepipe.models import model_info, resolve_model_path, verify_model
from posepipe.stages import Chunk, ChunkResult, InferenceOptions, infer_chunk
from posepipe.video import VideoInfo

SM_MODEL_DIR_ENV = "SM_MODEL_DIR"
DEFAULT_SM_MODEL_DIR = "/opt/ml/model"
ENGINE_ENV = "POSEPIPE_ENGINE"
DEFAULT_ENGINE = "auto"


class ChunkEngine(Protocol):
    """Runs pose inference over one chunk of a local video file."""

    def load(self) -> None:
        """Load and check the model; raise if it cannot serve. Called once, before any ``infer``."""

    def describe(self) -> dict[str, Any]:
        """What is served (for ``/ping`` and the logs): at least ``{"engine", "model"}``."""

    def infer(self, video: Path, chunk: Chunk, options: InferenceOptions, info: VideoInfo) -> ChunkResult:
        """The chunk's result; :class:`posepipe.errors.InputError` if the video cannot be read."""


EngineFactory = Callable[[], ChunkEngine]


def resolve_endpoint_model() -> Path:
    """The model the endpoint serves (see the module docstring), or :class:`ModelError`."""
    model_dir = Path(os.environ.get(SM_MODEL_DIR_ENV) or DEFAULT_SM_MODEL_DIR)
    bundles = sorted(model_dir.glob("*.task")) if model_dir.is_dir() else []
    if len(bundles) > 1:
        names = ", ".join(bundle.name for bundle in bundles)
        raise ModelError(f"{model_dir}: several .task bundles ({names}); the endpoint serves exactly one")
    return resolve_model_path(bundles[0] if bundles else None)


def endpoint_engine() -> EngineName:
    """The engine this endpoint serves: ``$POSEPIPE_ENGINE`` (default ``auto``), resolved."""
    value = os.environ.get(ENGINE_ENV, "").strip() or DEFAULT_ENGINE
    return resolve_engine(parse_engine(value, what=f"{ENGINE_ENV}:"))


def default_engine_factory() -> ChunkEngine:
    """:class:`TorchChunkEngine` or :class:`MediaPipeChunkEngine`, as :func:`endpoint_engine` says."""
    return TorchChunkEngine() if endpoint_engine() == "torch" else MediaPipeChunkEngine()


class MediaPipeChunkEngine:
    """The CPU engine: ``posepipe.stages.infer_chunk`` with MediaPipe and the endpoint's one model."""

    def __init__(self, model_path: Path | None = None) -> None:
        self._model_path = model_path

    @property
    def model_path(self) -> Path:
        if self._model_path is None:
            raise ModelError("the engine is not loaded")
        return self._model_path

    def load(self) -> None:
        """Resolve the model and run it once on a blank image (MediaPipe loads it for real)."""
        path = self._model_path or resolve_endpoint_model()
        verify_model(path)
        self._model_path = path

    def describe(self) -> dict[str, Any]:
        info = model_info(self.model_path)
        return {
            "engine": "mediapipe",
            "model": info.name,
            "model_path": info.path,
            "model_sha256": info.sha256,
        }

    def infer(self, video: Path, chunk: Chunk, options: InferenceOptions, info: VideoInfo) -> ChunkResult:
        chosen = replace(options, model_path=str(self.model_path), engine="mediapipe")
        return infer_chunk(video, chunk, chosen, info=info)


class TorchChunkEngine:
    """The GPU engine: ``posepipe.stages.infer_chunk`` with the torch engine and the endpoint's one model.

    ``load`` converts the bundle's networks onto the device (kept for every chunk after, see
    :mod:`posepipe.torch_engine.estimator`) and runs them once on a blank image: CUDA in float16
    when there is a GPU, else the CPU in float32.
    """

    def __init__(self, model_path: Path | None = None) -> None:
        self._model_path = model_path
        self._description: dict[str, Any] | None = None

    @property
    def model_path(self) -> Path:
        if self._model_path is None:
            raise ModelError("the engine is not loaded")
        return self._model_path

    def load(self) -> None:
        import numpy as np

        path = self._model_path or resolve_endpoint_model()
        blank = np.zeros((256, 256, 3), dtype=np.uint8)
        try:
            with open_pose_engine(PoseEngineOptions(model_path=path, engine="torch")) as estimator:
                estimator.detect(blank)
                model = estimator.model_dict()
            video = PoseEngineOptions(model_path=path, engine="torch", running_mode=RunningMode.VIDEO)
            with open_pose_engine(video) as tracker:
                tracker.detect_for_video(blank, 0)
        except PosepipeError:
            raise
        except Exception as exc:
            raise ModelError(f"{path}: the torch engine could not load the model: {exc}") from exc
        self._model_path = path
        self._description = {
            "engine": "torch",
            "model": model["name"],
            "model_path": model["path"],
            "model_sha256": model["sha256"],
            "device": model["device"],
            "dtype": model["dtype"],
        }

    def describe(self) -> dict[str, Any]:
        if self._description is None:
            raise ModelError("the engine is not loaded")
        return dict(self._description)

    def infer(self, video: Path, chunk: Chunk, options: InferenceOptions, info: VideoInfo) -> ChunkResult:
        chosen = replace(options, model_path=str(self.model_path), engine="torch")
        return infer_chunk(video, chunk, chosen, info=info)
